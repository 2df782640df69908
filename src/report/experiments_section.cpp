// Experiment summaries in the report: validation bits per byte, training cross-entropy and expert
// load over training for every run, the experiment's table and notes.
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>

#include "moe/error.h"
#include "moe/svg_chart.h"
#include "report_internal.h"
#include "util/format.h"
#include "util/json_file.h"

namespace moe::report {

namespace fs = std::filesystem;

namespace {

Experiment load_experiment(const fs::path& f) {
  Experiment x;
  x.dir = f.string();
  const std::string path = (f / "summary.json").string();
  x.summary = util::read_json_file(path, "[report]");
  if (!x.summary.is_object() || !x.summary.contains("runs") || !x.summary["runs"].is_array())
    throw InvalidInput("[report] " + path + ": needs an object with a \"runs\" array");
  std::error_code ec;
  const auto mtime = fs::last_write_time(path, ec);
  if (!ec) x.written = util::utc_timestamp(std::chrono::system_clock::to_time_t(std::chrono::file_clock::to_sys(mtime)));
  for (const auto& run : x.summary["runs"]) {
    std::vector<nlohmann::json> recs;
    const std::string m = run.is_object() ? run.value("metrics", "") : "";
    if (m.empty()) {
      x.metrics.push_back(recs);
      continue;
    }
    const fs::path mp = fs::path(m).is_absolute() ? fs::path(m) : f / m;
    std::ifstream in(mp);
    if (!in) {
      x.warnings.push_back("cannot read " + mp.string());
    } else {
      std::string line;
      int64_t n = 0, bad = 0;
      while (std::getline(in, line)) {
        ++n;
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        nlohmann::json r = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
        if (r.is_object() && r.contains("step") && r["step"].is_number()) recs.push_back(std::move(r));
        else ++bad;
      }
      if (bad > 0) x.warnings.push_back(mp.string() + ": " + std::to_string(bad) + " of " + std::to_string(n) + " lines skipped (not a metrics record)");
    }
    x.metrics.push_back(std::move(recs));
  }
  return x;
}

}  // namespace

std::vector<Experiment> load_experiments(const std::string& dir, const std::vector<std::string>& only) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw InvalidInput("[report] --experiments " + dir + ": not a directory");
  std::vector<fs::path> folders;
  for (const auto& entry : fs::directory_iterator(dir, ec))
    if (entry.is_directory() && fs::exists(entry.path() / "summary.json")) folders.push_back(entry.path());
  std::sort(folders.begin(), folders.end());
  std::vector<Experiment> all;
  for (const fs::path& f : folders) all.push_back(load_experiment(f));
  if (only.empty()) return all;
  std::vector<Experiment> out;
  for (const std::string& name : only) {
    const auto it = std::find_if(all.begin(), all.end(), [&](const Experiment& x) {
      return fs::path(x.dir).filename() == name || x.summary.value("experiment", "") == name;
    });
    if (it == all.end()) {
      std::string found;
      for (const fs::path& f : folders) found += (found.empty() ? "" : ", ") + f.filename().string();
      throw InvalidInput("[report] --only " + name + ": no such experiment in " + dir + " (found: " +
                         (found.empty() ? "none" : found) + ")");
    }
    if (std::none_of(out.begin(), out.end(), [&](const Experiment& x) { return x.dir == it->dir; })) out.push_back(*it);
  }
  return out;
}

std::string experiment_when(const Experiment& x) {
  if (x.summary.contains("created") && x.summary["created"].is_string())
    return util::readable_timestamp(x.summary["created"].get<std::string>());
  return "date not recorded" + (x.written.empty() ? std::string() : " (summary.json written " + util::readable_timestamp(x.written) + ")");
}

namespace detail {

namespace {

// A centred moving average over `w` points (w odd), shrinking at the ends.
std::vector<double> smooth(const std::vector<double>& y, size_t w) {
  if (w <= 1) return y;
  std::vector<double> out(y.size());
  const size_t h = w / 2;
  for (size_t i = 0; i < y.size(); ++i) {
    const size_t a = i >= h ? i - h : 0, b = std::min(y.size(), i + h + 1);
    double s = 0;
    for (size_t j = a; j < b; ++j) s += y[j];
    out[i] = s / static_cast<double>(b - a);
  }
  return out;
}

using Extract = std::function<bool(const json&, double&)>;

// One chart over all runs; "" when no run has the field.
std::string chart(const Experiment& x, const std::string& title, const std::string& y_label, const Extract& get,
                  bool smoothed, bool y_log, std::string* smoothing_note, int& chart_no) {
  plot::ChartSpec spec;
  spec.title = title;
  spec.x_label = "step";
  spec.y_label = y_label;
  spec.width = 760;
  spec.height = 400;
  const json& runs = x.summary["runs"];
  bool all_positive = true;
  for (size_t r = 0; r < runs.size() && r < x.metrics.size(); ++r) {
    plot::Series s;
    s.label = runs[r].value("label", runs[r].value("name", "run " + std::to_string(r)));
    for (const json& rec : x.metrics[r]) {
      double v = 0;
      if (!get(rec, v) || !std::isfinite(v)) continue;
      s.x.push_back(rec["step"].get<double>());
      s.y.push_back(v);
      all_positive = all_positive && v > 0;
    }
    if (s.x.empty()) continue;
    if (smoothed) {
      const size_t w = std::max<size_t>(1, s.y.size() / 50) | 1;
      if (w > 1 && smoothing_note) *smoothing_note = "moving average over " + std::to_string(w) + " steps";
      s.y = smooth(s.y, w);
    }
    if (s.x.size() == 1) s.marker = plot::Marker::circle;
    spec.series.push_back(std::move(s));
  }
  if (spec.series.empty()) return "";
  spec.y_log = y_log && all_positive;
  return svg_inline(plot::render_svg(spec), "-" + std::to_string(++chart_no));  // ids unique within the page
}

bool number_field(const json& rec, const char* key, double& v) {
  const auto it = rec.find(key);
  if (it == rec.end() || !it->is_number()) return false;
  v = it->get<double>();
  return true;
}

// Mean over layers of the max/mean expert load.
bool mean_load(const json& rec, double& v) {
  const auto it = rec.find("load_max_over_mean");
  if (it == rec.end() || !it->is_object() || it->empty()) return false;
  double s = 0;
  int n = 0;
  for (const auto& [k, val] : it->items())
    if (val.is_number()) s += val.get<double>(), ++n;
  if (n == 0) return false;
  v = s / n;
  return true;
}

std::string figure(const std::string& svg, const std::string& caption) {
  if (svg.empty()) return "";
  return "<figure>" + svg + "<figcaption>" + caption + "</figcaption></figure>";
}

std::string table_html(const json& t) {
  if (!t.is_array() || t.size() < 1 || !t[0].is_array()) return "";
  std::string o = "<div class=\"scroll\"><table class=\"num\"><thead><tr>";
  for (const json& h : t[0]) o += "<th>" + cell(h) + "</th>";
  o += "</tr></thead><tbody>";
  for (size_t r = 1; r < t.size(); ++r) {
    if (!t[r].is_array()) continue;
    o += "<tr>";
    for (const json& c : t[r]) o += "<td>" + cell(c) + "</td>";
    o += "</tr>";
  }
  return o + "</tbody></table></div>";
}

// The runs' "final" values as one table (keys in first-seen order).
std::string finals_html(const json& runs) {
  std::vector<std::string> keys;
  std::set<std::string> seen;
  for (const json& r : runs)
    if (r.is_object() && r.contains("final") && r["final"].is_object())
      for (const auto& [k, v] : r["final"].items())
        if (seen.insert(k).second) keys.push_back(k);
  if (keys.empty()) return "";
  std::string o = "<div class=\"scroll\"><table class=\"num\"><thead><tr><th>run</th>";
  for (const auto& k : keys) o += "<th>" + html_escape(k) + "</th>";
  o += "</tr></thead><tbody>";
  for (const json& r : runs) {
    o += "<tr><td>" + html_escape(r.value("label", r.value("name", "?"))) + "</td>";
    const json fin = r.is_object() && r.contains("final") ? r["final"] : json::object();
    for (const auto& k : keys) o += "<td>" + cell(fin.contains(k) ? fin[k] : json()) + "</td>";
    o += "</tr>";
  }
  return o + "</tbody></table></div><p class=\"caption\">Final values of each run.</p>";
}

// When and how the experiment ran: its date and the command (or the settings) it ran with.
std::string provenance_html(const Experiment& x) {
  const json& s = x.summary;
  std::string o = "<p class=\"meta\">Run " + html_escape(experiment_when(x));
  if (s.contains("command") && s["command"].is_string()) {
    o += " with " + command_html(s["command"].get<std::string>());
  } else if (s.contains("settings") && s["settings"].is_object()) {
    std::string list;
    for (const auto& [k, v] : s["settings"].items()) list += (list.empty() ? "" : ", ") + html_escape(k) + " " + cell(v);
    o += "; command not recorded, settings: " + list;
  } else {
    o += "; command and settings not recorded";
  }
  return o + ".</p>";
}

// The settings in which the experiments shown differ ("" when they agree): a sign that some of
// them come from an earlier run with other flags.
std::string settings_mismatch_html(const std::vector<Experiment>& xs) {
  std::vector<std::string> keys;
  for (const Experiment& x : xs)
    if (x.summary.contains("settings") && x.summary["settings"].is_object())
      for (const auto& [k, v] : x.summary["settings"].items())
        if (std::find(keys.begin(), keys.end(), k) == keys.end()) keys.push_back(k);
  std::string parts;
  for (const std::string& k : keys) {
    std::vector<std::pair<std::string, std::string>> values;  // (value, experiments)
    for (const Experiment& x : xs) {
      const json& st = x.summary.value("settings", json::object());
      const std::string v = st.is_object() && st.contains(k) ? cell(st[k]) : "not recorded";
      const std::string name = html_escape(x.summary.value("experiment", fs::path(x.dir).filename().string()));
      auto it = std::find_if(values.begin(), values.end(), [&](const auto& p) { return p.first == v; });
      if (it == values.end()) values.push_back({v, name});
      else it->second += ", " + name;
    }
    if (values.size() < 2) continue;
    parts += "<li><b>" + html_escape(k) + "</b>: ";
    for (size_t i = 0; i < values.size(); ++i) parts += (i ? "; " : "") + values[i].first + " (" + values[i].second + ")";
    parts += "</li>";
  }
  if (parts.empty()) return "";
  return "<div class=\"warn\"><p>These experiments were not run with the same settings, so some may come from an "
         "earlier run (each one&#8217;s date and command are under its title; <code>moe report --only NAME,&#8230;</code> "
         "picks experiments by name):</p><ul>" + parts + "</ul></div>";
}

std::string slug(const std::string& s) {
  std::string o;
  for (char c : s) o += std::isalnum(static_cast<unsigned char>(c)) ? static_cast<char>(std::tolower(c)) : '-';
  return o;
}

}  // namespace

std::string experiments_section(const std::vector<Experiment>& xs, Toc& toc) {
  if (xs.empty()) return "";
  std::string o = "<section id=\"experiments\"><h2>Experiments</h2>" + settings_mismatch_html(xs);
  toc.push_back({"experiments", "Experiments"});
  int chart_no = 0;
  for (const Experiment& x : xs) {
    const json& s = x.summary;
    const std::string name = s.value("experiment", fs::path(x.dir).filename().string());
    const std::string title = s.value("title", name);
    toc.push_back({"exp-" + slug(name), html_escape(title), true});
    o += "<h3 id=\"exp-" + slug(name) + "\">" + html_escape(title) + "</h3>";
    if (s.contains("description") && s["description"].is_string())
      o += "<p>" + html_escape(s["description"].get<std::string>()) + "</p>";
    o += provenance_html(x);
    const std::string src = "from the runs&#8217; metrics.jsonl under <code>" + html_escape(x.dir) + "</code>";
    o += figure(chart(x, title + "\nvalidation loss", "bits per byte",
                      [](const json& r, double& v) { return number_field(r, "val_bpb", v); }, false, false, nullptr, chart_no),
                "Validation loss in bits per byte (lower is better) at each evaluation step, all runs, " + src + ".");
    // Cross-entropy, not the optimised loss: an MoE run's loss adds its balance losses, which
    // a dense run does not have, and would make the MoE look worse than it predicts.
    std::string note;
    const std::string ce = chart(x, title + "\ntraining cross-entropy (balance losses left out)", "cross-entropy (nats per byte)",
                                 [](const json& r, double& v) { return number_field(r, "ce", v); }, true, false, &note, chart_no);
    o += figure(ce, "Training cross-entropy per step" + (note.empty() ? std::string() : " (" + note + ")") +
                        ", every run alike: the MoE runs&#8217; balance losses (aux, z-loss), which they add to the loss "
                        "they optimise, are not in these curves, so MoE and dense compare like with like; " + src + ".");
    o += figure(chart(x, title + "\nexpert load", "max / mean tokens per expert", mean_load, false, false, nullptr, chart_no),
                "Expert load imbalance of the MoE runs: the busiest expert&#8217;s tokens over the mean, averaged over "
                "the MoE layers, at each step (1 = perfectly balanced). Dense runs have no curve.");
    if (s.contains("table")) o += table_html(s["table"]);
    // The raw final values only when the experiment gives no table of its own (which shows them).
    if (!s.contains("table") && s.contains("runs")) o += finals_html(s["runs"]);
    if (s.contains("notes") && s["notes"].is_array() && !s["notes"].empty()) {
      o += "<ul class=\"notes\">";
      for (const json& n : s["notes"]) o += "<li>" + (n.is_string() ? html_escape(n.get<std::string>()) : cell(n)) + "</li>";
      o += "</ul>";
    }
    for (const std::string& w : x.warnings) o += "<p class=\"warn\">" + html_escape(w) + "</p>";
  }
  return o + "</section>";
}

}  // namespace detail
}  // namespace moe::report
