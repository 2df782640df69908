// sample_token: greedy, temperature, top-k and top-p against their definitions.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "moe/error.h"
#include "moe/sampling.h"

namespace moe {
namespace {

TEST(Sampling, GreedyIsArgmaxLowestIdOnTies) {
  Rng rng(1);
  const std::vector<float> l = {0.5f, 2.0f, -1.0f, 2.0f};
  EXPECT_EQ(sample_token(l.data(), 4, {}, rng), 1);
  SamplingOptions one;
  one.temperature = 1.0;
  one.top_k = 1;
  EXPECT_EQ(sample_token(l.data(), 4, one, rng), 1);  // top-1 keeps only the best (first on ties)
  SamplingOptions p;
  p.temperature = 1.0;
  p.top_p = 1e-6;
  EXPECT_EQ(sample_token(l.data(), 4, p, rng), 1);    // a tiny nucleus keeps one token
}

TEST(Sampling, FrequenciesFollowTheFilteredSoftmax) {
  const std::vector<float> l = {1.0f, 0.0f, 2.0f, -1.0f, 0.5f};
  const int V = 5, N = 200000;
  auto freq = [&](SamplingOptions o, uint64_t seed) {
    Rng rng(seed);
    std::vector<double> f(V, 0.0);
    for (int i = 0; i < N; ++i) f[sample_token(l.data(), V, o, rng)] += 1.0 / N;
    return f;
  };
  auto softmax = [&](double T, std::vector<int> keep) {
    std::vector<double> p(V, 0.0);
    double z = 0;
    for (int i : keep) z += p[i] = std::exp(l[i] / T);
    for (double& v : p) v /= z;
    return p;
  };
  SamplingOptions o;
  o.temperature = 0.7;
  std::vector<double> got = freq(o, 2), want = softmax(0.7, {0, 1, 2, 3, 4});
  for (int i = 0; i < V; ++i) EXPECT_NEAR(got[i], want[i], 0.005) << "temperature, id " << i;
  o.temperature = 1.0;
  o.top_k = 2;  // ids 2 and 0
  got = freq(o, 3);
  want = softmax(1.0, {2, 0});
  for (int i = 0; i < V; ++i) EXPECT_NEAR(got[i], want[i], 0.005) << "top-k, id " << i;
  o.top_k = 0;
  o.top_p = 0.8;  // p sorted: 2 (.4955), 0 (.1823·…) — the smallest prefix reaching 0.8
  const std::vector<double> full = softmax(1.0, {0, 1, 2, 3, 4});
  std::vector<int> order = {2, 0, 4, 1, 3}, keep;
  double acc = 0;
  for (int i : order) {
    keep.push_back(i);
    acc += full[i];
    if (acc >= 0.8) break;
  }
  got = freq(o, 4);
  want = softmax(1.0, keep);
  for (int i = 0; i < V; ++i) EXPECT_NEAR(got[i], want[i], 0.005) << "top-p, id " << i;
}

TEST(Sampling, BadOptionsAndLogits) {
  SamplingOptions o;
  o.temperature = -1;
  EXPECT_THROW(validate_sampling(o), InvalidInput);
  o = {};
  o.top_p = 0;
  EXPECT_THROW(validate_sampling(o), InvalidInput);
  o = {};
  o.top_k = -2;
  EXPECT_THROW(validate_sampling(o), InvalidInput);
  Rng rng(1);
  const std::vector<float> l = {0.0f, NAN};
  EXPECT_THROW(sample_token(l.data(), 2, {}, rng), InvalidInput);
}

}  // namespace
}  // namespace moe
