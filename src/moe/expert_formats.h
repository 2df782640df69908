// The expert storage formats as data (not public API): one row per ExpertFormat, in the spirit
// of ggml-cpu's type_traits_cpu and gemma.cpp's weight types. Callers never branch on a format:
// the entry points of moe/expert_store.h look its row up and call through it.
#pragma once

#include <cstdint>

#include "moe/expert_store.h"
#include "moe/tensor.h"

namespace moe::detail {

// Per-row tensors the training formats keep (type-erased; the activation dtype of the format).
struct RowActs {
  void* pre_gate = nullptr;  // [A, I] gated activations only
  void* pre_up = nullptr;    // [A, I]
  void* hidden = nullptr;    // [A, I]
};

struct ExpertFormatTraits {
  const char* name;
  DType weights;      // element type as stored
  DType activations;  // x, y, combine weights and gradients
  bool trains;        // has a backward (and keeps RowActs)
  bool packed;        // weights repacked once, owned by the store
  // out [A, H] = the group's FFN of each row's input (gathered from x through rows.src, or read
  // from a dispatched buffer), unweighted; fills acts when the format trains.
  void (*rows_forward)(const ExpertStore&, const RowGroups& rows, const void* x, void* out, const RowActs& acts,
                       int threads, Workspace& ws);
  // dout [A, H] -> dx_rows [A, H] (may alias dout), weight gradients (FfnGrads<T>*) +=. Null: no backward.
  void (*rows_backward)(const ExpertStore&, const RowGroups& rows, const void* x, const RowActs& acts, const void* dout,
                        void* dx_rows, const void* grads, int threads, Workspace& ws);
  // Fused gather → compute → weighted scatter into y [n_out, H] (overwritten). Null: rows_forward
  // then combine_rows.
  void (*fused_forward)(const ExpertStore&, const RowGroups& rows, const int32_t* dst, const float* scale,
                        int64_t n_out, const void* x, void* y, int threads, Workspace& ws);
};

const ExpertFormatTraits& format_traits(ExpertFormat format);

}  // namespace moe::detail
