// The routed MoE layer, forward and backward (reference path).
#include "moe/moe_layer.h"

#include <cmath>
#include <stdexcept>
#include <type_traits>

#include "kernels/ref/kernels.h"
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

}  // namespace

template <class T>
void moe_layer_forward(const MoeLayerConfig& c, const MoeLayerWeights& w, const T* x, const LayerInputs& in,
                       MoeLayerState<T>& st, T* y) {
  validate_layer(c);
  check_layer_weights(c, w, dtype_of<T>());
  check_inputs(c, in);
  const int64_t Tn = in.n_tokens, H = c.d_model, E = c.router.n_experts;
  st.x_in.assign(x, x + Tn * H);
  if (in.training && c.jitter > 0) {
    const T* j = static_cast<const T*>(in.jitter);
    for (int64_t i = 0; i < Tn * H; ++i) st.x_in[i] *= j[i];
  }
  for (int64_t i = 0; i < Tn * H; ++i) y[i] = T(0);
  st.losses.clear();
  if (c.soft.slots_per_expert > 0) {
    detail::soft_moe_forward(c, w, st.x_in.data(), in, st, y);
    st.losses["aux_total"] = 0;
    return;
  }

  // Router: raw logits include the router bias (its gradient is Σ_t dlogits).
  st.raw_logits.assign(static_cast<size_t>(Tn * E), T(0));
  ref::linear(st.raw_logits.data(), st.x_in.data(), w.router_w.as<T>(), ptr<T>(w.router_b), Tn, H, E);
  st.noise_logits.clear();
  if (c.router.noise == NoiseKind::shazeer) {
    st.noise_logits.assign(static_cast<size_t>(Tn * E), T(0));
    ref::linear(st.noise_logits.data(), st.x_in.data(), w.noise_w.as<T>(), static_cast<const T*>(nullptr), Tn, H, E);
  }
  router_forward(c.router, st.raw_logits.data(), ptr<T>(w.selection_bias),
                 static_cast<const T*>(in.noise), st.noise_logits.empty() ? nullptr : st.noise_logits.data(), Tn,
                 in.group_tokens, in.training, st.router);
  const Routing& r = st.router.routing;

  st.fast = false;
  st.fast_train = false;
  if constexpr (std::is_same_v<T, float>) {
    if (in.need_backward) {
      st.fast_train = true;
      st.experts = {};
      fast_experts_train_forward(c.expert, detail::expert_view<float>(w, H), r, st.router.weights.data(), st.x_in.data(),
                                 y, st.fast_state);
    } else {
      st.fast = true;
      st.experts = {};
      if (in.packed) {
        fast_experts_forward(*in.packed, r, st.router.weights.data(), st.x_in.data(), y);
      } else {
        fast_experts_forward(pack_experts(c.expert, detail::expert_view<float>(w, H)), r, st.router.weights.data(),
                             st.x_in.data(), y);
      }
    }
  }
  if (!st.fast && !st.fast_train) {
    experts_forward(c.expert, detail::expert_view<T>(w, H), r, st.x_in.data(), st.experts);
    for (int64_t row = 0; row < r.n_kept(); ++row) {
      const int32_t s = r.rows[row];
      const double wt = static_cast<double>(st.router.weights[s]);
      T* yt = y + static_cast<int64_t>(r.slot_token[s]) * H;
      const T* out = st.experts.out.data() + row * H;
      for (int64_t h = 0; h < H; ++h) yt[h] += static_cast<T>(wt * static_cast<double>(out[h]));
    }
  }
  if (c.router.dropped == DroppedPolicy::passthrough) {  // HF Switch v4: a dropped token yields w·x
    for (int64_t s = 0; s < r.n_slots(); ++s) {
      if (r.slot_kept[s]) continue;
      const int64_t t = r.slot_token[s];
      const double wt = static_cast<double>(st.router.weights[s]);
      for (int64_t h = 0; h < H; ++h) y[t * H + h] += static_cast<T>(wt * static_cast<double>(st.x_in[t * H + h]));
    }
  }

  if (c.shared_hidden > 0) {
    ExpertConfig sc{c.shared_act, c.shared_hidden, false, c.expert.alpha, c.expert.limit};
    const Routing all = dense_routing(Tn);
    const T* shared_out = nullptr;  // [T, H]: row t is token t (one expert, rows in token order)
    st.shared_on_fast = false;
    if constexpr (std::is_same_v<T, float>) {
      // Float layers: the shared expert on the fast grouped kernels, as one expert over every token.
      std::vector<float> ones(static_cast<size_t>(Tn), 1.0f), tmp(static_cast<size_t>(Tn * H));
      fast_experts_train_forward(sc, detail::shared_view<float>(w, H), all, ones.data(), st.x_in.data(), tmp.data(),
                                 st.shared_fast);
      st.shared = {};
      st.shared_on_fast = true;
      shared_out = st.shared_fast.out.data();
    } else {
      experts_forward(sc, detail::shared_view<T>(w, H), all, st.x_in.data(), st.shared);
      shared_out = st.shared.out.data();
    }
    st.shared_gate.assign(static_cast<size_t>(Tn), T(1));
    for (int64_t t = 0; t < Tn; ++t) {
      if (c.shared_gate) {
        const double z = ref::dot(st.x_in.data() + t * H, w.shared_gate_w.as<T>(), H);
        st.shared_gate[t] = static_cast<T>(1.0 / (1.0 + std::exp(-z)));
      }
      const double g = static_cast<double>(st.shared_gate[t]);
      for (int64_t h = 0; h < H; ++h) y[t * H + h] += static_cast<T>(g * static_cast<double>(shared_out[t * H + h]));
    }
  }
  detail::layer_losses(c, in, st);
}

template <class T>
void moe_layer_backward(const MoeLayerConfig& c, const MoeLayerWeights& w, const LayerInputs& in,
                        const MoeLayerState<T>& st, const T* dy, T* dx, MoeLayerWeights& g) {
  const int64_t Tn = in.n_tokens, H = c.d_model, E = c.router.n_experts;
  if (st.fast) throw std::logic_error("[layer] backward after an inference-only forward (need_backward was false)");
  std::vector<T> dx_in(static_cast<size_t>(Tn * H), T(0));
  if (c.soft.slots_per_expert > 0) {
    detail::soft_moe_backward(c, w, in, st, dy, dx_in.data(), g);
  } else {
    const Routing& r = st.router.routing;
    std::vector<T> dweights(static_cast<size_t>(r.n_slots()), T(0));
    bool experts_done = false;
    if constexpr (std::is_same_v<T, float>) {
      if (st.fast_train) {
        fast_experts_backward(c.expert, detail::expert_view<float>(w, H), r, st.router.weights.data(), st.x_in.data(),
                              st.fast_state, dy, dx_in.data(), detail::expert_grads<float>(g), dweights.data());
        experts_done = true;
      }
    }
    std::vector<T> dout(experts_done ? 0 : static_cast<size_t>(r.n_kept() * H));
    for (int64_t row = 0; row < r.n_kept() && !experts_done; ++row) {
      const int32_t s = r.rows[row];
      const T* dyt = dy + static_cast<int64_t>(r.slot_token[s]) * H;
      dweights[s] = static_cast<T>(ref::dot(st.experts.out.data() + row * H, dyt, H));
      const double wt = static_cast<double>(st.router.weights[s]);
      for (int64_t h = 0; h < H; ++h) dout[row * H + h] = static_cast<T>(wt * static_cast<double>(dyt[h]));
    }
    if (c.router.dropped == DroppedPolicy::passthrough) {
      for (int64_t s = 0; s < r.n_slots(); ++s) {
        if (r.slot_kept[s]) continue;
        const int64_t t = r.slot_token[s];
        dweights[s] = static_cast<T>(ref::dot(st.x_in.data() + t * H, dy + t * H, H));
        const double wt = static_cast<double>(st.router.weights[s]);
        for (int64_t h = 0; h < H; ++h) dx_in[t * H + h] += static_cast<T>(wt * static_cast<double>(dy[t * H + h]));
      }
    }
    if (!experts_done) {
      experts_backward(c.expert, detail::expert_view<T>(w, H), r, st.x_in.data(), st.experts, dout.data(),
                       dx_in.data(), detail::expert_grads<T>(g));
    }

    if (c.shared_hidden > 0) {
      ExpertConfig sc{c.shared_act, c.shared_hidden, false, c.expert.alpha, c.expert.limit};
      std::vector<T> dshared(static_cast<size_t>(Tn * H));
      const T* shared_out = nullptr;
      if constexpr (std::is_same_v<T, float>) {
        if (st.shared_on_fast) shared_out = st.shared_fast.out.data();
      }
      if (!shared_out) shared_out = st.shared.out.data();
      for (int64_t t = 0; t < Tn; ++t) {
        const double gt = static_cast<double>(st.shared_gate[t]);
        for (int64_t h = 0; h < H; ++h) dshared[t * H + h] = static_cast<T>(gt * static_cast<double>(dy[t * H + h]));
        if (c.shared_gate) {  // y += σ(z)·s:  dz = <s, dy>·σ(1−σ)
          const double dz = ref::dot(shared_out + t * H, dy + t * H, H) * gt * (1 - gt);
          T* gw = mut<T>(g.shared_gate_w);
          const T* wg = w.shared_gate_w.as<T>();
          for (int64_t h = 0; h < H; ++h) {
            if (gw) gw[h] += static_cast<T>(dz * static_cast<double>(st.x_in[t * H + h]));
            dx_in[t * H + h] += static_cast<T>(dz * static_cast<double>(wg[h]));
          }
        }
      }
      bool shared_done = false;
      if constexpr (std::is_same_v<T, float>) {
        if (st.shared_on_fast) {
          std::vector<float> ones(static_cast<size_t>(Tn), 1.0f), dw(static_cast<size_t>(Tn));
          fast_experts_backward(sc, detail::shared_view<float>(w, H), dense_routing(Tn), ones.data(), st.x_in.data(),
                                st.shared_fast, dshared.data(), dx_in.data(), detail::shared_grads<float>(g), dw.data());
          shared_done = true;
        }
      }
      if (!shared_done)
        experts_backward(sc, detail::shared_view<T>(w, H), dense_routing(Tn), st.x_in.data(), st.shared,
                         dshared.data(), dx_in.data(), detail::shared_grads<T>(g));
    }

    std::vector<T> dlogits(static_cast<size_t>(Tn * E), T(0));
    std::vector<T> dnoise(st.noise_logits.size(), T(0));
    router_backward(c.router, st.router, dweights.data(), dlogits.data(), dnoise.empty() ? nullptr : dnoise.data());
    detail::layer_losses_backward(c, in, st, dlogits.data());
    ref::linear_backward(dx_in.data(), mut<T>(g.router_w), mut<T>(g.router_b), dlogits.data(), st.x_in.data(),
                         w.router_w.as<T>(), Tn, H, E);
    if (!dnoise.empty()) {
      ref::linear_backward(dx_in.data(), mut<T>(g.noise_w), static_cast<T*>(nullptr), dnoise.data(), st.x_in.data(),
                           w.noise_w.as<T>(), Tn, H, E);
    }
  }
  const T* j = (in.training && c.jitter > 0) ? static_cast<const T*>(in.jitter) : nullptr;
  for (int64_t i = 0; i < Tn * H; ++i) dx[i] = j ? static_cast<T>(static_cast<double>(dx_in[i]) * static_cast<double>(j[i])) : dx_in[i];
}

#define MOE_INSTANTIATE_LAYER(T)                                                                                 \
  template void moe_layer_forward<T>(const MoeLayerConfig&, const MoeLayerWeights&, const T*, const LayerInputs&, \
                                     MoeLayerState<T>&, T*);                                                      \
  template void moe_layer_backward<T>(const MoeLayerConfig&, const MoeLayerWeights&, const LayerInputs&,          \
                                      const MoeLayerState<T>&, const T*, T*, MoeLayerWeights&);                   \
  template ExpertWeights<T> detail::expert_view<T>(const MoeLayerWeights&, int64_t);                              \
  template ExpertWeights<T> detail::shared_view<T>(const MoeLayerWeights&, int64_t);                              \
  template ExpertGrads<T> detail::expert_grads<T>(MoeLayerWeights&);                                              \
  template ExpertGrads<T> detail::shared_grads<T>(MoeLayerWeights&);
MOE_INSTANTIATE_LAYER(float)
MOE_INSTANTIATE_LAYER(double)

}  // namespace moe
