// e^x for 16 lanes: 2^(x·log2 e) split into 2^n · 2^f, f in [-0.5, 0.5], a degree-6 polynomial
// for 2^f (relative error ~1e-7), and scalef for 2^n (saturates to 0 / inf at the ends). Rounding
// x·log2 e to f32 adds ~6e-8·|x|: measured error ≤ 1.5e-7·(1 + |x|) (tests/test_kernels.cpp).
// Usable from files built with -mavx512f and from functions with target("avx512f,fma").
#pragma once

#include <immintrin.h>

namespace moe::cpu {

__attribute__((target("avx512f,fma"))) inline __m512 exp_ps(__m512 x) {
  const __m512 t = _mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f));
  const __m512 n = _mm512_maskz_roundscale_ps(0xFFFF, t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 f = _mm512_sub_ps(t, n);
  __m512 p = _mm512_set1_ps(1.535336188319500e-4f);
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.339887440266574e-3f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.618437357674640e-3f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.550332471162809e-2f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.402264791363012e-1f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.931472028550421e-1f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
  return _mm512_maskz_scalef_ps(0xFFFF, p, n);  // maskz: GCC 12 warns on the unmasked forms
}

}  // namespace moe::cpu
