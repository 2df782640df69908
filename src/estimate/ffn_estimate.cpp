// The reference estimator's formulas (docs/estimator.md), with the checks it lacks.
#include <cmath>
#include <string>

#include "moe/dtype.h"
#include "moe/error.h"
#include "moe/estimate.h"
#include "util/checked.h"

namespace moe {

namespace {
constexpr DtypeSize kEstimateDtypes[] = {
    {"fp32", 4}, {"bf16", 2}, {"fp16", 2}, {"fp8", 1}, {"int8", 1}};
}  // namespace

std::span<const DtypeSize> estimate_dtypes() { return kEstimateDtypes; }

std::optional<int64_t> dtype_bytes(std::string_view name) {
  for (const DtypeSize& d : kEstimateDtypes) {
    if (d.name == name) return d.bytes;
  }
  return std::nullopt;
}

}  // namespace moe

namespace moe::estimate {

using util::checked_add;
using util::checked_mul;

namespace {

const char* kOrigin = "[estimate] ";

void require_positive(int64_t value, const char* flag) {
  if (value < 1) {
    throw InvalidInput(std::string(kOrigin) + flag + "=" + std::to_string(value) +
                       " must be a positive integer");
  }
}

std::string dtype_list() {
  std::string names;
  for (const DtypeSize& d : estimate_dtypes()) names += (names.empty() ? "" : ", ") + std::string(d.name);
  return names;
}

}  // namespace

FfnType parse_ffn_type(const std::string& name) {
  if (name == "gelu") return FfnType::gelu;
  if (name == "swiglu") return FfnType::swiglu;
  throw InvalidInput(std::string(kOrigin) + "--ffn_type=" + name + " is not one of: gelu, swiglu");
}

const char* ffn_type_name(FfnType type) { return type == FfnType::gelu ? "gelu" : "swiglu"; }

int64_t ffn_matrices(FfnType type) { return type == FfnType::gelu ? 2 : 3; }

FfnEstimate estimate_ffn(const FfnConfig& c) {
  require_positive(c.emb_dim, "--emb_dim");
  require_positive(c.hidden_dim, "--hidden_dim");
  require_positive(c.num_experts, "--num_experts");
  if (c.top_k < 1) {
    throw InvalidInput(std::string(kOrigin) + "--top_k=" + std::to_string(c.top_k) +
                       " must be at least 1");
  }
  if (c.top_k > c.num_experts) {
    throw InvalidInput(std::string(kOrigin) + "--top_k=" + std::to_string(c.top_k) +
                       " > --num_experts=" + std::to_string(c.num_experts) +
                       ": a token cannot use more experts than there are");
  }
  std::optional<int64_t> bytes = dtype_bytes(c.dtype);
  if (!bytes) {
    throw InvalidInput(std::string(kOrigin) + "--dtype=" + c.dtype + " is not one of: " + dtype_list());
  }

  const int64_t m = ffn_matrices(c.ffn_type);
  const std::string what = std::string(kOrigin) + "--emb_dim/--hidden_dim/--num_experts";
  FfnEstimate e;
  e.bytes_per_param = *bytes;
  e.dense_params = checked_mul(m, checked_mul(c.emb_dim, c.hidden_dim, what), what);
  e.router_params = checked_mul(c.emb_dim, c.num_experts, what);

  if (c.match_dense) {
    const int64_t num = e.dense_params - e.router_params;
    if (num <= 0) {
      throw InvalidInput(std::string(kOrigin) + "--match_dense: dense layer too small for --num_experts=" +
                         std::to_string(c.num_experts) + " (dense FFN " + std::to_string(e.dense_params) +
                         " params <= router " + std::to_string(e.router_params) + " params)");
    }
    const int64_t den = checked_mul(c.num_experts, checked_mul(m, c.emb_dim, what), what);
    // The reference's int(round(num / float(den))): a double quotient rounded half to even
    // (nearbyint under the default rounding mode), so an exact .5 goes to the even neighbour.
    const double q = static_cast<double>(num) / static_cast<double>(den);
    e.moe_hidden_dim = static_cast<int64_t>(std::nearbyint(q));
    if (e.moe_hidden_dim < 1) {
      throw InvalidInput(std::string(kOrigin) + "--match_dense: moe_hidden_dim rounds to " +
                         std::to_string(e.moe_hidden_dim) + " for --num_experts=" +
                         std::to_string(c.num_experts) + " (dense FFN too small to split into that many experts)");
    }
  } else {
    e.moe_hidden_dim = c.hidden_dim;
  }

  e.per_expert_params = checked_mul(m, checked_mul(c.emb_dim, e.moe_hidden_dim, what), what);
  e.moe_total_params = checked_add(checked_mul(c.num_experts, e.per_expert_params, what), e.router_params, what);
  e.moe_active_params = checked_add(e.router_params, checked_mul(c.top_k, e.per_expert_params, what), what);
  // Bytes must fit too: the report multiplies every count by the dtype size.
  checked_mul(e.moe_total_params, e.bytes_per_param, what);
  checked_mul(e.dense_params, e.bytes_per_param, what);
  return e;
}

}  // namespace moe::estimate
