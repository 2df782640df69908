// The kernel test table, in the spirit of ggml's test-backend-ops: every fast kernel against its
// twin (kernels/ref, or the scalar version of the same file) over odd and misaligned sizes. Each
// row of kTable is one kernel; ctest runs the whole table once per ISA (MOE_ISA=avx2, scalar
// variants), and the tile rows also loop over every ISA the CPU has. Tolerances come from the
// problem size: float32 sums of K products of unit-scale values err by ~1e-7·sqrt(K) relative.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "kernels/cpu/adamw.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/exp_avx512.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/grouped_ffn.h"
#include "kernels/cpu/linear.h"
#include "kernels/cpu/microkernel.h"
#include "kernels/cpu/packed_ffn.h"
#include "kernels/cpu/rows.h"
#include "kernels/ref/grouped_ffn.h"
#include "kernels/ref/kernels.h"
#include "kernels/ref/transformer.h"
#include "moe/rng.h"
#include "moe/workspace.h"

using namespace moe;

namespace {

// Random values, and a buffer one float past a 64-byte boundary (misaligned inputs).
std::vector<float> randv(Rng& rng, int64_t n, double scale = 1.0) {
  std::vector<float> v(static_cast<size_t>(n) + 1);
  for (float& f : v) f = static_cast<float>(scale * rng.normal());
  return v;
}
float* odd(std::vector<float>& v) { return v.data() + 1; }

// max |got − want| / max(|want|, floor).
template <class A, class B>
double rel_err(const A* got, const B* want, int64_t n, double floor = 1e-3) {
  double err = 0, scale = floor;
  for (int64_t i = 0; i < n; ++i) {
    err = std::max(err, std::fabs(static_cast<double>(got[i]) - static_cast<double>(want[i])));
    scale = std::max(scale, std::fabs(static_cast<double>(want[i])));
  }
  return err / scale;
}
double f32_tol(int64_t K) { return 2e-6 * std::sqrt(static_cast<double>(K) + 1); }

int threads_now() { return omp_get_max_threads(); }

// ---- tiles --------------------------------------------------------------------------------------

void tile_f32_rows() {
  Rng rng(9);
  for (int64_t K : {1, 7, 53, 390}) {
    std::vector<float> A = randv(rng, K * cpu::kMaxMR);
    std::vector<float, std::allocator<float>> Bv(static_cast<size_t>(K * cpu::kNR + 16));
    float* B = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(Bv.data()) + 63) & ~uintptr_t(63));
    for (int64_t i = 0; i < K * cpu::kNR; ++i) B[i] = static_cast<float>(rng.normal());
    alignas(64) float want[cpu::kMaxMR * cpu::kNR], got[cpu::kMaxMR * cpu::kNR];
    for (int mr = 1; mr <= cpu::kMaxMR; ++mr) {
      cpu::tile_f32_scalar(K, A.data(), B, want, mr);
      for (cpu::Isa isa : {cpu::Isa::scalar, cpu::Isa::avx2, cpu::Isa::avx512}) {
        if (static_cast<int>(cpu::detected_isa()) < static_cast<int>(isa)) continue;
        cpu::tile_f32(isa)(K, A.data(), B, got, mr);
        EXPECT_LE(rel_err(got, want, mr * cpu::kNR), f32_tol(K)) << cpu::isa_name(isa) << " K " << K << " mr " << mr;
      }
    }
  }
}

void tile_bf16_rows() {
  Rng rng(10);
  for (int64_t Kp : {1, 27, 200}) {
    std::vector<uint16_t> A(static_cast<size_t>(Kp * 2 * cpu::kMaxMR));
    std::vector<uint16_t> Bv(static_cast<size_t>(Kp * 64 + 32));
    uint16_t* B = reinterpret_cast<uint16_t*>((reinterpret_cast<uintptr_t>(Bv.data()) + 63) & ~uintptr_t(63));
    for (auto& v : A) v = f32_to_bf16(static_cast<float>(rng.normal()));
    for (int64_t i = 0; i < Kp * 64; ++i) B[i] = f32_to_bf16(static_cast<float>(rng.normal()));
    alignas(64) float want[cpu::kMaxMR * cpu::kNR], got[cpu::kMaxMR * cpu::kNR];
    for (int mr = 1; mr <= cpu::kMaxMR; ++mr) {
      cpu::tile_bf16_scalar(Kp, A.data(), B, want, mr);
      cpu::tile_bf16()(Kp, A.data(), B, got, mr);  // the dispatched one (AVX512-BF16 when present)
      EXPECT_LE(rel_err(got, want, mr * cpu::kNR), f32_tol(2 * Kp)) << "Kp " << Kp << " mr " << mr;
    }
  }
}

// ---- packing: the transposing copy is exact ----------------------------------------------------

void pack_columns_rows() {
  Rng rng(11);
  for (DType dt : {DType::f32, DType::bf16}) {
    for (int64_t width : {16, 32}) {
      for (int64_t n_cols : {0, 1, 5, 16, 32}) {
        if (n_cols > width) continue;
        for (int64_t K : {1, 15, 16, 17, 33, 100}) {
          const int64_t Kpad = dt == DType::bf16 ? (K + 1) / 2 * 2 : K, ld = K + 3;
          std::vector<float> src = randv(rng, std::max<int64_t>(n_cols, 1) * ld);
          odd(src)[0] = 1e-40f;  // a denormal: rounded, never flushed
          // Panels are 64-byte aligned (the streaming stores need it).
          const size_t bytes = static_cast<size_t>(Kpad * cpu::kNR * 4);
          std::vector<uint8_t> got_buf(bytes + 64, 0xAB), want_buf(bytes + 64, 0xAB);
          auto aligned = [](std::vector<uint8_t>& b) {
            return reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(b.data()) + 63) & ~uintptr_t(63));
          };
          uint8_t *got = aligned(got_buf), *want = aligned(want_buf);
          for (int64_t col0 : {int64_t(0), 32 - width}) {
            cpu::pack_columns(odd(src), ld, n_cols, width, K, Kpad, dt, col0, got);
            cpu::pack_columns_scalar(odd(src), ld, n_cols, width, K, Kpad, dt, col0, want);
          }
          EXPECT_EQ(std::vector<uint8_t>(got, got + bytes), std::vector<uint8_t>(want, want + bytes))
              << dtype_name(dt) << " width " << width << " cols " << n_cols << " K " << K;
        }
      }
    }
  }
}

// ---- GEMMs --------------------------------------------------------------------------------------

void gemm_rows() {
  Rng rng(12);
  struct Shape {
    int64_t M, N, K;
  };
  for (const Shape s : {Shape{1, 1, 1}, {5, 33, 7}, {13, 300, 41}, {130, 40, 390}, {97, 260, 50}}) {
    for (bool transposed_b : {false, true}) {
      for (bool gather : {false, true}) {
        for (bool acc : {false, true}) {
          for (int threads : {1, 2, 3}) {
            std::vector<float> A = randv(rng, (s.M + 3) * s.K), B = randv(rng, s.K * s.N), C = randv(rng, s.M * s.N);
            std::vector<int32_t> rows(static_cast<size_t>(s.M));
            for (int64_t i = 0; i < s.M; ++i) rows[i] = static_cast<int32_t>((i * 7 + 2) % (s.M + 3));
            std::vector<double> want(static_cast<size_t>(s.M * s.N));
            // B(k, j) at B[k·N + j], or transposed: B[j·K + k].
            const cpu::MatView Bv = transposed_b ? cpu::MatView{odd(B), 1, s.K} : cpu::MatView{odd(B), s.N, 1};
            for (int64_t i = 0; i < s.M; ++i) {
              const int64_t r = gather ? rows[i] : i;
              for (int64_t j = 0; j < s.N; ++j) {
                double v = acc ? C[1 + i * s.N + j] : 0.0;
                for (int64_t k = 0; k < s.K; ++k) v += static_cast<double>(A[1 + r * s.K + k]) * Bv.p[k * Bv.rs + j * Bv.cs];
                want[i * s.N + j] = v;
              }
            }
            Workspace ws;
            cpu::gemm_f32(s.M, s.N, s.K, {odd(A), s.K, 1}, Bv, odd(C), s.N, acc, threads, gather ? rows.data() : nullptr,
                          ws.get(cpu::gemm_f32_scratch_bytes(s.M, s.N, s.K, threads)));
            EXPECT_LE(rel_err(odd(C), want.data(), s.M * s.N), f32_tol(s.K))
                << s.M << "x" << s.N << "x" << s.K << " T" << transposed_b << " gather " << gather << " acc " << acc
                << " threads " << threads;
          }
        }
      }
    }
  }
}

void linear_packed_rows() {
  Rng rng(13);
  for (auto [rows, K, N] : {std::tuple<int64_t, int64_t, int64_t>{1, 7, 3}, {1, 64, 130}, {13, 64, 40}, {25, 33, 97}}) {
    std::vector<float> W = randv(rng, N * K), x = randv(rng, rows * K), b = randv(rng, N), out(static_cast<size_t>(rows * N));
    std::vector<double> wd(W.begin() + 1, W.end()), xd(x.begin() + 1, x.end()), bd(b.begin() + 1, b.end()),
        want(static_cast<size_t>(rows * N));
    ref::linear(want.data(), xd.data(), wd.data(), bd.data(), rows, K, N);
    for (int threads : {1, 2, 3}) {
      const cpu::PackedMatrix p = cpu::pack_matrix(odd(W), N, K, threads);
      Workspace ws;
      cpu::linear_packed(p, odd(x), rows, odd(b), out.data(), threads, ws.get(cpu::linear_packed_scratch_bytes(p, rows, threads)));
      EXPECT_LE(rel_err(out.data(), want.data(), rows * N), f32_tol(K)) << rows << "x" << N << "x" << K;
    }
  }
}

// ---- grouped FFNs: packed inference and the training path against the reference ---------------

struct FfnCase {
  int64_t G, H, I;
  std::vector<int64_t> rows_per_group;
  FfnAct act;
  bool bias;
};

void grouped_ffn_rows() {
  const FfnCase cases[] = {
      {3, 37, 29, {5, 0, 9}, FfnAct::swiglu, false},   // an empty group
      {1, 64, 48, {1}, FfnAct::swiglu, true},          // one row (decode)
      {4, 33, 17, {13, 1, 0, 26}, FfnAct::gelu, true},
      {2, 40, 400, {3, 30}, FfnAct::gpt_oss_swiglu, true},  // I > 384: K blocking
      {3, 31, 45, {7, 7, 7}, FfnAct::relu, false},
      {2, 50, 33, {12, 25}, FfnAct::gelu_tanh, false},
      {2, 24, 40, {500, 3}, FfnAct::swiglu, true},  // K = 500 rows in the weight-gradient GEMMs
  };
  Rng rng(14);
  for (const FfnCase& c : cases) {
    SCOPED_TRACE(::testing::Message() << "G=" << c.G << " H=" << c.H << " I=" << c.I << " " << ffn_act_name(c.act));
    std::vector<int64_t> off{0};
    for (int64_t n : c.rows_per_group) off.push_back(off.back() + n);
    const int64_t A = off.back(), T = A + 3;
    std::vector<int32_t> src(static_cast<size_t>(A));
    for (int64_t i = 0; i < A; ++i) src[i] = static_cast<int32_t>((i * 5 + 1) % T);
    const double ws_ = 1 / std::sqrt(static_cast<double>(c.H));
    std::vector<float> gate = randv(rng, c.G * c.I * c.H, ws_), up = randv(rng, c.G * c.I * c.H, ws_),
                       down = randv(rng, c.G * c.H * c.I, 1 / std::sqrt(static_cast<double>(c.I))),
                       gb = randv(rng, c.G * c.I, 0.1), ub = randv(rng, c.G * c.I, 0.1), db = randv(rng, c.G * c.H, 0.1),
                       x = randv(rng, T * c.H), dout = randv(rng, A * c.H);
    FfnWeights<float> w{c.G, c.H, c.I, odd(gate), odd(up), odd(down), nullptr, nullptr, nullptr};
    if (c.bias) w.gate_bias = odd(gb), w.up_bias = odd(ub), w.down_bias = odd(db);
    const FfnSpec spec{c.act, c.I, c.bias, 1.702, 1.5};
    const RowGroups gathered{c.G, off.data(), src.data()};
    const size_t AI = static_cast<size_t>(A * c.I), AH = static_cast<size_t>(A * c.H);
    std::vector<float> pg(AI), pu(AI), hd(AI), want(AH);
    ref::grouped_ffn_forward(spec, w, gathered, odd(x), pg.data(), pu.data(), hd.data(), want.data());
    const double tol = f32_tol(c.H + c.I);

    // Scatter mode: y[dst[i]] += scale[i]·out_i (several rows per output row), y overwritten.
    std::vector<int32_t> dst(static_cast<size_t>(A));
    std::vector<float> scale = randv(rng, A);
    for (int64_t i = 0; i < A; ++i) dst[i] = static_cast<int32_t>((i * 3 + 2) % T);
    std::vector<double> want_y(static_cast<size_t>(T * c.H), 0.0);
    for (int64_t i = 0; i < A; ++i)
      for (int64_t h = 0; h < c.H; ++h) want_y[dst[i] * c.H + h] += static_cast<double>(odd(scale)[i]) * want[i * c.H + h];

    // Packed inference, f32 and bf16 (against a reference on the bf16-rounded values), store and scatter.
    for (DType dt : {DType::f32, DType::bf16}) {
      cpu::PackedFfn p = cpu::make_packed_ffn(spec, c.G, c.H, dt);
      cpu::pack_ffn(p, 0, w, 2);
      std::vector<float> got(AH), y(static_cast<size_t>(T * c.H), -5.0f);
      Workspace ws;
      const double t = dt == DType::bf16 ? 2e-2 : tol;
      for (int threads : {1, 3}) {
        cpu::grouped_ffn_forward(p, gathered, odd(x), {}, got.data(), threads,
                                 ws.get(cpu::grouped_ffn_forward_scratch_bytes(p, A, threads)));
        EXPECT_LE(rel_err(got.data(), want.data(), A * c.H), t) << dtype_name(dt);
        cpu::grouped_ffn_forward(p, gathered, odd(x), {dst.data(), odd(scale), T}, y.data(), threads,
                                 ws.get(cpu::grouped_ffn_forward_scratch_bytes(p, A, threads)));
        EXPECT_LE(rel_err(y.data(), want_y.data(), T * c.H), t) << dtype_name(dt) << " scatter";
      }
    }

    // Training forward and backward.
    std::vector<float> tg(AI), tu(AI), th(AI), tout(AH);
    Workspace ws;
    const int threads = threads_now();
    cpu::grouped_ffn_train_forward(spec, w, gathered, odd(x), {tg.data(), tu.data(), th.data(), tout.data()}, threads,
                                   ws.get(cpu::grouped_ffn_train_forward_scratch_bytes(w, gathered, threads)));
    EXPECT_LE(rel_err(tout.data(), want.data(), A * c.H), tol) << "train forward";
    std::vector<float> rdx(AH), rgrad(gate.size() + up.size() + down.size() + gb.size() + ub.size() + db.size(), 0.0f);
    std::vector<float> fdx(AH), fgrad(rgrad.size(), 0.0f);
    auto grads = [&](std::vector<float>& g) {
      float* p = g.data();
      FfnGrads<float> r;
      r.gate = p, p += gate.size();
      r.up = p, p += up.size();
      r.down = p, p += down.size();
      if (c.bias) r.gate_bias = p, r.up_bias = p + gb.size(), r.down_bias = p + gb.size() + ub.size();
      return r;
    };
    std::vector<double> scratch(static_cast<size_t>(3 * c.I));
    ref::grouped_ffn_backward(spec, w, gathered, odd(x), pg.data(), pu.data(), hd.data(), odd(dout), rdx.data(),
                              grads(rgrad), scratch.data());
    cpu::grouped_ffn_train_backward(spec, w, gathered, odd(x), {tg.data(), tu.data(), th.data(), tout.data()}, odd(dout),
                                    fdx.data(), grads(fgrad), threads,
                                    ws.get(cpu::grouped_ffn_train_backward_scratch_bytes(w, gathered, threads)));
    EXPECT_LE(rel_err(fdx.data(), rdx.data(), A * c.H), tol) << "train backward dx";
    EXPECT_LE(rel_err(fgrad.data(), rgrad.data(), static_cast<int64_t>(rgrad.size())), f32_tol(A + c.H + c.I))
        << "train backward weights";
  }
}

// ---- rows: softmax, norms, SwiGLU, exp ----------------------------------------------------------

void softmax_rows() {
  Rng rng(15);
  for (int64_t n : {1, 2, 15, 16, 17, 70}) {
    for (int64_t extra : {0, 5}) {
      std::vector<float> p = randv(rng, n + extra, 3.0), ds = randv(rng, n + extra);
      std::vector<double> z(p.begin() + 1, p.begin() + 1 + n), want(static_cast<size_t>(n));
      std::vector<double> scaled(z.size());
      for (int64_t j = 0; j < n; ++j) scaled[j] = 0.5 * z[j];
      ref::softmax(want.data(), scaled.data(), n);
      cpu::softmax_row(odd(p), n, n + extra, 0.5f);
      EXPECT_LE(rel_err(odd(p), want.data(), n), 2e-6) << "softmax n " << n;
      for (int64_t j = n; j < n + extra; ++j) EXPECT_EQ(odd(p)[j], 0.0f);
      // Backward: ds = scale·p ⊙ (dp − Σ p·dp).
      double dot = 0;
      for (int64_t j = 0; j < n; ++j) dot += static_cast<double>(odd(p)[j]) * odd(ds)[j];
      std::vector<double> dwant(static_cast<size_t>(n));
      for (int64_t j = 0; j < n; ++j) dwant[j] = 0.5 * odd(p)[j] * (odd(ds)[j] - dot);
      cpu::softmax_backward_row(odd(ds), odd(p), n, n + extra, 0.5f);
      EXPECT_LE(rel_err(odd(ds), dwant.data(), n), 1e-5) << "softmax backward n " << n;
    }
  }
}

void norm_rows() {
  Rng rng(16);
  for (int64_t d : {1, 15, 16, 33, 128, 1000}) {
    const int64_t rows = 7;
    std::vector<float> x = randv(rng, rows * d, 2.0), w = randv(rng, d), b = randv(rng, d), y(static_cast<size_t>(rows * d)),
                       mean(rows), rstd(rows);
    std::vector<double> xd(x.begin() + 1, x.end()), wd(w.begin() + 1, w.end()), bd(b.begin() + 1, b.end());
    std::vector<double> want(static_cast<size_t>(rows * d)), wm(rows), wr(rows);
    ref::rmsnorm_forward(want.data(), wr.data(), xd.data(), wd.data(), rows, d, 1e-5);
    cpu::rmsnorm_rows(y.data(), rstd.data(), odd(x), odd(w), rows, d, 1e-5, 2);
    EXPECT_LE(rel_err(y.data(), want.data(), rows * d), f32_tol(d)) << "rmsnorm d " << d;
    EXPECT_LE(rel_err(rstd.data(), wr.data(), rows), f32_tol(d)) << "rmsnorm rstd d " << d;
    ref::layernorm_forward(want.data(), wm.data(), wr.data(), xd.data(), wd.data(), bd.data(), rows, d, 1e-5);
    cpu::layernorm_rows(y.data(), mean.data(), rstd.data(), odd(x), odd(w), odd(b), rows, d, 1e-5, 2);
    EXPECT_LE(rel_err(y.data(), want.data(), rows * d), f32_tol(d)) << "layernorm d " << d;
    EXPECT_LE(rel_err(mean.data(), wm.data(), rows, 1.0), f32_tol(d)) << "layernorm mean d " << d;
  }
}

void swiglu_rows() {
  Rng rng(17);
  const cpu::Isa isa = cpu::detected_isa();
  for (int64_t n : {1, 16, 37}) {
    std::vector<float> g = randv(rng, n, 3.0), u = randv(rng, n), dh = randv(rng, n), h(n), dg(n), du(n);
    const FfnSpec spec{FfnAct::swiglu, n, false, 1.702, 7.0};
    if (cpu::SwigluRows f = cpu::swiglu_rows(isa)) f(odd(g), odd(u), h.data(), n);
    if (cpu::SwigluBackwardRows f = cpu::swiglu_backward_rows(isa)) f(odd(g), odd(u), odd(dh), dg.data(), du.data(), n);
    if (!cpu::swiglu_rows(isa)) GTEST_SKIP() << "no vector SwiGLU on " << cpu::isa_name(isa);
    for (int64_t j = 0; j < n; ++j) {
      const ActivationGrad a = ffn_activation(spec, odd(g)[j], odd(u)[j]);
      EXPECT_NEAR(h[j], a.h, 1e-6 * (1 + std::fabs(a.h)));
      EXPECT_NEAR(dg[j], odd(dh)[j] * a.dg, 1e-6 * (1 + std::fabs(odd(dh)[j] * a.dg)));
      EXPECT_NEAR(du[j], odd(dh)[j] * a.du, 1e-6 * (1 + std::fabs(odd(dh)[j] * a.du)));
    }
  }
  // The tile epilogue: 16 hidden units per row, biases.
  alignas(64) float C[cpu::kMaxMR * cpu::kNR];
  for (float& v : C) v = static_cast<float>(2 * rng.normal());
  std::vector<float> gb = randv(rng, 16, 0.3), ub = randv(rng, 16, 0.3), H(cpu::kMaxMR * 16);
  if (cpu::SwigluTile f = cpu::swiglu_tile(isa)) {
    f(C, odd(gb), odd(ub), cpu::kMaxMR, H.data());
    const FfnSpec spec{FfnAct::swiglu, 16, true, 1.702, 7.0};
    for (int i = 0; i < cpu::kMaxMR; ++i) {
      for (int j = 0; j < 16; ++j) {
        const double want = ffn_activation(spec, C[i * 32 + j] + odd(gb)[j], C[i * 32 + 16 + j] + odd(ub)[j]).h;
        EXPECT_NEAR(H[i * 16 + j], want, 1e-6 * (1 + std::fabs(want)));
      }
    }
  }
}

__attribute__((target("avx512f,fma"))) void exp_avx512_rows() {
  // e^x to 1.5e-7·(1 + |x|) relative wherever the result is a normal float (e^-86 ≈ 4e-38; below,
  // it is subnormal and loses bits): the polynomial is good to 1e-7, and rounding t = x·log2 e to
  // f32 adds ~6e-8·|x|. 0 and inf at the ends.
  alignas(64) float in[16], out[16];
  for (float x0 = -86.0f; x0 < 88.0f; x0 += 0.37f) {
    for (int i = 0; i < 16; ++i) in[i] = x0 + 0.023f * static_cast<float>(i);
    _mm512_store_ps(out, cpu::exp_ps(_mm512_load_ps(in)));
    for (int i = 0; i < 16; ++i) {
      EXPECT_NEAR(out[i] / std::exp(static_cast<double>(in[i])), 1.0, 1.5e-7 * (1 + std::fabs(in[i]))) << in[i];
    }
  }
  for (int i = 0; i < 16; ++i) in[i] = i < 8 ? -200.0f : 200.0f;
  _mm512_store_ps(out, cpu::exp_ps(_mm512_load_ps(in)));
  for (int i = 0; i < 16; ++i) EXPECT_EQ(out[i], i < 8 ? 0.0f : INFINITY);
}
void exp_rows() {
  if (cpu::detected_isa() != cpu::Isa::avx512) GTEST_SKIP() << "exp_ps is AVX-512 only";
  exp_avx512_rows();
}

// ---- attention ----------------------------------------------------------------------------------

void attention_cached_rows() {
  Rng rng(18);
  for (auto [H, Hkv, hd] : {std::tuple<int64_t, int64_t, int64_t>{4, 4, 16}, {4, 2, 8}, {3, 1, 13}, {2, 2, 64}, {2, 1, 300}}) {
    for (auto [n, p0] : {std::pair<int64_t, int64_t>{1, 0}, {1, 17}, {5, 0}, {3, 40}}) {
      const int64_t qd = H * hd, kvd = Hkv * hd, n_kv = p0 + n;
      std::vector<float> q = randv(rng, n * qd), k = randv(rng, n_kv * kvd), v = randv(rng, n_kv * kvd),
                         att(static_cast<size_t>(n * qd));
      std::vector<double> qdv(q.begin() + 1, q.end()), kdv(k.begin() + 1, k.end()), vdv(v.begin() + 1, v.end()),
          want(static_cast<size_t>(n * qd)), probs(static_cast<size_t>(n_kv));
      const double scale = 1 / std::sqrt(static_cast<double>(hd));
      for (int64_t h = 0; h < H; ++h) {
        for (int64_t i = 0; i < n; ++i) {
          const int64_t off = (h / (H / Hkv)) * hd;
          ref::attention_head_forward(want.data() + i * qd + h * hd, qd, probs.data(), qdv.data() + i * qd + h * hd, qd,
                                      kdv.data() + off, vdv.data() + off, kvd, 1, n_kv, p0 + i, hd, scale, true);
        }
      }
      for (int threads : {1, 2}) {
        Workspace ws;
        cpu::attention_cached(n, p0, H, Hkv, hd, att.data(), odd(q), odd(k), odd(v), threads,
                              ws.get(cpu::attention_cached_scratch_bytes(n_kv, threads)));
        EXPECT_LE(rel_err(att.data(), want.data(), n * qd), f32_tol(hd + n_kv))
            << "H " << H << " Hkv " << Hkv << " hd " << hd << " n " << n << " p0 " << p0;
      }
    }
  }
}

// The training attention against ref::attention_head_forward / _backward: odd lengths around the
// 32-row block, causal and bidirectional, grouped KV heads; the same bits for 1 and 2 threads.
struct AttentionRun {
  std::vector<float> att, probs, dq, dk, dv;
};
AttentionRun run_attention(const cpu::AttentionShape& s, const std::vector<float>& q, const std::vector<float>& k,
                           const std::vector<float>& v, const std::vector<float>& dout, int threads) {
  const int64_t T = s.B * s.S, qd = s.H * s.hd, kvd = s.Hkv * s.hd;
  AttentionRun r;
  r.att.assign(static_cast<size_t>(T * qd), 0.0f);
  r.probs.assign(static_cast<size_t>(s.B * s.H * s.S * s.S), -1.0f);  // every entry must be written
  r.dq.assign(static_cast<size_t>(T * qd), 0.5f);                      // backward accumulates
  r.dk.assign(static_cast<size_t>(T * kvd), 0.5f);
  r.dv.assign(static_cast<size_t>(T * kvd), 0.5f);
  Workspace ws;
  cpu::attention_forward(s, r.att.data(), r.probs.data(), q.data(), k.data(), v.data(), threads,
                         ws.get(cpu::attention_forward_scratch_bytes(s, threads)));
  cpu::attention_backward(s, r.dq.data(), r.dk.data(), r.dv.data(), dout.data(), r.probs.data(), q.data(), k.data(),
                          v.data(), threads, ws.get(cpu::attention_backward_scratch_bytes(s, threads)));
  return r;
}

void attention_training_rows() {
  for (int64_t S : {1, 5, 31, 32, 33, 70, 97}) {
    for (bool causal : {true, false}) {
      for (const auto& [H, Hkv, hd] : {std::tuple<int64_t, int64_t, int64_t>{4, 4, 16}, {4, 2, 8}, {3, 1, 13}}) {
        const cpu::AttentionShape s{2, S, H, Hkv, hd, causal};
        Rng rng(7 + static_cast<uint64_t>(S));
        const int64_t T = s.B * S, qd = H * hd, kvd = Hkv * hd;
        auto fill = [&](int64_t n) {
          std::vector<float> x(static_cast<size_t>(n));
          for (float& f : x) f = static_cast<float>(rng.normal());  // scores of order √hd: far from uniform
          return x;
        };
        const std::vector<float> q = fill(T * qd), k = fill(T * kvd), v = fill(T * kvd), dout = fill(T * qd);
        const AttentionRun r = run_attention(s, q, k, v, dout, threads_now());
        auto wide = [](const std::vector<float>& x) { return std::vector<double>(x.begin(), x.end()); };
        const std::vector<double> qw = wide(q), kw = wide(k), vw = wide(v), dw = wide(dout);
        std::vector<double> att(static_cast<size_t>(T * qd)), probs(static_cast<size_t>(s.B * H * S * S));
        std::vector<double> dq(static_cast<size_t>(T * qd), 0.5), dk(static_cast<size_t>(T * kvd), 0.5),
            dv(static_cast<size_t>(T * kvd), 0.5), scratch(static_cast<size_t>(S));
        const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
        for (int64_t b = 0; b < s.B; ++b) {
          for (int64_t h = 0; h < H; ++h) {
            const int64_t qo = b * S * qd + h * hd, ko = b * S * kvd + (h / (H / Hkv)) * hd;
            double* P = probs.data() + (b * H + h) * S * S;
            ref::attention_head_forward(att.data() + qo, qd, P, qw.data() + qo, qd, kw.data() + ko, vw.data() + ko, kvd,
                                        S, S, 0, hd, scale, causal);
            ref::attention_head_backward(dq.data() + qo, dk.data() + ko, dv.data() + ko, dw.data() + qo, qd, P,
                                         qw.data() + qo, qd, kw.data() + ko, vw.data() + ko, kvd, S, hd, scale, causal,
                                         scratch.data());
          }
        }
        const std::string what = "S=" + std::to_string(S) + " H=" + std::to_string(H) + " Hkv=" + std::to_string(Hkv) +
                                 " hd=" + std::to_string(hd) + (causal ? " causal" : " bidirectional");
        EXPECT_LT(rel_err(r.att.data(), att.data(), T * qd, 1e-30), 2e-5) << "att " << what;
        EXPECT_LT(rel_err(r.probs.data(), probs.data(), s.B * H * S * S, 1e-30), 2e-5) << "probs " << what;
        EXPECT_LT(rel_err(r.dq.data(), dq.data(), T * qd, 1e-30), 5e-5) << "dq " << what;
        EXPECT_LT(rel_err(r.dk.data(), dk.data(), T * kvd, 1e-30), 5e-5) << "dk " << what;
        EXPECT_LT(rel_err(r.dv.data(), dv.data(), T * kvd, 1e-30), 5e-5) << "dv " << what;
      }
    }
  }
  // Each (sequence, head) runs on one thread in a fixed order: 1 and 2 threads give the same bits.
  const cpu::AttentionShape s{3, 45, 4, 2, 16, true};
  Rng rng(11);
  auto fill = [&](int64_t n) {
    std::vector<float> x(static_cast<size_t>(n));
    for (float& f : x) f = static_cast<float>(rng.normal());
    return x;
  };
  const std::vector<float> q = fill(3 * 45 * 64), k = fill(3 * 45 * 32), v = fill(3 * 45 * 32), dout = fill(3 * 45 * 64);
  const AttentionRun one = run_attention(s, q, k, v, dout, 1), two = run_attention(s, q, k, v, dout, 2);
  EXPECT_EQ(one.att, two.att);
  EXPECT_EQ(one.probs, two.probs);
  EXPECT_EQ(one.dq, two.dq);
  EXPECT_EQ(one.dk, two.dk);
  EXPECT_EQ(one.dv, two.dv);
}

// ---- AdamW: the vector update equals the scalar one bit for bit (both equal torch's) ------------

void adamw_rows() {
  Rng rng(19);
  const cpu::AdamCoefs c{0.999f, 0.9f, 0.1f, 0.999f, 0.001f, 0.0316f, 1e-8f, -0.0021f};
  for (int64_t n : {1, 7, 8, 9, 100}) {
    std::vector<float> p = randv(rng, n), m = randv(rng, n, 0.1), v = randv(rng, n, 0.1), g = randv(rng, n);
    for (float& x : v) x = std::fabs(x);
    std::vector<float> p2 = p, m2 = m, v2 = v;
    cpu::adamw_chunk(odd(p), odd(m), odd(v), odd(g), n, c);
    cpu::adamw_chunk_scalar(odd(p2), odd(m2), odd(v2), odd(g), n, c);
    EXPECT_EQ(p, p2) << n;
    EXPECT_EQ(m, m2) << n;
    EXPECT_EQ(v, v2) << n;
  }
}

// ---- the table ----------------------------------------------------------------------------------

struct KernelRow {
  const char* name;
  void (*run)();
};
const KernelRow kTable[] = {
    {"tile_f32", tile_f32_rows},
    {"tile_bf16", tile_bf16_rows},
    {"pack_columns", pack_columns_rows},
    {"gemm_f32", gemm_rows},
    {"linear_packed", linear_packed_rows},
    {"grouped_ffn", grouped_ffn_rows},
    {"softmax_row", softmax_rows},
    {"norm_rows", norm_rows},
    {"swiglu", swiglu_rows},
    {"exp_ps", exp_rows},
    {"attention_cached", attention_cached_rows},
    {"attention_training", attention_training_rows},
    {"adamw", adamw_rows},
};

}  // namespace

class Kernel : public ::testing::TestWithParam<KernelRow> {};

TEST_P(Kernel, MatchesItsTwin) {
  SCOPED_TRACE(std::string("isa ") + cpu::isa_name(cpu::detected_isa()));
  GetParam().run();
}

INSTANTIATE_TEST_SUITE_P(Table, Kernel, ::testing::ValuesIn(kTable),
                         [](const ::testing::TestParamInfo<KernelRow>& info) { return std::string(info.param.name); });
