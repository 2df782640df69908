// The dispatch plan and the explicit dispatch / combine stages (include/moe/dispatch.h). Every
// per-token sum runs over the token's rows in ascending order, whatever the thread count.
#include "moe/dispatch.h"

#include <omp.h>

#include <algorithm>
#include <cassert>

namespace moe {

namespace {

// Loops with less work than this stay on one thread: a parallel region costs more.
constexpr int64_t kParallelWork = 1 << 15;

// token_offsets / token_rows from row_token: a counting sort, O(T + A).
void index_tokens(DispatchPlan& p) {
  const int64_t A = p.n_rows();
  p.token_offsets.assign(static_cast<size_t>(p.n_tokens + 1), 0);
  for (const int32_t t : p.row_token) ++p.token_offsets[t + 1];
  for (int64_t t = 0; t < p.n_tokens; ++t) p.token_offsets[t + 1] += p.token_offsets[t];
  p.token_rows.resize(static_cast<size_t>(A));
  for (int64_t i = 0; i < A; ++i) {
    const int32_t t = p.row_token[i];
    p.token_rows[p.token_offsets[t]++] = static_cast<int32_t>(i);
  }
  for (int64_t t = p.n_tokens; t > 0; --t) p.token_offsets[t] = p.token_offsets[t - 1];  // undo the fill shift
  p.token_offsets[0] = 0;
}

}  // namespace

void make_dispatch_plan(const Routing& r, DispatchPlan& p) {
  p.n_tokens = r.n_tokens;
  p.n_experts = r.n_experts;
  p.n_slots = r.n_slots();
  p.offsets.assign(r.expert_offsets.begin(), r.expert_offsets.end());
  p.row_slot.assign(r.rows.begin(), r.rows.end());
  p.row_token.resize(r.rows.size());
  for (size_t i = 0; i < r.rows.size(); ++i) p.row_token[i] = r.slot_token[r.rows[i]];
  index_tokens(p);
}

void make_dense_plan(int64_t n_tokens, DispatchPlan& p) {
  p.n_tokens = n_tokens;
  p.n_experts = 1;
  p.n_slots = n_tokens;
  p.offsets.assign({0, n_tokens});
  p.row_slot.resize(static_cast<size_t>(n_tokens));
  p.row_token.resize(static_cast<size_t>(n_tokens));
  for (int64_t t = 0; t < n_tokens; ++t) p.row_slot[t] = p.row_token[t] = static_cast<int32_t>(t);
  index_tokens(p);
}

std::vector<int64_t> DispatchPlan::destination_offsets(int64_t n_ranks) const {
  assert(n_ranks >= 1);
  const int64_t per_rank = (n_experts + n_ranks - 1) / n_ranks;
  std::vector<int64_t> out(static_cast<size_t>(n_ranks + 1));
  for (int64_t r = 0; r <= n_ranks; ++r) out[r] = offsets[std::min(n_experts, r * per_rank)];
  return out;
}

template <class T>
void dispatch_rows(const DispatchPlan& p, const T* x, int64_t H, T* xrows) {
  const int64_t A = p.n_rows();
#pragma omp parallel for schedule(static) if (A * H > kParallelWork)
  for (int64_t i = 0; i < A; ++i) std::copy(x + p.row_token[i] * H, x + p.row_token[i] * H + H, xrows + i * H);
}

template <class T>
void combine_rows(const DispatchPlan& p, const T* w, const T* out, int64_t H, T* y) {
#pragma omp parallel for schedule(static) if (p.n_tokens * H > kParallelWork)
  for (int64_t t = 0; t < p.n_tokens; ++t) {
    T* yr = y + t * H;
    std::fill(yr, yr + H, T(0));
    for (int64_t q = p.token_offsets[t]; q < p.token_offsets[t + 1]; ++q) {
      const int64_t i = p.token_rows[q];
      const T wt = w[p.row_slot[i]];
      const T* o = out + i * H;
      for (int64_t h = 0; h < H; ++h) yr[h] += wt * o[h];
    }
  }
}

template <class T>
void combine_rows_backward(const DispatchPlan& p, const T* w, const T* out, const T* dy, int64_t H, T* dout, T* dw) {
  const int64_t A = p.n_rows();
#pragma omp parallel for schedule(static) if (A * H > kParallelWork)
  for (int64_t i = 0; i < A; ++i) {
    const int32_t s = p.row_slot[i];
    const T* dyr = dy + static_cast<int64_t>(p.row_token[i]) * H;
    const T* o = out + i * H;
    double acc = 0;
    for (int64_t h = 0; h < H; ++h) acc += static_cast<double>(o[h]) * static_cast<double>(dyr[h]);
    dw[s] = static_cast<T>(acc);
    const T ws = w[s];
    for (int64_t h = 0; h < H; ++h) dout[i * H + h] = ws * dyr[h];
  }
}

template <class T>
void dispatch_rows_backward(const DispatchPlan& p, const T* dx_rows, int64_t H, T* dx) {
#pragma omp parallel for schedule(static) if (p.n_tokens * H > kParallelWork)
  for (int64_t t = 0; t < p.n_tokens; ++t) {
    T* dxr = dx + t * H;
    for (int64_t q = p.token_offsets[t]; q < p.token_offsets[t + 1]; ++q) {
      const T* src = dx_rows + static_cast<int64_t>(p.token_rows[q]) * H;
      for (int64_t h = 0; h < H; ++h) dxr[h] += src[h];
    }
  }
}

#define MOE_INSTANTIATE_DISPATCH(T)                                                                            \
  template void dispatch_rows<T>(const DispatchPlan&, const T*, int64_t, T*);                                  \
  template void combine_rows<T>(const DispatchPlan&, const T*, const T*, int64_t, T*);                         \
  template void combine_rows_backward<T>(const DispatchPlan&, const T*, const T*, const T*, int64_t, T*, T*);  \
  template void dispatch_rows_backward<T>(const DispatchPlan&, const T*, int64_t, T*);
MOE_INSTANTIATE_DISPATCH(float)
MOE_INSTANTIATE_DISPATCH(double)

}  // namespace moe
