#include "kernels/cpu/gemm.h"

#include <omp.h>

#include <algorithm>

#include "kernels/cpu/microkernel.h"

namespace moe::cpu {

namespace {

constexpr int64_t kKC = 384;  // K block: a 32-column B panel of 48 KiB stays in L1/L2
constexpr int64_t kNC = 256;  // N block: 8 panels, 384 KiB of packed B in L2
constexpr int64_t kMC = 96;   // M block: 8 micro-panels of A
// Products with less work than this (multiply-adds) stay on one thread: a parallel region costs more.
constexpr int64_t kParallelWork = 1 << 15;

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

// Packing buffers of one thread: B panels [kc][nc] and A micro-panels [kc][mc], in floats.
int64_t thread_floats(int64_t M, int64_t N, int64_t K) {
  const int64_t kc = std::min(kKC, K), nc = std::min(kNC, (N + kNR - 1) / kNR * kNR);
  const int64_t mc = std::min(kMC, (M + kMaxMR - 1) / kMaxMR * kMaxMR);
  return (kc * nc + 15) / 16 * 16 + kc * mc;
}

// How a call splits: over column blocks (nt threads) or over row chunks (the N split would leave
// threads idle). Row chunks are whole 12-row micro-panels.
struct Split {
  int threads = 1;
  bool by_rows = false;
  int64_t rows_per_thread = 0;
};
Split plan_split(int64_t M, int64_t N, int64_t K, int threads) {
  const int64_t n_blocks = (N + kNC - 1) / kNC;
  Split s;
  if (threads <= 1 || M * N * K < kParallelWork) return s;
  if (n_blocks >= threads || M < 4 * kMaxMR * threads) {
    s.threads = static_cast<int>(std::min<int64_t>(threads, n_blocks));
    return s;
  }
  s.by_rows = true;
  s.rows_per_thread = ((M + threads - 1) / threads + kMaxMR - 1) / kMaxMR * kMaxMR;
  s.threads = static_cast<int>((M + s.rows_per_thread - 1) / s.rows_per_thread);
  return s;
}

// One thread's share: column blocks [nb0, nb1) of rows [0, M).
void gemm_blocks(int64_t M, int64_t N, int64_t K, const MatView& A, const MatView& B, float* C, int64_t ldc,
                 bool accumulate, const int32_t* rows, int64_t nb, float* bpack, float* apack) {
  const TileF32 tile = tile_f32();
  alignas(64) float T[kMaxMR * kNR];
  const int64_t n0 = nb * kNC, nc = std::min(kNC, N - n0), panels = (nc + kNR - 1) / kNR;
  for (int64_t k0 = 0; k0 < K; k0 += kKC) {
    const int64_t kc = std::min(kKC, K - k0);
    const bool add = accumulate || k0 > 0;
    for (int64_t q = 0; q < panels; ++q) {  // pack B: panel q is [kc][32], zero-padded columns
      const int64_t cols = std::min<int64_t>(kNR, nc - q * kNR);
      pack_b_panel(B, k0, kc, n0 + q * kNR, cols, bpack + q * kc * kNR);
    }
    for (int64_t m0 = 0; m0 < M; m0 += kMC) {
      const int64_t mc = std::min(kMC, M - m0);
      for (int64_t p0 = 0; p0 < mc; p0 += kMaxMR) {  // pack A micro-panels [kc][mr]
        const int64_t mr = std::min<int64_t>(kMaxMR, mc - p0);
        pack_a_panel(A, rows, m0 + p0, mr, k0, kc, apack + p0 * kc);
      }
      for (int64_t q = 0; q < panels; ++q) {
        const int64_t cols = std::min<int64_t>(kNR, nc - q * kNR);
        for (int64_t p0 = 0; p0 < mc; p0 += kMaxMR) {
          const int64_t mr = std::min<int64_t>(kMaxMR, mc - p0);
          tile(kc, apack + p0 * kc, bpack + q * kc * kNR, T, static_cast<int>(mr));
          store_tile(T, mr, cols, C + (m0 + p0) * ldc + n0 + q * kNR, ldc, add);
        }
      }
    }
  }
}

}  // namespace

size_t gemm_f32_scratch_bytes(int64_t M, int64_t N, int64_t K, int threads) {
  if (M <= 0 || N <= 0 || K <= 0) return 0;
  const Split s = plan_split(M, N, K, threads);
  const int64_t m = s.by_rows ? s.rows_per_thread : M;
  return static_cast<size_t>(s.threads) * align64(static_cast<size_t>(thread_floats(m, N, K)) * sizeof(float));
}

void gemm_f32(int64_t M, int64_t N, int64_t K, MatView A, MatView B, float* C, int64_t ldc, bool accumulate,
              int threads, const int32_t* rows, Scratch scratch) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    if (!accumulate) {
      for (int64_t i = 0; i < M; ++i) std::fill(C + i * ldc, C + i * ldc + N, 0.0f);
    }
    return;
  }
  const Split s = plan_split(M, N, K, threads);
  const int64_t m_each = s.by_rows ? s.rows_per_thread : M;
  const size_t each = align64(static_cast<size_t>(thread_floats(m_each, N, K)) * sizeof(float));
  const int64_t kc = std::min(kKC, K), nc = std::min(kNC, (N + kNR - 1) / kNR * kNR);
  const int64_t n_blocks = (N + kNC - 1) / kNC;
  auto buffers = [&](int t, float*& bpack, float*& apack) {
    Scratch mine = scratch.slice(static_cast<size_t>(t), each);
    bpack = mine.take<float>(static_cast<size_t>(kc * nc));  // 64-byte aligned: the tiles load B aligned
    apack = mine.take<float>(static_cast<size_t>(kc * std::min(kMC, (m_each + kMaxMR - 1) / kMaxMR * kMaxMR)));
  };
  if (s.by_rows) {
#pragma omp parallel num_threads(s.threads)
    {
      const int t = omp_get_thread_num();
      const int64_t i0 = t * s.rows_per_thread, mi = std::min(s.rows_per_thread, M - i0);
      if (mi > 0) {
        float *bpack, *apack;
        buffers(t, bpack, apack);
        const MatView Ai = rows ? A : MatView{A.p + i0 * A.rs, A.rs, A.cs};
        for (int64_t nb = 0; nb < n_blocks; ++nb) {
          gemm_blocks(mi, N, K, Ai, B, C + i0 * ldc, ldc, accumulate, rows ? rows + i0 : nullptr, nb, bpack, apack);
        }
      }
    }
    return;
  }
#pragma omp parallel num_threads(s.threads) if (s.threads > 1)
  {
    float *bpack, *apack;
    buffers(omp_get_thread_num(), bpack, apack);
#pragma omp for schedule(dynamic, 1)
    for (int64_t nb = 0; nb < n_blocks; ++nb) gemm_blocks(M, N, K, A, B, C, ldc, accumulate, rows, nb, bpack, apack);
  }
}

}  // namespace moe::cpu
