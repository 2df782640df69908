// The report page: head with inline CSS, contents, the sections, footer; written atomically.

#include "moe/atomic_file.h"
#include "moe/error.h"
#include "report_internal.h"

namespace moe::report {

namespace detail {

namespace {

constexpr const char* kCss = R"(
:root { --ink: #1d2430; --muted: #5b6675; --rule: #e3e7ee; --accent: #1f77b4; --bg: #fbfcfe; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
  font: 15px/1.55 "DejaVu Sans", "Segoe UI", Arial, sans-serif; }
main { max-width: 980px; margin: 0 auto; padding: 28px 28px 60px; background: white;
  border-left: 1px solid var(--rule); border-right: 1px solid var(--rule); min-height: 100vh; }
h1 { font-size: 28px; margin: 0 0 4px; letter-spacing: -0.01em; }
.sub { color: var(--muted); margin: 0 0 18px; }
h2 { font-size: 22px; margin: 40px 0 10px; padding-bottom: 6px; border-bottom: 2px solid var(--rule); }
h3 { font-size: 18px; margin: 28px 0 8px; }
h4 { font-size: 15px; margin: 20px 0 6px; color: var(--muted); text-transform: uppercase; letter-spacing: 0.04em; }
nav.toc { background: #f3f6fa; border: 1px solid var(--rule); border-radius: 6px; padding: 10px 16px; }
nav.toc ul { margin: 4px 0; padding-left: 18px; }
nav.toc a { color: var(--accent); text-decoration: none; }
figure { margin: 16px 0 22px; overflow-x: auto; }
figure svg { display: block; max-width: 100%; height: auto; }
figcaption, .caption, caption { color: var(--muted); font-size: 13px; margin-top: 6px; text-align: left; caption-side: bottom; }
table { border-collapse: collapse; margin: 10px 0 18px; font-size: 13.5px; }
th, td { padding: 4px 10px; border-bottom: 1px solid var(--rule); text-align: left; vertical-align: top; }
thead th { border-bottom: 2px solid #cfd6e0; background: #f6f8fb; }
tbody tr:nth-child(even) { background: #fafbfd; }
table.num td { text-align: right; font-variant-numeric: tabular-nums; }
table.num td:first-child { text-align: left; }
table.kv th { font-weight: normal; color: var(--muted); padding-right: 24px; }
table.tokens td { text-align: center; min-width: 58px; }
table.tokens code { font-size: 14px; background: #f1f3f7; padding: 0 4px; border-radius: 3px; }
table.tokens small { color: var(--muted); font-size: 11px; white-space: nowrap; }
.scroll { overflow-x: auto; }
.sw { display: inline-block; width: 12px; height: 12px; border-radius: 2px; margin-right: 5px;
  vertical-align: -1px; border: 1px solid rgba(0,0,0,0.25); }
.legend { display: flex; flex-wrap: wrap; gap: 4px 14px; font-size: 12.5px; color: var(--muted); margin: 6px 0 10px; }
.sample { display: flex; gap: 10px; margin: 8px 0; }
.sample .dom { flex: 0 0 34px; font-weight: bold; color: var(--muted); padding-top: 6px; font-size: 13px; }
pre { margin: 0; white-space: pre-wrap; word-break: break-word; font: 13px/1.7 "DejaVu Sans Mono", Consolas, monospace; }
pre.ct { flex: 1; background: #fcfcfc; border: 1px solid var(--rule); border-radius: 4px; padding: 6px 8px; }
pre.gen { background: #f7f8fa; border: 1px solid var(--rule); border-radius: 4px; padding: 8px 10px; }
pre.gen b { color: var(--accent); }
.notes li { margin: 3px 0; }
.warn { color: #a04000; font-size: 13px; }
.meta { color: var(--muted); font-size: 13px; margin-top: -4px; }
.meta code { font-size: 12px; }
code .nw { white-space: nowrap; }
footer { margin-top: 48px; color: var(--muted); font-size: 12.5px; border-top: 1px solid var(--rule); padding-top: 10px; }
code { font: 13px "DejaVu Sans Mono", Consolas, monospace; }
)";

// "temperature 0.7, top-k 40, seed 3, up to 200 new bytes" from what the sample recorded.
std::string sampling_settings(const json& x) {
  std::string o;
  const std::pair<const char*, const char*> keys[] = {
      {"temperature", "temperature "}, {"top_k", "top-k "}, {"top_p", "top-p "}, {"seed", "seed "}, {"max_new_tokens", "up to "}};
  for (const auto& [key, label] : keys) {
    if (!x.contains(key)) continue;
    o += (o.empty() ? "Sampled with " : ", ") + std::string(label) + cell(x[key]);
    if (std::string(key) == "max_new_tokens") o += " new bytes";
  }
  return o.empty() ? "Sampling settings not recorded." : o + ".";
}

}  // namespace

std::string model_section(const json& m, Toc& toc) {
  if (m.is_null()) return "";
  toc.push_back({"model", "The model"});
  std::string o = "<section id=\"model\"><h2>The model</h2><table class=\"kv\"><tbody>";
  if (m.contains("summary") && m["summary"].is_array())
    for (const json& row : m["summary"])
      if (row.is_array() && row.size() == 2) o += "<tr><th>" + cell(row[0]) + "</th><td>" + cell(row[1]) + "</td></tr>";
  const int64_t total = need(m, "params_total", "model").get<int64_t>();
  const int64_t active = need(m, "params_active", "model").get<int64_t>();
  o += "<tr><th>parameters</th><td>" + fmt_int(total) + " total, " + fmt_int(active) + " active per token (" +
       fmt_pct(total > 0 ? static_cast<double>(active) / static_cast<double>(total) : 0) + ")</td></tr>";
  if (m.contains("weight_bytes"))
    o += "<tr><th>weights</th><td>" + fmt_bytes(m["weight_bytes"].value("f32", 0.0)) + " in f32, " +
         fmt_bytes(m["weight_bytes"].value("bf16", 0.0)) + " in bf16</td></tr>";
  if (m.contains("kv_bytes_per_token")) {
    const double f32 = m["kv_bytes_per_token"].value("f32", 0.0);
    o += "<tr><th>KV cache</th><td>" + (f32 > 0 ? fmt_bytes(f32) + " per token in f32 (" +
                                                      fmt_bytes(m["kv_bytes_per_token"].value("bf16", 0.0)) + " in bf16); " +
                                                      fmt_bytes(m.value("kv_bytes_context_f32", 0.0)) + " for the full context in f32"
                                                : std::string("none (bidirectional encoder)")) + "</td></tr>";
  }
  o += "</tbody></table>";
  if (m.contains("parts") && m["parts"].is_array() && !m["parts"].empty()) {
    o += "<table class=\"num\"><thead><tr><th>part</th><th>total</th><th>active</th></tr></thead><tbody>";
    for (const json& p : m["parts"])
      o += "<tr><td>" + cell(p.value("name", json("?"))) + "</td><td>" + cell(p.value("total", json(0))) + "</td><td>" +
           cell(p.value("active", json(0))) + "</td></tr>";
    o += "</tbody></table><p class=\"caption\">Parameters by part, from the whole-model estimator "
         "(<code>include/moe/model_count.h</code>); active = what one token uses.</p>";
  }
  if (m.contains("estimator") && m["estimator"].is_string()) o += "<p class=\"caption\">" + cell(m["estimator"]) + ".</p>";
  return o + "</section>";
}

std::string samples_section(const json& s, Toc& toc) {
  if (s.is_null()) return "";
  if (!s.is_array()) throw InvalidInput("[report] samples: expected an array of {\"domain\", \"prompt\", \"text\"}");
  toc.push_back({"samples", "Generation samples"});
  std::string o = "<section id=\"samples\"><h2>Generation samples</h2><p class=\"caption\">Text the trained model wrote "
                  "after a prompt from each domain. The prompt is in bold; the rest is the model&#8217;s.</p>";
  for (const json& x : s) {
    o += "<h4>" + html_escape(need(x, "domain", "samples").get<std::string>()) + "</h4><pre class=\"gen\"><b>" +
         html_escape(x.value("prompt", "")) + "</b>" + html_escape(need(x, "text", "samples").get<std::string>()) + "</pre>";
    o += "<p class=\"meta\">" + sampling_settings(x) + "</p>";
  }
  return o + "</section>";
}

}  // namespace detail

std::string render_report(const ReportInputs& in) {
  using namespace detail;
  Toc toc;
  std::string body;
  try {
    body += model_section(in.model, toc);
    body += experiments_section(in.experiments, toc);
    body += analysis_section(in.analysis, toc);
    body += samples_section(in.samples, toc);
  } catch (const nlohmann::json::exception& e) {
    throw InvalidInput(std::string("[report] an input has a field of the wrong type: ") + e.what());
  }
  std::string o = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                  "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>" +
                  html_escape(in.title) + "</title>\n<style>" + kCss + "</style>\n</head>\n<body>\n<main>\n";
  o += "<h1>" + html_escape(in.title) + "</h1>\n<p class=\"sub\">Mixture-of-Experts on a CPU: what the model learned, "
       "how its experts are used and what they specialise in.</p>\n";
  if (toc.empty()) {
    o += "<p>Nothing to show: give --analysis, --experiments, --checkpoint or --samples.</p>\n";
  } else {
    o += "<nav class=\"toc\"><strong>Contents</strong><ul>";
    for (size_t i = 0; i < toc.size(); ++i) {
      const bool first_sub = toc[i].sub && (i == 0 || !toc[i - 1].sub);
      const bool last_sub = toc[i].sub && (i + 1 == toc.size() || !toc[i + 1].sub);
      if (first_sub) o += "<ul>";
      if (!toc[i].sub && i > 0) o += "</li>";
      o += "<li><a href=\"#" + toc[i].id + "\">" + toc[i].title + "</a>";
      if (toc[i].sub) o += "</li>";
      if (last_sub) o += "</ul>";
    }
    o += "</li></ul></nav>\n";
  }
  o += body;
  o += "\n<footer>Made by moe.cpp";
  if (!in.command.empty()) o += ": " + command_html(in.command);
  o += ". Self-contained: inline CSS and SVG, no scripts, no external files.</footer>\n</main>\n</body>\n</html>\n";
  return o;
}

void write_report(const std::string& path, const ReportInputs& in) {
  write_file_atomic(path, render_report(in));
}

}  // namespace moe::report
