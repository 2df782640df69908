// GptConfig: layer placement, validation, JSON (one field table; the MoE layer in the
// layer-config format of src/arch/layer_format.cpp, model_type "custom"), parameter counts.
#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "arch/layer_fields.h"
#include "moe/error.h"
#include "moe/gpt.h"
#include "util/checked.h"
#include "moe/layer_format.h"
#include "util/json_fields.h"

namespace moe {

namespace {

using nlohmann::json;
using util::Field;
using util::JsonFields;

[[noreturn]] void bad(const std::string& m) { throw InvalidInput("[gpt] " + m); }
std::string str(int64_t v) { return std::to_string(v); }

MoeLayerConfig moe_layer_from_json(json j, int64_t d_model) {
  if (!j.is_object()) throw InvalidInput("[gpt config] 'moe' must be an object or null");
  if (!j.contains("hidden_size") && !j.contains("d_model")) j["hidden_size"] = d_model;
  return arch::layer_config_from_json(j);
}

// The dense FFN's keys ("dense" object).
const std::vector<Field<ExpertConfig>>& dense_fields() {
  using E = ExpertConfig;
  static const std::vector<Field<E>> fields = {
      arch::act_field<E>("act", [](auto& e) -> auto& { return e.act; }),
      util::field("hidden", &E::hidden), util::field("bias", &E::bias),
      util::field("alpha", &E::alpha), util::field("limit", &E::limit),
  };
  return fields;
}

// Every GptConfig key, in reading order ("moe" needs d_model).
const std::vector<Field<GptConfig>>& gpt_fields() {
  using G = GptConfig;
  using util::field;
  static const std::vector<Field<G>> fields = {
      field("vocab_size", &G::vocab_size), field("context", &G::context), field("d_model", &G::d_model),
      field("n_layers", &G::n_layers), field("n_heads", &G::n_heads), field("n_kv_heads", &G::n_kv_heads),
      field("head_dim", &G::head_dim_),
      util::choice_field("pos", &G::pos, {{"rope", PosEncoding::rope}, {"learned", PosEncoding::learned}}),
      field("rope_theta", &G::rope_theta),
      util::choice_field("norm", &G::norm, {{"rmsnorm", NormKind::rmsnorm}, {"layernorm", NormKind::layernorm}}),
      field("norm_eps", &G::norm_eps), field("tied_head", &G::tied_head), field("attn_bias", &G::attn_bias),
      field("qkv_bias", &G::qkv_bias),
      util::choice_field("qk_norm", &G::qk_norm, {{"none", QkNorm::none}, {"head", QkNorm::head}, {"full", QkNorm::full}}),
      field("causal", &G::causal),
      util::object_field<G>("dense", [](auto& c) -> auto& { return c.dense; }, dense_fields(), "[gpt config] dense: "),
      {"moe",
       [](const JsonFields& f, G& c) {
         if (f.has("moe")) c.moe = moe_layer_from_json(f.raw().at("moe"), c.d_model);
       },
       [](const G& c, json& j) { j["moe"] = c.has_moe() ? arch::layer_config_to_json(c.moe) : json(nullptr); }},
      field("first_dense_layers", &G::first_dense_layers), field("moe_every", &G::moe_every),
      {"dense_layers", [](const JsonFields& f, G& c) { c.dense_layers = f.integers_or_empty("dense_layers"); },
       [](const G& c, json& j) { j["dense_layers"] = c.dense_layers; }},
  };
  return fields;
}

}  // namespace

bool GptConfig::is_moe_layer(int64_t layer) const {
  return has_moe() && layer >= first_dense_layers && moe_every >= 1 && (layer - first_dense_layers) % moe_every == 0 &&
         !std::binary_search(dense_layers.begin(), dense_layers.end(), layer);
}

int64_t GptConfig::n_moe_layers() const {
  if (!has_moe() || n_layers <= first_dense_layers || moe_every < 1) return 0;
  int64_t n = (n_layers - first_dense_layers + moe_every - 1) / moe_every;
  for (int64_t l : dense_layers)  // sorted and unique (validate_gpt); those in the pattern are taken out
    if (l >= first_dense_layers && l < n_layers && (l - first_dense_layers) % moe_every == 0) --n;
  return n;
}

void validate_gpt(const GptConfig& c) {
  if (c.vocab_size < 1) bad("vocab_size=" + str(c.vocab_size) + " must be >= 1");
  if (c.context < 1) bad("context=" + str(c.context) + " must be >= 1");
  if (c.d_model < 1) bad("d_model=" + str(c.d_model) + " must be >= 1");
  if (c.n_layers < 1) bad("n_layers=" + str(c.n_layers) + " must be >= 1");
  if (c.n_heads < 1) bad("n_heads=" + str(c.n_heads) + " must be >= 1");
  if (c.head_dim_ < 0) bad("head_dim=" + str(c.head_dim_) + " must be >= 0 (0: d_model / n_heads)");
  if (c.head_dim_ == 0 && c.d_model % c.n_heads != 0)
    bad("n_heads=" + str(c.n_heads) + " does not divide d_model=" + str(c.d_model) + " (or give head_dim)");
  if (c.n_kv_heads < 1) bad("n_kv_heads=" + str(c.n_kv_heads) + " must be >= 1");
  if (c.n_heads % c.n_kv_heads != 0) {
    bad("n_kv_heads=" + str(c.n_kv_heads) + " does not divide n_heads=" + str(c.n_heads));
  }
  if (c.pos == PosEncoding::rope) {
    if (c.head_dim() % 2 != 0) bad("RoPE needs an even head width, got head_dim=" + str(c.head_dim()));
    if (!(c.rope_theta > 0)) bad("rope_theta=" + std::to_string(c.rope_theta) + " must be > 0");
  }
  if (!(c.norm_eps >= 0) || !std::isfinite(c.norm_eps)) bad("norm_eps=" + std::to_string(c.norm_eps) + " must be >= 0");
  if (c.first_dense_layers < 0) bad("first_dense_layers=" + str(c.first_dense_layers) + " must be >= 0");
  if (c.moe_every < 1) bad("moe_every=" + str(c.moe_every) + " must be >= 1");
  if (c.moe.router.n_experts < 0) bad("moe n_experts=" + str(c.moe.router.n_experts) + " must be >= 0");
  const bool any_dense = c.n_moe_layers() < c.n_layers;
  if (any_dense && c.dense.hidden < 1) bad("dense FFN hidden=" + str(c.dense.hidden) + " must be >= 1 (the model has dense layers)");
  for (size_t i = 0; i < c.dense_layers.size(); ++i) {
    const int64_t l = c.dense_layers[i];
    if (l < 0 || l >= c.n_layers) bad("dense_layers names layer " + str(l) + ", outside [0, " + str(c.n_layers) + ")");
    if (i > 0 && l <= c.dense_layers[i - 1]) bad("dense_layers must be sorted and without repeats");
  }
  if (c.has_moe()) {
    if (c.n_moe_layers() == 0) {
      bad("first_dense_layers=" + str(c.first_dense_layers) + (c.dense_layers.empty() ? "" : " with dense_layers") +
          " leaves no MoE layer in n_layers=" + str(c.n_layers) + " (use n_experts 0 for a dense model)");
    }
    // Routers whose choice for a token depends on other tokens of its sequence would let a
    // decoder see the future (and generation with and without the KV cache would differ).
    if (c.causal && c.moe.soft.slots_per_expert > 0) {
      bad("Soft MoE mixes every token of a sequence into every slot: a causal model would see the future; use it "
          "in a bidirectional encoder (causal = false, --encoder)");
    }
    if (c.causal && c.moe.router.selection == Selection::expert_choice) {
      bad("expert choice lets each expert pick its tokens from the whole sequence: a causal model would see the "
          "future; use it in a bidirectional encoder (causal = false, --encoder)");
    }
    if (c.moe.d_model != c.d_model) {
      bad("moe hidden_size=" + str(c.moe.d_model) + " differs from d_model=" + str(c.d_model));
    }
    validate_layer(c.moe);
  }
}

json gpt_config_to_json(const GptConfig& c) {
  json j = json::object();
  util::write_fields(gpt_fields(), c, j);
  return j;
}

GptConfig gpt_config_from_json(const json& j) {
  if (!j.is_object()) throw InvalidInput("[gpt config] the config must be a JSON object");
  const JsonFields f(j, "[gpt config] ");
  f.only(util::field_names(gpt_fields()));
  GptConfig c;
  util::read_fields(gpt_fields(), f, c);
  if (!f.has("n_kv_heads")) c.n_kv_heads = c.n_heads;  // MHA unless told otherwise
  validate_gpt(c);
  return c;
}

int64_t gpt_param_count(const GptConfig& c, bool active_only) {
  validate_gpt(c);
  const util::Arith x{"[gpt] parameter count"};
  const int64_t d = c.d_model, V = c.vocab_size, hd = c.head_dim();
  const int64_t norm = c.norm == NormKind::layernorm ? 2 * d : d;
  int64_t n = x.add(x.mul(V, d), x.add(c.pos == PosEncoding::learned ? x.mul(c.context, d) : 0, norm));
  if (!c.tied_head) n = x.add(n, x.mul(V, d));
  int64_t attn = x.add(x.mul(c.n_heads + 2 * c.n_kv_heads, hd, d), x.add(x.mul(d, c.n_heads, hd), c.attn_bias ? d : 0));
  if (c.qkv_bias) attn = x.add(attn, x.mul(c.n_heads + 2 * c.n_kv_heads, hd));
  if (c.qk_norm == QkNorm::head) attn = x.add(attn, 2 * hd);
  if (c.qk_norm == QkNorm::full) attn = x.add(attn, x.mul(c.n_heads + c.n_kv_heads, hd));
  auto ffn = [&](const ExpertConfig& e) {
    const int64_t mats = x.mul(is_gated(e.act) ? 3 : 2, e.hidden, d);
    const int64_t biases = e.bias ? x.add(x.mul(is_gated(e.act) ? 2 : 1, e.hidden), d) : 0;
    return x.add(mats, biases);
  };
  const int64_t n_moe = c.n_moe_layers(), n_dense = c.n_layers - n_moe;
  n = x.add(n, x.mul(c.n_layers, x.add(2 * norm, attn)));
  if (n_dense > 0) n = x.add(n, x.mul(n_dense, ffn(c.dense)));
  if (n_moe > 0) {
    const MoeLayerConfig& m = c.moe;
    const int64_t E = m.router.n_experts;
    int64_t layer = m.soft.slots_per_expert > 0
                        ? x.add(x.mul(d, E, m.soft.slots_per_expert), 1)
                        : x.add(x.mul(E, d), x.add(m.router.logit_bias ? E : 0,
                                                   m.router.noise == NoiseKind::shazeer ? x.mul(E, d) : 0));
    int64_t used = E;
    if (active_only && m.soft.slots_per_expert == 0) {
      used = m.router.selection == Selection::expert_choice
                 ? std::min<int64_t>(E, static_cast<int64_t>(std::ceil(m.router.capacity_factor)))
                 : m.router.top_k;
    }
    layer = x.add(layer, x.mul(used, ffn(m.expert)));
    if (m.shared_hidden > 0) {
      const ExpertConfig s{m.shared_act, m.shared_hidden, false, m.expert.alpha, m.expert.limit};
      layer = x.add(layer, x.add(ffn(s), m.shared_gate ? d : 0));
    }
    n = x.add(n, x.mul(n_moe, layer));
  }
  return n;
}

int64_t gpt_weight_bytes(const GptConfig& c, DType dtype) {
  const util::Arith x{"[gpt] memory estimate"};
  return x.add(x.mul(gpt_param_count(c, false), static_cast<int64_t>(dtype_size(dtype))),
               x.mul(c.n_layers, static_cast<int64_t>(sizeof(GptBlockWeights))));
}

int64_t gpt_training_bytes(const GptConfig& c, int64_t B, int64_t S) {
  const util::Arith x{"[gpt] memory estimate"};
  const int64_t T = x.mul(B, S), d = c.d_model, H = c.n_heads, kvd = c.n_kv_heads * c.head_dim();
  // Gradients and the two AdamW moments: three more copies of the weights.
  int64_t bytes = x.mul(3, gpt_weight_bytes(c, DType::f32));
  // Per layer, kept for the backward: ~10 rows of width d and 2 of kv width per token, the
  // attention probabilities, and the FFN's hidden rows (k rows per token for MoE).
  const int64_t hidden = c.has_moe() ? x.mul(std::max<int64_t>(c.moe.router.top_k, 1), c.moe.expert.hidden + d)
                                     : c.dense.hidden;
  int64_t per_layer = x.add(x.mul(T, x.add(x.mul(10, d), x.add(x.mul(2, kvd), x.mul(4, hidden)))), x.mul(B, H, x.mul(S, S)));
  bytes = x.add(bytes, x.mul(x.mul(c.n_layers, per_layer), 4));
  return x.add(bytes, x.mul(x.mul(T, c.vocab_size), 8));  // logits and their gradient
}

int64_t gpt_inference_bytes(const GptConfig& c) {
  const util::Arith x{"[gpt] memory estimate"};
  const int64_t kvd = c.n_kv_heads * c.head_dim();
  // Packed copies of the projections, head and FFNs (~ the weights again), the KV cache of the
  // whole context.
  return x.add(gpt_weight_bytes(c, DType::f32), x.mul(x.mul(2, c.n_layers), x.mul(c.context, kvd, 4)));
}

}  // namespace moe
