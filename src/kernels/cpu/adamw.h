// The AdamW update of one chunk of parameters, bit for bit as torch.optim.AdamW (foreach=False)
// computes it on CPU: AVX2 + FMA with a scalar twin (MOE_ISA=scalar selects it; tests run both).
#pragma once

#include <cstdint>

namespace moe::cpu {

// Scalars of one AdamW step, each rounded to float where torch casts a Python scalar to the
// tensor's dtype.
struct AdamCoefs {
  float decay;          // 1 - lr * wd
  float b1, one_m_b1;   // beta1, 1 - beta1
  float b2, one_m_b2;   // beta2, 1 - beta2
  float bc2_sqrt;       // sqrt(1 - beta2^step)
  float eps;
  float neg_step_size;  // -lr / (1 - beta1^step)
};

// p, m, v [n] updated in place from g [n].
void adamw_chunk(float* p, float* m, float* v, const float* g, int64_t n, const AdamCoefs& c);
void adamw_chunk_scalar(float* p, float* m, float* v, const float* g, int64_t n, const AdamCoefs& c);

}  // namespace moe::cpu
