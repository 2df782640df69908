// `moe bench layer` and `moe bench tokenizer`: flags and printing; the measurements are in src/bench.
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "moe/bench.h"

namespace moe::cli {

Run add_bench(CLI::App& app) {
  auto c = std::make_shared<bench::LayerBenchConfig>();
  auto json_out = std::make_shared<bool>(false);
  CLI::App* b = app.add_subcommand("bench", "Benchmarks (times, rates, and ratios to baselines measured in the same run)");
  b->require_subcommand(1);
  CLI::App* layer = b->add_subcommand("layer", "MoE layer forward vs a dense FFN of equal active FLOPs, with the machine's ceilings");
  layer->add_option("--emb_dim", c->emb_dim, "Model width d")->required();
  layer->add_option("--hidden_dim", c->hidden_dim, "Expert intermediate width f")->required();
  layer->add_option("--num_experts", c->num_experts, "Experts E")->required();
  layer->add_option("--top_k", c->top_k, "Experts per token k")->required();
  layer->add_option("--tokens", c->tokens, "Tokens in the batch")->capture_default_str()->default_val(512);
  layer->add_option("--dtype", c->dtype, "Weight type: fp32 or bf16 (activations stay f32, rounded to bf16 as they are packed)")->capture_default_str();
  layer->add_option("--threads", c->threads, "Threads (ours and the baselines')")->capture_default_str();
  layer->add_option("--routing", c->routing, "uniform, zipf:S, or a safetensors file with expert_ids [T, k]")->capture_default_str();
  layer->add_option("--seconds", c->min_seconds, "Minimum time per measurement")->capture_default_str();
  layer->add_option("--seed", c->seed, "Seed for weights, inputs and routing")->capture_default_str();
  layer->add_flag("--backward", c->backward, "Also time the training forward and the backward (dX, dW, slot-weight grads)");
  layer->add_flag("--json", *json_out, "Print one JSON object with every figure");
  auto t = std::make_shared<bench::TokenizerBenchConfig>();
  CLI::App* tok = b->add_subcommand("tokenizer", "A Hugging Face tokenizer's load time and encode / decode speed on a text");
  tok->add_option("--tokenizer", t->tokenizer, "A folder with tokenizer.json (a model folder works)")->required();
  tok->add_option("--text", t->text, "The text to encode (e.g. out/data/train.txt from `moe data`)")->required();
  tok->add_option("--seconds", t->min_seconds, "Minimum time per measurement")->capture_default_str();
  tok->add_flag("--json", *json_out, "Print one JSON object with every figure");
  return [c, t, json_out, layer, tok]() -> int {
    if (tok->parsed()) {
      const nlohmann::json r = bench::run_tokenizer_bench(*t);
      std::cout << (*json_out ? r.dump(2) + "\n" : bench::format_tokenizer_bench(r));
      return 0;
    }
    if (!layer->parsed()) return 0;
    const nlohmann::json r = bench::run_layer_bench(*c);
    std::cout << (*json_out ? r.dump(2) + "\n" : bench::format_layer_bench(r));
    return 0;
  };
}

}  // namespace moe::cli
