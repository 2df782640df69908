// GEMM microkernel candidates for the grouped MoE kernels (issue 4, item 5).
// Times, interleaved (ABAB…, start rotated per round) and repeated, min and median:
//   1. single-core tile throughput (L1: one K=128 tile; L2: one K=1024 tile; L2 GEMM 168×192×1024
//      over packed panels) of our 12×32 f32/bf16 tiles vs quick variants written here;
//   2. the per-expert GEMMs the MoE layer runs (gate+up: M×2f×d, down: M×d×f; decode M = 1, 4)
//      with our tiles driven as fast_experts.cpp does, oneDNN (dnnl_sgemm, matmul with prepacked
//      f32/bf16 weights), OpenBLAS cblas_sgemm and libxsmm JIT kernels on our packed panels.
// Percentages are of the FMA peak (f32) or the vdpbf16ps peak (bf16), measured between the rounds.
// Usage: gemm_candidates [micro|gemm|all] [rounds=7]
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <cblas.h>
#include <libxsmm.h>

#include "dnnl.hpp"
#include "moe/bench.h"
#include "../src/kernels/cpu/microkernel.h"

extern "C" char* openblas_get_corename();
extern "C" void openblas_set_num_threads(int);

namespace {

using bf16 = uint16_t;
double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
template <class T> using Buf = std::unique_ptr<T[], decltype(&std::free)>;
template <class T> Buf<T> alloc(int64_t n) {
  auto* p = static_cast<T*>(std::aligned_alloc(64, (static_cast<size_t>(n) * sizeof(T) + 63) / 64 * 64));
  std::memset(p, 0, static_cast<size_t>(n) * sizeof(T));
  return Buf<T>(p, &std::free);
}
bf16 to_bf16(float f) { uint32_t u; std::memcpy(&u, &f, 4); return static_cast<bf16>((u + 0x7fff + ((u >> 16) & 1)) >> 16); }

// ---- tile kernels: C[MR × 16·NV] = A[K][MR] · B[K][16·NV] (f32) / vdpbf16ps over k-pairs (bf16) ----
template <int MR, int NV>
void kf32(int64_t K, const float* __restrict A, const float* __restrict B, float* __restrict C) {
  constexpr int NR = 16 * NV;
  __m512 c[MR][NV];
  for (int i = 0; i < MR; ++i) for (int v = 0; v < NV; ++v) c[i][v] = _mm512_setzero_ps();
  for (int64_t k = 0; k < K; ++k) {
    _mm_prefetch(reinterpret_cast<const char*>(B + NR * 8), _MM_HINT_T0);
    __m512 b[NV];
    for (int v = 0; v < NV; ++v) b[v] = _mm512_load_ps(B + 16 * v);
    for (int i = 0; i < MR; ++i) {
      const __m512 a = _mm512_set1_ps(A[i]);
      for (int v = 0; v < NV; ++v) c[i][v] = _mm512_fmadd_ps(a, b[v], c[i][v]);
    }
    A += MR;
    B += NR;
  }
  for (int i = 0; i < MR; ++i) for (int v = 0; v < NV; ++v) _mm512_store_ps(C + i * NR + 16 * v, c[i][v]);
}
template <int MR, int NV>
void kbf16(int64_t Kp, const bf16* __restrict A, const bf16* __restrict B, float* __restrict C) {
  constexpr int NR = 16 * NV;
  __m512 c[MR][NV];
  for (int i = 0; i < MR; ++i) for (int v = 0; v < NV; ++v) c[i][v] = _mm512_setzero_ps();
  for (int64_t kp = 0; kp < Kp; ++kp) {
    __m512bh b[NV];
    for (int v = 0; v < NV; ++v) b[v] = (__m512bh)_mm512_load_si512(B + 32 * v);
    for (int i = 0; i < MR; ++i) {
      int32_t pair;
      std::memcpy(&pair, A + 2 * i, 4);
      const __m512bh a = (__m512bh)_mm512_set1_epi32(pair);
      for (int v = 0; v < NV; ++v) c[i][v] = _mm512_dpbf16_ps(c[i][v], a, b[v]);
    }
    A += 2 * MR;
    B += 2 * NR;
  }
  for (int i = 0; i < MR; ++i) for (int v = 0; v < NV; ++v) _mm512_store_ps(C + i * NR + 16 * v, c[i][v]);
}
// The library's kernels (linked from libmoe.a), as fixed-MR functions.
template <int MR> void lib_f32(int64_t K, const float* A, const float* B, float* C) { moe::cpu::tile_f32_avx512(K, A, B, C, MR); }
template <int MR> void lib_bf16(int64_t Kp, const bf16* A, const bf16* B, float* C) { moe::cpu::tile_bf16_avx512(Kp, A, B, C, MR); }

template <class T> using TileFn = void (*)(int64_t, const T*, const T*, float*);
// A tile family: fn[mr] for mr = 1..MR (row tails), NR columns.
template <class T> struct Tile { std::string name; int MR, NR; std::vector<TileFn<T>> fn; };
template <int NV, int... I> Tile<float> f32_tile(std::string name, std::integer_sequence<int, I...>) {
  return {std::move(name), static_cast<int>(sizeof...(I)), 16 * NV, {nullptr, &kf32<I + 1, NV>...}};
}
template <int NV, int... I> Tile<bf16> bf16_tile(std::string name, std::integer_sequence<int, I...>) {
  return {std::move(name), static_cast<int>(sizeof...(I)), 16 * NV, {nullptr, &kbf16<I + 1, NV>...}};
}
template <int... I> Tile<float> lib_f32_tile(std::integer_sequence<int, I...>) { return {"ours 12x32 (libmoe)", 12, 32, {nullptr, &lib_f32<I + 1>...}}; }
template <int... I> Tile<bf16> lib_bf16_tile(std::integer_sequence<int, I...>) { return {"ours 12x32 (libmoe)", 12, 32, {nullptr, &lib_bf16<I + 1>...}}; }

std::vector<Tile<float>> f32_tiles() {
  return {lib_f32_tile(std::make_integer_sequence<int, 12>()), f32_tile<2>("8x32", std::make_integer_sequence<int, 8>()),
          f32_tile<3>("8x48", std::make_integer_sequence<int, 8>()), f32_tile<4>("6x64", std::make_integer_sequence<int, 6>()),
          f32_tile<2>("14x32", std::make_integer_sequence<int, 14>()), f32_tile<4>("4x64", std::make_integer_sequence<int, 4>()),
          f32_tile<2>("12x32 (copy here)", std::make_integer_sequence<int, 12>())};
}
std::vector<Tile<bf16>> bf16_tiles() {
  return {lib_bf16_tile(std::make_integer_sequence<int, 12>()), bf16_tile<2>("8x32", std::make_integer_sequence<int, 8>()),
          bf16_tile<3>("8x48", std::make_integer_sequence<int, 8>()), bf16_tile<2>("14x32", std::make_integer_sequence<int, 14>()),
          bf16_tile<4>("6x64", std::make_integer_sequence<int, 6>())};
}

// ---- packed layouts (fast_experts.cpp's, generalised to NR) ----
template <class T> int64_t kpad(int64_t K) { return sizeof(T) == 2 ? (K + 1) / 2 * 2 : K; }
template <class T> T cvt(float v) { if constexpr (sizeof(T) == 2) return to_bf16(v); else return v; }
template <class T> int64_t a_at(int64_t k, int64_t i, int64_t mr) { return sizeof(T) == 2 ? (k / 2) * 2 * mr + 2 * i + (k & 1) : k * mr + i; }
template <class T> int64_t b_at(int64_t k, int64_t j, int64_t nr) { return sizeof(T) == 2 ? (k / 2) * 2 * nr + 2 * j + (k & 1) : k * nr + j; }
// W: N × K row-major (out × in, as the weights are stored) → panels of NR output columns, k-major.
template <class T> Buf<T> pack_b(const float* W, int64_t N, int64_t K, int NR) {
  const int64_t Kp = kpad<T>(K), panels = (N + NR - 1) / NR;
  auto B = alloc<T>(panels * Kp * NR);
  for (int64_t n = 0; n < N; ++n) {
    T* P = B.get() + (n / NR) * Kp * NR;
    for (int64_t k = 0; k < K; ++k) P[b_at<T>(k, n % NR, NR)] = cvt<T>(W[n * K + k]);
  }
  return B;
}
// X rows [r0, r0+mr) → one A panel (converting to T); the driver packs per thread, as fast_experts does per task.
template <class T> void pack_a(const float* X, int64_t K, int64_t r0, int64_t mr, T* Ap) {
  for (int64_t i = 0; i < mr; ++i)
    for (int64_t k = 0; k < K; ++k) Ap[a_at<T>(k, i, mr)] = cvt<T>(X[(r0 + i) * K + k]);
}

// C[M × N] = X[M × K] · Wᵀ over packed panels: threads take chunks of B panels (≈4 per thread),
// pack all of A once, loop B panel outer, A panels inner, copy the tile out (the epilogue's stand-in).
template <class T>
void gemm_packed(const Tile<T>& t, int64_t M, int64_t N, int64_t K, const float* X, const T* Bp, float* C, int threads) {
  const int64_t Kp = kpad<T>(K), kdiv = sizeof(T) == 2 ? 2 : 1, panels = (N + t.NR - 1) / t.NR;
  const int64_t chunk = std::max<int64_t>(1, (panels + 4 * threads - 1) / (4 * threads));
#pragma omp parallel num_threads(threads)
  {
    thread_local std::vector<T> ap;
    alignas(64) float Ct[16 * 64];
    if (static_cast<int64_t>(ap.size()) < (M + t.MR) * Kp) ap.resize(static_cast<size_t>((M + t.MR) * Kp));
    for (int64_t pr = 0; pr < M; pr += t.MR) pack_a<T>(X, K, pr, std::min<int64_t>(t.MR, M - pr), ap.data() + pr * Kp);
#pragma omp for schedule(dynamic, 1)
    for (int64_t q0 = 0; q0 < panels; q0 += chunk) {
      for (int64_t q = q0; q < std::min(panels, q0 + chunk); ++q) {
        const int64_t cols = std::min<int64_t>(t.NR, N - q * t.NR);
        for (int64_t pr = 0; pr < M; pr += t.MR) {
          const int64_t mr = std::min<int64_t>(t.MR, M - pr);
          t.fn[mr](Kp / kdiv, ap.data() + pr * Kp, Bp + q * Kp * t.NR, Ct);
          for (int64_t i = 0; i < mr; ++i) std::memcpy(C + (pr + i) * N + q * t.NR, Ct + i * t.NR, cols * 4);
        }
      }
    }
  }
}

// ---- timing: interleaved rounds, per-candidate min and median of seconds per call ----
struct Cand { std::string name; std::function<void(int64_t)> run; double flops, bytes = 0; std::vector<double> t; };
double time_once(Cand& c, double min_sec, int64_t& it) {
  int64_t n = 0;
  const double t0 = now();
  double t1;
  do { c.run(it++); ++n; } while ((t1 = now()) - t0 < min_sec);
  return (t1 - t0) / n;
}
// Runs every candidate `rounds` times, interleaved; returns the best ceiling measured between rounds.
double measure(std::vector<Cand>& cs, int rounds, double min_sec, int threads, bool bf) {
  int64_t it = 0;
  double peak = 0;
  for (auto& c : cs) time_once(c, min_sec / 4, it);  // warm-up
  for (int r = 0; r < rounds; ++r) {
    for (size_t j = 0; j < cs.size(); ++j) {
      Cand& c = cs[(j + r) % cs.size()];
      c.t.push_back(time_once(c, min_sec, it));
    }
    peak = std::max(peak, bf ? moe::bench::bf16_dot_peak_gflops(threads, 0.03) : moe::bench::fma_peak_gflops(threads, 0.03));
  }
  return peak;
}
void report(const std::string& head, std::vector<Cand>& cs, double peak) {
  for (auto& c : cs) {
    std::sort(c.t.begin(), c.t.end());
    const double best = c.flops / c.t.front() / 1e9, med = c.flops / c.t[c.t.size() / 2] / 1e9;
    std::printf("| %s | %s | %.1f | %.1f | %.0f %% | %.0f %% |", head.c_str(), c.name.c_str(), best, med, 100 * best / peak,
                100 * med / peak);
    if (c.bytes > 0) std::printf(" %.1f |", c.bytes / c.t.front() / 1e9);
    std::printf(" %.0f |\n", peak);
  }
  std::fflush(stdout);
}

// ---- 1. single-core tile throughput ----
template <class T>
void micro(const std::vector<Tile<T>>& tiles, const char* dt, int rounds) {
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(-1, 1);
  const bool bf = sizeof(T) == 2;
  for (int mode = 0; mode < 3; ++mode) {
    const int64_t K = mode == 0 ? 128 : 1024, M = 168, N = 192;  // 168 = lcm(6,8,12,14), 192 = lcm(32,48,64)
    std::vector<Cand> cs;
    std::vector<std::shared_ptr<void>> keep;
    for (const auto& t : tiles) {
      const int64_t m = mode < 2 ? t.MR : M, n = mode < 2 ? t.NR : N;
      std::vector<float> X(m * K), W(n * K);
      for (auto& v : X) v = u(rng);
      for (auto& v : W) v = u(rng);
      auto B = std::shared_ptr<T>(pack_b<T>(W.data(), n, K, t.NR).release(), &std::free);
      auto A = std::shared_ptr<T>(alloc<T>(m * K).release(), &std::free);
      for (int64_t pr = 0; pr < m; pr += t.MR) pack_a<T>(X.data(), K, pr, std::min<int64_t>(t.MR, m - pr), A.get() + pr * K);
      auto C = std::shared_ptr<float>(alloc<float>(M * N).release(), &std::free);
      keep.insert(keep.end(), {B, A, C});
      const int64_t kc = K / (bf ? 2 : 1);
      std::function<void(int64_t)> run;
      if (mode < 2) {
        run = [&t, A, B, C, kc](int64_t) { for (int r = 0; r < 64; ++r) t.fn[t.MR](kc, A.get(), B.get(), C.get()); };
      } else {
        run = [&t, A, B, C, kc, K](int64_t) {
          for (int64_t q = 0; q < N / t.NR; ++q)
            for (int64_t pr = 0; pr < M; pr += t.MR) t.fn[t.MR](kc, A.get() + pr * K, B.get() + q * K * t.NR, C.get());
        };
      }
      cs.push_back({t.name, run, 2.0 * m * n * K * (mode < 2 ? 64 : 1), 0, {}});
    }
    const double peak = measure(cs, rounds, 0.04, 1, bf);
    const char* what[] = {"L1: one tile, K=128", "L2: one tile, K=1024", "L2: GEMM 168x192x1024, packed"};
    report(std::string(dt) + " | " + what[mode], cs, peak);
  }
}

// ---- 2. the MoE GEMM shapes ----
struct Shape { const char* name; int64_t M, N, K; };

void gemm_case(const Shape& s, int threads, bool bf, int rounds) {
  const int64_t M = s.M, N = s.N, K = s.K;
  const bool decode = M <= 4;
  const double wbytes = static_cast<double>(N) * K * (bf ? 2 : 4);
  // Decode streams weights: rotate over copies totalling ≥ 768 MiB (f32) so they come from DRAM, not the L3.
  const int64_t copies = decode ? std::max<int64_t>(1, static_cast<int64_t>(std::ceil(768.0 * (1 << 20) / (N * K * 4.0)))) : 1;
  std::mt19937 rng(2);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> X(M * K), W(N * K);
  for (auto& v : X) v = u(rng);
  for (auto& v : W) v = u(rng) * 0.03f;
  auto C = alloc<float>(M * N);
  float* Cp = C.get();
  const float* Xp = X.data();
  std::vector<Cand> cs;
  std::vector<std::shared_ptr<void>> keep;
  const double flops = 2.0 * M * N * K;
  auto copies_of = [&](const void* src, size_t bytes) {  // copies × bytes, contiguous
    auto p = std::shared_ptr<uint8_t>(alloc<uint8_t>(static_cast<int64_t>(bytes * copies)).release(), &std::free);
    for (int64_t c = 0; c < copies; ++c) std::memcpy(p.get() + c * bytes, src, bytes);
    keep.push_back(p);
    return p.get();
  };
  auto add = [&](std::string name, std::function<void(int64_t)> f) { cs.push_back({std::move(name), std::move(f), flops, decode ? wbytes : 0, {}}); };

  // Our tiles, driven as fast_experts does (12x32 from libmoe, and the best quick variants).
  const uint8_t* b32 = nullptr;  // our f32/bf16 12x32 panels, shared with libxsmm (same layout)
  if (!bf) {
    for (auto t : {f32_tiles()[0], f32_tiles()[1], f32_tiles()[2]}) {
      auto B = pack_b<float>(W.data(), N, K, t.NR);
      const size_t bytes = ((N + t.NR - 1) / t.NR) * K * t.NR * 4;
      const uint8_t* all = copies_of(B.get(), bytes);
      if (t.NR == 32 && !b32) b32 = all;
      add(t.name, [t, all, bytes, M, N, K, Xp, Cp, threads, copies = copies](int64_t it) {
        gemm_packed<float>(t, M, N, K, Xp, reinterpret_cast<const float*>(all + (it % copies) * bytes), Cp, threads);
      });
    }
  } else {
    for (auto t : {bf16_tiles()[0], bf16_tiles()[1]}) {
      auto B = pack_b<bf16>(W.data(), N, K, t.NR);
      const size_t bytes = ((N + t.NR - 1) / t.NR) * kpad<bf16>(K) * t.NR * 2;
      const uint8_t* all = copies_of(B.get(), bytes);
      if (t.NR == 32 && !b32) b32 = all;
      add(t.name, [t, all, bytes, M, N, K, Xp, Cp, threads, copies = copies](int64_t it) {
        gemm_packed<bf16>(t, M, N, K, Xp, reinterpret_cast<const bf16*>(all + (it % copies) * bytes), Cp, threads);
      });
    }
  }
  const size_t b32_bytes = ((N + 31) / 32) * kpad<bf16>(K) * 32 * (bf ? 2 : 4);

  // oneDNN: dnnl_sgemm (packs B each call) and the matmul primitive with weights reordered once.
  omp_set_num_threads(threads);
  static dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  static dnnl::stream strm(eng);
  using dt = dnnl::memory::data_type;
  using tag = dnnl::memory::format_tag;
  if (!bf) {
    const float* wall = reinterpret_cast<const float*>(copies_of(W.data(), W.size() * 4));
    add("oneDNN dnnl_sgemm", [=](int64_t it) {
      omp_set_num_threads(threads);
      dnnl_sgemm('N', 'T', M, N, K, 1.0f, Xp, K, wall + (it % copies) * N * K, K, 0.0f, Cp, N);
    });
  }
  {
    const dt wdt = bf ? dt::bf16 : dt::f32;
    dnnl::memory::desc src_md({M, K}, wdt, tag::ab), w_any({K, N}, wdt, tag::any), dst_md({M, N}, dt::f32, tag::ab);
    auto pd = dnnl::matmul::primitive_desc(dnnl::matmul::desc(src_md, w_any, dst_md), eng);
    auto prim = std::make_shared<dnnl::matmul>(pd);
    dnnl::memory wsrc({{K, N}, dt::f32, tag::ba}, eng, W.data());  // W is N × K row-major = (K × N) "ba"
    auto wts = std::make_shared<std::vector<dnnl::memory>>();
    for (int64_t c = 0; c < copies; ++c) {
      wts->emplace_back(pd.weights_desc(), eng);
      dnnl::reorder(wsrc, wts->back()).execute(strm, wsrc, wts->back());
    }
    strm.wait();
    auto src = std::make_shared<dnnl::memory>(src_md, eng);
    auto dst = std::make_shared<dnnl::memory>(dst_md, eng, Cp);
    add(std::string("oneDNN matmul ") + (bf ? "bf16" : "f32") + " (" + pd.impl_info_str() + ")",
        [=](int64_t it) {
          omp_set_num_threads(threads);
          if (bf) {
            bf16* sb = static_cast<bf16*>(src->get_data_handle());
            for (int64_t i = 0; i < M * K; ++i) sb[i] = to_bf16(Xp[i]);
          } else {
            std::memcpy(src->get_data_handle(), Xp, M * K * 4);
          }
          prim->execute(strm, {{DNNL_ARG_SRC, *src}, {DNNL_ARG_WEIGHTS, (*wts)[it % copies]}, {DNNL_ARG_DST, *dst}});
          strm.wait();
        });
  }
  // OpenBLAS (f32 only: Debian's 0.3.21 is built without sbgemm); NO_OPENBLAS=1 leaves it out.
  if (!bf && !std::getenv("NO_OPENBLAS")) {
    const float* wall = reinterpret_cast<const float*>(copies_of(W.data(), W.size() * 4));
    add(std::string("OpenBLAS sgemm (") + openblas_get_corename() + ")", [=](int64_t it) {
      openblas_set_num_threads(threads);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, Xp, K, wall + (it % copies) * N * K, K, 0.0f, Cp, N);
    });
  }
  // libxsmm: column-major C(32 × rows) = Apanel(32 × K) · Xᵀ(K × rows): our packed 32-column panel is
  // its A, the activations' rows its B (bf16: A in VNNI pairs = our bf16 panel), threads split panels.
  {
    const int64_t Kp = kpad<bf16>(K), nb = std::min<int64_t>(M, 64);
    const libxsmm_blasint m = 32, ldb = bf ? Kp : K, ldc = N;
    const float alpha = 1, beta = 0;
    const int flags = bf ? LIBXSMM_GEMM_FLAG_VNNI_A : 0, pf = LIBXSMM_GEMM_PREFETCH_NONE;
    void* kn[2] = {nullptr, nullptr};  // full block of nb rows, and the tail
    for (int j = 0; j < 2; ++j) {
      const libxsmm_blasint n = j == 0 ? nb : (M % nb ? M % nb : nb), kk = bf ? Kp : K;
      kn[j] = bf ? reinterpret_cast<void*>(libxsmm_bsmmdispatch(m, n, kk, &m, &ldb, &ldc, &alpha, &beta, &flags, &pf))
                 : reinterpret_cast<void*>(libxsmm_smmdispatch(m, n, kk, &m, &ldb, &ldc, &alpha, &beta, &flags, &pf));
    }
    if (!kn[0] || !kn[1]) {
      std::printf("<!-- libxsmm: no JIT kernel for m=32 n=%ld k=%ld -->\n", static_cast<long>(nb), static_cast<long>(K));
    } else {
      auto xb = std::shared_ptr<bf16>(alloc<bf16>(M * Kp).release(), &std::free);
      keep.push_back(xb);
      add(std::string("libxsmm JIT 32x") + std::to_string(nb) + (bf ? " bf16" : " f32") + " on our panels",
          [=, copies = copies](int64_t it) {
            const uint8_t* Bc = b32 + (it % copies) * b32_bytes;
            if (bf) for (int64_t i = 0; i < M; ++i) for (int64_t k = 0; k < K; ++k) xb.get()[i * Kp + k] = to_bf16(Xp[i * K + k]);
            const int64_t panels = (N + 31) / 32;
#pragma omp parallel for num_threads(threads) schedule(static)
            for (int64_t q = 0; q < panels; ++q)
              for (int64_t r0 = 0; r0 < M; r0 += nb) {
                void* f = kn[r0 + nb <= M ? 0 : 1];
                if (bf) reinterpret_cast<libxsmm_bsmmfunction>(f)(reinterpret_cast<const bf16*>(Bc) + q * Kp * 32, xb.get() + r0 * Kp, Cp + r0 * N + q * 32);
                else reinterpret_cast<libxsmm_smmfunction>(f)(reinterpret_cast<const float*>(Bc) + q * K * 32, Xp + r0 * K, Cp + r0 * N + q * 32);
              }
          });
    }
  }
  // Correctness: every candidate against a double-precision reference on rows 0 and M-1.
  for (auto& c : cs) {
    std::memset(Cp, 0, M * N * 4);
    c.run(0);
    double err = 0;
    for (int64_t i : {int64_t(0), M - 1})
      for (int64_t n = 0; n < N; ++n) {
        double ref = 0;
        for (int64_t k = 0; k < K; ++k) ref += static_cast<double>(Xp[i * K + k]) * W[n * K + k];
        err = std::max(err, std::fabs(ref - Cp[i * N + n]) / (1 + std::fabs(ref)));
      }
    if (err > (bf ? 5e-2 : 1e-3)) c.name += " **WRONG (err " + std::to_string(err) + ")**";
  }
  const double peak = measure(cs, rounds, decode ? 0.03 : 0.06, threads, bf);
  char head[160];
  std::snprintf(head, sizeof head, "%s | %ld×%ld×%ld | %d | %s", s.name, static_cast<long>(M), static_cast<long>(N), static_cast<long>(K), threads,
                bf ? "bf16 W" : "f32");
  report(head, cs, peak);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string what = argc > 1 ? argv[1] : "all";
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 7;
  libxsmm_init();
  std::printf("<!-- OpenBLAS core: %s; oneDNN %d.%d.%d; libxsmm %s; rounds %d -->\n", openblas_get_corename(), dnnl_version()->major,
              dnnl_version()->minor, dnnl_version()->patch, LIBXSMM_VERSION, rounds);
  if (what == "micro" || what == "all") {
    std::printf("\n| dtype | setting | tile | best GFLOP/s | median GFLOP/s | best %% of peak | median %% of peak | peak (same run) |\n"
                "|---|---|---|---|---|---|---|---|\n");
    micro(f32_tiles(), "f32", rounds);
    micro(bf16_tiles(), "bf16", rounds);
  }
  if (what == "gemm" || what == "all" || what == "decode") {
    const Shape pre[] = {{"a gate+up", 128, 7168, 1024}, {"a down", 128, 1024, 3584}, {"b gate+up", 64, 1536, 2048}, {"b down", 64, 2048, 768}};
    const Shape dec[] = {{"a gate+up", 1, 7168, 1024}, {"a down", 1, 1024, 3584}, {"b gate+up", 1, 1536, 2048}, {"b down", 1, 2048, 768},
                         {"a gate+up", 4, 7168, 1024}, {"a down", 4, 1024, 3584}, {"b gate+up", 4, 1536, 2048}, {"b down", 4, 2048, 768}};
    for (int dec_pass = 0; dec_pass < 2; ++dec_pass) {
      if ((dec_pass == 0 && what == "decode") || (dec_pass == 1 && what == "gemm")) continue;
      std::printf(dec_pass ? "\n| GEMM (decode, weights from DRAM) | M×N×K | threads | weights | candidate | best GFLOP/s | median GFLOP/s | "
                             "best %% of peak | median %% of peak | weights GB/s (best) | peak |\n|---|---|---|---|---|---|---|---|---|---|---|\n"
                           : "\n| GEMM (per expert) | M×N×K | threads | weights | candidate | best GFLOP/s | median GFLOP/s | best %% of peak | "
                             "median %% of peak | peak |\n|---|---|---|---|---|---|---|---|---|---|\n");
      for (int bf = 0; bf < 2; ++bf)
        for (int threads : {1, 2})
          for (const Shape& s : dec_pass ? std::vector<Shape>(dec, dec + 8) : std::vector<Shape>(pre, pre + 4)) gemm_case(s, threads, bf, rounds);
    }
  }
  return 0;
}
