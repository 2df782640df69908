// Training path of the grouped experts: per expert, a handful of GEMMs on the general packed
// GEMM; gathers go through the GEMM's row list, transposes through strides.
//   forward:  Gp = X·Wgᵀ, Up = X·Wuᵀ, Hd = act(Gp, Up), Out = Hd·Wdᵀ, y[t] += w·Out
//   backward: G = Dy·Wd, dHd = w·G, (dGp, dUp) = act'·dHd, dWd += (w·Dy)ᵀ·Hd,
//             dX = dGp·Wg + dUp·Wu, dWg += dGpᵀ·X, dWu += dUpᵀ·X, dw = <Out, Dy>
#include <omp.h>

#include <algorithm>
#include <cmath>

#include "kernels/cpu/gemm.h"
#include "kernels/ref/kernels.h"
#include "moe/experts.h"
#include "moe/error.h"
#include "moe/fast_experts.h"

namespace moe {

namespace {

using cpu::gemm_f32;
using cpu::MatView;

std::vector<int32_t> row_tokens(const Routing& r) {
  std::vector<int32_t> tok(static_cast<size_t>(r.n_kept()));
  for (int64_t i = 0; i < r.n_kept(); ++i) tok[i] = r.slot_token[r.rows[i]];
  return tok;
}

}  // namespace

void fast_experts_train_forward(const ExpertConfig& c, const ExpertWeights<float>& w, const Routing& r,
                                const float* weights, const float* x, float* y, FastTrainState& st,
                                const FastExpertsOptions& opt) {
  const int64_t E = w.n_experts, H = w.d_model, I = w.hidden, A = r.n_kept();
  if (r.n_experts != E) throw InvalidInput("[fast_experts] routing and weights disagree on the expert count");
  const int threads = opt.threads > 0 ? opt.threads : omp_get_max_threads();
  const bool gated = is_gated(c.act);
  const std::vector<int32_t> tok = row_tokens(r);
  st.pre_gate.assign(gated ? static_cast<size_t>(A * I) : 0, 0.0f);
  st.pre_up.assign(static_cast<size_t>(A * I), 0.0f);
  st.hidden.assign(static_cast<size_t>(A * I), 0.0f);
  st.out.assign(static_cast<size_t>(A * H), 0.0f);
  std::fill(y, y + r.n_tokens * H, 0.0f);
  for (int64_t e = 0; e < E; ++e) {
    const int64_t r0 = r.expert_offsets[e], n = r.expert_rows(e);
    if (n == 0) continue;
    const MatView X{x, H, 1};
    if (gated) gemm_f32(n, I, H, X, {w.gate + e * I * H, 1, H}, st.pre_gate.data() + r0 * I, I, false, threads, tok.data() + r0);
    gemm_f32(n, I, H, X, {w.up + e * I * H, 1, H}, st.pre_up.data() + r0 * I, I, false, threads, tok.data() + r0);
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t j = 0; j < I; ++j) {
        const int64_t at = (r0 + i) * I + j;
        if (gated && w.gate_bias) st.pre_gate[at] += w.gate_bias[e * I + j];
        if (w.up_bias) st.pre_up[at] += w.up_bias[e * I + j];
        st.hidden[at] = static_cast<float>(expert_activation(c, gated ? st.pre_gate[at] : 0.0f, st.pre_up[at]).h);
      }
    }
    gemm_f32(n, H, I, {st.hidden.data() + r0 * I, I, 1}, {w.down + e * H * I, 1, I}, st.out.data() + r0 * H, H, false, threads);
    // Rows of one expert are distinct tokens: the scatter-add is race-free.
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      const int32_t s = r.rows[r0 + i];
      float* yr = y + static_cast<int64_t>(tok[r0 + i]) * H;
      const float* o = st.out.data() + (r0 + i) * H;
      for (int64_t h = 0; h < H; ++h) {
        const float v = o[h] + (w.down_bias ? w.down_bias[e * H + h] : 0.0f);
        st.out[(r0 + i) * H + h] = v;
        yr[h] += weights[s] * v;
      }
    }
  }
}

void fast_experts_backward(const ExpertConfig& c, const ExpertWeights<float>& w, const Routing& r,
                           const float* weights, const float* x, const FastTrainState& st, const float* dy, float* dx,
                           const ExpertGrads<float>& g, float* dweights, const FastExpertsOptions& opt) {
  const int64_t E = w.n_experts, H = w.d_model, I = w.hidden;
  const int threads = opt.threads > 0 ? opt.threads : omp_get_max_threads();
  const bool gated = is_gated(c.act);
  const std::vector<int32_t> tok = row_tokens(r);
  std::fill(dweights, dweights + r.n_slots(), 0.0f);
  int64_t nmax = 0;
  for (int64_t e = 0; e < E; ++e) nmax = std::max(nmax, r.expert_rows(e));
  std::vector<float> gbuf(static_cast<size_t>(nmax * I)), dgate(static_cast<size_t>(nmax * I)),
      dup(static_cast<size_t>(nmax * I)), wdy(static_cast<size_t>(nmax * H)), xe(static_cast<size_t>(nmax * H)),
      dxe(static_cast<size_t>(nmax * H));
  for (int64_t e = 0; e < E; ++e) {
    const int64_t r0 = r.expert_offsets[e], n = r.expert_rows(e);
    if (n == 0) continue;
    // Gathered dy (scaled by the slot weight), x rows, and the slot-weight gradients.
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      const int32_t s = r.rows[r0 + i];
      const float* dyr = dy + static_cast<int64_t>(tok[r0 + i]) * H;
      const float* xr = x + static_cast<int64_t>(tok[r0 + i]) * H;
      dweights[s] = static_cast<float>(ref::dot(st.out.data() + (r0 + i) * H, dyr, H));
      for (int64_t h = 0; h < H; ++h) {
        wdy[i * H + h] = weights[s] * dyr[h];
        xe[i * H + h] = xr[h];
      }
    }
    const float* Wd = w.down + e * H * I;
    // dHd = (w·Dy)·Wd   [n, I]
    gemm_f32(n, I, H, {wdy.data(), H, 1}, {Wd, I, 1}, gbuf.data(), I, false, threads);
    if (g.down) gemm_f32(H, I, n, {wdy.data(), 1, H}, {st.hidden.data() + r0 * I, I, 1}, g.down + e * H * I, I, true, threads);
    if (g.down_bias) {
      for (int64_t i = 0; i < n; ++i)
        for (int64_t h = 0; h < H; ++h) g.down_bias[e * H + h] += wdy[i * H + h];
    }
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t j = 0; j < I; ++j) {
        const int64_t at = (r0 + i) * I + j;
        const ActivationGrad d = expert_activation(c, gated ? st.pre_gate[at] : 0.0f, st.pre_up[at]);
        dgate[i * I + j] = static_cast<float>(gbuf[i * I + j] * d.dg);
        dup[i * I + j] = static_cast<float>(gbuf[i * I + j] * d.du);
      }
    }
    // dX = dGp·Wg + dUp·Wu   [n, H]
    gemm_f32(n, H, I, {dup.data(), I, 1}, {w.up + e * I * H, H, 1}, dxe.data(), H, false, threads);
    if (gated) gemm_f32(n, H, I, {dgate.data(), I, 1}, {w.gate + e * I * H, H, 1}, dxe.data(), H, true, threads);
    if (g.up) gemm_f32(I, H, n, {dup.data(), 1, I}, {xe.data(), H, 1}, g.up + e * I * H, H, true, threads);
    if (gated && g.gate) gemm_f32(I, H, n, {dgate.data(), 1, I}, {xe.data(), H, 1}, g.gate + e * I * H, H, true, threads);
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t j = 0; j < I; ++j) {
        if (g.up_bias) g.up_bias[e * I + j] += dup[i * I + j];
        if (gated && g.gate_bias) g.gate_bias[e * I + j] += dgate[i * I + j];
      }
    }
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      float* dxr = dx + static_cast<int64_t>(tok[r0 + i]) * H;
      for (int64_t h = 0; h < H; ++h) dxr[h] += dxe[i * H + h];
    }
  }
}

}  // namespace moe
