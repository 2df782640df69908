// Soft MoE (Puigcerver et al. 2023; google-research/vmoe SoftRouter), forward and backward.
// Per group of m tokens: logits = scale · normalize(X) · normalize(Φ)  [m, n·p];
// D = softmax over tokens (per slot), C = softmax over slots (per token);
// slots X̃ = Dᵀ X; slot s goes to expert s / p; Y = C · Ỹ.
#include <cmath>

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
void soft_moe_forward(const MoeLayerConfig& c, const MoeLayerWeights& w, const ExpertStore& experts, const T* x,
                      const LayerInputs& in, SoftMoeState<T>& st, T* y) {
  const int64_t Tn = in.n_tokens, H = c.d_model, E = c.router.n_experts, p = c.soft.slots_per_expert;
  const int64_t S = E * p, m = in.group_tokens, G = Tn / m;
  const T* phi = w.soft_phi.as<T>();  // [H, S]
  const double scale = static_cast<double>(w.soft_scale.as<T>()[0]);
  const bool noisy = in.training && c.soft.noise_std > 0;
  if (noisy && !in.noise) throw InvalidInput("[layer] training Soft MoE with noise_std > 0 needs noise samples [T, E·p]");
  const T* noise = static_cast<const T*>(in.noise);

  st.xn.resize(static_cast<size_t>(Tn * H));
  st.xnorm.resize(static_cast<size_t>(Tn));
  for (int64_t t = 0; t < Tn; ++t) st.xnorm[t] = static_cast<T>(l2_normalize(x + t * H, H, 1, st.xn.data() + t * H));
  st.phin.resize(static_cast<size_t>(H * S));
  st.phinorm.resize(static_cast<size_t>(S));
  for (int64_t s = 0; s < S; ++s) st.phinorm[s] = static_cast<T>(l2_normalize(phi + s, H, S, st.phin.data() + s));
  st.logits.assign(static_cast<size_t>(Tn * S), T(0));
  for (int64_t t = 0; t < Tn; ++t) {
    for (int64_t s = 0; s < S; ++s) {
      double acc = 0;
      for (int64_t h = 0; h < H; ++h) acc += static_cast<double>(st.xn[t * H + h]) * static_cast<double>(st.phin[h * S + s]);
      // vmoe SoftRouter.add_noise: logits + noise_std·ε in training (the gradient passes through).
      const double eps = noisy ? c.soft.noise_std * static_cast<double>(noise[t * S + s]) : 0.0;
      st.logits[t * S + s] = static_cast<T>(scale * acc + eps);
    }
  }
  // combine: softmax over slots per token; dispatch: softmax over the group's tokens per slot.
  st.combine.resize(static_cast<size_t>(Tn * S));
  st.dispatch.resize(static_cast<size_t>(Tn * S));
  for (int64_t t = 0; t < Tn; ++t) {
    double mx = -INFINITY, sum = 0;
    for (int64_t s = 0; s < S; ++s) mx = std::max(mx, static_cast<double>(st.logits[t * S + s]));
    for (int64_t s = 0; s < S; ++s) sum += std::exp(static_cast<double>(st.logits[t * S + s]) - mx);
    for (int64_t s = 0; s < S; ++s) st.combine[t * S + s] = static_cast<T>(std::exp(static_cast<double>(st.logits[t * S + s]) - mx) / sum);
  }
  for (int64_t g = 0; g < G; ++g) {
    for (int64_t s = 0; s < S; ++s) {
      double mx = -INFINITY, sum = 0;
      for (int64_t i = 0; i < m; ++i) mx = std::max(mx, static_cast<double>(st.logits[(g * m + i) * S + s]));
      for (int64_t i = 0; i < m; ++i) sum += std::exp(static_cast<double>(st.logits[(g * m + i) * S + s]) - mx);
      for (int64_t i = 0; i < m; ++i) {
        const int64_t k = (g * m + i) * S + s;
        st.dispatch[k] = static_cast<T>(std::exp(static_cast<double>(st.logits[k]) - mx) / sum);
      }
    }
  }
  // slot inputs X̃[g, s] = Σ_i D[i, s] · X[i]  (un-normalised X)
  st.slots.assign(static_cast<size_t>(G * S * H), T(0));
  for (int64_t g = 0; g < G; ++g) {
    for (int64_t s = 0; s < S; ++s) {
      T* slot = st.slots.data() + (g * S + s) * H;
      for (int64_t h = 0; h < H; ++h) {
        double acc = 0;
        for (int64_t i = 0; i < m; ++i) acc += static_cast<double>(st.dispatch[(g * m + i) * S + s]) * static_cast<double>(x[(g * m + i) * H + h]);
        slot[h] = static_cast<T>(acc);
      }
    }
  }
  // The slots through the explicit dispatch → compute path: slot rows grouped by expert.
  make_dispatch_plan(slot_routing(G * S, E, p), st.plan);
  const int64_t A = st.plan.n_rows();
  st.rows.resize(static_cast<size_t>(A * H));
  st.out_rows.resize(static_cast<size_t>(A * H));
  dispatch_rows(st.plan, st.slots.data(), H, st.rows.data());
  run_expert_rows(experts, st.plan, st.rows.data(), st.out_rows.data(), st.experts);
  const T* eout = st.out_rows.data();  // [G·S, H] expert outputs, rows in plan order
  // Rows are ordered by expert; map each slot to its row to read outputs.
  std::vector<int64_t> row_of(static_cast<size_t>(G * S));
  for (int64_t row = 0; row < A; ++row) row_of[st.plan.row_slot[row]] = row;
  for (int64_t g = 0; g < G; ++g) {
    for (int64_t i = 0; i < m; ++i) {
      const int64_t t = g * m + i;
      for (int64_t h = 0; h < H; ++h) {
        double acc = 0;
        for (int64_t s = 0; s < S; ++s) {
          acc += static_cast<double>(st.combine[t * S + s]) * static_cast<double>(eout[row_of[g * S + s] * H + h]);
        }
        y[t * H + h] = static_cast<T>(acc);
      }
    }
  }
}

template <class T>
void soft_moe_backward(const MoeLayerConfig& c, const MoeLayerWeights& w, const ExpertStore& experts,
                       const LayerInputs& in, const T* x, SoftMoeState<T>& st, const T* dy, T* dx,
                       MoeLayerWeights& grads) {
  const int64_t Tn = in.n_tokens, H = c.d_model, E = c.router.n_experts, p = c.soft.slots_per_expert;
  const int64_t S = E * p, m = in.group_tokens, G = Tn / m;
  const double scale = static_cast<double>(w.soft_scale.as<T>()[0]);
  const int64_t A = st.plan.n_rows();
  std::vector<int64_t> row_of(static_cast<size_t>(G * S));
  for (int64_t row = 0; row < A; ++row) row_of[st.plan.row_slot[row]] = row;

  // Y = C·Ỹ:  dC[t, s] = <dy_t, Ỹ_s>,  dỸ_s = Σ_t C[t, s] dy_t
  std::vector<double> dC(static_cast<size_t>(Tn * S)), dD(static_cast<size_t>(Tn * S), 0.0);
  const T* eout = st.out_rows.data();
  // dout per expert row (plan order), then back through the experts and the dispatch to dslots.
  std::vector<T> dout(static_cast<size_t>(A * H), T(0));
  for (int64_t g = 0; g < G; ++g) {
    for (int64_t s = 0; s < S; ++s) {
      const int64_t row = row_of[g * S + s];
      const T* ys = eout + row * H;
      for (int64_t i = 0; i < m; ++i) {
        const int64_t t = g * m + i;
        double acc = 0;
        for (int64_t h = 0; h < H; ++h) acc += static_cast<double>(dy[t * H + h]) * static_cast<double>(ys[h]);
        dC[t * S + s] = acc;
        const double cw = static_cast<double>(st.combine[t * S + s]);
        for (int64_t h = 0; h < H; ++h) dout[row * H + h] += static_cast<T>(cw * static_cast<double>(dy[t * H + h]));
      }
    }
  }
  run_expert_rows_backward(experts, st.plan, st.rows.data(), st.experts, dout.data(), dout.data(),
                           expert_grads<T>(grads));
  std::vector<T> dslots(static_cast<size_t>(G * S * H), T(0));
  dispatch_rows_backward(st.plan, dout.data(), H, dslots.data());
  // X̃_s = Σ_i D[i, s] X_i:  dD[i, s] = <X_i, dX̃_s>,  dX_i += Σ_s D[i, s] dX̃_s
  for (int64_t g = 0; g < G; ++g) {
    for (int64_t s = 0; s < S; ++s) {
      const T* ds = dslots.data() + (g * S + s) * H;
      for (int64_t i = 0; i < m; ++i) {
        const int64_t t = g * m + i;
        double acc = 0;
        const double d = static_cast<double>(st.dispatch[t * S + s]);
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
    for (int64_t s = 0; s < S; ++s) dotc += static_cast<double>(st.combine[t * S + s]) * dC[t * S + s];
    for (int64_t s = 0; s < S; ++s) dl[t * S + s] += static_cast<double>(st.combine[t * S + s]) * (dC[t * S + s] - dotc);
  }
  for (int64_t g = 0; g < G; ++g) {
    for (int64_t s = 0; s < S; ++s) {
      double dotd = 0;
      for (int64_t i = 0; i < m; ++i) dotd += static_cast<double>(st.dispatch[(g * m + i) * S + s]) * dD[(g * m + i) * S + s];
      for (int64_t i = 0; i < m; ++i) {
        const int64_t k = (g * m + i) * S + s;
        dl[k] += static_cast<double>(st.dispatch[k]) * (dD[k] - dotd);
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
        const double xn = static_cast<double>(st.xn[t * H + h]), pn = static_cast<double>(st.phin[h * S + s]);
        prod += xn * pn;
        dxn[t * H + h] += scale * g * pn;
        dphin[h * S + s] += scale * g * xn;
      }
      dscale += g * prod;
    }
  }
  for (int64_t t = 0; t < Tn; ++t) {
    l2_normalize_backward(x + t * H, dxn.data() + t * H, H, 1, static_cast<double>(st.xnorm[t]), dx + t * H);
  }
  const T* phi = w.soft_phi.as<T>();
  if (T* gphi = mut<T>(grads.soft_phi)) {
    for (int64_t s = 0; s < S; ++s) {
      l2_normalize_backward(phi + s, dphin.data() + s, H, S, static_cast<double>(st.phinorm[s]), gphi + s);
    }
  }
  if (T* gs = mut<T>(grads.soft_scale)) gs[0] += static_cast<T>(dscale);
}

#define MOE_INSTANTIATE_SOFT(T)                                                                                 \
  template void soft_moe_forward<T>(const MoeLayerConfig&, const MoeLayerWeights&, const ExpertStore&, const T*,   \
                                    const LayerInputs&, SoftMoeState<T>&, T*);                                     \
  template void soft_moe_backward<T>(const MoeLayerConfig&, const MoeLayerWeights&, const ExpertStore&,            \
                                     const LayerInputs&, const T*, SoftMoeState<T>&, const T*, T*, MoeLayerWeights&);
MOE_INSTANTIATE_SOFT(float)
MOE_INSTANTIATE_SOFT(double)

}  // namespace moe::detail
