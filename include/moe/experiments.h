// `moe experiment NAME`: sets of training runs that show what MoE does, each run with the same
// corpus, tokens, seed and schedule, written as OUT/NAME/<run>/{metrics.jsonl, checkpoint, plots}
// plus OUT/NAME/summary.json (read by `moe report`):
//   dense-vs-moe  MoE vs dense at equal active parameters, and dense at equal total parameters
//   balance       no balancing, aux loss, z-loss, aux-loss-free bias: load, dead experts, loss
//   capacity      capacity-factor sweep with dropping vs dropless; expert choice (encoder)
//   routers       softmax top-k, Switch top-1, noisy top-k, sigmoid + bias, shared expert; expert
//                 choice and Soft MoE against token choice in the bidirectional encoder variant
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace moe {

struct ExperimentOptions {
  std::string data_dir = "out/data";     // from `moe data`: train.txt, val.txt
  std::string out_dir = "out/experiments";
  int64_t steps = 300;                   // updates per run
  int64_t batch = 16, seq = 128;         // tokens per update = batch · seq
  double lr = 3e-3;
  int64_t eval_every = 25;
  int64_t eval_windows = 64;
  // The base MoE: d_model, layers, heads, experts × expert width, top-k.
  int64_t d_model = 128, n_layers = 4, n_heads = 4;
  int64_t n_experts = 8, expert_hidden = 256, top_k = 2;
  uint64_t seed = 1;
  int threads = 0;
  bool progress = true;
  bool resume = false;                   // reuse finished runs (same config) instead of retraining
  bool overwrite = false;                // retrain runs already in out_dir (without: refused)
};

const std::vector<std::string>& experiment_names();
// A one-line description of an experiment (for --help and the report).
std::string experiment_description(const std::string& name);

// Runs every run of the experiment; returns (and writes) its summary. InvalidInput for an unknown
// name, a missing corpus, or bad options.
nlohmann::json run_experiment(const std::string& name, const ExperimentOptions& options);

}  // namespace moe
