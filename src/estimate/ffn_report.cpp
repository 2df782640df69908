// The reference estimator's text layout and a JSON twin of it.
#include <nlohmann/json.hpp>

#include "moe/estimate.h"
#include "util/format.h"

namespace moe::estimate {

using util::gigabytes;
using util::group_thousands;
using util::label_line;

std::string format_ffn_report(const FfnConfig& c, const FfnEstimate& e) {
  auto params = [&](int64_t n) { return group_thousands(n) + " (" + gigabytes(n * e.bytes_per_param) + ")"; };
  std::string out = "==== Config ====\n";
  out += label_line("emb_dim", std::to_string(c.emb_dim));
  out += label_line("hidden_dim", std::to_string(c.hidden_dim));
  out += label_line("ffn_type", ffn_type_name(c.ffn_type));
  out += label_line("num_experts", std::to_string(c.num_experts));
  out += label_line("top_k", std::to_string(c.top_k));
  out += label_line("dtype", c.dtype + " (" + std::to_string(e.bytes_per_param) + " Bytes/elem)");
  out += label_line("match_dense", c.match_dense ? "True" : "False");
  out += "\n==== Model weights (parameters) ====\n";
  out += label_line("Dense FFN params", params(e.dense_params));
  out += label_line("Per-expert params", params(e.per_expert_params));
  out += label_line("Router params", params(e.router_params));
  out += label_line("MoE TOTAL params", params(e.moe_total_params));
  out += label_line("MoE ACTIVE/Token", params(e.moe_active_params));
  out += label_line("moe_hidden_dim", std::to_string(e.moe_hidden_dim));
  out += "\n";
  return out;
}

nlohmann::json ffn_report_json(const FfnConfig& c, const FfnEstimate& e) {
  auto with_bytes = [&](int64_t n) {
    return nlohmann::json{{"params", n}, {"bytes", n * e.bytes_per_param}};
  };
  return {
      {"config",
       {{"emb_dim", c.emb_dim},
        {"hidden_dim", c.hidden_dim},
        {"ffn_type", ffn_type_name(c.ffn_type)},
        {"num_experts", c.num_experts},
        {"top_k", c.top_k},
        {"dtype", c.dtype},
        {"bytes_per_param", e.bytes_per_param},
        {"match_dense", c.match_dense}}},
      {"dense_ffn", with_bytes(e.dense_params)},
      {"per_expert", with_bytes(e.per_expert_params)},
      {"router", with_bytes(e.router_params)},
      {"moe_total", with_bytes(e.moe_total_params)},
      {"moe_active_per_token", with_bytes(e.moe_active_params)},
      {"moe_hidden_dim", e.moe_hidden_dim},
  };
}

}  // namespace moe::estimate
