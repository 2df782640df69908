// Training path of the grouped experts: per expert, a handful of GEMMs on the general packed
// GEMM; gathers go through the GEMM's row list, transposes through strides.
//   forward:  Gp = X·Wgᵀ, Up = X·Wuᵀ, Hd = act(Gp, Up), Out = Hd·Wdᵀ, y[t] = Σ w·Out
//   backward: G = (w·Dy)·Wd, (dGp, dUp) = act'·G, dWd += (w·Dy)ᵀ·Hd,
//             dX = dGp·Wg + dUp·Wu, dWg += dGpᵀ·X, dWu += dUpᵀ·X, dw = <Out, Dy>
// Experts run one per thread (heaviest first, dynamic) when there are enough of them; heavy
// experts run alone with every thread inside their GEMMs. Every expert writes only its own rows
// and its own weight gradients; the per-token sums (y, dx) are taken afterwards over each token's
// rows in a fixed order, so results do not depend on the schedule.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "kernels/cpu/gemm.h"
#include "kernels/cpu/microkernel.h"
#include "kernels/ref/kernels.h"
#include "moe/error.h"
#include "moe/experts.h"
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

// Each token's kept rows, ascending: rows of token t are pos[offsets[t] .. offsets[t+1]).
struct TokenRows {
  std::vector<int64_t> offsets, pos;
};
TokenRows token_rows(int64_t n_tokens, const std::vector<int32_t>& tok) {
  TokenRows tr;
  tr.offsets.assign(static_cast<size_t>(n_tokens + 1), 0);
  for (const int32_t t : tok) ++tr.offsets[t + 1];
  std::partial_sum(tr.offsets.begin(), tr.offsets.end(), tr.offsets.begin());
  tr.pos.resize(tok.size());
  std::vector<int64_t> fill(tr.offsets.begin(), tr.offsets.end() - 1);
  for (size_t p = 0; p < tok.size(); ++p) tr.pos[fill[tok[p]]++] = static_cast<int64_t>(p);
  return tr;
}

// Experts with rows, heaviest first. `wide` ones run alone with all threads in their GEMMs
// (few experts, or one holding a large share of the rows); `narrow` ones run one per thread.
struct Schedule {
  std::vector<int64_t> wide, narrow;
};
Schedule make_schedule(const Routing& r, int threads) {
  std::vector<int64_t> order;
  for (int64_t e = 0; e < r.n_experts; ++e)
    if (r.expert_rows(e) > 0) order.push_back(e);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return r.expert_rows(a) > r.expert_rows(b); });
  Schedule s;
  if (threads <= 1) {
    s.narrow = order;
    return s;
  }
  const bool few = static_cast<int64_t>(order.size()) < 2 * threads;
  const int64_t share = r.n_kept() / (2 * threads);
  for (const int64_t e : order) (few || r.expert_rows(e) > share ? s.wide : s.narrow).push_back(e);
  return s;
}

template <class Body>
void run_schedule(const Schedule& s, int threads, Body&& body) {
  for (const int64_t e : s.wide) body(e, threads);
  const int64_t n = static_cast<int64_t>(s.narrow.size());
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) if (threads > 1 && n > 1)
  for (int64_t i = 0; i < n; ++i) body(s.narrow[i], 1);
}

// Scratch that lives as long as the calling thread, so repeated steps reuse warm pages.
float* scratch(int slot, size_t n) {
  thread_local std::vector<float> buf[4];
  if (buf[slot].size() < n) buf[slot].resize(n);
  return buf[slot].data();
}

// Adds biases [I] to a row and applies the activation: h = act(g + gb, u + ub).
void activate_row(const ExpertConfig& c, bool gated, float* g, float* u, float* h, int64_t I, const float* gb,
                  const float* ub, cpu::SwigluRows vec) {
  if (gated && gb)
    for (int64_t j = 0; j < I; ++j) g[j] += gb[j];
  if (ub)
    for (int64_t j = 0; j < I; ++j) u[j] += ub[j];
  if (vec && c.act == ExpertAct::swiglu) return vec(g, u, h, I);
  for (int64_t j = 0; j < I; ++j) h[j] = static_cast<float>(expert_activation(c, gated ? g[j] : 0.0f, u[j]).h);
}

// (dg, du) from dh; du may alias dh.
void activation_backward_row(const ExpertConfig& c, bool gated, const float* g, const float* u, const float* dh,
                             float* dg, float* du, int64_t I, cpu::SwigluBackwardRows vec) {
  if (vec && c.act == ExpertAct::swiglu) return vec(g, u, dh, dg, du, I);
  for (int64_t j = 0; j < I; ++j) {
    const ActivationGrad d = expert_activation(c, gated ? g[j] : 0.0f, u[j]);
    const float dhj = dh[j];
    if (gated) dg[j] = static_cast<float>(dhj * d.dg);
    du[j] = static_cast<float>(dhj * d.du);
  }
}

}  // namespace

void fast_experts_train_forward(const ExpertConfig& c, const ExpertWeights<float>& w, const Routing& r,
                                const float* weights, const float* x, float* y, FastTrainState& st,
                                const FastExpertsOptions& opt) {
  const int64_t H = w.d_model, I = w.hidden, A = r.n_kept();
  if (r.n_experts != w.n_experts) throw InvalidInput("[fast_experts] routing and weights disagree on the expert count");
  const int threads = opt.threads > 0 ? opt.threads : omp_get_max_threads();
  const bool gated = is_gated(c.act);
  const std::vector<int32_t> tok = row_tokens(r);
  // Every row is written by its expert's GEMMs: resize, no clearing.
  st.pre_gate.resize(gated ? static_cast<size_t>(A * I) : 0);
  st.pre_up.resize(static_cast<size_t>(A * I));
  st.hidden.resize(static_cast<size_t>(A * I));
  st.out.resize(static_cast<size_t>(A * H));
  const cpu::SwigluRows vec = cpu::swiglu_rows(cpu::detected_isa());
  run_schedule(make_schedule(r, threads), threads, [&](int64_t e, int th) {
    const int64_t r0 = r.expert_offsets[e], n = r.expert_rows(e);
    const MatView X{x, H, 1};
    float* pg = gated ? st.pre_gate.data() + r0 * I : nullptr;
    float* pu = st.pre_up.data() + r0 * I;
    float* hd = st.hidden.data() + r0 * I;
    float* out = st.out.data() + r0 * H;
    if (gated) gemm_f32(n, I, H, X, {w.gate + e * I * H, 1, H}, pg, I, false, th, tok.data() + r0);
    gemm_f32(n, I, H, X, {w.up + e * I * H, 1, H}, pu, I, false, th, tok.data() + r0);
    const float* gb = gated && w.gate_bias ? w.gate_bias + e * I : nullptr;
    const float* ub = w.up_bias ? w.up_bias + e * I : nullptr;
#pragma omp parallel for num_threads(th) schedule(static) if (th > 1)
    for (int64_t i = 0; i < n; ++i)
      activate_row(c, gated, gated ? pg + i * I : nullptr, pu + i * I, hd + i * I, I, gb, ub, vec);
    gemm_f32(n, H, I, {hd, I, 1}, {w.down + e * H * I, 1, I}, out, H, false, th);
    if (w.down_bias) {
      const float* db = w.down_bias + e * H;
      for (int64_t i = 0; i < n; ++i)
        for (int64_t h = 0; h < H; ++h) out[i * H + h] += db[h];
    }
  });
  // y[t] = Σ over the token's rows of w · out, in row order.
  const TokenRows tr = token_rows(r.n_tokens, tok);
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t t = 0; t < r.n_tokens; ++t) {
    float* yr = y + t * H;
    std::fill(yr, yr + H, 0.0f);
    for (int64_t q = tr.offsets[t]; q < tr.offsets[t + 1]; ++q) {
      const int64_t p = tr.pos[q];
      const float wt = weights[r.rows[p]];
      const float* o = st.out.data() + p * H;
      for (int64_t h = 0; h < H; ++h) yr[h] += wt * o[h];
    }
  }
}

void fast_experts_backward(const ExpertConfig& c, const ExpertWeights<float>& w, const Routing& r,
                           const float* weights, const float* x, const FastTrainState& st, const float* dy, float* dx,
                           const ExpertGrads<float>& g, float* dweights, const FastExpertsOptions& opt) {
  const int64_t H = w.d_model, I = w.hidden, A = r.n_kept();
  const int threads = opt.threads > 0 ? opt.threads : omp_get_max_threads();
  const bool gated = is_gated(c.act);
  const std::vector<int32_t> tok = row_tokens(r);
  std::fill(dweights, dweights + r.n_slots(), 0.0f);
  // wdy [A, H]: w·dy per row, later overwritten by the rows' dx; xe [A, H]: gathered x;
  // gd [A, I]: dHd, then dUp in place; dgate [A, I].
  float* wdy = scratch(0, static_cast<size_t>(A * H));
  float* xe = scratch(1, static_cast<size_t>(A * H));
  float* gd = scratch(2, static_cast<size_t>(A * I));
  float* dgate = gated ? scratch(3, static_cast<size_t>(A * I)) : nullptr;
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t p = 0; p < A; ++p) {
    const int32_t s = r.rows[p];
    const float* dyr = dy + static_cast<int64_t>(tok[p]) * H;
    const float* xr = x + static_cast<int64_t>(tok[p]) * H;
    dweights[s] = static_cast<float>(ref::dot(st.out.data() + p * H, dyr, H));
    const float ws = weights[s];
    for (int64_t h = 0; h < H; ++h) {
      wdy[p * H + h] = ws * dyr[h];
      xe[p * H + h] = xr[h];
    }
  }
  const cpu::SwigluBackwardRows vec = cpu::swiglu_backward_rows(cpu::detected_isa());
  run_schedule(make_schedule(r, threads), threads, [&](int64_t e, int th) {
    const int64_t r0 = r.expert_offsets[e], n = r.expert_rows(e);
    float* wd = wdy + r0 * H;
    const float* xr = xe + r0 * H;
    float* ge = gd + r0 * I;
    float* dge = gated ? dgate + r0 * I : nullptr;
    const float* Wd = w.down + e * H * I;
    gemm_f32(n, I, H, {wd, H, 1}, {Wd, I, 1}, ge, I, false, th);  // dHd = (w·Dy)·Wd   [n, I]
    if (g.down) gemm_f32(H, I, n, {wd, 1, H}, {st.hidden.data() + r0 * I, I, 1}, g.down + e * H * I, I, true, th);
    if (g.down_bias) {
      float* db = g.down_bias + e * H;
      for (int64_t i = 0; i < n; ++i)
        for (int64_t h = 0; h < H; ++h) db[h] += wd[i * H + h];
    }
    const float* pg = gated ? st.pre_gate.data() + r0 * I : nullptr;
    const float* pu = st.pre_up.data() + r0 * I;
#pragma omp parallel for num_threads(th) schedule(static) if (th > 1)
    for (int64_t i = 0; i < n; ++i)
      activation_backward_row(c, gated, gated ? pg + i * I : nullptr, pu + i * I, ge + i * I,
                              gated ? dge + i * I : nullptr, ge + i * I, I, vec);
    // dX rows = dUp·Wu + dGp·Wg   [n, H], over the (now dead) w·dy rows.
    gemm_f32(n, H, I, {ge, I, 1}, {w.up + e * I * H, H, 1}, wd, H, false, th);
    if (gated) gemm_f32(n, H, I, {dge, I, 1}, {w.gate + e * I * H, H, 1}, wd, H, true, th);
    if (g.up) gemm_f32(I, H, n, {ge, 1, I}, {xr, H, 1}, g.up + e * I * H, H, true, th);
    if (gated && g.gate) gemm_f32(I, H, n, {dge, 1, I}, {xr, H, 1}, g.gate + e * I * H, H, true, th);
    if (g.up_bias) {
      float* ub = g.up_bias + e * I;
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < I; ++j) ub[j] += ge[i * I + j];
    }
    if (gated && g.gate_bias) {
      float* gbias = g.gate_bias + e * I;
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < I; ++j) gbias[j] += dge[i * I + j];
    }
  });
  const TokenRows tr = token_rows(r.n_tokens, tok);
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t t = 0; t < r.n_tokens; ++t) {
    float* dxr = dx + t * H;
    for (int64_t q = tr.offsets[t]; q < tr.offsets[t + 1]; ++q) {
      const float* src = wdy + tr.pos[q] * H;
      for (int64_t h = 0; h < H; ++h) dxr[h] += src[h];
    }
  }
}

}  // namespace moe
