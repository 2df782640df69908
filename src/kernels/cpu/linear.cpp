#include "kernels/cpu/linear.h"

#include <omp.h>

#include <algorithm>

#include "kernels/cpu/microkernel.h"

namespace moe::cpu {

namespace {

// Column panels per task: about 4 tasks per thread overall, at least 1 panel each.
int64_t panels_per_task(const PackedMatrix& w, int64_t rows, int threads) {
  const int64_t row_panels = (rows + kMaxMR - 1) / kMaxMR;
  const int64_t want = std::max<int64_t>(1, (4 * threads + row_panels - 1) / row_panels);
  return std::max<int64_t>(1, (w.panels + want - 1) / want);
}

}  // namespace

size_t linear_packed_scratch_bytes(const PackedMatrix& w, int64_t, int threads) {
  return static_cast<size_t>(std::max(threads, 1)) * align64(static_cast<size_t>(kMaxMR * w.k) * sizeof(float));
}

void linear_packed(const PackedMatrix& w, const float* x, int64_t rows, const float* bias, float* out, int threads,
                   Scratch scratch) {
  const TileF32 tile = tile_f32();
  const int64_t K = w.k, N = w.n;
  const int64_t row_panels = (rows + kMaxMR - 1) / kMaxMR, chunk = panels_per_task(w, rows, threads);
  const int64_t col_tasks = (w.panels + chunk - 1) / chunk;
  const size_t slice = align64(static_cast<size_t>(kMaxMR * K) * sizeof(float));
  const bool parallel = threads > 1 && rows * N * K > (1 << 15);
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) if (parallel)
  for (int64_t task = 0; task < row_panels * col_tasks; ++task) {
    const int64_t rp = task / col_tasks, q0 = (task % col_tasks) * chunk, q1 = std::min(w.panels, q0 + chunk);
    float* apack = scratch.slice(static_cast<size_t>(omp_get_thread_num()), slice).take<float>(static_cast<size_t>(kMaxMR * K));
    alignas(64) float C[kMaxMR * kNR];
    const int64_t r0 = rp * kMaxMR, mr = std::min<int64_t>(kMaxMR, rows - r0);
    for (int64_t i = 0; i < mr; ++i) {
      for (int64_t k = 0; k < K; ++k) apack[k * mr + i] = x[(r0 + i) * K + k];
    }
    for (int64_t q = q0; q < q1; ++q) {
      tile(K, apack, w.w.get() + q * K * kNR, C, static_cast<int>(mr));
      const int64_t c0 = q * kNR, cols = std::min<int64_t>(kNR, N - c0);
      for (int64_t i = 0; i < mr; ++i) {
        float* o = out + (r0 + i) * N + c0;
        for (int64_t j = 0; j < cols; ++j) o[j] = C[i * kNR + j] + (bias ? bias[c0 + j] : 0.0f);
      }
    }
  }
}

}  // namespace moe::cpu
