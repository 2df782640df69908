// The HTML report writer (include/moe/report.h): escaping, colours, sections from constructed
// inputs, the model's numbers; well-formedness and rendering are checked in tests/cli/test_report_cli.py.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "moe/analysis.h"
#include "moe/error.h"
#include "moe/gpt_presets.h"
#include "moe/report.h"

namespace moe::report {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

TEST(HtmlEscape, SpecialCharactersControlsAndBadUtf8) {
  EXPECT_EQ(html_escape("<a href=\"x\">&'</a>"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;");
  EXPECT_EQ(html_escape("a\x01" "b\n\tc"), "ab\n\tc");
  EXPECT_EQ(html_escape("gr\xC3\xBC\xC3\x9F"), "gr\xC3\xBC\xC3\x9F");  // valid UTF-8 kept
  EXPECT_EQ(html_escape("x\xFFy\xC3"), "x\uFFFDy\uFFFD");           // invalid bytes replaced
}

TEST(ExpertColour, DistinctUpTo64) {
  for (int n : {8, 16, 64}) {
    std::set<std::string> seen;
    for (int e = 0; e < n; ++e) seen.insert(expert_colour(e, n));
    EXPECT_EQ(static_cast<int>(seen.size()), n) << n << " experts";
  }
  EXPECT_EQ(expert_colour(0, 8).front(), '#');
  EXPECT_EQ(expert_colour(0, 17).rfind("hsl(", 0), 0u);
}

json tiny_analysis() {
  RoutingAnalysis a;
  a.checkpoint = "ck<1>";
  a.data_dir = "d";
  a.split = "val";
  a.domains = {"en", "c"};
  const std::string text = "ab <b>&\n";
  const std::vector<uint8_t> dom = {0, 0, 0, 1, 1, 1, 1, 1};
  a.n_bytes = static_cast<int64_t>(text.size());
  a.bytes_per_domain = {3, 5};
  a.router = "token_choice";
  a.n_experts = 3;
  a.top_k = 1;
  a.context = 8;
  a.n_layers = 1;
  LayerChoices ch;
  ch.first = {0, 0, 0, 1, 1, 1, 1, 2};
  for (int t = 0; t < 8; ++t) ch.slot_token.push_back(t), ch.slot_expert.push_back(ch.first[t]);
  a.layers.push_back(analyze_layer(ch, {reinterpret_cast<const uint8_t*>(text.data()), text.size()}, dom, 3, 2));
  return analysis_to_json(a);
}

TEST(RenderReport, AnalysisSectionsAndEscaping) {
  ReportInputs in;
  in.title = "T <&>";
  in.analysis = tiny_analysis();
  in.samples = json::array({{{"domain", "en"}, {"prompt", "<script>alert(1)</script>"}, {"text", "a & b"}}});
  const std::string h = render_report(in);
  EXPECT_EQ(h.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_NE(h.find("<title>T &lt;&amp;&gt;</title>"), std::string::npos);
  EXPECT_EQ(h.find("<script"), std::string::npos);
  EXPECT_NE(h.find("&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos);
  EXPECT_NE(h.find("ck&lt;1&gt;"), std::string::npos);
  EXPECT_NE(h.find("id=\"layer-0\""), std::string::npos);
  EXPECT_NE(h.find("Generation samples"), std::string::npos);
  // The coloured text escapes the sample's "<b>&" and shows the newline.
  EXPECT_NE(h.find("&lt;b&gt;&amp;"), std::string::npos);
  EXPECT_NE(h.find("\u23CE"), std::string::npos);
  // Figures: the MI bars and one heatmap; balanced svg tags, no XML declaration inside the page.
  EXPECT_EQ(count(h, "<svg"), 2u);
  EXPECT_EQ(count(h, "<svg"), count(h, "</svg>"));
  EXPECT_EQ(h.find("<?xml"), std::string::npos);
  EXPECT_EQ(count(h, "<table"), count(h, "</table>"));
  // The analysis JSON's MI of a pure table: expert 0 = en only, 1 and 2 = c only.
  EXPECT_NEAR(in.analysis["layers"][0]["mi_first_norm"].get<double>(), 1.0, 1e-12);
}

TEST(RenderReport, SamplesShowTheirSamplingSettings) {
  ReportInputs in;
  in.samples = json::array({{{"domain", "en"}, {"prompt", "The "}, {"text", "cat"}, {"temperature", 0.7}, {"top_k", 40},
                             {"seed", 3}, {"max_new_tokens", 200}},
                            {{"domain", "de"}, {"prompt", "Der "}, {"text", "Hund"}}});
  const std::string h = render_report(in);
  EXPECT_NE(h.find("Sampled with temperature 0.7, top-k 40, seed 3, up to 200 new bytes."), std::string::npos);
  EXPECT_NE(h.find("Sampling settings not recorded."), std::string::npos);  // a hand-made sample without them
}

TEST(RenderReport, EmptyInputsAndMissingFields) {
  const std::string h = render_report(ReportInputs{});
  EXPECT_NE(h.find("Nothing to show"), std::string::npos);
  ReportInputs bad;
  bad.analysis = json::object({{"domains", json::array({"en"})}});
  EXPECT_THROW(render_report(bad), InvalidInput);
  ReportInputs bad_samples;
  bad_samples.samples = json::object();
  EXPECT_THROW(render_report(bad_samples), InvalidInput);
}

TEST(Experiments, LoadsSummariesAndRendersCharts) {
  const fs::path dir = fs::temp_directory_path() / "moe_test_report_experiments";
  fs::remove_all(dir);
  fs::create_directories(dir / "exp_a");
  {
    std::ofstream m(dir / "exp_a" / "dense.jsonl");
    for (int s = 1; s <= 20; ++s) {
      json r = {{"step", s}, {"loss", 5.0 - 0.1 * s}, {"ce", 5.0 - 0.1 * s}};
      if (s % 5 == 0) r["val_bpb"] = 6.0 - 0.1 * s;
      m << r.dump() << "\n";
    }
    std::ofstream n(dir / "exp_a" / "moe.jsonl");
    for (int s = 1; s <= 20; ++s)
      n << json({{"step", s}, {"loss", 4.9 - 0.1 * s}, {"ce", 4.8 - 0.1 * s}, {"load_max_over_mean", {{"0", 1.5}, {"1", 1.3}}}}).dump() << "\n";
    n << "not json\n";
    json summary = {{"experiment", "exp_a"}, {"title", "Dense & MoE"}, {"description", "d <i>"},
                    {"runs", json::array({{{"name", "dense"}, {"label", "dense"}, {"metrics", "dense.jsonl"}, {"final", {{"val_bpb", 4.0}}}},
                                          {{"name", "moe"}, {"label", "MoE 8x"}, {"metrics", "moe.jsonl"}},
                                          {{"name", "gone"}, {"label", "gone"}, {"metrics", "missing.jsonl"}}})},
                    {"table", json::array({json::array({"run", "bpb"}), json::array({"dense", 4.0})})},
                    {"notes", json::array({"note <1>"})}};
    std::ofstream(dir / "exp_a" / "summary.json") << summary.dump();
  }
  fs::create_directories(dir / "not_an_experiment");
  const std::vector<Experiment> xs = load_experiments(dir.string());
  ASSERT_EQ(xs.size(), 1u);
  ASSERT_EQ(xs[0].metrics.size(), 3u);
  EXPECT_EQ(xs[0].metrics[0].size(), 20u);
  EXPECT_EQ(xs[0].metrics[1].size(), 20u);  // the bad line skipped
  EXPECT_TRUE(xs[0].metrics[2].empty());
  EXPECT_EQ(xs[0].warnings.size(), 2u);     // the bad line, the missing file
  ReportInputs in;
  in.experiments = xs;
  const std::string h = render_report(in);
  EXPECT_EQ(count(h, "<svg"), 3u);  // validation bpb, train cross-entropy, expert load
  EXPECT_NE(h.find("Dense &amp; MoE"), std::string::npos);
  EXPECT_NE(h.find("note &lt;1&gt;"), std::string::npos);
  EXPECT_NE(h.find("MoE 8x"), std::string::npos);
  EXPECT_THROW(load_experiments((dir / "nope").string()), InvalidInput);
  fs::remove_all(dir);
}

TEST(ModelInfo, ParameterCountsAndEstimatorParts) {
  GptPreset p;
  p.n_experts = 8;
  p.top_k = 2;
  p.shared_hidden = 64;
  const GptConfig c = make_gpt_config(p);
  const json m = model_info_json(c);
  EXPECT_EQ(m["params_total"].get<int64_t>(), gpt_param_count(c, false));
  EXPECT_EQ(m["params_active"].get<int64_t>(), gpt_param_count(c, true));
  EXPECT_EQ(m["weight_bytes"]["bf16"].get<int64_t>(), 2 * gpt_param_count(c, false));
  EXPECT_EQ(m["kv_bytes_per_token"]["f32"].get<int64_t>(), c.n_layers * 2 * c.n_kv_heads * c.head_dim() * 4);
  ASSERT_TRUE(m.contains("parts"));
  int64_t total = 0, active = 0;
  for (const json& part : m["parts"]) total += part["total"].get<int64_t>(), active += part["active"].get<int64_t>();
  EXPECT_EQ(total, gpt_param_count(c, false));
  EXPECT_EQ(active, gpt_param_count(c, true));
  // Learned positions are outside the estimator: counts still given, no breakdown.
  p.pos = "learned";
  const json l = model_info_json(make_gpt_config(p));
  EXPECT_FALSE(l.contains("parts"));
  EXPECT_EQ(l["params_total"].get<int64_t>(), gpt_param_count(make_gpt_config(p), false));
  ReportInputs in;
  in.model = m;
  EXPECT_NE(render_report(in).find("active per token"), std::string::npos);
}

}  // namespace
}  // namespace moe::report
