#include "kernels/cpu/gemm.h"

#include <omp.h>

#include <algorithm>
#include <vector>

#include "kernels/cpu/microkernel.h"

namespace moe::cpu {

namespace {

constexpr int64_t kKC = 384;  // K block: a 32-column B panel of 48 KiB stays in L1/L2
constexpr int64_t kNC = 256;  // N block: 8 panels, 384 KiB of packed B in L2
constexpr int64_t kMC = 96;   // M block: 8 micro-panels of A

// B panel [kc][32] from B(k0.., j0..j0+cols), zero-padded past `cols`.
__attribute__((target_clones("avx512f", "default"))) void pack_b_panel(const MatView& B, int64_t k0, int64_t kc, int64_t j0, int64_t cols, float* bp) {
  if (B.cs == 1) {
    for (int64_t k = 0; k < kc; ++k) {
      const float* src = B.p + (k0 + k) * B.rs + j0;
      std::copy(src, src + cols, bp + k * kNR);
      std::fill(bp + k * kNR + cols, bp + (k + 1) * kNR, 0.0f);
    }
    return;
  }
  // Strided columns (e.g. a transposed weight, B(k, j) = W[j][k]): k outer, so the 32 source rows
  // stay in L1 while the panel is written in order (j outer would write 48 KiB with stride 128 B).
  for (int64_t k = 0; k < kc; ++k) {
    const float* src = B.p + (k0 + k) * B.rs + j0 * B.cs;
    for (int64_t j = 0; j < cols; ++j) bp[k * kNR + j] = src[j * B.cs];
    for (int64_t j = cols; j < kNR; ++j) bp[k * kNR + j] = 0.0f;
  }
}

// A micro-panel [kc][mr] from rows i0..i0+mr (gathered through `rows` when given).
__attribute__((target_clones("avx512f", "default"))) void pack_a_panel(const MatView& A, const int32_t* rows, int64_t i0, int64_t mr, int64_t k0, int64_t kc, float* ap) {
  if (A.rs == 1 && !rows) {  // column-major A (a transposed operand): mr consecutive floats per k
    for (int64_t k = 0; k < kc; ++k) {
      const float* src = A.p + i0 + (k0 + k) * A.cs;
      for (int64_t i = 0; i < mr; ++i) ap[k * mr + i] = src[i];
    }
    return;
  }
  for (int64_t i = 0; i < mr; ++i) {
    const int64_t row = rows ? rows[i0 + i] : i0 + i;
    const float* src = A.p + row * A.rs + k0 * A.cs;
    if (A.cs == 1) {
      for (int64_t k = 0; k < kc; ++k) ap[k * mr + i] = src[k];
    } else {
      for (int64_t k = 0; k < kc; ++k) ap[k * mr + i] = src[k * A.cs];
    }
  }
}

// C[mr × cols] (+)= the tile T (row stride 32).
__attribute__((target_clones("avx512f", "default"))) void store_tile(const float* T, int64_t mr, int64_t cols, float* C,
                                                                    int64_t ldc, bool add) {
  for (int64_t i = 0; i < mr; ++i) {
    float* c = C + i * ldc;
    const float* t = T + i * kNR;
    if (add) {
      for (int64_t j = 0; j < cols; ++j) c[j] += t[j];
    } else {
      for (int64_t j = 0; j < cols; ++j) c[j] = t[j];
    }
  }
}

}  // namespace

void gemm_f32(int64_t M, int64_t N, int64_t K, MatView A, MatView B, float* C, int64_t ldc, bool accumulate,
              int threads, const int32_t* rows) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    if (!accumulate) {
      for (int64_t i = 0; i < M; ++i) std::fill(C + i * ldc, C + i * ldc + N, 0.0f);
    }
    return;
  }
  const TileF32 tile = tile_f32();
  const int64_t n_blocks = (N + kNC - 1) / kNC;
  const int nt = static_cast<int>(std::min<int64_t>(std::max(threads, 1), n_blocks));
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt) if (nt > 1)
  for (int64_t nb = 0; nb < n_blocks; ++nb) {
    thread_local std::vector<float> bpack, apack;
    alignas(64) float T[kMaxMR * kNR];
    const int64_t n0 = nb * kNC, nc = std::min(kNC, N - n0), panels = (nc + kNR - 1) / kNR;
    // The tile kernels load B with aligned 512-bit loads: keep the packed panels 64-byte aligned.
    if (static_cast<int64_t>(bpack.size()) < kKC * kNC + 16) bpack.resize(static_cast<size_t>(kKC * kNC + 16));
    float* const bbase = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(bpack.data()) + 63) & ~uintptr_t(63));
    if (static_cast<int64_t>(apack.size()) < kKC * kMC) apack.resize(static_cast<size_t>(kKC * kMC));
    for (int64_t k0 = 0; k0 < K; k0 += kKC) {
      const int64_t kc = std::min(kKC, K - k0);
      const bool add = accumulate || k0 > 0;
      for (int64_t q = 0; q < panels; ++q) {  // pack B: panel q is [kc][32], zero-padded columns
        const int64_t cols = std::min<int64_t>(kNR, nc - q * kNR);
        pack_b_panel(B, k0, kc, n0 + q * kNR, cols, bbase + q * kc * kNR);
      }
      for (int64_t m0 = 0; m0 < M; m0 += kMC) {
        const int64_t mc = std::min(kMC, M - m0);
        for (int64_t p0 = 0; p0 < mc; p0 += kMaxMR) {  // pack A micro-panels [kc][mr]
          const int64_t mr = std::min<int64_t>(kMaxMR, mc - p0);
          pack_a_panel(A, rows, m0 + p0, mr, k0, kc, apack.data() + p0 * kc);
        }
        for (int64_t q = 0; q < panels; ++q) {
          const int64_t cols = std::min<int64_t>(kNR, nc - q * kNR);
          for (int64_t p0 = 0; p0 < mc; p0 += kMaxMR) {
            const int64_t mr = std::min<int64_t>(kMaxMR, mc - p0);
            tile(kc, apack.data() + p0 * kc, bbase + q * kc * kNR, T, static_cast<int>(mr));
            store_tile(T, mr, cols, C + (m0 + p0) * ldc + n0 + q * kNR, ldc, add);
          }
        }
      }
    }
  }
}

}  // namespace moe::cpu
