// The stages after routing, as data: route → dispatch plan → expert compute → combine.
//
//   Routing ──make_dispatch_plan──► DispatchPlan: rows (kept slots) grouped by expert, each row's
//   slot and token, each token's rows in a fixed order, rows per destination rank.
//   x [T, H] ──dispatch_rows──► xrows [A, H]   (the permuted buffer an all-to-all would send)
//   xrows ──expert compute (moe/expert_store.h)──► out rows [A, H], unweighted
//   out rows ──combine_rows──► y [T, H] = Σ over each token's rows of w_slot · out_row
//
// In one process the gather is fused into the expert GEMM's packing and the combine into its down
// epilogue (run_experts); the explicit path over xrows is tested equal to it and is where
// expert parallelism's all-to-all sits (as Megablocks' permute-and-compute, DeepEP's layout →
// dispatch → combine). Legend: T tokens, H model width, E experts, S slots, A kept rows.
#pragma once

#include <cstdint>
#include <vector>

#include "moe/ffn.h"
#include "moe/routing.h"

namespace moe {

struct DispatchPlan {
  int64_t n_tokens = 0, n_experts = 0, n_slots = 0;
  std::vector<int64_t> offsets;        // [E+1] expert e owns rows [offsets[e], offsets[e+1])
  std::vector<int32_t> row_slot;       // [A] slot of each row (Routing::rows)
  std::vector<int32_t> row_token;      // [A] token of each row
  std::vector<int64_t> token_offsets;  // [T+1] token t's rows are token_rows[token_offsets[t] .. [t+1])
  std::vector<int32_t> token_rows;     // [A] each token's rows, ascending: the order every combine sums in

  int64_t n_rows() const { return static_cast<int64_t>(row_slot.size()); }
  // The rows as the grouped kernels take them: gathering from x [T, H] (gather) or reading an
  // already dispatched buffer [A, H].
  RowGroups groups(bool gather) const { return {n_experts, offsets.data(), gather ? row_token.data() : nullptr}; }
  // Rows per destination when the experts are split into n_ranks contiguous blocks (expert e on
  // rank e / ceil(E / n_ranks)): [n_ranks + 1] row offsets. Rows are sorted by expert, so each
  // rank's rows are one contiguous range of the dispatched buffer (an all-to-all's send counts).
  std::vector<int64_t> destination_offsets(int64_t n_ranks) const;
};

// Fills the plan of a routing (reusing the plan's capacity: a decode step allocates nothing).
void make_dispatch_plan(const Routing& routing, DispatchPlan& plan);
// Every token once, to expert 0, slot t = token t (dense FFNs, shared experts).
void make_dense_plan(int64_t n_tokens, DispatchPlan& plan);

// xrows [A, H]: row i = x[row_token[i]].
template <class T>
void dispatch_rows(const DispatchPlan& plan, const T* x, int64_t H, T* xrows);
// y [T, H] = Σ over token t's rows of weights[row_slot] · out_rows[row]; y overwritten (a token
// without rows gets 0). weights: [S] combine weight per slot.
template <class T>
void combine_rows(const DispatchPlan& plan, const T* weights, const T* out_rows, int64_t H, T* y);
// Backward of combine_rows: dout_rows [A, H] = w · dy[token] (overwritten), dweights[slot] =
// <out_row, dy[token]> for every kept slot (dropped slots are left alone).
template <class T>
void combine_rows_backward(const DispatchPlan& plan, const T* weights, const T* out_rows, const T* dy, int64_t H,
                           T* dout_rows, T* dweights);
// Backward of dispatch_rows: dx[t] += Σ over token t's rows of dx_rows[row], in row order.
template <class T>
void dispatch_rows_backward(const DispatchPlan& plan, const T* dx_rows, int64_t H, T* dx);

}  // namespace moe
