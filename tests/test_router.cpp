// Router invariants and edge cases: ties, capacity priority (K-major, batch priority), expert
// choice loads, DeepSeek group masking, renormalisation, and every rejected configuration.
#include <gtest/gtest.h>

#include <cmath>

#include "moe/error.h"
#include "moe/router.h"

using namespace moe;

namespace {

RouterState<double> route(const RouterConfig& c, const std::vector<double>& logits, int64_t group, const double* sel_bias = nullptr) {
  RouterState<double> st;
  const int64_t T = static_cast<int64_t>(logits.size()) / c.n_experts;
  router_forward<double>(c, logits.data(), sel_bias, nullptr, nullptr, T, group, false, st);
  return st;
}

RouterConfig topk(int64_t E, int64_t k) {
  RouterConfig c;
  c.n_experts = E;
  c.top_k = k;
  return c;
}

void expect_bad(const RouterConfig& c, const std::string& fragment) {
  try {
    validate_router(c);
    FAIL() << "accepted: " << fragment;
  } catch (const InvalidInput& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

}  // namespace

TEST(Router, TiesGoToLowestIndex) {
  RouterConfig c = topk(5, 2);
  const auto st = route(c, {1, 3, 3, 3, 0}, 1);
  EXPECT_EQ(st.routing.slot_expert, (std::vector<int32_t>{1, 2}));
  const auto all = route(c, {0, 0, 0, 0, 0}, 1);
  EXPECT_EQ(all.routing.slot_expert, (std::vector<int32_t>{0, 1}));
}

TEST(Router, RenormalisedWeightsSumToOneAndRawDoNot) {
  RouterConfig c = topk(6, 3);
  std::vector<double> logits;
  for (int i = 0; i < 6 * 7; ++i) logits.push_back(std::sin(i * 1.7) * 2);
  c.normalize = true;
  auto st = route(c, logits, 7);
  for (int t = 0; t < 7; ++t) EXPECT_NEAR(st.weights[t * 3] + st.weights[t * 3 + 1] + st.weights[t * 3 + 2], 1.0, 1e-12);
  c.normalize = false;
  st = route(c, logits, 7);
  EXPECT_LT(st.weights[0] + st.weights[1] + st.weights[2], 1.0 - 1e-3);
  // Mixtral ≡ softmax over the top-k logits.
  c.normalize = true;
  st = route(c, logits, 7);
  const double z0 = logits[st.routing.slot_expert[0]], z1 = logits[st.routing.slot_expert[1]], z2 = logits[st.routing.slot_expert[2]];
  EXPECT_NEAR(st.weights[0], std::exp(z0) / (std::exp(z0) + std::exp(z1) + std::exp(z2)), 1e-12);
}

TEST(Router, CapacityDropsInKMajorPositionOrder) {
  // 4 tokens, 2 experts, k = 2, capacity 2 per expert: first choices fill first.
  RouterConfig c = topk(2, 2);
  c.capacity_mode = CapacityMode::absolute;
  c.expert_capacity = 2;
  // Tokens 0,1,2 prefer expert 0; token 3 prefers expert 1.
  const auto st = route(c, {2, 0, 2, 0, 2, 0, 0, 2}, 4);
  const auto& r = st.routing;
  // First choices: t0->e0 kept, t1->e0 kept, t2->e0 dropped, t3->e1 kept; then second choices:
  // t0->e1 kept (e1 has 1), t1->e1 dropped, t2->e1 dropped, t3->e0 dropped.
  EXPECT_EQ(r.slot_kept, (std::vector<uint8_t>{1, 1, 1, 0, 0, 0, 1, 0}));
  EXPECT_EQ(r.n_dropped(), 4);
  EXPECT_EQ(r.expert_rows(0), 2);
  EXPECT_EQ(r.expert_rows(1), 2);
}

TEST(Router, BatchPriorityServesConfidentTokensFirst) {
  RouterConfig c = topk(2, 1);
  c.capacity_mode = CapacityMode::absolute;
  c.expert_capacity = 1;
  c.priority = Priority::batch;
  // Both tokens want expert 0; token 1 is more confident, so it wins under BPR.
  const auto st = route(c, {1, 0, 3, 0}, 2);
  EXPECT_EQ(st.routing.slot_kept, (std::vector<uint8_t>{0, 1}));
  c.priority = Priority::position;
  EXPECT_EQ(route(c, {1, 0, 3, 0}, 2).routing.slot_kept, (std::vector<uint8_t>{1, 0}));
}

TEST(Router, CapacityFactorIsPerGroup) {
  RouterConfig c = topk(4, 2);
  c.capacity_mode = CapacityMode::factor;
  c.capacity_factor = 1.25;
  EXPECT_EQ(router_capacity(c, 8), 5);  // ceil(8·2·1.25/4)
  c.capacity_multiple_of = 4;
  EXPECT_EQ(router_capacity(c, 8), 8);
}

TEST(Router, ExpertChoiceLoadsEqualCapacity) {
  RouterConfig c;
  c.n_experts = 3;
  c.selection = Selection::expert_choice;
  c.capacity_factor = 2;
  std::vector<double> logits;
  for (int i = 0; i < 3 * 12; ++i) logits.push_back(std::cos(i * 0.9));
  const auto st = route(c, logits, 6);  // two groups of 6
  EXPECT_EQ(st.routing.capacity, 4);    // ceil(6·2/3)
  for (int e = 0; e < 3; ++e) EXPECT_EQ(st.routing.expert_rows(e), 2 * 4);
  for (int64_t s = 0; s < st.routing.n_slots(); ++s) {
    const int64_t g = s / (3 * 4);
    EXPECT_EQ(st.routing.slot_token[s] / 6, g);  // an expert only takes tokens of its group
  }
}

TEST(Router, DeepSeekV3MaskedGroupsNeverWin) {
  // Sigmoid scores + a negative selection bias: with a 0.0 fill (old HF) an expert of a masked
  // group could beat biased-negative experts of a kept group; with -inf it never does.
  RouterConfig c = topk(4, 2);
  c.score = ScoreFn::sigmoid;
  c.selection = Selection::group_limited;
  c.n_group = 2;
  c.topk_group = 1;
  c.selection_bias = true;
  const std::vector<double> bias = {-5, -5, -6, -6};
  const auto st = route(c, {3, 3, 0, 0}, 1, bias.data());
  EXPECT_EQ(st.routing.slot_expert, (std::vector<int32_t>{0, 1}));
  // Weights are the unbiased sigmoid scores.
  EXPECT_NEAR(st.weights[0], 1 / (1 + std::exp(-3.0)), 1e-12);
}

TEST(Router, RejectsBadConfigs) {
  RouterConfig c = topk(8, 9);
  expect_bad(c, "top_k=9 > n_experts=8");
  c.top_k = 0;
  expect_bad(c, "top_k=0 must be >= 1");
  c = topk(6, 2);
  c.selection = Selection::group_limited;
  c.n_group = 4;
  expect_bad(c, "n_group=4 does not divide n_experts=6");
  c.n_group = 3;
  c.topk_group = 4;
  expect_bad(c, "topk_group=4 must be in [1, n_group=3]");
  c.n_group = 6;
  c.topk_group = 1;
  c.group_score = GroupScore::top2_sum;
  expect_bad(c, "top_k=2 > topk_group=1 groups of 1 experts");
  c = topk(4, 1);
  c.capacity_mode = CapacityMode::absolute;
  c.expert_capacity = 0;
  expect_bad(c, "expert_capacity=0 must be >= 1");
  c.capacity_mode = CapacityMode::factor;
  c.capacity_factor = -1;
  expect_bad(c, "capacity_factor=-1 must be > 0");
  c = topk(0, 1);
  expect_bad(c, "n_experts=0");
  RouterState<double> st;
  const std::vector<double> logits(4 * 6, 0.0);
  EXPECT_THROW(router_forward<double>(topk(4, 1), logits.data(), nullptr, nullptr, nullptr, 6, 4, false, st),
               InvalidInput);  // group size 4 does not divide 6 tokens
}
