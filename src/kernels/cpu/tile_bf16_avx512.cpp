// AVX512-BF16 tile kernel: vdpbf16ps multiplies bf16 pairs and accumulates in f32, twice the
// f32 FMA rate. Compiled with -mavx512f -mavx512bf16 (this file only).
#include <immintrin.h>

#include <cstring>

#include "kernels/cpu/microkernel.h"

namespace moe::cpu {

namespace {

template <int MR>
void tile(int64_t Kp, const uint16_t* __restrict A, const uint16_t* __restrict B, float* __restrict C) {
  __m512 c0[MR], c1[MR];
  for (int i = 0; i < MR; ++i) c0[i] = c1[i] = _mm512_setzero_ps();
  for (int64_t kp = 0; kp < Kp; ++kp) {
    // As the f32 tile: 8 rows ahead into L1, 128 rows (16 KiB) ahead into L2.
    _mm_prefetch(reinterpret_cast<const char*>(B + 64 * 8), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(B + 64 * 8 + 32), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(B + 64 * 128), _MM_HINT_T1);
    _mm_prefetch(reinterpret_cast<const char*>(B + 64 * 128 + 32), _MM_HINT_T1);
    const __m512bh b0 = (__m512bh)_mm512_load_si512(B);
    const __m512bh b1 = (__m512bh)_mm512_load_si512(B + 32);
    for (int i = 0; i < MR; ++i) {
      int32_t pair;
      std::memcpy(&pair, A + 2 * i, 4);
      const __m512bh a = (__m512bh)_mm512_set1_epi32(pair);
      c0[i] = _mm512_dpbf16_ps(c0[i], a, b0);
      c1[i] = _mm512_dpbf16_ps(c1[i], a, b1);
    }
    A += 2 * MR;
    B += 64;
  }
  for (int i = 0; i < MR; ++i) {
    _mm512_store_ps(C + i * 32, c0[i]);
    _mm512_store_ps(C + i * 32 + 16, c1[i]);
  }
}

}  // namespace

void tile_bf16_avx512(int64_t Kp, const uint16_t* A, const uint16_t* B, float* C, int mr) {
  switch (mr) {
    case 1: return tile<1>(Kp, A, B, C);
    case 2: return tile<2>(Kp, A, B, C);
    case 3: return tile<3>(Kp, A, B, C);
    case 4: return tile<4>(Kp, A, B, C);
    case 5: return tile<5>(Kp, A, B, C);
    case 6: return tile<6>(Kp, A, B, C);
    case 7: return tile<7>(Kp, A, B, C);
    case 8: return tile<8>(Kp, A, B, C);
    case 9: return tile<9>(Kp, A, B, C);
    case 10: return tile<10>(Kp, A, B, C);
    case 11: return tile<11>(Kp, A, B, C);
    default: return tile<12>(Kp, A, B, C);
  }
}

}  // namespace moe::cpu
