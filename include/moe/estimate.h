// Parameter and memory estimate of one FFN layer, dense vs MoE. Reproduces the reference
// estimator (rasbt/LLMs-from-scratch ch04/07_moe memory_estimator_moe.py) number for number,
// and rejects what it silently accepts. See docs/estimator.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace moe::estimate {

enum class FfnType { gelu, swiglu };

// "gelu" / "swiglu"; throws InvalidInput naming the flag for anything else.
FfnType parse_ffn_type(const std::string& name);
const char* ffn_type_name(FfnType type);
// Weight matrices per FFN: 2 for GELU (up, down), 3 for SwiGLU (gate, up, down).
int64_t ffn_matrices(FfnType type);

struct FfnConfig {
  int64_t emb_dim = 0;
  int64_t hidden_dim = 0;  // dense FFN intermediate size
  FfnType ffn_type = FfnType::swiglu;
  int64_t num_experts = 8;
  int64_t top_k = 2;
  std::string dtype = "bf16";
  bool match_dense = false;  // pick moe_hidden_dim so MoE total ≈ dense total (router included)
};

struct FfnEstimate {
  int64_t dense_params = 0;       // m·emb·hidden
  int64_t router_params = 0;      // emb·E
  int64_t moe_hidden_dim = 0;     // per-expert intermediate size
  int64_t per_expert_params = 0;  // m·emb·moe_hidden
  int64_t moe_total_params = 0;   // E·per_expert + router
  int64_t moe_active_params = 0;  // router + k·per_expert
  int64_t bytes_per_param = 0;
};

// Throws InvalidInput ("[estimate] --flag=value ...") for non-positive sizes, top_k outside
// [1, num_experts], unknown dtype, a dense layer smaller than the router with match_dense,
// moe_hidden_dim rounding to 0, and counts that overflow 64 bits.
FfnEstimate estimate_ffn(const FfnConfig& config);

// The reference's text block, byte for byte (two sections, each ending in a blank line).
std::string format_ffn_report(const FfnConfig& config, const FfnEstimate& estimate);
nlohmann::json ffn_report_json(const FfnConfig& config, const FfnEstimate& estimate);

// The reference plot's sweep over expert counts.
struct SweepConfig {
  int64_t emb_dim = 0;
  int64_t hidden_dim = 0;
  FfnType ffn_type = FfnType::swiglu;
  int64_t top_k = 2;
  int64_t max_experts = 512;
  bool match_dense = true;  // per point; falls back to no matching where dense <= router
};

struct SweepPoint {
  int64_t num_experts = 0;
  bool matched = false;  // false where match_dense was off or fell back for this point
  FfnEstimate estimate;
};

// Expert counts of the reference sweep: 1, 2, 4, 8, 16, 32, 64, 128, 192, 256, 384, 512.
std::vector<int64_t> sweep_expert_counts();

struct SweepSkip {
  int64_t num_experts = 0;
  std::string reason;
};

struct Sweep {
  int64_t dense_params = 0;
  std::vector<SweepPoint> points;  // expert counts <= max_experts that make a valid layer
  std::vector<SweepSkip> skipped;  // E < top_k (active would exceed total), or no valid width
};
Sweep sweep_experts(const SweepConfig& config);

std::string sweep_csv(const SweepConfig& config, const Sweep& sweep);
std::string sweep_svg(const SweepConfig& config, const Sweep& sweep, bool y_log);

}  // namespace moe::estimate
