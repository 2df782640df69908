// `moe generate`: text from a trained checkpoint, or an untrained model built from flags to
// measure what the FFN / MoE costs per call (the dense-vs-MoE comparison of
// shared/spec/dense-vs-moe-generation.md). Greedy or sampled, KV cache, streamed output.
#include <cmath>
#include <omp.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "commands.h"
#include "model_flags.h"
#include "moe/error.h"
#include "moe/generate.h"
#include "moe/progress.h"
#include "moe/sampling.h"
#include "moe/tokenizer.h"
#include "moe/trainer.h"
#include "util/format.h"

namespace moe::cli {

namespace {

struct GenerateFlags {
  std::string checkpoint;
  bool untrained = false;
  GptPreset model;
  uint64_t init_seed = 123;
  std::string prompt = "Hello, I am";
  std::string dtype = "fp32";  // FFN weights at inference: fp32 or bf16 panels
  int64_t max_new_tokens = 200;
  bool no_kv_cache = false;
  SamplingOptions sampling;
  uint64_t seed = 1;
  bool quiet = false;
  int threads = 0;
};

// Bytes of the intermediate tensors one FFN call creates for n tokens (what the reference's
// per-call memory delta measures): dense gate/up/hidden [n, F]; MoE router logits [n, E] and the
// chosen experts' gate/up/hidden rows [n·k, I]; plus the output [n, d].
double ffn_activation_bytes(const GptConfig& c, int64_t layer, int64_t n) {
  const double f = 4.0;
  if (!c.is_moe_layer(layer)) return f * n * (3.0 * c.dense.hidden + c.d_model);
  const MoeLayerConfig& m = c.moe;
  const double k = m.soft.slots_per_expert > 0 ? static_cast<double>(m.router.n_experts * m.soft.slots_per_expert) / n
                                                  : static_cast<double>(m.router.top_k);
  double b = f * n * (m.router.n_experts + 3.0 * k * m.expert.hidden + c.d_model);
  if (m.shared_hidden > 0) b += f * n * 3.0 * m.shared_hidden;
  return b;
}

}  // namespace

Run add_generate(CLI::App& app) {
  auto f = std::make_shared<GenerateFlags>();
  CLI::App* c = app.add_subcommand("generate", "Generate text with a KV cache; prints the FFN/MoE cost per call");
  c->add_option("--checkpoint", f->checkpoint, "A checkpoint from `moe train` (file or its directory)");
  c->add_flag("--untrained", f->untrained, "Build an untrained model from the model flags (timing comparisons)");
  add_model_flags(c, f->model);
  c->add_option("--init_seed", f->init_seed, "--untrained: seed of the random weights")->capture_default_str();
  c->add_option("--prompt", f->prompt, "Prompt text (bytes)")->capture_default_str();
  c->add_option("--max_new_tokens", f->max_new_tokens, "Tokens to generate (exactly this many)")->capture_default_str();
  c->add_flag("--no_kv_cache", f->no_kv_cache, "Recompute the whole sequence for every token");
  c->add_option("--temperature", f->sampling.temperature, "0 = greedy")->capture_default_str();
  c->add_option("--sample_top_k", f->sampling.top_k, "Sample among the k most likely tokens (0 = all)")->capture_default_str();
  c->add_option("--top_p", f->sampling.top_p, "Nucleus sampling mass (1 = off)")->capture_default_str();
  c->add_option("--seed", f->seed, "Sampling seed")->capture_default_str();
  c->add_flag("--quiet", f->quiet, "Do not print the generated text (figures only)");
  c->add_option("--dtype", f->dtype, "FFN and expert weights as packed for inference: fp32 or bf16 (half the bytes)")
      ->capture_default_str();
  c->add_option("--threads", f->threads, "Threads (0 = all)")->capture_default_str();
  return [f, c]() -> int {
    if (!c->parsed()) return 0;
    validate_sampling(f->sampling);
    if (f->threads < 0) throw InvalidInput("[generate] --threads=" + std::to_string(f->threads) + " must be >= 0 (0 = all cores)");
    if (f->threads > 0) omp_set_num_threads(f->threads);
    if (f->checkpoint.empty() == !f->untrained) throw InvalidInput("[generate] give either --checkpoint or --untrained");
    if (f->max_new_tokens < 0) throw InvalidInput("[generate] --max_new_tokens must be >= 0");
    // Building (or loading) and packing the model come before the first token: timed apart from
    // the generation, with a progress line for a random init (millions of values per second).
    const auto t_load = std::chrono::steady_clock::now();
    LoadedModel m;
    if (f->untrained) {
      m.config = make_gpt_config(f->model);
      m.weights = make_gpt_weights(m.config, DType::f32);
      std::unique_ptr<Progress> bar;
      init_gpt_weights(m.config, m.weights, f->init_seed, [&](int64_t done, int64_t total) {
        if (total < (int64_t(1) << 24)) return;  // small models: no line
        if (!bar) bar = std::make_unique<Progress>(total, "init");
        bar->update(done);
        if (done == total) bar->finish();
      });
    } else {
      m = load_gpt_checkpoint(f->checkpoint);
    }
    const GptConfig& cfg = m.config;
    if (!cfg.causal) throw InvalidInput("[generate] the model is a bidirectional encoder: it cannot generate text");
    const std::vector<int32_t> prompt = ByteTokenizer::encode(f->prompt);
    if (f->dtype != "fp32" && f->dtype != "bf16") throw InvalidInput("[generate] --dtype=" + f->dtype + " is not one of: fp32, bf16");
    const GptPrepared model =
        prepare_gpt(cfg, m.weights, f->dtype == "bf16" ? ExpertFormat::packed_bf16 : ExpertFormat::packed_f32);
    const double load_secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_load).count();
    GptInferStats stats;
    double act_bytes = 0, act_max = 0;
    int64_t act_calls = 0;
    Utf8Stream out(/*escape_controls=*/true);
    auto emit = [&](const std::string& bytes) {
      if (f->quiet) return;
      const std::string s = out.push(bytes);
      std::fwrite(s.data(), 1, s.size(), stdout);
      std::fflush(stdout);
    };
    GenerateCallbacks cb;
    cb.on_forward = [&](int64_t n) {
      for (int64_t l = 0; l < cfg.n_layers; ++l) {
        const double b = ffn_activation_bytes(cfg, l, n);
        act_bytes += b;
        act_max = std::max(act_max, b);
        ++act_calls;
      }
    };
    cb.on_token = [&](int32_t next) {
      // Ids past the bytes (an untrained model with a larger vocabulary) print as <id>.
      emit(next < ByteTokenizer::kVocabSize ? std::string(1, static_cast<char>(next)) : "<" + std::to_string(next) + ">");
      return true;
    };
    GenerateOptions go;
    go.max_new_tokens = f->max_new_tokens;
    go.sampling = f->sampling;
    go.seed = f->seed;
    go.kv_cache = !f->no_kv_cache;
    if (!prompt.empty() && static_cast<int64_t>(prompt.size()) <= cfg.context) emit(f->prompt);
    const auto t0 = std::chrono::steady_clock::now();
    const GenerateResult gen = generate(model, prompt, go, cb, &stats);
    if (!f->quiet) std::fputs(out.flush().c_str(), stdout);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    const bool moe = cfg.has_moe();
    const double mb = 1024.0 * 1024.0;
    std::printf("\n\n");
    std::printf("Model: %s parameters (%s active per token), %s, %lld layers\n",
                util::group_thousands(gpt_param_count(cfg, false)).c_str(),
                util::group_thousands(gpt_param_count(cfg, true)).c_str(), moe ? "MoE" : "dense",
                static_cast<long long>(cfg.n_layers));
    const double ffn_ms = moe ? stats.moe_ms : stats.ffn_ms;
    const int64_t ffn_calls = moe ? stats.moe_calls : stats.ffn_calls;
    // No call (nothing generated): n/a, not a zero that reads as "free".
    std::printf("Avg %s time/call: %s ms\n", moe ? "MoE FF" : "FFN",
                util::fixed_or_na(ffn_calls > 0 ? ffn_ms / ffn_calls : NAN, 3).c_str());
    std::printf("Avg %s mem delta/call: %s MB (max %s MB)  [intermediate tensors of the call]\n", moe ? "MoE FF" : "FFN",
                util::fixed_or_na(act_calls > 0 ? act_bytes / act_calls / mb : NAN, 2).c_str(),
                util::fixed_or_na(act_calls > 0 ? act_max / mb : NAN, 2).c_str());
    if (gen.slides > 0)
      std::printf("Context: %lld tokens; the window slid %lld time%s (from the first slide on, each token saw the last %lld to %lld tokens)\n",
                  static_cast<long long>(cfg.context), static_cast<long long>(gen.slides), gen.slides == 1 ? "" : "s",
                  static_cast<long long>(gen.window), static_cast<long long>(cfg.context));
    std::printf("Time: %.2f sec\n", secs);  // the generation: prompt and new tokens (the reference's figure)
    std::printf("%.0f tokens/sec\n", static_cast<double>(prompt.size() + gen.tokens.size()) / secs);
    std::printf("Max memory (resident): %.2f GB\n", static_cast<double>(ru.ru_maxrss) * 1024.0 / (1024.0 * mb));
    std::printf("Model %s and packing: %.2f sec (before the first token)\n", f->untrained ? "init" : "load", load_secs);
    return 0;
  };
}

}  // namespace moe::cli
