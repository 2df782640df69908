// AVX2 + FMA f32 tile kernel on the same packed panels (16 ymm registers: rows go in pairs,
// 8 accumulators + 4 B vectors + 1 broadcast). Compiled with -mavx2 -mfma (this file only).
#include <immintrin.h>

#include "kernels/cpu/microkernel.h"

namespace moe::cpu {

namespace {

template <int R>
void rows(int64_t K, const float* __restrict A, int stride, const float* __restrict B, float* __restrict C) {
  __m256 c[R][4];
  for (int i = 0; i < R; ++i)
    for (int v = 0; v < 4; ++v) c[i][v] = _mm256_setzero_ps();
  for (int64_t k = 0; k < K; ++k) {
    const __m256 b0 = _mm256_load_ps(B), b1 = _mm256_load_ps(B + 8), b2 = _mm256_load_ps(B + 16), b3 = _mm256_load_ps(B + 24);
    for (int i = 0; i < R; ++i) {
      const __m256 a = _mm256_broadcast_ss(A + i);
      c[i][0] = _mm256_fmadd_ps(a, b0, c[i][0]);
      c[i][1] = _mm256_fmadd_ps(a, b1, c[i][1]);
      c[i][2] = _mm256_fmadd_ps(a, b2, c[i][2]);
      c[i][3] = _mm256_fmadd_ps(a, b3, c[i][3]);
    }
    A += stride;
    B += 32;
  }
  for (int i = 0; i < R; ++i)
    for (int v = 0; v < 4; ++v) _mm256_store_ps(C + i * 32 + 8 * v, c[i][v]);
}

}  // namespace

void tile_f32_avx2(int64_t K, const float* A, const float* B, float* C, int mr) {
  int i = 0;
  for (; i + 2 <= mr; i += 2) rows<2>(K, A + i, mr, B, C + i * 32);
  if (i < mr) rows<1>(K, A + i, mr, B, C + i * 32);
}

}  // namespace moe::cpu
