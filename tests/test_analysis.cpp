// Routing analysis (include/moe/analysis.h): mutual information on constructed tables, counts,
// top tokens, samples, and the choices recorded from real (untrained) models of every router kind.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "moe/analysis.h"
#include "moe/error.h"
#include "moe/gpt_presets.h"

namespace moe {
namespace {

std::span<const uint8_t> bytes_of(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

TEST(MutualInformation, IndependentTableIsZero) {
  // p(e, d) = p(e) p(d): rows proportional.
  const std::vector<int64_t> t = {10, 20, 30, 30, 60, 90, 5, 10, 15};  // [3, 3]
  EXPECT_NEAR(mutual_information_bits(t, 3, 3), 0.0, 1e-12);
  const std::vector<int64_t> uniform(8 * 5, 7);
  EXPECT_NEAR(mutual_information_bits(uniform, 8, 5), 0.0, 1e-12);
}

TEST(MutualInformation, PerfectSpecialisationIsDomainEntropy) {
  // Diagonal, unequal domain sizes: each expert sees exactly one domain.
  const std::vector<int64_t> t = {40, 0, 0, 0, 10, 0, 0, 0, 50};
  const double h = -(0.4 * std::log2(0.4) + 0.1 * std::log2(0.1) + 0.5 * std::log2(0.5));
  EXPECT_NEAR(column_entropy_bits(t, 3, 3), h, 1e-12);
  EXPECT_NEAR(mutual_information_bits(t, 3, 3), h, 1e-12);
  // More experts than domains, each still pure: I = H(domain).
  const std::vector<int64_t> u = {5, 0, 5, 0, 0, 7, 0, 3};  // [4, 2]
  EXPECT_NEAR(mutual_information_bits(u, 4, 2), 1.0, 1e-12);
  EXPECT_NEAR(mutual_information_bits(std::vector<int64_t>(6, 0), 3, 2), 0.0, 0.0);  // empty table
}

TEST(MutualInformation, PartialDependence) {
  // 2×2 with p = [[0.4, 0.1], [0.1, 0.4]]: I = 1 - H_b(0.2).
  const std::vector<int64_t> t = {40, 10, 10, 40};
  const double hb = -(0.2 * std::log2(0.2) + 0.8 * std::log2(0.8));
  EXPECT_NEAR(mutual_information_bits(t, 2, 2), 1.0 - hb, 1e-12);
}

TEST(ByteLabel, PrintableForms) {
  EXPECT_EQ(byte_label(' '), "\u2423");
  EXPECT_EQ(byte_label('\n'), "\u23CE");
  EXPECT_EQ(byte_label('\t'), "\u21E5");
  EXPECT_EQ(byte_label(0x01), "\\x01");
  EXPECT_EQ(byte_label(0xC3), "\\xc3");
  EXPECT_EQ(byte_label('7'), "7");
  EXPECT_EQ(byte_label('<'), "<");
}

TEST(AnalyzeLayer, CountsAndPerfectSpecialisation) {
  // 3 domains in blocks; expert = domain (first choice), second choice = (domain + 1) % 3.
  std::string text;
  std::vector<uint8_t> dom;
  for (int d = 0; d < 3; ++d)
    for (int i = 0; i < 10 * (d + 1); ++i) text += static_cast<char>('a' + d), dom.push_back(static_cast<uint8_t>(d));
  LayerChoices ch;
  ch.layer = 3;
  for (size_t t = 0; t < text.size(); ++t) {
    ch.first.push_back(dom[t]);
    ch.slot_token.push_back(static_cast<int32_t>(t));
    ch.slot_expert.push_back(dom[t]);
    ch.slot_token.push_back(static_cast<int32_t>(t));
    ch.slot_expert.push_back((dom[t] + 1) % 3);
  }
  const LayerAnalysis a = analyze_layer(ch, bytes_of(text), dom, 4, 3);
  EXPECT_EQ(a.layer, 3);
  ASSERT_EQ(a.first_counts.size(), 12u);
  EXPECT_EQ(a.first_counts, (std::vector<int64_t>{10, 0, 0, 0, 20, 0, 0, 0, 30, 0, 0, 0}));
  EXPECT_EQ(a.all_counts, (std::vector<int64_t>{10, 0, 30, 10, 20, 0, 0, 20, 30, 0, 0, 0}));
  EXPECT_EQ(a.unrouted, 0);
  EXPECT_NEAR(a.mi_first_norm, 1.0, 1e-12);
  EXPECT_NEAR(a.mi_first_bits, a.h_domain_bits, 1e-12);
  EXPECT_GT(a.mi_all_bits, 0.0);
  EXPECT_LT(a.mi_all_norm, 1.0);  // the second choices blur it
  // Each expert sees one byte value: share 1, lift = 1 / P(byte).
  ASSERT_EQ(a.top_tokens[1].size(), 1u);
  EXPECT_EQ(a.top_tokens[1][0].byte, 'b');
  EXPECT_DOUBLE_EQ(a.top_tokens[1][0].share, 1.0);
  EXPECT_NEAR(a.top_tokens[1][0].lift, 60.0 / 20.0, 1e-12);
  EXPECT_TRUE(a.top_tokens[3].empty());  // an unused expert
  ASSERT_EQ(a.samples.size(), 3u);
  EXPECT_EQ(a.samples[2].bytes.size(), 30u);
  EXPECT_EQ(a.samples[2].experts, std::vector<int32_t>(30, 2));
}

TEST(AnalyzeLayer, IndependentRoutingGivesZero) {
  // Every domain spreads over the experts in the same proportions.
  std::string text;
  std::vector<uint8_t> dom;
  LayerChoices ch;
  for (int d = 0; d < 4; ++d)
    for (int i = 0; i < 60; ++i) {
      text += 'x';
      dom.push_back(static_cast<uint8_t>(d));
      ch.first.push_back(i % 3);
    }
  const LayerAnalysis a = analyze_layer(ch, bytes_of(text), dom, 3, 4);
  EXPECT_NEAR(a.mi_first_bits, 0.0, 1e-12);
  EXPECT_NEAR(a.h_domain_bits, 2.0, 1e-12);
  EXPECT_EQ(a.all_counts, std::vector<int64_t>(12, 0));  // no slots given
}

TEST(AnalyzeLayer, TopTokensShareAndLift) {
  // Expert 0: a×5, b×3, ' '×2; expert 1: a×5, c×5. P(a) = 10/20.
  const std::string text = "aaaaabbb  aaaaaccccc";
  const std::vector<uint8_t> dom(text.size(), 0);
  LayerChoices ch;
  for (size_t t = 0; t < text.size(); ++t) ch.first.push_back(t < 10 ? 0 : 1);
  const LayerAnalysis a = analyze_layer(ch, bytes_of(text), dom, 2, 1, /*top_n=*/2);
  ASSERT_EQ(a.top_tokens[0].size(), 2u);  // top_n respected
  EXPECT_EQ(a.top_tokens[0][0].byte, 'a');
  EXPECT_EQ(a.top_tokens[0][0].count, 5);
  EXPECT_DOUBLE_EQ(a.top_tokens[0][0].share, 0.5);
  EXPECT_NEAR(a.top_tokens[0][0].lift, 0.5 / 0.5, 1e-12);
  EXPECT_EQ(a.top_tokens[0][1].byte, 'b');
  EXPECT_NEAR(a.top_tokens[0][1].lift, 0.3 / (3.0 / 20.0), 1e-12);
  EXPECT_EQ(a.top_tokens[1][0].byte, 'a');  // ties: lower byte first
  EXPECT_EQ(a.top_tokens[1][1].byte, 'c');
  EXPECT_NEAR(a.mi_first_bits, 0.0, 0.0);  // one domain: nothing to explain
}

TEST(AnalyzeLayer, UnroutedAndSamplesStartAtADocument) {
  // Two documents of domain 1 around one of domain 0; -1 = no expert.
  const std::string text = "xy\n\nhello world\n\nzz";
  std::vector<uint8_t> dom(text.size(), 1);
  for (size_t i = 4; i < 17; ++i) dom[i] = 0;
  LayerChoices ch;
  for (size_t t = 0; t < text.size(); ++t) ch.first.push_back(t % 5 == 0 ? -1 : 1);
  const LayerAnalysis a = analyze_layer(ch, bytes_of(text), dom, 2, 2, 10, /*sample_bytes=*/5);
  EXPECT_EQ(a.unrouted, 4);  // t = 0, 5, 10, 15
  ASSERT_EQ(a.samples.size(), 2u);
  const ColouredSample& s0 = a.samples[0];
  // Starts at "hello", stops after white space once 5 bytes are in.
  EXPECT_EQ(std::string(s0.bytes.begin(), s0.bytes.end()), "hello ");
  EXPECT_EQ(s0.experts.front(), 1);
  EXPECT_EQ(s0.experts[1], -1);  // byte 5 is unrouted
  EXPECT_EQ(std::string(a.samples[1].bytes.begin(), a.samples[1].bytes.end()), "xy\n\nzz");  // skips domain 0
}

TEST(AnalyzeLayer, RejectsBadInput) {
  const std::string text = "abc";
  LayerChoices ch;
  ch.first = {0, 0, 0};
  EXPECT_THROW(analyze_layer(ch, bytes_of(text), std::vector<uint8_t>{0, 0}, 2, 1), InvalidInput);
  EXPECT_THROW(analyze_layer(ch, bytes_of(text), std::vector<uint8_t>{0, 0, 5}, 2, 2), InvalidInput);
  ch.first = {0, 2, 0};
  EXPECT_THROW(analyze_layer(ch, bytes_of(text), std::vector<uint8_t>{0, 0, 0}, 2, 1), InvalidInput);
}

GptConfig tiny(const std::string& router, int64_t n_experts, bool encoder = false) {
  GptPreset p;
  p.context = 16;
  p.d_model = 16;
  p.n_layers = 3;
  p.n_heads = 2;
  p.hidden = 8;
  p.n_experts = n_experts;
  p.router = router;
  p.encoder = encoder;
  p.first_dense = 1;  // layer 0 dense: skipped by the analysis
  return make_gpt_config(p);
}

std::string some_text(size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) s += static_cast<char>(" etaoinshrdlu\n"[(i * 7 + i / 5) % 14]);
  return s;
}

TEST(CollectChoices, TokenChoiceRecordsTopKAndFirstIsHighestWeight) {
  const GptConfig c = tiny("softmax", 4);
  GptWeights w = make_gpt_weights(c, DType::f32);
  init_gpt_weights(c, w, 7);
  const std::string text = some_text(40);  // two full windows and a tail of 8
  const std::vector<LayerChoices> ch = collect_choices(c, w, bytes_of(text));
  ASSERT_EQ(ch.size(), 2u);
  EXPECT_EQ(ch[0].layer, 1);
  EXPECT_EQ(ch[1].layer, 2);
  for (const LayerChoices& l : ch) {
    ASSERT_EQ(l.first.size(), text.size());
    ASSERT_EQ(l.slot_token.size(), 2 * text.size());  // top-2
    for (size_t t = 0; t < text.size(); ++t) {
      EXPECT_EQ(l.slot_token[2 * t], static_cast<int32_t>(t));
      EXPECT_EQ(l.first[t], l.slot_expert[2 * t]);  // token choice lists the best first
      EXPECT_NE(l.slot_expert[2 * t], l.slot_expert[2 * t + 1]);
    }
  }
  // Causal and inference-only: the first window's choices do not depend on what follows.
  const std::vector<LayerChoices> head = collect_choices(c, w, bytes_of(text.substr(0, 16)));
  EXPECT_EQ(head[1].first, std::vector<int32_t>(ch[1].first.begin(), ch[1].first.begin() + 16));
}

TEST(CollectChoices, ExpertChoiceAndSoftMoe) {
  for (const char* router : {"expert_choice", "soft"}) {
    const GptConfig c = tiny(router, 4, /*encoder=*/true);
    GptWeights w = make_gpt_weights(c, DType::f32);
    init_gpt_weights(c, w, 3);
    const std::string text = some_text(32);
    const std::vector<LayerChoices> ch = collect_choices(c, w, bytes_of(text));
    ASSERT_EQ(ch.size(), 2u) << router;
    int64_t routed = 0;
    for (const int32_t e : ch[0].first) {
      EXPECT_GE(e, -1);
      EXPECT_LT(e, 4);
      routed += e >= 0;
    }
    EXPECT_GT(routed, 0) << router;
    if (std::string(router) == "soft") {
      EXPECT_EQ(routed, 32);  // every token feeds some slot
    }
  }
}

TEST(CollectChoices, DenseModelIsRejected) {
  const GptConfig c = tiny("softmax", 0);
  GptWeights w = make_gpt_weights(c, DType::f32);
  try {
    collect_choices(c, w, bytes_of(std::string("abc")));
    FAIL() << "expected InvalidInput";
  } catch (const InvalidInput& e) {
    EXPECT_NE(std::string(e.what()).find("dense"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace moe
