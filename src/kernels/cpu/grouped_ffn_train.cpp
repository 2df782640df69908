// The training path of the grouped FFNs (kernels/cpu/grouped_ffn.h): per group a handful of GEMMs
// on the general packed GEMM; gathers go through the GEMM's row list, transposes through strides.
//   forward:  Gp = X·Wgᵀ, Up = X·Wuᵀ, Hd = act(Gp, Up), Out = Hd·Wdᵀ (+ biases)
//   backward: G = D·Wd, (dGp, dUp) = act'·G, dWd += Dᵀ·Hd, dX = dGp·Wg + dUp·Wu,
//             dWg += dGpᵀ·X, dWu += dUpᵀ·X           (D = d loss / d Out per row)
// Groups run one per thread (heaviest first, dynamic) when there are enough of them; heavy groups
// run alone with every thread inside their GEMMs. Every group writes only its own rows and its own
// weight gradients, so results do not depend on the schedule.
#include <omp.h>

#include <algorithm>
#include <vector>

#include "kernels/cpu/gemm.h"
#include "kernels/cpu/grouped_ffn.h"
#include "kernels/cpu/microkernel.h"

namespace moe::cpu {

namespace {

// Groups with rows, heaviest first. `wide` ones run alone with all threads in their GEMMs (few
// groups, or one holding a large share of the rows); `narrow` ones run one per thread. At most
// 2·G indices, carved from the scratch.
struct Schedule {
  const int64_t* wide = nullptr;
  int64_t n_wide = 0;
  const int64_t* narrow = nullptr;
  int64_t n_narrow = 0;
};
Schedule make_schedule(const RowGroups& rg, int threads, Scratch& scratch) {
  int64_t* order = scratch.take<int64_t>(static_cast<size_t>(rg.n_groups));
  int64_t n = 0;
  for (int64_t g = 0; g < rg.n_groups; ++g)
    if (rg.rows(g) > 0) order[n++] = g;
  std::stable_sort(order, order + n, [&](int64_t a, int64_t b) { return rg.rows(a) > rg.rows(b); });
  Schedule s;
  if (threads <= 1) {
    s.narrow = order;
    s.n_narrow = n;
    return s;
  }
  int64_t* wide = scratch.take<int64_t>(static_cast<size_t>(rg.n_groups));
  int64_t* narrow = scratch.take<int64_t>(static_cast<size_t>(rg.n_groups));
  const bool few = n < 2 * threads;
  const int64_t share = rg.n_rows() / (2 * threads);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t g = order[i];
    if (few || rg.rows(g) > share) {
      wide[s.n_wide++] = g;
    } else {
      narrow[s.n_narrow++] = g;
    }
  }
  s.wide = wide;
  s.narrow = narrow;
  return s;
}
size_t schedule_bytes(int64_t G) { return 3 * align64(static_cast<size_t>(G) * sizeof(int64_t)); }

// GEMM packing buffers: one slice per thread, each enough for any product of this call (M, N
// and K each among H, I and a group's rows: the weight-gradient GEMMs have K = rows).
size_t gemm_slice_bytes(const FfnWeights<float>& w, const RowGroups& rg) {
  const int64_t big = std::max({w.d_model, w.hidden, rg.n_rows(), int64_t(1)});
  return gemm_f32_scratch_bytes(big, big, big, 1);
}

// body(g, threads, scratch): wide groups with every thread and the whole GEMM scratch, narrow
// groups on one thread each with that thread's slice.
template <class Body>
void run_schedule(const Schedule& s, int threads, Scratch gemm, size_t slice, Body&& body) {
  for (int64_t i = 0; i < s.n_wide; ++i) body(s.wide[i], threads, gemm);
  const int64_t n = s.n_narrow;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) if (threads > 1 && n > 1)
  for (int64_t i = 0; i < n; ++i) body(s.narrow[i], 1, gemm.slice(static_cast<size_t>(omp_get_thread_num()), slice));
}

// Adds biases [I] to a row and applies the activation: h = act(g + gb, u + ub).
void activate_row(const FfnSpec& c, bool gated, float* g, float* u, float* h, int64_t I, const float* gb,
                  const float* ub, SwigluRows vec) {
  if (gated && gb)
    for (int64_t j = 0; j < I; ++j) g[j] += gb[j];
  if (ub)
    for (int64_t j = 0; j < I; ++j) u[j] += ub[j];
  if (vec && c.act == FfnAct::swiglu) return vec(g, u, h, I);
  for (int64_t j = 0; j < I; ++j) h[j] = static_cast<float>(ffn_activation(c, gated ? g[j] : 0.0f, u[j]).h);
}

// (dg, du) from dh; du may alias dh.
void activation_backward_row(const FfnSpec& c, bool gated, const float* g, const float* u, const float* dh, float* dg,
                             float* du, int64_t I, SwigluBackwardRows vec) {
  if (vec && c.act == FfnAct::swiglu) return vec(g, u, dh, dg, du, I);
  for (int64_t j = 0; j < I; ++j) {
    const ActivationGrad d = ffn_activation(c, gated ? g[j] : 0.0f, u[j]);
    const float dhj = dh[j];
    if (gated) dg[j] = static_cast<float>(dhj * d.dg);
    du[j] = static_cast<float>(dhj * d.du);
  }
}

}  // namespace

size_t grouped_ffn_train_forward_scratch_bytes(const FfnWeights<float>& w, const RowGroups& rg, int threads) {
  return schedule_bytes(rg.n_groups) + static_cast<size_t>(std::max(threads, 1)) * gemm_slice_bytes(w, rg);
}

void grouped_ffn_train_forward(const FfnSpec& c, const FfnWeights<float>& w, const RowGroups& rg, const float* x,
                               const FfnRowActs& acts, int threads, Scratch scratch) {
  const int64_t H = w.d_model, I = w.hidden;
  const bool gated = is_gated(c.act);
  const SwigluRows vec = swiglu_rows(detected_isa());
  const Schedule sched = make_schedule(rg, threads, scratch);
  run_schedule(sched, threads, scratch, gemm_slice_bytes(w, rg), [&](int64_t e, int th, Scratch gs) {
    const int64_t r0 = rg.offsets[e], n = rg.rows(e);
    const int32_t* src = rg.src ? rg.src + r0 : nullptr;
    const MatView X = src ? MatView{x, H, 1} : MatView{x + r0 * H, H, 1};
    float* pg = gated ? acts.pre_gate + r0 * I : nullptr;
    float* pu = acts.pre_up + r0 * I;
    float* hd = acts.hidden + r0 * I;
    float* out = acts.out + r0 * H;
    if (gated) gemm_f32(n, I, H, X, {w.gate + e * I * H, 1, H}, pg, I, false, th, src, gs);
    gemm_f32(n, I, H, X, {w.up + e * I * H, 1, H}, pu, I, false, th, src, gs);
    const float* gb = gated && w.gate_bias ? w.gate_bias + e * I : nullptr;
    const float* ub = w.up_bias ? w.up_bias + e * I : nullptr;
#pragma omp parallel for num_threads(th) schedule(static) if (th > 1 && n * I > (1 << 15))
    for (int64_t i = 0; i < n; ++i)
      activate_row(c, gated, gated ? pg + i * I : nullptr, pu + i * I, hd + i * I, I, gb, ub, vec);
    gemm_f32(n, H, I, {hd, I, 1}, {w.down + e * H * I, 1, I}, out, H, false, th, nullptr, gs);
    if (w.down_bias) {
      const float* db = w.down_bias + e * H;
      for (int64_t i = 0; i < n; ++i)
        for (int64_t h = 0; h < H; ++h) out[i * H + h] += db[h];
    }
  });
}

size_t grouped_ffn_train_backward_scratch_bytes(const FfnWeights<float>& w, const RowGroups& rg, int threads) {
  const size_t A = static_cast<size_t>(rg.n_rows());
  const size_t xe = rg.src ? align64(A * static_cast<size_t>(w.d_model) * sizeof(float)) : 0;
  const size_t rows_i = 2 * align64(A * static_cast<size_t>(w.hidden) * sizeof(float));
  return xe + rows_i + grouped_ffn_train_forward_scratch_bytes(w, rg, threads);
}

void grouped_ffn_train_backward(const FfnSpec& c, const FfnWeights<float>& w, const RowGroups& rg, const float* x,
                                const FfnRowActs& acts, const float* dout, float* dx_rows, const FfnGrads<float>& g,
                                int threads, Scratch scratch) {
  const int64_t H = w.d_model, I = w.hidden, A = rg.n_rows();
  const bool gated = is_gated(c.act);
  // xe [A, H]: the gathered inputs (B operand of the weight-gradient GEMMs, which cannot gather);
  // gd [A, I]: dHd, then dUp in place; dgate [A, I].
  const float* xe = x;
  if (rg.src) {
    float* gathered = scratch.take<float>(static_cast<size_t>(A * H));
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1 && A * H > (1 << 15))
    for (int64_t i = 0; i < A; ++i) std::copy(x + rg.src[i] * H, x + rg.src[i] * H + H, gathered + i * H);
    xe = gathered;
  }
  float* gd = scratch.take<float>(static_cast<size_t>(A * I));
  float* dgate = gated ? scratch.take<float>(static_cast<size_t>(A * I)) : nullptr;
  if (dx_rows != dout) std::copy(dout, dout + A * H, dx_rows);
  const SwigluBackwardRows vec = swiglu_backward_rows(detected_isa());
  const Schedule sched = make_schedule(rg, threads, scratch);
  run_schedule(sched, threads, scratch, gemm_slice_bytes(w, rg), [&](int64_t e, int th, Scratch gs) {
    const int64_t r0 = rg.offsets[e], n = rg.rows(e);
    float* wd = dx_rows + r0 * H;  // d(out) rows, overwritten by the rows' dx once dead
    const float* xr = xe + r0 * H;
    float* ge = gd + r0 * I;
    float* dge = gated ? dgate + r0 * I : nullptr;
    const float* Wd = w.down + e * H * I;
    gemm_f32(n, I, H, {wd, H, 1}, {Wd, I, 1}, ge, I, false, th, nullptr, gs);  // dHd = D·Wd   [n, I]
    if (g.down) gemm_f32(H, I, n, {wd, 1, H}, {acts.hidden + r0 * I, I, 1}, g.down + e * H * I, I, true, th, nullptr, gs);
    if (g.down_bias) {
      float* db = g.down_bias + e * H;
      for (int64_t i = 0; i < n; ++i)
        for (int64_t h = 0; h < H; ++h) db[h] += wd[i * H + h];
    }
    const float* pg = gated ? acts.pre_gate + r0 * I : nullptr;
    const float* pu = acts.pre_up + r0 * I;
#pragma omp parallel for num_threads(th) schedule(static) if (th > 1 && n * I > (1 << 15))
    for (int64_t i = 0; i < n; ++i)
      activation_backward_row(c, gated, gated ? pg + i * I : nullptr, pu + i * I, ge + i * I,
                              gated ? dge + i * I : nullptr, ge + i * I, I, vec);
    // dX rows = dUp·Wu + dGp·Wg   [n, H], over the (now dead) D rows.
    gemm_f32(n, H, I, {ge, I, 1}, {w.up + e * I * H, H, 1}, wd, H, false, th, nullptr, gs);
    if (gated) gemm_f32(n, H, I, {dge, I, 1}, {w.gate + e * I * H, H, 1}, wd, H, true, th, nullptr, gs);
    if (g.up) gemm_f32(I, H, n, {ge, 1, I}, {xr, H, 1}, g.up + e * I * H, H, true, th, nullptr, gs);
    if (gated && g.gate) gemm_f32(I, H, n, {dge, 1, I}, {xr, H, 1}, g.gate + e * I * H, H, true, th, nullptr, gs);
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
}

}  // namespace moe::cpu
