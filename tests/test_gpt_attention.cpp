// The float attention of the GPT training path (src/kernels/cpu/attention.cpp: GEMM blocks, vector
// softmax) against its float64 twins ref::attention_head_forward / _backward, over odd sequence
// lengths around the 32-row block, causal and bidirectional, grouped KV heads; and the same
// bits for 1 and 2 threads.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <vector>

#include "kernels/cpu/attention.h"
#include "kernels/ref/transformer.h"
#include "moe/rng.h"

using namespace moe;
using cpu::AttentionShape;

namespace {

struct Buffers {
  std::vector<float> q, k, v, dout;
};

Buffers random_inputs(const AttentionShape& s, uint64_t seed) {
  Rng rng(seed);
  const int64_t T = s.B * s.S, qd = s.H * s.hd, kvd = s.Hkv * s.hd;
  Buffers b;
  auto fill = [&](std::vector<float>& x, int64_t n, double scale) {
    x.resize(static_cast<size_t>(n));
    for (float& f : x) f = static_cast<float>(scale * rng.normal());
  };
  fill(b.q, T * qd, 1.0);  // scores of order √hd: far from uniform attention
  fill(b.k, T * kvd, 1.0);
  fill(b.v, T * kvd, 1.0);
  fill(b.dout, T * qd, 1.0);
  return b;
}

double rel_err(const std::vector<float>& got, const std::vector<double>& want) {
  double err = 0, scale = 1e-30;
  for (size_t i = 0; i < want.size(); ++i) {
    err = std::max(err, std::fabs(static_cast<double>(got[i]) - want[i]));
    scale = std::max(scale, std::fabs(want[i]));
  }
  return err / scale;
}

struct Result {
  std::vector<float> att, probs, dq, dk, dv;
};

Result run_fast(const AttentionShape& s, const Buffers& in) {
  const int64_t T = s.B * s.S, qd = s.H * s.hd, kvd = s.Hkv * s.hd;
  Result r;
  r.att.assign(static_cast<size_t>(T * qd), 0.0f);
  r.probs.assign(static_cast<size_t>(s.B * s.H * s.S * s.S), -1.0f);  // every entry must be written
  r.dq.assign(static_cast<size_t>(T * qd), 0.5f);                      // backward accumulates
  r.dk.assign(static_cast<size_t>(T * kvd), 0.5f);
  r.dv.assign(static_cast<size_t>(T * kvd), 0.5f);
  const int th = omp_get_max_threads();
  Workspace ws;
  cpu::attention_forward(s, r.att.data(), r.probs.data(), in.q.data(), in.k.data(), in.v.data(), th,
                         ws.get(cpu::attention_forward_scratch_bytes(s, th)));
  cpu::attention_backward(s, r.dq.data(), r.dk.data(), r.dv.data(), in.dout.data(), r.probs.data(), in.q.data(),
                          in.k.data(), in.v.data(), th, ws.get(cpu::attention_backward_scratch_bytes(s, th)));
  return r;
}

}  // namespace

class GptAttention : public ::testing::TestWithParam<std::tuple<int64_t, bool>> {};

TEST_P(GptAttention, MatchesFloat64Reference) {
  const auto [S, causal] = GetParam();
  for (const auto& [H, Hkv, hd] : {std::tuple<int64_t, int64_t, int64_t>{4, 4, 16}, {4, 2, 8}, {3, 1, 13}}) {
    const AttentionShape s{2, S, H, Hkv, hd, causal};
    const Buffers in = random_inputs(s, 7 + static_cast<uint64_t>(S));
    const Result r = run_fast(s, in);
    // Float64 reference on the same inputs.
    const int64_t T = s.B * S, qd = H * hd, kvd = Hkv * hd;
    auto wide = [](const std::vector<float>& x) { return std::vector<double>(x.begin(), x.end()); };
    const std::vector<double> q = wide(in.q), k = wide(in.k), v = wide(in.v), dout = wide(in.dout);
    std::vector<double> att(static_cast<size_t>(T * qd)), probs(static_cast<size_t>(s.B * H * S * S));
    std::vector<double> dq(static_cast<size_t>(T * qd), 0.5), dk(static_cast<size_t>(T * kvd), 0.5),
        dv(static_cast<size_t>(T * kvd), 0.5), scratch(static_cast<size_t>(S));
    const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
    for (int64_t b = 0; b < s.B; ++b) {
      for (int64_t h = 0; h < H; ++h) {
        const int64_t qo = b * S * qd + h * hd, ko = b * S * kvd + (h / (H / Hkv)) * hd;
        double* P = probs.data() + (b * H + h) * S * S;
        ref::attention_head_forward(att.data() + qo, qd, P, q.data() + qo, qd, k.data() + ko, v.data() + ko, kvd, S, S,
                                    0, hd, scale, causal);
        ref::attention_head_backward(dq.data() + qo, dk.data() + ko, dv.data() + ko, dout.data() + qo, qd, P,
                                     q.data() + qo, qd, k.data() + ko, v.data() + ko, kvd, S, hd, scale, causal,
                                     scratch.data());
      }
    }
    const std::string what = "S=" + std::to_string(S) + " H=" + std::to_string(H) + " Hkv=" + std::to_string(Hkv) +
                             " hd=" + std::to_string(hd) + (causal ? " causal" : " bidirectional");
    EXPECT_LT(rel_err(r.att, att), 2e-5) << "att " << what;
    EXPECT_LT(rel_err(r.probs, probs), 2e-5) << "probs " << what;
    EXPECT_LT(rel_err(r.dq, dq), 5e-5) << "dq " << what;
    EXPECT_LT(rel_err(r.dk, dk), 5e-5) << "dk " << what;
    EXPECT_LT(rel_err(r.dv, dv), 5e-5) << "dv " << what;
  }
}

INSTANTIATE_TEST_SUITE_P(Lengths, GptAttention,
                         ::testing::Combine(::testing::Values(1, 5, 31, 32, 33, 70, 97), ::testing::Bool()));

// Each (sequence, head) runs on one thread in a fixed order: 1 and 2 threads give the same bits.
TEST(GptAttentionThreads, ResultDoesNotDependOnThreadCount) {
  const AttentionShape s{3, 45, 4, 2, 16, true};
  const Buffers in = random_inputs(s, 11);
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  const Result one = run_fast(s, in);
  omp_set_num_threads(2);
  const Result two = run_fast(s, in);
  omp_set_num_threads(saved);
  EXPECT_EQ(one.att, two.att);
  EXPECT_EQ(one.probs, two.probs);
  EXPECT_EQ(one.dq, two.dq);
  EXPECT_EQ(one.dk, two.dk);
  EXPECT_EQ(one.dv, two.dv);
}
