// Benchmarks: machine ceilings measured in the same run (FMA peak, STREAM triad), synthetic
// routings (uniform, Zipf-skewed, recorded), and the MoE layer vs a dense FFN of equal active
// FLOPs. Speed lives here and in `moe bench`, never in timed tests.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "moe/routing.h"

namespace moe::bench {

// Peak f32 FMA throughput of `threads` cores (independent FMA chains in registers), GFLOP/s.
double fma_peak_gflops(int threads, double seconds = 0.3);
// Peak bf16 dot-product throughput (vdpbf16ps, 4 FLOPs per f32 lane), GFLOP/s; 0 without AVX512-BF16.
double bf16_dot_peak_gflops(int threads, double seconds = 0.3);
// STREAM triad a = b + s·c over arrays far larger than the caches, GB/s (3 arrays counted).
double triad_gbps(int threads, double seconds = 0.5);

// Token-choice routing of T tokens to k distinct experts: uniform, or Zipf (expert e drawn with
// weight (e+1)^-s, then shuffled expert ids so load is skewed but not by index).
Routing synthetic_routing(int64_t n_tokens, int64_t n_experts, int64_t top_k, double zipf_s, uint64_t seed);

// A recorded routing (`--routing file.safetensors`): "expert_ids" [R, k] I32/I64 of R >= 1 rows
// of k distinct ids in [0, E), repeated to fill T tokens. InvalidInput for anything else.
Routing recorded_routing(const std::string& path, int64_t n_tokens, int64_t n_experts, int64_t top_k);

struct LayerBenchConfig {
  int64_t emb_dim = 0, hidden_dim = 0, num_experts = 0, top_k = 0, tokens = 0;
  std::string dtype = "fp32";
  int threads = 1;
  std::string routing = "uniform";  // "uniform", "zipf:S", or a safetensors file with expert_ids [T, k]
  double min_seconds = 1.0;          // per measurement
  uint64_t seed = 1;
  bool backward = false;             // also time the training forward + backward (f32 weights)
};

// Runs the MoE layer forward (router + routing + experts) and the dense FFN of equal active
// FLOPs, both on the fast kernels, plus the ceilings; returns every figure as JSON.
nlohmann::json run_layer_bench(const LayerBenchConfig& config);
// The human-readable table of a run_layer_bench result.
std::string format_layer_bench(const nlohmann::json& result);

// `moe bench tokenizer`: a Hugging Face tokenizer's load time, and encode / decode / streaming
// decode speed on a text file (one thread), each the median of repeated runs of at least
// `min_seconds`.
struct TokenizerBenchConfig {
  std::string tokenizer, text;
  double min_seconds = 1.0;
};
nlohmann::json run_tokenizer_bench(const TokenizerBenchConfig& config);
std::string format_tokenizer_bench(const nlohmann::json& result);

}  // namespace moe::bench
