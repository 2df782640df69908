// The HTML report: one self-contained page (inline CSS and SVG, no scripts, no external assets)
// showing the routing analysis (include/moe/analysis.h), experiment summaries (loss, validation
// bits per byte and expert load over training), the trained model's size and generation samples.
// How to read it: docs/analysis.md.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "moe/gpt.h"

namespace moe::report {

// One experiment: <dir>/<name>/summary.json and the metrics of its runs.
struct Experiment {
  std::string dir;                                 // the experiment's folder
  nlohmann::json summary;                          // summary.json as read
  std::vector<std::vector<nlohmann::json>> metrics;  // [runs] metrics.jsonl records (empty if unreadable)
  std::vector<std::string> warnings;               // e.g. a metrics file that could not be read
  std::string written;                             // summary.json's modification time, UTC ISO 8601
};

// Every <dir>/*/summary.json, sorted by folder name, or only the experiments named in `only`
// (folder name or "experiment" field), in that order; metrics paths are resolved against the
// summary's folder when relative. Throws InvalidInput("[report] ...") for a missing dir, a name of
// `only` that is not there (listing those that are), or a summary that is not valid JSON or lacks "runs".
std::vector<Experiment> load_experiments(const std::string& dir, const std::vector<std::string>& only = {});

// When the experiment ran, for people: "2025-06-01 12:34 UTC" from summary.json's "created", or
// "date not recorded (summary.json written 2025-06-01 12:34 UTC)" for summaries that lack it.
std::string experiment_when(const Experiment& x);

// The model section's data from a config: the config itself, parameters total/active, weight
// bytes (f32, bf16), KV cache bytes per token and, where the estimator's whole-model counter
// describes this architecture exactly, its per-part breakdown.
nlohmann::json model_info_json(const GptConfig& config);

struct ReportInputs {
  std::string title = "moe.cpp report";
  nlohmann::json analysis;                 // analysis_to_json output, or null
  std::vector<Experiment> experiments;
  nlohmann::json model;                    // model_info_json output, or null
  nlohmann::json samples;                  // [{"domain", "prompt", "text"}], or null
  std::string command;                     // shown in the footer (how the report was made)
};

// The whole page. Throws InvalidInput("[report] <section>: ...") when an input lacks a field.
std::string render_report(const ReportInputs& inputs);
// render_report written atomically (parent folders created).
void write_report(const std::string& path, const ReportInputs& inputs);

// HTML text/attribute escaping (& < > " '); drops control characters except \n and \t, and
// replaces invalid UTF-8 with U+FFFD.
std::string html_escape(std::string_view s);
// Background colour of expert e of n: a fixed palette up to 16 experts, HSL steps beyond.
std::string expert_colour(int e, int n_experts);

}  // namespace moe::report
