// Machine ceilings, measured in the same process as the kernels they bound.
#include <immintrin.h>
#include <omp.h>

#include <chrono>
#include <cstdlib>
#include <vector>

#include "moe/bench.h"

namespace moe::bench {

namespace {

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// 24 independent accumulator chains hide the FMA latency (4 cycles × 2 ports × 3).
__attribute__((target("avx512f,fma"))) double fma_loop(int64_t iters) {
  __m512 acc[24];
#pragma GCC unroll 24
  for (int i = 0; i < 24; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i) * 1e-3f);
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (int64_t it = 0; it < iters; ++it) {
#pragma GCC unroll 24
    for (int i = 0; i < 24; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  }
  __m512 s = acc[0];
  for (int i = 1; i < 24; ++i) s = _mm512_add_ps(s, acc[i]);
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, s);
  double total = 0;
  for (float v : lanes) total += v;
  return total;
}

// The same with vdpbf16ps: 2 multiply-adds per f32 lane per instruction.
__attribute__((target("avx512f,avx512bf16"))) double dpbf16_loop(int64_t iters) {
  __m512 acc[24];
#pragma GCC unroll 24
  for (int i = 0; i < 24; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i) * 1e-3f);
  const __m512bh a = (__m512bh)_mm512_set1_epi32(0x3f803f80), b = (__m512bh)_mm512_set1_epi32(0x33d633d6);
  for (int64_t it = 0; it < iters; ++it) {
#pragma GCC unroll 24
    for (int i = 0; i < 24; ++i) acc[i] = _mm512_dpbf16_ps(acc[i], a, b);
  }
  __m512 s = acc[0];
  for (int i = 1; i < 24; ++i) s = _mm512_add_ps(s, acc[i]);
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, s);
  double total = 0;
  for (float v : lanes) total += v;
  return total;
}

}  // namespace

// Best rate over repeated parallel runs of `loop` (FLOPs per call counted per thread).
double best_gflops(int threads, double seconds, double flops_per_call, double (*loop)(int64_t), int64_t iters) {
  double best = 0;
  const double t_end = now() + seconds;
  double sink = 0;
  while (now() < t_end) {
    const double t0 = now();
#pragma omp parallel num_threads(threads) reduction(+ : sink)
    sink += loop(iters);
    best = std::max(best, flops_per_call * threads / (now() - t0) / 1e9);
  }
  volatile double keep = sink;  // the loops' results are used, so they are not optimised away
  (void)keep;
  return best;
}

double bf16_dot_peak_gflops(int threads, double seconds) {
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx512bf16")) return 0;
  const int64_t iters = 1 << 20;
  return best_gflops(threads, seconds, 4.0 * 16 * 24 * static_cast<double>(iters), dpbf16_loop, iters);
}

double fma_peak_gflops(int threads, double seconds) {
  if (!__builtin_cpu_supports("avx512f")) return 0;  // the AVX-512 loop is the ceiling of the AVX-512 kernels
  const int64_t iters = 1 << 20;
  return best_gflops(threads, seconds, 2.0 * 16 * 24 * static_cast<double>(iters), fma_loop, iters);
}

double triad_gbps(int threads, double seconds) {
  const int64_t n = int64_t(1) << 26;  // 3 × 256 MiB: beyond any last-level cache
  std::vector<float> a(static_cast<size_t>(n)), b(static_cast<size_t>(n), 1.0f), c(static_cast<size_t>(n), 2.0f);
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t i = 0; i < n; ++i) a[i] = 0, b[i] = 1, c[i] = 2;  // first touch by the same threads
  double best = 0;
  const double t_end = now() + seconds;
  do {
    const double t0 = now();
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t i = 0; i < n; ++i) a[i] = b[i] + 0.5f * c[i];
    best = std::max(best, 3.0 * 4 * static_cast<double>(n) / (now() - t0) / 1e9);
  } while (now() < t_end);
  return best;
}

}  // namespace moe::bench
