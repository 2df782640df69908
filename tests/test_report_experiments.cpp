// The report's experiment sections (src/report/experiments_section.cpp) from summaries written
// here: what each chart plots, the values a table shows, and which experiments are included.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <unistd.h>
#include <regex>
#include <string>
#include <vector>

#include "moe/error.h"
#include "moe/report.h"
#include "report/report_internal.h"

namespace moe::report {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// The inline <svg> of the page whose text contains `marker`, or "".
std::string svg_with(const std::string& page, const std::string& marker) {
  for (size_t a = page.find("<svg"); a != std::string::npos; a = page.find("<svg", a + 1)) {
    const size_t b = page.find("</svg>", a);
    const std::string svg = page.substr(a, b - a);
    if (svg.find(marker) != std::string::npos) return svg;
  }
  return "";
}

std::vector<std::string> polyline_points(const std::string& svg) {
  std::vector<std::string> out;
  static const std::regex kPoly(R"re(<polyline class="series"[^>]* points="([^"]*)")re");
  for (std::sregex_iterator it(svg.begin(), svg.end(), kPoly), end; it != end; ++it) out.push_back((*it)[1]);
  return out;
}

// A folder of experiments, removed at the end of the test.
struct Folder {
  fs::path dir = fs::temp_directory_path() / ("moe_test_report_experiments_" + std::to_string(::getpid()));
  Folder() { fs::remove_all(dir); }
  ~Folder() { fs::remove_all(dir); }
  void metrics(const std::string& exp, const std::string& file, const std::vector<json>& records) const {
    fs::create_directories(dir / exp);
    std::ofstream m(dir / exp / file);
    for (const json& r : records) m << r.dump() << "\n";
  }
  void summary(const std::string& exp, const json& s) const {
    fs::create_directories(dir / exp);
    std::ofstream(dir / exp / "summary.json") << s.dump();
  }
};

json run(const std::string& name, const std::string& metrics, json final_values = json::object()) {
  return {{"name", name}, {"label", name}, {"metrics", metrics}, {"final", std::move(final_values)}};
}

TEST(ExperimentsSection, TrainingChartPlotsCrossEntropyForEveryRun) {
  Folder f;
  std::vector<json> dense, moe;
  for (int s = 1; s <= 30; ++s) {
    const double ce = 5.0 - 0.05 * s;
    dense.push_back({{"step", s}, {"loss", ce}, {"ce", ce}, {"aux", 0.0}});
    // Same cross-entropy; the MoE's optimised loss adds a large balance loss.
    moe.push_back({{"step", s}, {"loss", ce + 1.0}, {"ce", ce}, {"aux", 1.0}, {"load_max_over_mean", {{"0", 1.2}}}});
  }
  f.metrics("x", "dense.jsonl", dense);
  f.metrics("x", "moe.jsonl", moe);
  f.summary("x", {{"experiment", "x"}, {"runs", json::array({run("dense", "dense.jsonl"), run("moe", "moe.jsonl")})}});
  ReportInputs in;
  in.experiments = load_experiments(f.dir.string());
  const std::string page = render_report(in);
  const std::string svg = svg_with(page, "training cross-entropy");
  ASSERT_FALSE(svg.empty()) << "no training cross-entropy chart";
  EXPECT_NE(svg.find("cross-entropy (nats per byte)"), std::string::npos);  // the y label says what is plotted
  EXPECT_NE(svg.find("balance losses left out"), std::string::npos);        // and the title that aux is not in it
  const std::vector<std::string> lines = polyline_points(svg);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], lines[1]) << "equal cross-entropy must draw the same curve, whatever the balance loss";
  EXPECT_NE(page.find("like with like"), std::string::npos);
}

TEST(ExperimentsSection, MissingFinalValuesShowNa) {
  Folder f;
  f.metrics("x", "a.jsonl", {{{"step", 1}, {"ce", 5.0}, {"val_bpb", 7.0}}});
  f.summary("x", {{"experiment", "x"},
                  {"runs", json::array({run("a", "a.jsonl", {{"val_bpb", 7.0}, {"load_max_over_mean", nullptr}}),
                                        run("b", "a.jsonl", {{"ms_per_step", 3.5}})})}});
  ReportInputs in;
  in.experiments = load_experiments(f.dir.string());
  const std::string page = render_report(in);
  // Run a has no ms_per_step, b has no val_bpb, a's load is null: three empty cells, each "n/a".
  size_t na = 0;
  for (size_t p = page.find("<td>n/a</td>"); p != std::string::npos; p = page.find("<td>n/a</td>", p + 1)) ++na;
  EXPECT_EQ(na, 4u);  // b also lacks load_max_over_mean
  EXPECT_EQ(page.find("&#8212;"), std::string::npos);
}

TEST(ExperimentsSection, DateCommandAndDifferingSettingsAreShown) {
  Folder f;
  f.metrics("a", "m.jsonl", {{{"step", 1}, {"ce", 5.0}, {"val_bpb", 7.0}}});
  f.metrics("b", "m.jsonl", {{{"step", 1}, {"ce", 5.0}, {"val_bpb", 7.0}}});
  f.summary("a", {{"experiment", "a"}, {"created", "2025-01-02T03:04:05Z"}, {"command", "moe experiment a --steps 600"},
                  {"settings", {{"steps", 600}, {"seed", 1}}}, {"runs", json::array({run("r", "m.jsonl")})}});
  // An older summary: no date or command, other steps.
  f.summary("b", {{"experiment", "b"}, {"settings", {{"steps", 300}, {"seed", 1}}}, {"runs", json::array({run("r", "m.jsonl")})}});
  ReportInputs in;
  in.experiments = load_experiments(f.dir.string());
  ASSERT_EQ(in.experiments.size(), 2u);
  EXPECT_EQ(experiment_when(in.experiments[0]), "2025-01-02 03:04 UTC");
  EXPECT_EQ(experiment_when(in.experiments[1]).rfind("date not recorded (summary.json written 20", 0), 0u);
  const std::string page = render_report(in);
  EXPECT_NE(page.find("Run 2025-01-02 03:04 UTC with <code><span class=\"nw\">moe</span> <span class=\"nw\">experiment</span> "
                      "<span class=\"nw\">a</span> <span class=\"nw\">--steps 600</span></code>"),
            std::string::npos);
  EXPECT_NE(page.find("Run date not recorded (summary.json written "), std::string::npos);
  EXPECT_NE(page.find("command not recorded, settings: seed 1, steps 300"), std::string::npos);
  EXPECT_NE(page.find("not run with the same settings"), std::string::npos);
  EXPECT_NE(page.find("<b>steps</b>: 600 (a); 300 (b)"), std::string::npos);
  EXPECT_EQ(page.find("<b>seed</b>"), std::string::npos);  // the same in both: not listed
  // One experiment alone has nothing to differ from.
  in.experiments = load_experiments(f.dir.string(), {"a"});
  EXPECT_EQ(render_report(in).find("not run with the same settings"), std::string::npos);
}

TEST(ExperimentsSection, CommandsWrapOnlyBetweenFlags) {
  const std::string cmd = "moe experiment balance --data out/dense-vs-moe --eval_every 25 --resume --title 'a  <b>'";
  const std::string h = detail::command_html(cmd);
  EXPECT_NE(h.find("<span class=\"nw\">--data out/dense-vs-moe</span>"), std::string::npos) << h;
  EXPECT_NE(h.find("<span class=\"nw\">--eval_every 25</span> <span class=\"nw\">--resume</span>"), std::string::npos) << h;
  // The text is the command, spaces and all.
  const std::string text = std::regex_replace(h, std::regex("<[^>]*>"), "");
  EXPECT_EQ(text, "moe experiment balance --data out/dense-vs-moe --eval_every 25 --resume --title &#39;a  &lt;b&gt;&#39;");
}

TEST(ExperimentsSection, OnlyPicksNamedExperimentsInTheGivenOrder) {
  Folder f;
  for (const char* e : {"alpha", "beta", "gamma"}) {
    f.metrics(e, "m.jsonl", {{{"step", 1}, {"ce", 5.0}}});
    f.summary(e, {{"experiment", std::string("exp-") + e}, {"runs", json::array({run("r", "m.jsonl")})}});
  }
  auto names = [&](const std::vector<std::string>& only) {
    std::string out;
    for (const Experiment& x : load_experiments(f.dir.string(), only)) out += fs::path(x.dir).filename().string() + " ";
    return out;
  };
  EXPECT_EQ(names({}), "alpha beta gamma ");
  EXPECT_EQ(names({"gamma", "alpha"}), "gamma alpha ");
  EXPECT_EQ(names({"exp-beta", "beta"}), "beta ");  // by the summary's name too; once each
  try {
    load_experiments(f.dir.string(), {"alpha", "delta"});
    FAIL() << "an unknown name must be an error";
  } catch (const InvalidInput& e) {
    EXPECT_NE(std::string(e.what()).find("--only delta: no such experiment"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("(found: alpha, beta, gamma)"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace moe::report
