// A linear layer over a weight packed once (kernels/cpu/packed_ffn.h PackedMatrix): the router
// GEMV, the attention projections and the LM head at inference. Work is split over (row panel,
// column-panel range) tasks, so one row (decode) still uses every thread. Twin: ref::linear.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/cpu/packed_ffn.h"
#include "moe/workspace.h"

namespace moe::cpu {

// out [rows, n] = x [rows, k] · Wᵀ (+ bias [n]); out overwritten.
void linear_packed(const PackedMatrix& w, const float* x, int64_t rows, const float* bias, float* out, int threads,
                   Scratch scratch);
size_t linear_packed_scratch_bytes(const PackedMatrix& w, int64_t rows, int threads);

}  // namespace moe::cpu
