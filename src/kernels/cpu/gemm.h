// General f32 GEMM on the tile kernels: C[M, N] (+)= A[M, K] · B[K, N] for strided operands
// (element (i, k) of A at A.p[i·A.rs + k·A.cs]), so transposed weights and gathered rows need
// no copies beyond the kernel's own packing. Blocked for L2 (KC × NC panels of B, MC rows of A).
// Packing buffers come from the caller's scratch (gemm_f32_scratch_bytes).
#pragma once

#include <cstddef>
#include <cstdint>

#include "moe/workspace.h"

namespace moe::cpu {

struct MatView {
  const float* p = nullptr;
  int64_t rs = 0;  // stride between rows (i for A, k for B)
  int64_t cs = 0;  // stride between columns (k for A, j for B)
};

// Rows of A may be gathered: row i is read at A.p + rows[i]·A.rs when `rows` is non-null.
// C has row stride ldc; accumulate adds into C, else C is overwritten. threads > 1 splits the
// 256-column blocks of N over threads or, for narrow products (fewer blocks than threads), the
// rows of C. Either way each element of C is summed by one thread in the same k order, so the
// result does not depend on the thread count.
void gemm_f32(int64_t M, int64_t N, int64_t K, MatView A, MatView B, float* C, int64_t ldc, bool accumulate,
              int threads, const int32_t* rows, Scratch scratch);
size_t gemm_f32_scratch_bytes(int64_t M, int64_t N, int64_t K, int threads);

}  // namespace moe::cpu
