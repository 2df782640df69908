// `moe estimate`: the reference estimator's flags, its plot's sweep, and whole-model counts from
// a Hugging Face config.json.
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "moe/arch.h"
#include "moe/atomic_file.h"
#include "moe/dtype.h"
#include "moe/error.h"
#include "moe/estimate.h"
#include "moe/model_count.h"
#include "util/json_file.h"

namespace moe::cli {

namespace {

struct EstimateFlags {
  int64_t emb_dim = 0;
  int64_t hidden_dim = 0;
  std::string ffn_type = "swiglu";
  int64_t num_experts = 8;
  int64_t top_k = 2;
  std::string dtype = "bf16";
  bool match_dense = false;
  std::string plot;
  std::string csv;
  int64_t max_experts = 512;
  bool no_match_dense = false;
  bool no_log = false;
  std::string config;
  int64_t context = 0;
  bool json = false;
  bool tensors = false;
};

// The checkpoint's tensors (names and shapes), one per line or as JSON.
int run_tensors(const EstimateFlags& f) {
  const nlohmann::json config = util::read_json_file(f.config, "[config]");
  const std::vector<arch::TensorSpec> tensors = arch::checkpoint_tensors(config);
  if (f.json) {
    nlohmann::json list = nlohmann::json::array();
    for (const arch::TensorSpec& t : tensors) list.push_back({{"name", t.name}, {"shape", t.shape}});
    std::cout << nlohmann::json{{"config", f.config}, {"model_type", config.at("model_type")}, {"tensors", list}}.dump(2)
              << "\n";
  } else {
    for (const arch::TensorSpec& t : tensors) std::cout << t.name << " " << shape_str(t.shape) << "\n";
  }
  return 0;
}

int run_model(const EstimateFlags& f) {
  estimate::ModelArch arch = estimate::model_arch_from_hf_config(util::read_json_file(f.config, "[config]"));
  estimate::ModelCount count = estimate::count_model(arch, f.dtype, f.context);
  if (f.json) {
    nlohmann::json j = estimate::model_report_json(count);
    j["config"] = f.config;
    std::cout << j.dump(2) << "\n";
  } else {
    std::cout << estimate::format_model_report(count, f.config);
  }
  return 0;
}

int run_layer(const EstimateFlags& f, CLI::App& cmd) {
  if (cmd.count("--emb_dim") == 0 || cmd.count("--hidden_dim") == 0) {
    throw InvalidInput("[estimate] --emb_dim and --hidden_dim are required (or give --config config.json)");
  }
  estimate::FfnConfig c;
  c.emb_dim = f.emb_dim;
  c.hidden_dim = f.hidden_dim;
  c.ffn_type = estimate::parse_ffn_type(f.ffn_type);
  c.num_experts = f.num_experts;
  c.top_k = f.top_k;
  c.dtype = f.dtype;
  c.match_dense = f.match_dense;
  const estimate::FfnEstimate e = estimate::estimate_ffn(c);

  // Files first, then the report: a bad path fails before anything is printed.
  std::string saved;
  if (!f.plot.empty() || !f.csv.empty()) {
    estimate::SweepConfig s{c.emb_dim, c.hidden_dim, c.ffn_type, c.top_k, f.max_experts, !f.no_match_dense};
    const estimate::Sweep sweep = estimate::sweep_experts(s);
    for (const estimate::SweepSkip& skip : sweep.skipped) {
      std::cerr << "moe estimate: sweep skips num_experts=" << skip.num_experts << ": " << skip.reason << "\n";
    }
    if (!f.plot.empty()) {
      write_file_atomic(f.plot, estimate::sweep_svg(s, sweep, !f.no_log));
      saved += "Saved plot to " + f.plot + "\n";
    }
    if (!f.csv.empty()) {
      write_file_atomic(f.csv, estimate::sweep_csv(s, sweep));
      saved += "Saved data to " + f.csv + "\n";
    }
  }
  if (f.json) {
    std::cout << estimate::ffn_report_json(c, e).dump(2) << "\n";
    std::cerr << saved;
  } else {
    std::cout << estimate::format_ffn_report(c, e) << saved;
  }
  return 0;
}

}  // namespace

Run add_estimate(CLI::App& app) {
  auto f = std::make_shared<EstimateFlags>();
  CLI::App* cmd = app.add_subcommand("estimate", "Parameter and memory estimate: one FFN layer dense vs MoE, "
                                                 "or a whole model from a Hugging Face config.json");
  cmd->footer(
      "Layer mode reproduces memory_estimator_moe.py (rasbt/LLMs-from-scratch); --plot/--csv add the sweep of\n"
      "plot_memory_estimates_moe.py. Model mode (--config) counts every part of the model; --tensors lists its\n"
      "checkpoint tensors instead. See docs/estimator.md.");
  auto* emb = cmd->add_option("--emb_dim", f->emb_dim, "Model embedding dimension (layer mode, required)");
  auto* hid = cmd->add_option("--hidden_dim", f->hidden_dim, "Dense FFN intermediate size (layer mode, required)");
  auto* ffn = cmd->add_option("--ffn_type", f->ffn_type, "gelu or swiglu")->capture_default_str();
  auto* ne = cmd->add_option("--num_experts", f->num_experts, "Number of experts")->capture_default_str();
  auto* tk = cmd->add_option("--top_k", f->top_k, "Experts per token")->capture_default_str();
  cmd->add_option("--dtype", f->dtype, "fp32, bf16, fp16, fp8 or int8 (bytes per weight, KV and activation)")
      ->capture_default_str();
  auto* md = cmd->add_flag("--match_dense", f->match_dense,
                           "Set the per-expert width so MoE total params ~= dense FFN params (router included)");
  auto* plot = cmd->add_option("--plot", f->plot, "Write the expert-count sweep as an SVG chart to this file");
  auto* csv = cmd->add_option("--csv", f->csv, "Write the expert-count sweep as CSV to this file");
  auto* mx = cmd->add_option("--max_experts", f->max_experts, "Sweep: largest expert count on the x axis")
                 ->capture_default_str();
  auto* nmd = cmd->add_flag("--no_match_dense", f->no_match_dense,
                            "Sweep: keep --hidden_dim per expert instead of matching the dense size");
  auto* nl = cmd->add_flag("--no_log", f->no_log, "Sweep plot: linear y axis instead of log");
  auto* cfg = cmd->add_option("--config", f->config, "Hugging Face config.json: count the whole model");
  auto* ctx = cmd->add_option("--context", f->context, "Model mode: KV-cache size for this many tokens")
                  ->capture_default_str();
  auto* tensors = cmd->add_flag("--tensors", f->tensors,
                                "Model mode: list the checkpoint's tensors (Hub names and shapes) instead of counting");
  cmd->add_flag("--json", f->json, "Print one JSON object instead of text");
  for (CLI::Option* o : {emb, hid, ffn, ne, tk, md, plot, csv, mx, nmd, nl}) cfg->excludes(o);
  ctx->needs(cfg);
  tensors->needs(cfg);
  tensors->excludes(ctx);

  return [f, cmd, plot, csv, mx, nmd, nl]() -> int {
    if (plot->count() == 0 && csv->count() == 0) {
      for (CLI::Option* o : {mx, nmd, nl}) {
        if (o->count() > 0) throw InvalidInput("[estimate] " + o->get_name() + " only applies with --plot or --csv");
      }
    }
    if (f->tensors) return run_tensors(*f);
    if (!f->config.empty()) return run_model(*f);
    return run_layer(*f, *cmd);
  };
}

}  // namespace moe::cli
