// `moe info`: what a Hugging Face model folder holds: architecture, parameters (total and active,
// from the estimator), the weights checked against the config, KV cache per token, tokenizer.
#include <cstdio>
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "moe/arch.h"
#include "moe/error.h"
#include "moe/hf_tokenizer.h"
#include "moe/model_count.h"
#include "moe/model_folder.h"
#include "util/format.h"

namespace moe::cli {

namespace {

struct InfoFlags {
  std::string model;
  bool json = false;
};

}  // namespace

Run add_info(CLI::App& app) {
  auto f = std::make_shared<InfoFlags>();
  CLI::App* c = app.add_subcommand("info", "What a Hugging Face model folder holds: architecture, parameters, weights, tokenizer");
  c->add_option("--model", f->model, "A Hugging Face model folder (config.json, model*.safetensors, tokenizer files)")->required();
  c->add_flag("--json", f->json, "Print one JSON object");
  return [f, c]() -> int {
    if (!c->parsed()) return 0;
    const ModelFolder folder = ModelFolder::open(f->model);
    const arch::FolderTensors tensors = arch::check_folder_tensors(folder);
    const estimate::ModelArch a = estimate::model_arch_from_hf_config(folder.config());
    const nlohmann::json& cfg = folder.config();
    const int64_t context = cfg.value("max_position_embeddings", int64_t(4096));
    const estimate::ModelCount count = estimate::count_model(a, "bf16", context);
    nlohmann::json out = {{"model", f->model},
                          {"model_type", a.model_type},
                          {"layers", a.layers.size()},
                          {"moe_layers", count.moe_layers},
                          {"dense_layers", count.dense_layers},
                          {"hidden", a.hidden},
                          {"vocab", a.vocab},
                          {"params_total", count.total},
                          {"params_active", count.active},
                          {"tensors", tensors.n_tensors},
                          {"shards", folder.n_shards()},
                          {"weight_bytes", tensors.bytes},
                          {"dtypes", tensors.by_dtype},
                          {"kv_cache_bytes_per_token_bf16", count.kv_bytes_per_token},
                          {"max_position_embeddings", context},
                          {"eos_token_ids", folder.eos_token_ids()}};
    if (!tensors.ignored.empty()) out["ignored_tensors"] = tensors.ignored;
    if (folder.has_tokenizer()) {
      const HfTokenizer tok = HfTokenizer::from_folder(f->model);
      out["tokenizer"] = {{"vocab", tok.vocab_size()},
                          {"bos", tok.bos_token()},
                          {"eos", tok.eos_token()},
                          {"chat_template", !tok.chat_template().empty()}};
    }
    if (f->json) {
      std::cout << out.dump(2) << "\n";
      return 0;
    }
    const auto thousands = [](int64_t n) { return util::group_thousands(n); };
    std::printf("%s: %s, %zu layers (%lld MoE, %lld dense), hidden %lld, vocabulary %lld\n", f->model.c_str(), a.model_type.c_str(),
                a.layers.size(), static_cast<long long>(count.moe_layers), static_cast<long long>(count.dense_layers),
                static_cast<long long>(a.hidden), static_cast<long long>(a.vocab));
    std::printf("parameters: %s total, %s active per token\n", thousands(count.total).c_str(), thousands(count.active).c_str());
    std::string dtypes;
    for (const auto& [d, n] : tensors.by_dtype) dtypes += (dtypes.empty() ? "" : ", ") + std::to_string(n) + " " + d;
    std::printf("weights: %s tensors in %zu shard(s), %s bytes (%s), all as the config implies\n",
                thousands(tensors.n_tensors).c_str(), folder.n_shards(), thousands(tensors.bytes).c_str(), dtypes.c_str());
    std::printf("KV cache: %s bytes per token in bf16; context %s\n", thousands(count.kv_bytes_per_token).c_str(),
                thousands(context).c_str());
    if (out.contains("tokenizer")) {
      const auto& t = out["tokenizer"];
      std::printf("tokenizer: %s tokens, BOS %s, EOS %s, chat template %s\n", thousands(t["vocab"].get<int64_t>()).c_str(),
                  t["bos"].get<std::string>().empty() ? "none" : t["bos"].get<std::string>().c_str(),
                  t["eos"].get<std::string>().empty() ? "none" : t["eos"].get<std::string>().c_str(),
                  t["chat_template"].get<bool>() ? "yes" : "no");
    } else {
      std::printf("tokenizer: none in the folder\n");
    }
    return 0;
  };
}

}  // namespace moe::cli
