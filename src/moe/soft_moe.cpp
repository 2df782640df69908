// Soft MoE (Puigcerver et al. 2023; google-research/vmoe SoftRouter), forward and backward.
// Per group of m tokens: logits = scale · normalize(X) · normalize(Φ)  [m, n·p];
// D = softmax over tokens (per slot), C = softmax over slots (per token);
// slots X̃ = Dᵀ X; slot s goes to expert s / p; Y = C · Ỹ.
#include <cmath>
#include <type_traits>

#include "layer_internal.h"
#include "moe/error.h"

namespace moe::detail {

namespace {

constexpr double kEps = 1e-6;  // inside the rsqrt, as vmoe's normalize

// Every slot row goes to expert (slot mod (n·p)) / p.
Routing slot_routing(int64_t n_slots_total, int64_t n_experts, int64_t p) {
  Routing r;
  r.n_tokens = n_slots_total;
  r.n_experts = n_experts;
  r.top_k = 1;
  r.slot_token.resize(static_cast<size_t>(n_slots_total));
  r.slot_expert.resize(static_cast<size_t>(n_slots_total));
  r.slot_kept.assign(static_cast<size_t>(n_slots_total), 1);
  for (int64_t s = 0; s < n_slots_total; ++s) {
    r.slot_token[s] = static_cast<int32_t>(s);
    r.slot_expert[s] = static_cast<int32_t>((s % (n_experts * p)) / p);
  }
  build_expert_order(r);
  return r;
}

// v = u / sqrt(|u|² + eps) for a vector of n elements spaced `stride` apart; returns the norm.
template <class T>
double l2_normalize(const T* u, int64_t n, int64_t stride, T* v) {
  double ss = 0;
  for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(u[i * stride]) * static_cast<double>(u[i * stride]);
  const double r = std::sqrt(ss + kEps);
  for (int64_t i = 0; i < n; ++i) v[i * stride] = static_cast<T>(static_cast<double>(u[i * stride]) / r);
  return r;
}

// Its backward, accumulating: du += dv / r − u·<u, dv> / r³ (exact with eps inside the root).
template <class T>
void l2_normalize_backward(const T* u, const double* dv, int64_t n, int64_t stride, double r, T* du) {
  double ud = 0;
  for (int64_t i = 0; i < n; ++i) ud += static_cast<double>(u[i * stride]) * dv[i * stride];
  for (int64_t i = 0; i < n; ++i) {
    du[i * stride] += static_cast<T>(dv[i * stride] / r - static_cast<double>(u[i * stride]) * ud / (r * r * r));
  }
}

}  // namespace

template <class T>
void soft_moe_forward(const MoeLayerConfig& c, const MoeLayerWeights& w, const T* x, const LayerInputs& in,
                      MoeLayerState<T>& st, T* y) {
  const int64_t Tn = in.n_tokens, H = c.d_model, E = c.router.n_experts, p = c.soft.slots_per_expert;
  const int64_t S = E * p, m = in.group_tokens, G = Tn / m;
  const T* phi = w.soft_phi.as<T>();  // [H, S]
  const double scale = static_cast<double>(w.soft_scale.as<T>()[0]);

  st.soft_xn.resize(static_cast<size_t>(Tn * H));
  st.soft_xnorm.resize(static_cast<size_t>(Tn));
  for (int64_t t = 0; t < Tn; ++t) st.soft_xnorm[t] = static_cast<T>(l2_normalize(x + t * H, H, 1, st.soft_xn.data() + t * H));
  st.soft_phin.resize(static_cast<size_t>(H * S));
  st.soft_phinorm.resize(static_cast<size_t>(S));
  for (int64_t s = 0; s < S; ++s) st.soft_phinorm[s] = static_cast<T>(l2_normalize(phi + s, H, S, st.soft_phin.data() + s));
  st.soft_logits.assign(static_cast<size_t>(Tn * S), T(0));
  for (int64_t t = 0; t < Tn; ++t) {
    for (int64_t s = 0; s < S; ++s) {
      double acc = 0;
      for (int64_t h = 0; h < H; ++h) acc += static_cast<double>(st.soft_xn[t * H + h]) * static_cast<double>(st.soft_phin[h * S + s]);
      st.soft_logits[t * S + s] = static_cast<T>(scale * acc);
    }
  }
  // combine: softmax over slots per token; dispatch: softmax over the group's tokens per slot.
  st.soft_combine.resize(static_cast<size_t>(Tn * S));
  st.soft_dispatch.resize(static_cast<size_t>(Tn * S));
  for (int64_t t = 0; t < Tn; ++t) {
    double mx = -INFINITY, sum = 0;
    for (int64_t s = 0; s < S; ++s) mx = std::max(mx, static_cast<double>(st.soft_logits[t * S + s]));
    for (int64_t s = 0; s < S; ++s) sum += std::exp(static_cast<double>(st.soft_logits[t * S + s]) - mx);
    for (int64_t s = 0; s < S; ++s) st.soft_combine[t * S + s] = static_cast<T>(std::exp(static_cast<double>(st.soft_logits[t * S + s]) - mx) / sum);
  }
  for (int64_t g = 0; g < G; ++g) {
    for (int64_t s = 0; s < S; ++s) {
      double mx = -INFINITY, sum = 0;
      for (int64_t i = 0; i < m; ++i) mx = std::max(mx, static_cast<double>(st.soft_logits[(g * m + i) * S + s]));
      for (int64_t i = 0; i < m; ++i) sum += std::exp(static_cast<double>(st.soft_logits[(g * m + i) * S + s]) - mx);
      for (int64_t i = 0; i < m; ++i) {
        const int64_t k = (g * m + i) * S + s;
        st.soft_dispatch[k] = static_cast<T>(std::exp(static_cast<double>(st.soft_logits[k]) - mx) / sum);
      }
    }
  }
  // slot inputs X̃[g, s] = Σ_i D[i, s] · X[i]  (un-normalised X)
  st.soft_slots.assign(static_cast<size_t>(G * S * H), T(0));
  for (int64_t g = 0; g < G; ++g) {
    for (int64_t s = 0; s < S; ++s) {
      T* slot = st.soft_slots.data() + (g * S + s) * H;
      for (int64_t h = 0; h < H; ++h) {
        double acc = 0;
        for (int64_t i = 0; i < m; ++i) acc += static_cast<double>(st.soft_dispatch[(g * m + i) * S + s]) * static_cast<double>(x[(g * m + i) * H + h]);
        slot[h] = static_cast<T>(acc);
      }
    }
  }
  const Routing r = slot_routing(G * S, E, p);
  const T* eout = nullptr;  // [G·S, H] expert outputs, rows in Routing::rows order
  if constexpr (std::is_same_v<T, float>) {
    // Float layers: the experts on the fast grouped kernels (each slot is one row of its expert).
    std::vector<float> ones(static_cast<size_t>(G * S), 1.0f), tmp(static_cast<size_t>(G * S * H));
    fast_experts_train_forward(c.expert, expert_view<float>(w, H), r, ones.data(), st.soft_slots.data(), tmp.data(),
                               st.fast_state);
    st.experts = {};
    eout = st.fast_state.out.data();
  } else {
    experts_forward(c.expert, expert_view<T>(w, H), r, st.soft_slots.data(), st.experts);
    eout = st.experts.out.data();
  }
  // Rows are ordered by expert; map each slot to its row to read outputs.
  std::vector<int64_t> row_of(static_cast<size_t>(G * S));
  for (int64_t row = 0; row < r.n_kept(); ++row) row_of[r.rows[row]] = row;
  for (int64_t g = 0; g < G; ++g) {
    for (int64_t i = 0; i < m; ++i) {
      const int64_t t = g * m + i;
      for (int64_t h = 0; h < H; ++h) {
        double acc = 0;
        for (int64_t s = 0; s < S; ++s) {
          acc += static_cast<double>(st.soft_combine[t * S + s]) * static_cast<double>(eout[row_of[g * S + s] * H + h]);
        }
        y[t * H + h] = static_cast<T>(acc);
      }
    }
  }
}

template <class T>
void soft_moe_backward(const MoeLayerConfig& c, const MoeLayerWeights& w, const LayerInputs& in,
                       const MoeLayerState<T>& st, const T* dy, T* dx, MoeLayerWeights& grads) {
  const int64_t Tn = in.n_tokens, H = c.d_model, E = c.router.n_experts, p = c.soft.slots_per_expert;
  const int64_t S = E * p, m = in.group_tokens, G = Tn / m;
  const double scale = static_cast<double>(w.soft_scale.as<T>()[0]);
  const T* x = st.x_in.data();
  const Routing r = slot_routing(G * S, E, p);
  std::vector<int64_t> row_of(static_cast<size_t>(G * S));
  for (int64_t row = 0; row < r.n_kept(); ++row) row_of[r.rows[row]] = row;

  // Y = C·Ỹ:  dC[t, s] = <dy_t, Ỹ_s>,  dỸ_s = Σ_t C[t, s] dy_t
  std::vector<double> dC(static_cast<size_t>(Tn * S)), dD(static_cast<size_t>(Tn * S), 0.0);
  constexpr bool fast = std::is_same_v<T, float>;  // float: the forward ran on the fast kernels
  const T* eout = nullptr;
  if constexpr (fast) {
    eout = st.fast_state.out.data();
  } else {
    eout = st.experts.out.data();
  }
  // dout: per expert row (reference backward), or per slot (the fast backward takes dy by "token").
  std::vector<T> dout(static_cast<size_t>(G * S * H), T(0));
  for (int64_t g = 0; g < G; ++g) {
    for (int64_t s = 0; s < S; ++s) {
      const int64_t row = row_of[g * S + s];
      const T* ys = eout + row * H;
      const int64_t at = fast ? g * S + s : row;
      for (int64_t i = 0; i < m; ++i) {
        const int64_t t = g * m + i;
        double acc = 0;
        for (int64_t h = 0; h < H; ++h) acc += static_cast<double>(dy[t * H + h]) * static_cast<double>(ys[h]);
        dC[t * S + s] = acc;
        const double cw = static_cast<double>(st.soft_combine[t * S + s]);
        for (int64_t h = 0; h < H; ++h) dout[at * H + h] += static_cast<T>(cw * static_cast<double>(dy[t * H + h]));
      }
    }
  }
  std::vector<T> dslots(static_cast<size_t>(G * S * H), T(0));
  if constexpr (fast) {
    std::vector<float> ones(static_cast<size_t>(G * S), 1.0f), dw(static_cast<size_t>(G * S));
    fast_experts_backward(c.expert, expert_view<float>(w, H), r, ones.data(), st.soft_slots.data(), st.fast_state,
                          dout.data(), dslots.data(), expert_grads<float>(grads), dw.data());
  } else {
    experts_backward(c.expert, expert_view<T>(w, H), r, st.soft_slots.data(), st.experts, dout.data(), dslots.data(),
                     expert_grads<T>(grads));
  }
  // X̃_s = Σ_i D[i, s] X_i:  dD[i, s] = <X_i, dX̃_s>,  dX_i += Σ_s D[i, s] dX̃_s
  for (int64_t g = 0; g < G; ++g) {
    for (int64_t s = 0; s < S; ++s) {
      const T* ds = dslots.data() + (g * S + s) * H;
      for (int64_t i = 0; i < m; ++i) {
        const int64_t t = g * m + i;
        double acc = 0;
        const double d = static_cast<double>(st.soft_dispatch[t * S + s]);
        for (int64_t h = 0; h < H; ++h) {
          acc += static_cast<double>(x[t * H + h]) * static_cast<double>(ds[h]);
          dx[t * H + h] += static_cast<T>(d * static_cast<double>(ds[h]));
        }
        dD[t * S + s] = acc;
      }
    }
  }
  // Softmax backward for both: dlogits = C⊙(dC − Σ_s C dC) + D⊙(dD − Σ_i D dD)
  std::vector<double> dl(static_cast<size_t>(Tn * S), 0.0);
  for (int64_t t = 0; t < Tn; ++t) {
    double dotc = 0;
    for (int64_t s = 0; s < S; ++s) dotc += static_cast<double>(st.soft_combine[t * S + s]) * dC[t * S + s];
    for (int64_t s = 0; s < S; ++s) dl[t * S + s] += static_cast<double>(st.soft_combine[t * S + s]) * (dC[t * S + s] - dotc);
  }
  for (int64_t g = 0; g < G; ++g) {
    for (int64_t s = 0; s < S; ++s) {
      double dotd = 0;
      for (int64_t i = 0; i < m; ++i) dotd += static_cast<double>(st.soft_dispatch[(g * m + i) * S + s]) * dD[(g * m + i) * S + s];
      for (int64_t i = 0; i < m; ++i) {
        const int64_t k = (g * m + i) * S + s;
        dl[k] += static_cast<double>(st.soft_dispatch[k]) * (dD[k] - dotd);
      }
    }
  }
  // logits = scale · Xn·Φn
  std::vector<double> dxn(static_cast<size_t>(Tn * H), 0.0), dphin(static_cast<size_t>(H * S), 0.0);
  double dscale = 0;
  for (int64_t t = 0; t < Tn; ++t) {
    for (int64_t s = 0; s < S; ++s) {
      const double g = dl[t * S + s];
      if (g == 0) continue;
      double prod = 0;
      for (int64_t h = 0; h < H; ++h) {
        const double xn = static_cast<double>(st.soft_xn[t * H + h]), pn = static_cast<double>(st.soft_phin[h * S + s]);
        prod += xn * pn;
        dxn[t * H + h] += scale * g * pn;
        dphin[h * S + s] += scale * g * xn;
      }
      dscale += g * prod;
    }
  }
  for (int64_t t = 0; t < Tn; ++t) {
    l2_normalize_backward(x + t * H, dxn.data() + t * H, H, 1, static_cast<double>(st.soft_xnorm[t]), dx + t * H);
  }
  const T* phi = w.soft_phi.as<T>();
  if (T* gphi = mut<T>(grads.soft_phi)) {
    for (int64_t s = 0; s < S; ++s) {
      l2_normalize_backward(phi + s, dphin.data() + s, H, S, static_cast<double>(st.soft_phinorm[s]), gphi + s);
    }
  }
  if (T* gs = mut<T>(grads.soft_scale)) gs[0] += static_cast<T>(dscale);
}

#define MOE_INSTANTIATE_SOFT(T)                                                                                 \
  template void soft_moe_forward<T>(const MoeLayerConfig&, const MoeLayerWeights&, const T*, const LayerInputs&, \
                                    MoeLayerState<T>&, T*);                                                      \
  template void soft_moe_backward<T>(const MoeLayerConfig&, const MoeLayerWeights&, const LayerInputs&,          \
                                     const MoeLayerState<T>&, const T*, T*, MoeLayerWeights&);
MOE_INSTANTIATE_SOFT(float)
MOE_INSTANTIATE_SOFT(double)

}  // namespace moe::detail
