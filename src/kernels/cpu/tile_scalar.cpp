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

void tile_bf16_scalar(int64_t Kp, const uint16_t* A, const uint16_t* B, float* C, int mr) {
  auto f = [](uint16_t h) {
    uint32_t u = static_cast<uint32_t>(h) << 16;
    float v;
    __builtin_memcpy(&v, &u, 4);
    return v;
  };
  for (int i = 0; i < mr * kNR; ++i) C[i] = 0;
  for (int64_t kp = 0; kp < Kp; ++kp) {
    for (int i = 0; i < mr; ++i) {
      const float a0 = f(A[kp * 2 * mr + 2 * i]), a1 = f(A[kp * 2 * mr + 2 * i + 1]);
      for (int j = 0; j < kNR; ++j) C[i * kNR + j] += a0 * f(B[kp * 64 + 2 * j]) + a1 * f(B[kp * 64 + 2 * j + 1]);
    }
  }
}

}  // namespace moe::cpu
