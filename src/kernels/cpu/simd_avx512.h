// Small AVX-512 helpers shared by the kernels: tail masks, horizontal reductions in a fixed lane
// order, a 16 × 16 transpose. Usable from files built with -mavx512f and from functions with
// target("avx512f,fma").
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "kernels/cpu/exp_avx512.h"

namespace moe::cpu {

#define MOE_AVX512 __attribute__((target("avx512f,fma")))

MOE_AVX512 inline __mmask16 tail_mask(int64_t left) {
  return left >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << left) - 1u);
}

// Horizontal max / sum in a fixed lane order (the reduce intrinsics trip GCC 12's
// -Wmaybe-uninitialized through _mm512_undefined_ps, as do the unmasked max forms).
MOE_AVX512 inline float hmax16(__m512 v) {
  alignas(64) float x[16];
  _mm512_store_ps(x, v);
  float m = x[0];
  for (int i = 1; i < 16; ++i) m = std::max(m, x[i]);
  return m;
}

MOE_AVX512 inline float hsum16(__m512 v) {
  alignas(64) float x[16];
  _mm512_store_ps(x, v);
  float s = 0;
  for (int i = 0; i < 16; ++i) s += x[i];
  return s;
}

// r[0..15] (rows) -> r[0..15] (columns): unpack, shuffle within 128-bit lanes, then two rounds of
// 128-bit lane shuffles. (maskz forms: GCC 12 warns on the unmasked ones' undefined passthrough.)
MOE_AVX512 inline void transpose16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_maskz_unpacklo_ps(0xFFFF, r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_maskz_unpackhi_ps(0xFFFF, r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {  // lane L of r[4i + c] = rows 4i..4i+3 of column 4L + c
    r[4 * i + 0] = _mm512_shuffle_ps(t[4 * i + 0], t[4 * i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i + 0], t[4 * i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int c = 0; c < 4; ++c) {
    t[c] = _mm512_maskz_shuffle_f32x4(0xFFFF, r[c], r[4 + c], 0x88);
    t[4 + c] = _mm512_maskz_shuffle_f32x4(0xFFFF, r[c], r[4 + c], 0xdd);
    t[8 + c] = _mm512_maskz_shuffle_f32x4(0xFFFF, r[8 + c], r[12 + c], 0x88);
    t[12 + c] = _mm512_maskz_shuffle_f32x4(0xFFFF, r[8 + c], r[12 + c], 0xdd);
  }
  for (int c = 0; c < 8; ++c) {
    r[c] = _mm512_maskz_shuffle_f32x4(0xFFFF, t[c], t[8 + c], 0x88);
    r[8 + c] = _mm512_maskz_shuffle_f32x4(0xFFFF, t[c], t[8 + c], 0xdd);
  }
}

}  // namespace moe::cpu
