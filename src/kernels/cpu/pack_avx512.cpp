// The transposing panel copy (kernels/cpu/packed_ffn.h) with 16 × 16 in-register transposes:
// 16 source rows are read as vectors and written as 16 panel rows, so both sides stream. Panels
// are written once and read much later: the stores are non-temporal (each one fills a whole
// 64-byte line of a 64-byte-aligned panel, so no line is read for ownership first).
// bf16 rounding is the integer round-to-nearest-even of f32_to_bf16 (vcvtne2ps2bf16 would flush
// denormals). Compiled with -mavx512f; dispatch in pack_columns below.
#include <immintrin.h>

#include <algorithm>

#include "kernels/cpu/microkernel.h"
#include "kernels/cpu/packed_ffn.h"
#include "kernels/cpu/simd_avx512.h"

namespace moe::cpu {

namespace {

// f32 -> bf16 bits in the low half of each 32-bit lane (nearest even; NaN stays a quiet NaN).
inline __m512i to_bf16(__m512 v) {
  const __m512i u = _mm512_castps_si512(v);
  const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)),
                                                _mm512_set1_epi32(0x7f800000));
  const __m512i lsb = _mm512_and_si512(_mm512_maskz_srli_epi32(0xFFFF, u, 16), _mm512_set1_epi32(1));
  const __m512i rounded = _mm512_maskz_srli_epi32(0xFFFF, _mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
  const __m512i quiet = _mm512_or_si512(_mm512_maskz_srli_epi32(0xFFFF, u, 16), _mm512_set1_epi32(0x40));
  return _mm512_mask_blend_epi32(nan, rounded, quiet);
}

// 16 panel columns starting at `col` from n_cols (<= 16) source rows.
void pack16(const float* src, int64_t ld, int64_t n_cols, int64_t K, int64_t Kpad, DType dtype, int64_t col, void* dst) {
  __m512 r[16];
  for (int64_t kb = 0; kb < Kpad; kb += 16) {
    const int64_t left = std::max<int64_t>(0, std::min<int64_t>(16, K - kb));
    const __mmask16 m = static_cast<__mmask16>((1u << left) - 1u);
    for (int64_t j = 0; j < 16; ++j) r[j] = j < n_cols ? _mm512_maskz_loadu_ps(m, src + j * ld + kb) : _mm512_setzero_ps();
    transpose16(r);
    const int64_t rows = std::min<int64_t>(16, Kpad - kb);
    if (dtype == DType::bf16) {
      auto* d = static_cast<uint16_t*>(dst) + (kb / 2) * 2 * kNR + 2 * col;
      for (int64_t p = 0; 2 * p < rows; ++p) {
        const __m512i pair = _mm512_or_si512(to_bf16(r[2 * p]), _mm512_maskz_slli_epi32(0xFFFF, to_bf16(r[2 * p + 1]), 16));
        _mm512_stream_si512(reinterpret_cast<__m512i*>(d + p * 2 * kNR), pair);
      }
    } else {
      float* d = static_cast<float*>(dst) + kb * kNR + col;
      for (int64_t k = 0; k < rows; ++k) _mm512_stream_ps(d + k * kNR, r[k]);
    }
  }
}

}  // namespace

void pack_columns_avx512(const float* src, int64_t ld, int64_t n_cols, int64_t width, int64_t K, int64_t Kpad,
                         DType dtype, int64_t col0, void* dst) {
  for (int64_t c = 0; c < width; c += 16) {
    pack16(src + c * ld, ld, std::clamp<int64_t>(n_cols - c, 0, 16), K, Kpad, dtype, col0 + c, dst);
  }
  _mm_sfence();  // the streaming stores are visible before anyone reads the panel
}

}  // namespace moe::cpu
