#include "kernels/cpu/adamw.h"

#include <immintrin.h>

#include <cmath>

#include "kernels/cpu/microkernel.h"

// torch runs each operation of the update as its own kernel, so nothing is fused across
// operations; GCC would otherwise contract p*decay + update into one FMA (intrinsics included).
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#else
#pragma GCC optimize("fp-contract=off")
#endif

namespace moe::cpu {

namespace {

// One element of the update. torch's AVX2 kernels fuse `a + alpha*b` (add_) and
// `self + (v*t1)*t2` (addcmul_) into FMAs and compute addcdiv_ as self + (v*t1)/t2; std::fma
// reproduces the fused rounding on every machine.
inline void adamw_element(float& p, float& m, float& v, float g, const AdamCoefs& c) {
  const float pd = p * c.decay;
  m = std::fma(g, c.one_m_b1, m * c.b1);
  v = std::fma(c.one_m_b2 * g, g, v * c.b2);
  const float denom = std::sqrt(v) / c.bc2_sqrt + c.eps;
  p = pd + (c.neg_step_size * m) / denom;
}

}  // namespace

void adamw_chunk_scalar(float* p, float* m, float* v, const float* g, int64_t n, const AdamCoefs& c) {
  for (int64_t i = 0; i < n; ++i) adamw_element(p[i], m[i], v[i], g[i], c);
}

namespace {

// The same operations 8 lanes at a time (sqrt and division are exactly rounded, as in scalar).
__attribute__((target("avx2,fma"))) void adamw_chunk_avx2(float* p, float* m, float* v, const float* g, int64_t n,
                                                         const AdamCoefs& c) {
  const __m256 decay = _mm256_set1_ps(c.decay), b1 = _mm256_set1_ps(c.b1), one_m_b1 = _mm256_set1_ps(c.one_m_b1);
  const __m256 b2 = _mm256_set1_ps(c.b2), one_m_b2 = _mm256_set1_ps(c.one_m_b2);
  const __m256 bc2_sqrt = _mm256_set1_ps(c.bc2_sqrt), eps = _mm256_set1_ps(c.eps);
  const __m256 neg_step = _mm256_set1_ps(c.neg_step_size);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 gi = _mm256_loadu_ps(g + i);
    const __m256 pd = _mm256_mul_ps(_mm256_loadu_ps(p + i), decay);
    const __m256 mi = _mm256_fmadd_ps(gi, one_m_b1, _mm256_mul_ps(_mm256_loadu_ps(m + i), b1));
    const __m256 vi = _mm256_fmadd_ps(_mm256_mul_ps(one_m_b2, gi), gi, _mm256_mul_ps(_mm256_loadu_ps(v + i), b2));
    const __m256 denom = _mm256_add_ps(_mm256_div_ps(_mm256_sqrt_ps(vi), bc2_sqrt), eps);
    _mm256_storeu_ps(m + i, mi);
    _mm256_storeu_ps(v + i, vi);
    _mm256_storeu_ps(p + i, _mm256_add_ps(pd, _mm256_div_ps(_mm256_mul_ps(neg_step, mi), denom)));
  }
  for (; i < n; ++i) adamw_element(p[i], m[i], v[i], g[i], c);
}

}  // namespace

// AVX2 + FMA unless the CPU lacks it or MOE_ISA=scalar asks for the fallback (tests run both).
void adamw_chunk(float* p, float* m, float* v, const float* g, int64_t n, const AdamCoefs& c) {
  static const bool vector = detected_isa() != Isa::scalar;
  if (vector) {
    adamw_chunk_avx2(p, m, v, g, n, c);
  } else {
    adamw_chunk_scalar(p, m, v, g, n, c);
  }
}

}  // namespace moe::cpu
