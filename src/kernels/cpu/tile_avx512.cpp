// AVX-512 f32 tile kernel: MR rows × 32 columns, MR·2 zmm accumulators, one broadcast per row.
// Compiled with -mavx512f -mfma (CMake sets the flags for this file only).
#include <immintrin.h>

#include "kernels/cpu/microkernel.h"

namespace moe::cpu {

namespace {

template <int MR>
void tile(int64_t K, const float* __restrict A, const float* __restrict B, float* __restrict C) {
  __m512 c0[MR], c1[MR];
  for (int i = 0; i < MR; ++i) c0[i] = c1[i] = _mm512_setzero_ps();
  for (int64_t k = 0; k < K; ++k) {
    _mm_prefetch(reinterpret_cast<const char*>(B + 32 * 8), _MM_HINT_T0);
    const __m512 b0 = _mm512_load_ps(B);
    const __m512 b1 = _mm512_load_ps(B + 16);
    for (int i = 0; i < MR; ++i) {
      const __m512 a = _mm512_set1_ps(A[i]);
      c0[i] = _mm512_fmadd_ps(a, b0, c0[i]);
      c1[i] = _mm512_fmadd_ps(a, b1, c1[i]);
    }
    A += MR;
    B += 32;
  }
  for (int i = 0; i < MR; ++i) {
    _mm512_store_ps(C + i * 32, c0[i]);
    _mm512_store_ps(C + i * 32 + 16, c1[i]);
  }
}

}  // namespace

void tile_f32_avx512(int64_t K, const float* A, const float* B, float* C, int mr) {
  switch (mr) {
    case 1: return tile<1>(K, A, B, C);
    case 2: return tile<2>(K, A, B, C);
    case 3: return tile<3>(K, A, B, C);
    case 4: return tile<4>(K, A, B, C);
    case 5: return tile<5>(K, A, B, C);
    case 6: return tile<6>(K, A, B, C);
    case 7: return tile<7>(K, A, B, C);
    case 8: return tile<8>(K, A, B, C);
    case 9: return tile<9>(K, A, B, C);
    case 10: return tile<10>(K, A, B, C);
    case 11: return tile<11>(K, A, B, C);
    default: return tile<12>(K, A, B, C);
  }
}

}  // namespace moe::cpu
