// MoeLayerWeights: canonical names, shapes per config, validation.
#include <cmath>

#include "moe/error.h"
#include "moe/moe_layer.h"
#include "util/checked.h"
#include "util/resources.h"

namespace moe {

namespace {

struct Slot {
  const char* name;
  Tensor MoeLayerWeights::*member;
};

constexpr Slot kSlots[] = {
    {"router.weight", &MoeLayerWeights::router_w},
    {"router.bias", &MoeLayerWeights::router_b},
    {"router.noise_weight", &MoeLayerWeights::noise_w},
    {"router.selection_bias", &MoeLayerWeights::selection_bias},
    {"experts.gate", &MoeLayerWeights::gate},
    {"experts.up", &MoeLayerWeights::up},
    {"experts.down", &MoeLayerWeights::down},
    {"experts.gate_bias", &MoeLayerWeights::gate_bias},
    {"experts.up_bias", &MoeLayerWeights::up_bias},
    {"experts.down_bias", &MoeLayerWeights::down_bias},
    {"shared.gate", &MoeLayerWeights::shared_gate},
    {"shared.up", &MoeLayerWeights::shared_up},
    {"shared.down", &MoeLayerWeights::shared_down},
    {"shared.gate_weight", &MoeLayerWeights::shared_gate_w},
    {"soft.phi", &MoeLayerWeights::soft_phi},
    {"soft.scale", &MoeLayerWeights::soft_scale},
};

// The shape each tensor must have for this config; nullopt-like empty optional = absent.
std::vector<std::pair<std::string, Shape>> expected_shapes(const MoeLayerConfig& c) {
  const int64_t E = c.router.n_experts, H = c.d_model, I = c.expert.hidden, Is = c.shared_hidden;
  std::vector<std::pair<std::string, Shape>> s;
  if (c.soft.slots_per_expert > 0) {
    s.push_back({"soft.phi", {H, E * c.soft.slots_per_expert}});
    s.push_back({"soft.scale", {}});
  } else {
    s.push_back({"router.weight", {E, H}});
    if (c.router.logit_bias) s.push_back({"router.bias", {E}});
    if (c.router.noise == NoiseKind::shazeer) s.push_back({"router.noise_weight", {E, H}});
    if (c.router.selection_bias) s.push_back({"router.selection_bias", {E}});
  }
  if (is_gated(c.expert.act)) s.push_back({"experts.gate", {E, I, H}});
  s.push_back({"experts.up", {E, I, H}});
  s.push_back({"experts.down", {E, H, I}});
  if (c.expert.bias) {
    if (is_gated(c.expert.act)) s.push_back({"experts.gate_bias", {E, I}});
    s.push_back({"experts.up_bias", {E, I}});
    s.push_back({"experts.down_bias", {E, H}});
  }
  if (Is > 0) {
    if (is_gated(c.shared_act)) s.push_back({"shared.gate", {Is, H}});
    s.push_back({"shared.up", {Is, H}});
    s.push_back({"shared.down", {H, Is}});
    if (c.shared_gate) s.push_back({"shared.gate_weight", {1, H}});
  }
  return s;
}

const char* kLossNames[] = {"load_balancing", "switch", "z_loss", "importance", "vmoe_load",
                            "deepseek_v2_seq", "deepseek_v3_seq"};

}  // namespace

void MoeLayerWeights::for_each_tensor(const std::function<void(const std::string&, Tensor&)>& f) {
  for (const Slot& s : kSlots) f(s.name, this->*s.member);
}

void MoeLayerWeights::for_each_tensor(const std::function<void(const std::string&, const Tensor&)>& f) const {
  for (const Slot& s : kSlots) f(s.name, this->*s.member);
}

Tensor* MoeLayerWeights::find(const std::string& name) {
  for (const Slot& s : kSlots) {
    if (name == s.name) return &(this->*s.member);
  }
  return nullptr;
}

const Tensor* MoeLayerWeights::find(const std::string& name) const {
  return const_cast<MoeLayerWeights*>(this)->find(name);
}

bool is_trainable(const std::string& name) { return name != "router.selection_bias"; }

void validate_layer(const MoeLayerConfig& c) {
  auto bad = [](const std::string& m) { throw InvalidInput("[layer] " + m); };
  if (c.d_model < 1) bad("hidden_size=" + std::to_string(c.d_model) + " must be >= 1");
  if (c.expert.hidden < 1) bad("expert intermediate size=" + std::to_string(c.expert.hidden) + " must be >= 1");
  if (c.shared_hidden < 0) bad("shared expert size=" + std::to_string(c.shared_hidden) + " must be >= 0");
  if (!(c.jitter >= 0 && c.jitter < 1)) bad("router_jitter_noise=" + std::to_string(c.jitter) + " must be in [0, 1)");
  if (c.soft.slots_per_expert < 0) bad("slots_per_expert must be >= 1");
  if (c.soft.slots_per_expert > 0) {
    if (c.router.n_experts < 1) bad("n_experts=" + std::to_string(c.router.n_experts) + " must be >= 1");
    // Soft MoE has no token router: its settings would be accepted and silently ignored.
    if (c.router.noise != NoiseKind::none) {
      bad("Soft MoE takes its noise from soft_moe.noise_std (vmoe SoftRouter), not router.noise");
    }
    if (!(c.soft.noise_std >= 0) || !std::isfinite(c.soft.noise_std)) {
      bad("soft_moe.noise_std=" + std::to_string(c.soft.noise_std) + " must be finite and >= 0");
    }
    if (!c.losses.coef.empty()) bad("Soft MoE has no router to balance: balance losses do not apply");
  } else {
    if (c.soft.noise_std != 0) bad("soft_moe.noise_std is set but the layer is not a Soft MoE layer");
    validate_router(c.router);
  }
  for (const auto& [name, coef] : c.losses.coef) {
    bool known = false;
    for (const char* n : kLossNames) known |= name == n;
    if (!known) bad("unknown loss '" + name + "'");
    if (!std::isfinite(coef)) bad("loss '" + name + "' coefficient is not finite");
  }
}

MoeLayerWeights make_layer_weights(const MoeLayerConfig& c, DType dtype) {
  validate_layer(c);
  const util::Arith x{"[layer] weight size"};
  int64_t bytes = 0;
  for (const auto& [name, shape] : expected_shapes(c)) bytes = x.add(bytes, x.mul(shape_numel(shape), dtype_size(dtype)));
  util::check_memory(bytes, "the layer's weights", "[layer]");
  MoeLayerWeights w;
  for (const auto& [name, shape] : expected_shapes(c)) *w.find(name) = Tensor(dtype, shape);
  return w;
}

void check_layer_weights(const MoeLayerConfig& c, const MoeLayerWeights& w, DType dtype) {
  const auto expected = expected_shapes(c);
  w.for_each_tensor([&](const std::string& name, const Tensor& t) {
    const Shape* want = nullptr;
    for (const auto& [n, s] : expected) {
      if (n == name) want = &s;
    }
    if (!want) {
      if (!t.empty()) throw InvalidInput("[layer] weight '" + name + "' is not used by this config");
      return;
    }
    if (t.empty()) throw InvalidInput("[layer] missing weight '" + name + "' " + shape_str(*want));
    if (t.shape() != *want) {
      throw InvalidInput("[layer] weight '" + name + "' has shape " + shape_str(t.shape()) + ", the config needs " +
                         shape_str(*want));
    }
    if (t.dtype() != dtype) throw InvalidInput("[layer] weight '" + name + "' has dtype " + dtype_name(t.dtype()));
  });
}

}  // namespace moe
