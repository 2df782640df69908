// Portable tile kernel on the same packed formats (the fallback when no SIMD path applies).
#include "kernels/cpu/microkernel.h"

namespace moe::cpu {

void tile_f32_scalar(int64_t K, const float* A, const float* B, float* C, int mr) {
  for (int i = 0; i < mr * kNR; ++i) C[i] = 0;
  for (int64_t k = 0; k < K; ++k) {
    for (int i = 0; i < mr; ++i) {
      const float a = A[k * mr + i];
      for (int j = 0; j < kNR; ++j) C[i * kNR + j] += a * B[k * kNR + j];
    }
  }
}

}  // namespace moe::cpu
