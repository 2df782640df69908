// Balance losses of a routed layer: the adapter from the layer state to include/moe/losses.h.
// Values are stored unscaled under their names; aux_total = Σ coef · value. The backward adds
// Σ coef · d(value)/d(raw logits), raw logits being x·Wᵀ (+ router bias).
#include "layer_internal.h"
#include "moe/error.h"
#include "moe/losses.h"

namespace moe::detail {

namespace {

void require(bool ok, const std::string& loss, const std::string& why) {
  if (!ok) throw InvalidInput("[layer] loss '" + loss + "' " + why);
}

// Evaluates one loss; with dlogits non-null also adds coef · gradient.
template <class T>
double one_loss(const MoeLayerConfig& c, const LayerInputs& in, const MoeLayerState<T>& st, const std::string& name,
                double coef, T* dlogits) {
  const RouterConfig& rc = c.router;
  const Routing& r = st.router.routing;
  const int64_t Tn = in.n_tokens, E = rc.n_experts, G = in.group_tokens;
  const T* raw = st.raw_logits.data();
  const T cf = static_cast<T>(coef);
  const bool token_choice = r.top_k > 0;
  if (name == "load_balancing") {
    require(token_choice, name, "needs a token-choice router");
    const T* layers[] = {raw};
    T* grads[] = {dlogits};
    std::span<const uint8_t> mask = in.mask ? std::span<const uint8_t>(in.mask, static_cast<size_t>(Tn)) : std::span<const uint8_t>();
    return static_cast<double>(hf_load_balancing_loss<T>(layers, Tn, E, rc.top_k, mask,
                                                         dlogits ? std::span<T* const>(grads) : std::span<T* const>(), cf));
  }
  if (name == "switch") {
    require(token_choice && rc.top_k == 1, name, "needs top-1 token choice");
    return static_cast<double>(switch_load_balancing_loss<T>(r, raw, G, dlogits, cf));
  }
  if (name == "z_loss") return static_cast<double>(router_z_loss<T>(raw, Tn, E, dlogits, cf));
  if (name == "importance") return static_cast<double>(importance_loss_from_logits<T>(raw, Tn, E, G, dlogits, cf));
  if (name == "vmoe_load") {
    require(token_choice, name, "needs a token-choice router");
    const double sigma = rc.noise_std / static_cast<double>(E);
    return static_cast<double>(vmoe_load_loss<T>(raw, st.router.logits.data(), Tn, E, rc.top_k, sigma, G, dlogits,
                                                 dlogits, cf));
  }
  if (name == "deepseek_v2_seq") {
    require(token_choice && rc.score == ScoreFn::softmax, name, "needs a softmax token-choice router");
    return static_cast<double>(deepseek_v2_aux_loss<T>(st.router.scores.data(), r.slot_expert.data(), Tn, E, rc.top_k,
                                                       G, c.losses.deepseek_v2_seq_aux, dlogits ? coef : 1.0, dlogits));
  }
  if (name == "deepseek_v3_seq") {
    require(token_choice && rc.score == ScoreFn::sigmoid, name, "needs a sigmoid token-choice router");
    return static_cast<double>(deepseek_v3_balance_loss<T>(
        st.router.scores.data(), r.slot_expert.data(), Tn, E, rc.top_k, G,
        c.losses.deepseek_v3_use_routing_map ? BalanceIndicator::routing_map : BalanceIndicator::plain_topk,
        c.losses.deepseek_v3_per_sequence ? BalanceUnit::sequence : BalanceUnit::micro_batch, dlogits ? coef : 1.0,
        dlogits));
  }
  throw InvalidInput("[layer] unknown loss '" + name + "'");
}

// DeepSeek's MoEGate adds its aux loss only `if self.training and self.alpha > 0` (remote
// modeling_deepseek.py); every other loss is computed in both modes, as HF does.
bool computed(const std::string& name, const LayerInputs& in) { return in.training || name != "deepseek_v2_seq"; }

}  // namespace

template <class T>
void layer_losses(const MoeLayerConfig& c, const LayerInputs& in, MoeLayerState<T>& st) {
  double total = 0;
  for (const auto& [name, coef] : c.losses.coef) {
    if (!computed(name, in)) continue;
    const double v = one_loss<T>(c, in, st, name, coef, nullptr);
    st.losses[name] = v;
    total += coef * v;
  }
  st.losses["aux_total"] = total;
}

template <class T>
void layer_losses_backward(const MoeLayerConfig& c, const LayerInputs& in, const MoeLayerState<T>& st, T* dlogits) {
  for (const auto& [name, coef] : c.losses.coef) {
    if (coef != 0 && computed(name, in)) one_loss<T>(c, in, st, name, coef, dlogits);
  }
}

template void layer_losses<float>(const MoeLayerConfig&, const LayerInputs&, MoeLayerState<float>&);
template void layer_losses<double>(const MoeLayerConfig&, const LayerInputs&, MoeLayerState<double>&);
template void layer_losses_backward<float>(const MoeLayerConfig&, const LayerInputs&, const MoeLayerState<float>&, float*);
template void layer_losses_backward<double>(const MoeLayerConfig&, const LayerInputs&, const MoeLayerState<double>&, double*);

}  // namespace moe::detail
