// The routed MoE layer, forward and backward, as stages: router logits → router (Routing +
// combine weights) → dispatch plan → experts through the expert store (moe/expert_store.h),
// fused gather/scatter → passthrough of dropped slots → shared expert (a one-expert store whose
// combine weight is its gate) → balance losses.
#include "moe/moe_layer.h"

#include <cmath>
#include <stdexcept>

#include "kernels/cpu/packed_ffn.h"
#include "kernels/ops.h"
#include "layer_internal.h"
#include "moe/error.h"

namespace moe {

using detail::mut;
using detail::ptr;

namespace detail {

template <class T>
ExpertWeights<T> expert_view(const MoeLayerWeights& w, int64_t H) {
  ExpertWeights<T> v;
  v.n_experts = w.up.dim(0);
  v.d_model = H;
  v.hidden = w.up.dim(1);
  v.gate = ptr<T>(w.gate);
  v.up = ptr<T>(w.up);
  v.down = ptr<T>(w.down);
  v.gate_bias = ptr<T>(w.gate_bias);
  v.up_bias = ptr<T>(w.up_bias);
  v.down_bias = ptr<T>(w.down_bias);
  return v;
}

template <class T>
ExpertWeights<T> shared_view(const MoeLayerWeights& w, int64_t H) {
  ExpertWeights<T> v;
  v.n_experts = 1;
  v.d_model = H;
  v.hidden = w.shared_up.dim(0);
  v.gate = ptr<T>(w.shared_gate);
  v.up = ptr<T>(w.shared_up);
  v.down = ptr<T>(w.shared_down);
  return v;
}

template <class T>
ExpertGrads<T> expert_grads(MoeLayerWeights& g) {
  return {mut<T>(g.gate), mut<T>(g.up), mut<T>(g.down), mut<T>(g.gate_bias), mut<T>(g.up_bias), mut<T>(g.down_bias)};
}

template <class T>
ExpertGrads<T> shared_grads(MoeLayerWeights& g) {
  return {mut<T>(g.shared_gate), mut<T>(g.shared_up), mut<T>(g.shared_down), nullptr, nullptr, nullptr};
}

FfnSpec shared_spec(const MoeLayerConfig& c) { return {c.shared_act, c.shared_hidden, false, c.expert.alpha, c.expert.limit}; }

// The stores a call runs on: the caller's prepared ones, or views of the weights.
const PreparedMoeLayer& stores(const MoeLayerConfig& c, const MoeLayerWeights& w, const LayerInputs& in,
                               PreparedMoeLayer& views) {
  if (in.prepared) return *in.prepared;
  views = view_layer(c, w);
  return views;
}

}  // namespace detail

namespace {

void check_inputs(const MoeLayerConfig& c, const LayerInputs& in) {
  if (in.n_tokens < 1) throw InvalidInput("[layer] no tokens in x");
  if (in.group_tokens < 1 || in.n_tokens % in.group_tokens != 0) {
    throw InvalidInput("[layer] sequence length " + std::to_string(in.group_tokens) + " does not divide " +
                       std::to_string(in.n_tokens) + " tokens");
  }
  if (in.training && c.jitter > 0 && !in.jitter) throw InvalidInput("[layer] training with jitter needs jitter factors");
}

template <class T>
ops::Matrix<T> router_matrix(const MoeLayerWeights& w, const LayerInputs& in) {
  return {w.router_w.as<T>(), in.prepared ? in.prepared->router.get() : nullptr};
}

// y += gate · shared(x): the shared expert is a one-expert store over every token, and its combine
// weight per token is the gate (1 without one), so the gate's gradient is the combine's dweights.
template <class T>
void shared_forward(const MoeLayerConfig& c, const MoeLayerWeights& w, const PreparedMoeLayer& ps, MoeLayerState<T>& st,
                    int64_t Tn, T* y) {
  const int64_t H = c.d_model;
  st.shared_gate.assign(static_cast<size_t>(Tn), T(1));
  if (c.shared_gate) {  // Qwen2-MoE: σ(x·w) per token
    ops::linear(st.shared_gate.data(), st.x_in.data(), w.shared_gate_w.as<T>(), static_cast<const T*>(nullptr), Tn, H, 1,
                st.ws);
    for (T& g : st.shared_gate) g = static_cast<T>(1.0 / (1.0 + std::exp(-static_cast<double>(g))));
  }
  make_dense_plan(Tn, st.shared_plan);
  st.shared_out.resize(static_cast<size_t>(Tn * H));
  run_experts(ps.shared, st.shared_plan, st.shared_gate.data(), st.x_in.data(), st.shared_out.data(), st.shared);
  for (int64_t i = 0; i < Tn * H; ++i) y[i] += st.shared_out[i];
}

template <class T>
void shared_backward(const MoeLayerConfig& c, const MoeLayerWeights& w, const PreparedMoeLayer& ps,
                     MoeLayerState<T>& st, const T* dy, T* dx_in, MoeLayerWeights& g, int64_t Tn) {
  const int64_t H = c.d_model;
  std::vector<T> dgate(static_cast<size_t>(Tn));
  run_experts_backward(ps.shared, st.shared_plan, st.shared_gate.data(), st.x_in.data(), st.shared, dy, dx_in,
                       detail::shared_grads<T>(g), dgate.data());
  if (!c.shared_gate) return;
  T* gw = mut<T>(g.shared_gate_w);
  const T* wg = w.shared_gate_w.as<T>();
  for (int64_t t = 0; t < Tn; ++t) {  // gate = σ(z): dz = d(gate)·σ(1−σ)
    const double gt = static_cast<double>(st.shared_gate[t]);
    const double dz = static_cast<double>(dgate[t]) * gt * (1 - gt);
    for (int64_t h = 0; h < H; ++h) {
      if (gw) gw[h] += static_cast<T>(dz * static_cast<double>(st.x_in[t * H + h]));
      dx_in[t * H + h] += static_cast<T>(dz * static_cast<double>(wg[h]));
    }
  }
}

}  // namespace

PreparedMoeLayer view_layer(const MoeLayerConfig& c, const MoeLayerWeights& w) {
  PreparedMoeLayer p;
  const int64_t H = c.d_model;
  if (w.up.dtype() == DType::f64) {
    p.routed = view_experts(c.expert, detail::expert_view<double>(w, H));
    if (c.shared_hidden > 0) p.shared = view_experts(detail::shared_spec(c), detail::shared_view<double>(w, H));
  } else {
    p.routed = view_experts(c.expert, detail::expert_view<float>(w, H));
    if (c.shared_hidden > 0) p.shared = view_experts(detail::shared_spec(c), detail::shared_view<float>(w, H));
  }
  return p;
}

PreparedMoeLayer prepare_layer(const MoeLayerConfig& c, const MoeLayerWeights& w, ExpertFormat format, int threads) {
  validate_layer(c);
  check_layer_weights(c, w, DType::f32);
  PreparedMoeLayer p;
  const int64_t H = c.d_model;
  p.routed = pack_experts(c.expert, detail::expert_view<float>(w, H), format, threads);
  if (c.shared_hidden > 0) p.shared = pack_experts(detail::shared_spec(c), detail::shared_view<float>(w, H), format, threads);
  if (c.soft.slots_per_expert == 0) {
    p.router = std::make_shared<cpu::PackedMatrix>(
        cpu::pack_matrix(w.router_w.as<float>(), c.router.n_experts, H, threads > 0 ? threads : ops::threads()));
  }
  return p;
}

template <class T>
void moe_layer_forward(const MoeLayerConfig& c, const MoeLayerWeights& w, const T* x, const LayerInputs& in,
                       MoeLayerState<T>& st, T* y) {
  if (!in.validated) {
    validate_layer(c);
    check_layer_weights(c, w, dtype_of<T>());
  }
  check_inputs(c, in);
  const int64_t Tn = in.n_tokens, H = c.d_model, E = c.router.n_experts;
  st.x_in.assign(x, x + Tn * H);
  if (in.training && c.jitter > 0) {
    const T* j = static_cast<const T*>(in.jitter);
    for (int64_t i = 0; i < Tn * H; ++i) st.x_in[i] *= j[i];
  }
  st.losses.clear();
  PreparedMoeLayer views;
  const PreparedMoeLayer& ps = detail::stores(c, w, in, views);
  if (c.soft.slots_per_expert > 0) {
    detail::soft_moe_forward(c, w, ps.routed, st.x_in.data(), in, st.soft, y);
    if (c.shared_hidden > 0) shared_forward(c, w, ps, st, Tn, y);
    st.losses["aux_total"] = 0;
    return;
  }

  // Router: raw logits include the router bias (its gradient is Σ_t dlogits).
  st.raw_logits.resize(static_cast<size_t>(Tn * E));
  ops::linear(st.raw_logits.data(), st.x_in.data(), router_matrix<T>(w, in), ptr<T>(w.router_b), Tn, H, E, st.ws);
  st.noise_logits.clear();
  if (c.router.noise == NoiseKind::shazeer) {
    st.noise_logits.resize(static_cast<size_t>(Tn * E));
    ops::linear(st.noise_logits.data(), st.x_in.data(), w.noise_w.as<T>(), static_cast<const T*>(nullptr), Tn, H, E,
                st.ws);
  }
  router_forward(c.router, st.raw_logits.data(), ptr<T>(w.selection_bias), static_cast<const T*>(in.noise),
                 st.noise_logits.empty() ? nullptr : st.noise_logits.data(), Tn, in.group_tokens, in.training,
                 st.router);
  const Routing& r = st.router.routing;
  make_dispatch_plan(r, st.plan);
  run_experts(ps.routed, st.plan, st.router.weights.data(), st.x_in.data(), y, st.experts);
  if (c.router.dropped == DroppedPolicy::passthrough) {  // HF Switch v4: a dropped token yields w·x
    for (int64_t s = 0; s < r.n_slots(); ++s) {
      if (r.slot_kept[s]) continue;
      const int64_t t = r.slot_token[s];
      const double wt = static_cast<double>(st.router.weights[s]);
      for (int64_t h = 0; h < H; ++h) y[t * H + h] += static_cast<T>(wt * static_cast<double>(st.x_in[t * H + h]));
    }
  }
  if (c.shared_hidden > 0) shared_forward(c, w, ps, st, Tn, y);
  detail::layer_losses(c, in, st);
}

template <class T>
void moe_layer_backward(const MoeLayerConfig& c, const MoeLayerWeights& w, const LayerInputs& in, MoeLayerState<T>& st,
                        const T* dy, T* dx, MoeLayerWeights& g) {
  const int64_t Tn = in.n_tokens, H = c.d_model, E = c.router.n_experts;
  PreparedMoeLayer views;
  const PreparedMoeLayer& ps = detail::stores(c, w, in, views);
  std::vector<T> dx_in(static_cast<size_t>(Tn * H), T(0));
  if (c.shared_hidden > 0) shared_backward(c, w, ps, st, dy, dx_in.data(), g, Tn);
  if (c.soft.slots_per_expert > 0) {
    detail::soft_moe_backward(c, w, ps.routed, in, st.x_in.data(), st.soft, dy, dx_in.data(), g);
  } else {
    const Routing& r = st.router.routing;
    std::vector<T> dweights(static_cast<size_t>(r.n_slots()), T(0));
    run_experts_backward(ps.routed, st.plan, st.router.weights.data(), st.x_in.data(), st.experts, dy, dx_in.data(),
                         detail::expert_grads<T>(g), dweights.data());
    if (c.router.dropped == DroppedPolicy::passthrough) {
      for (int64_t s = 0; s < r.n_slots(); ++s) {
        if (r.slot_kept[s]) continue;
        const int64_t t = r.slot_token[s];
        dweights[s] = static_cast<T>(ref::dot(st.x_in.data() + t * H, dy + t * H, H));
        const double wt = static_cast<double>(st.router.weights[s]);
        for (int64_t h = 0; h < H; ++h) dx_in[t * H + h] += static_cast<T>(wt * static_cast<double>(dy[t * H + h]));
      }
    }
    std::vector<T> dlogits(static_cast<size_t>(Tn * E), T(0));
    std::vector<T> dnoise(st.noise_logits.size(), T(0));
    router_backward(c.router, st.router, dweights.data(), dlogits.data(), dnoise.empty() ? nullptr : dnoise.data());
    detail::layer_losses_backward(c, in, st, dlogits.data());
    ops::linear_backward(dx_in.data(), mut<T>(g.router_w), mut<T>(g.router_b), dlogits.data(), st.x_in.data(),
                         w.router_w.as<T>(), Tn, H, E, st.ws);
    if (!dnoise.empty()) {
      ops::linear_backward(dx_in.data(), mut<T>(g.noise_w), static_cast<T*>(nullptr), dnoise.data(), st.x_in.data(),
                           w.noise_w.as<T>(), Tn, H, E, st.ws);
    }
  }
  const T* j = (in.training && c.jitter > 0) ? static_cast<const T*>(in.jitter) : nullptr;
  for (int64_t i = 0; i < Tn * H; ++i) dx[i] = j ? static_cast<T>(static_cast<double>(dx_in[i]) * static_cast<double>(j[i])) : dx_in[i];
}

#define MOE_INSTANTIATE_LAYER(T)                                                                                 \
  template void moe_layer_forward<T>(const MoeLayerConfig&, const MoeLayerWeights&, const T*, const LayerInputs&, \
                                     MoeLayerState<T>&, T*);                                                      \
  template void moe_layer_backward<T>(const MoeLayerConfig&, const MoeLayerWeights&, const LayerInputs&,          \
                                      MoeLayerState<T>&, const T*, T*, MoeLayerWeights&);                         \
  template ExpertWeights<T> detail::expert_view<T>(const MoeLayerWeights&, int64_t);                              \
  template ExpertWeights<T> detail::shared_view<T>(const MoeLayerWeights&, int64_t);                              \
  template ExpertGrads<T> detail::expert_grads<T>(MoeLayerWeights&);                                              \
  template ExpertGrads<T> detail::shared_grads<T>(MoeLayerWeights&);
MOE_INSTANTIATE_LAYER(float)
MOE_INSTANTIATE_LAYER(double)

}  // namespace moe
