// The layer estimator against the worked examples of the spec (shared/spec/estimator.md) and
// the inputs it must reject.
#include <gtest/gtest.h>

#include "moe/error.h"
#include "moe/estimate.h"

using namespace moe::estimate;

namespace {

FfnConfig mixtral_like(FfnType type, bool match) {
  FfnConfig c;
  c.emb_dim = 7168;
  c.hidden_dim = 14336;
  c.ffn_type = type;
  c.num_experts = 8;
  c.top_k = 2;
  c.match_dense = match;
  return c;
}

void expect_rejected(const FfnConfig& c, const std::string& fragment) {
  try {
    estimate_ffn(c);
    FAIL() << "accepted; expected an error containing: " << fragment;
  } catch (const moe::InvalidInput& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).rfind("[estimate] ", 0), 0u) << e.what();
  }
}

}  // namespace

TEST(Estimate, SwigluMatchDenseSpecBlock) {
  const FfnConfig c = mixtral_like(FfnType::swiglu, true);
  const FfnEstimate e = estimate_ffn(c);
  EXPECT_EQ(e.dense_params, 308281344);
  EXPECT_EQ(e.per_expert_params, 38535168);
  EXPECT_EQ(e.router_params, 57344);
  EXPECT_EQ(e.moe_total_params, 308338688);
  EXPECT_EQ(e.moe_active_params, 77127680);
  EXPECT_EQ(e.moe_hidden_dim, 1792);
  EXPECT_EQ(format_ffn_report(c, e),
            "==== Config ====\n"
            "emb_dim                : 7168\n"
            "hidden_dim             : 14336\n"
            "ffn_type               : swiglu\n"
            "num_experts            : 8\n"
            "top_k                  : 2\n"
            "dtype                  : bf16 (2 Bytes/elem)\n"
            "match_dense            : True\n"
            "\n"
            "==== Model weights (parameters) ====\n"
            "Dense FFN params       : 308,281,344 (0.62 GB)\n"
            "Per-expert params      : 38,535,168 (0.08 GB)\n"
            "Router params          : 57,344 (0.00 GB)\n"
            "MoE TOTAL params       : 308,338,688 (0.62 GB)\n"
            "MoE ACTIVE/Token       : 77,127,680 (0.15 GB)\n"
            "moe_hidden_dim         : 1792\n"
            "\n");
}

TEST(Estimate, GeluMatchDense) {
  const FfnEstimate e = estimate_ffn(mixtral_like(FfnType::gelu, true));
  EXPECT_EQ(e.dense_params, 205520896);
  EXPECT_EQ(e.per_expert_params, 25690112);
  EXPECT_EQ(e.router_params, 57344);
  EXPECT_EQ(e.moe_total_params, 205578240);
  EXPECT_EQ(e.moe_active_params, 51437568);
  EXPECT_EQ(e.moe_hidden_dim, 1792);
}

TEST(Estimate, WithoutMatchDense) {
  const FfnEstimate e = estimate_ffn(mixtral_like(FfnType::swiglu, false));
  EXPECT_EQ(e.per_expert_params, 308281344);
  EXPECT_EQ(e.moe_total_params, 2466308096);
  EXPECT_EQ(e.moe_active_params, 616620032);
  EXPECT_EQ(e.moe_hidden_dim, 14336);
}

TEST(Estimate, RoundsHalfToEven) {
  // gelu: (2·d·h - d·E) / (E·2·d) = h/E - 1/2, an exact tie. h/E = 1791 -> 1790.5 -> 1790 (even);
  // std::round would give 1791. h/E = 1792 -> 1791.5 -> 1792.
  FfnConfig c = mixtral_like(FfnType::gelu, true);
  c.hidden_dim = 1791 * 8;
  EXPECT_EQ(estimate_ffn(c).moe_hidden_dim, 1790);
  c.hidden_dim = 1792 * 8;
  EXPECT_EQ(estimate_ffn(c).moe_hidden_dim, 1792);
}

TEST(Estimate, DtypeBytes) {
  FfnConfig c = mixtral_like(FfnType::swiglu, true);
  for (auto [name, bytes] : {std::pair{"fp32", 4}, {"bf16", 2}, {"fp16", 2}, {"fp8", 1}, {"int8", 1}}) {
    c.dtype = name;
    EXPECT_EQ(estimate_ffn(c).bytes_per_param, bytes) << name;
  }
}

TEST(Estimate, RejectsBadInput) {
  FfnConfig c = mixtral_like(FfnType::swiglu, false);
  c.top_k = 9;
  expect_rejected(c, "--top_k=9 > --num_experts=8");
  c.top_k = 0;
  expect_rejected(c, "--top_k=0");
  c.top_k = -3;
  expect_rejected(c, "--top_k=-3");
  c = mixtral_like(FfnType::swiglu, false);
  c.emb_dim = 0;
  expect_rejected(c, "--emb_dim=0");
  c = mixtral_like(FfnType::swiglu, false);
  c.hidden_dim = -1;
  expect_rejected(c, "--hidden_dim=-1");
  c = mixtral_like(FfnType::swiglu, false);
  c.num_experts = 0;
  expect_rejected(c, "--num_experts=0");
  c = mixtral_like(FfnType::swiglu, false);
  c.dtype = "fp64";
  expect_rejected(c, "--dtype=fp64");
  EXPECT_THROW(parse_ffn_type("relu"), moe::InvalidInput);
}

TEST(Estimate, RejectsWidthRoundingToZero) {
  // dense = 3·4·4 = 48, router = 4·8 = 32, (48-32)/(8·3·4) = 0.17 -> 0
  FfnConfig c;
  c.emb_dim = 4;
  c.hidden_dim = 4;
  c.num_experts = 8;
  c.top_k = 2;
  c.match_dense = true;
  expect_rejected(c, "moe_hidden_dim rounds to 0");
  c.num_experts = 12;  // router 48 = dense: too small
  expect_rejected(c, "dense layer too small for --num_experts=12");
}

TEST(Estimate, RejectsOverflow) {
  FfnConfig c = mixtral_like(FfnType::swiglu, false);
  c.emb_dim = 4000000000LL;
  c.hidden_dim = 4000000000LL;
  expect_rejected(c, "overflows 64 bits");
}

TEST(Sweep, ReferenceFigures) {
  SweepConfig s;
  s.emb_dim = 7168;
  s.hidden_dim = 28672;
  s.top_k = 8;
  const Sweep sweep = sweep_experts(s);
  // E = 1, 2, 4 are below top_k = 8: skipped, not plotted.
  ASSERT_EQ(sweep.skipped.size(), 3u);
  EXPECT_EQ(sweep.skipped[0].num_experts, 1);
  ASSERT_EQ(sweep.points.size(), 9u);
  auto at = [&](int64_t experts) {
    for (const SweepPoint& p : sweep.points) {
      if (p.num_experts == experts) return p;
    }
    ADD_FAILURE() << "no point for E=" << experts;
    return SweepPoint{};
  };
  EXPECT_EQ(at(8).estimate.moe_hidden_dim, 3584);
  EXPECT_EQ(at(8).estimate.moe_active_params, 616620032);
  EXPECT_EQ(at(8).estimate.moe_total_params, 616620032);
  EXPECT_EQ(at(64).estimate.moe_hidden_dim, 448);
  EXPECT_EQ(at(64).estimate.moe_active_params, 77529088);
  EXPECT_EQ(at(128).estimate.moe_hidden_dim, 224);
  EXPECT_EQ(at(128).estimate.moe_active_params, 39452672);
  EXPECT_EQ(at(128).estimate.moe_total_params, 617480192);
  EXPECT_EQ(at(512).estimate.moe_hidden_dim, 56);
  EXPECT_EQ(at(512).estimate.moe_active_params, 13303808);
  EXPECT_EQ(at(512).estimate.moe_total_params, 620232704);
}

TEST(Sweep, MaxExpertsAndFallback) {
  SweepConfig s;
  s.emb_dim = 64;
  s.hidden_dim = 8;  // dense = 3·64·8 = 1536; router = 64·E > dense from E = 24 on
  s.top_k = 1;
  s.max_experts = 32;
  const Sweep sweep = sweep_experts(s);
  ASSERT_FALSE(sweep.points.empty());
  EXPECT_LE(sweep.points.back().num_experts, 32);
  for (const SweepPoint& p : sweep.points) {
    if (p.num_experts >= 24) {
      EXPECT_FALSE(p.matched) << p.num_experts;  // falls back to hidden_dim per expert
      EXPECT_EQ(p.estimate.moe_hidden_dim, 8);
    }
  }
  s.max_experts = 0;
  EXPECT_THROW(sweep_experts(s), moe::InvalidInput);
}

TEST(Sweep, CsvHasOneRowPerPoint) {
  SweepConfig s;
  s.emb_dim = 7168;
  s.hidden_dim = 28672;
  s.top_k = 8;
  const Sweep sweep = sweep_experts(s);
  const std::string csv = sweep_csv(s, sweep);
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 1 + static_cast<long>(sweep.points.size()));
  EXPECT_NE(csv.find("\n64,8,448,true,77529088,"), std::string::npos) << csv;
}
