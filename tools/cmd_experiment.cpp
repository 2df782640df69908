// `moe experiment NAME`: flags and the closing table; the runs are in src/train/experiments.cpp.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "commands.h"
#include "moe/experiments.h"
#include "util/format.h"

namespace moe::cli {

Run add_experiment(CLI::App& app) {
  auto o = std::make_shared<ExperimentOptions>();
  auto name = std::make_shared<std::string>();
  std::string help = "Training experiments (JSONL + SVG per run, summary.json per experiment):";
  for (const auto& n : experiment_names()) help += "\n  " + n + ": " + experiment_description(n);
  CLI::App* c = app.add_subcommand("experiment", help);
  c->add_option("name", *name, "dense-vs-moe, balance, capacity, routers, or all")->required();
  c->add_option("--data", o->data_dir, "Corpus directory from `moe data`")->capture_default_str();
  c->add_option("--out", o->out_dir, "Output directory (one folder per experiment)")->capture_default_str();
  c->add_option("--steps", o->steps, "Updates per run")->capture_default_str();
  c->add_option("--batch", o->batch, "Sequences per update")->capture_default_str();
  c->add_option("--seq", o->seq, "Bytes per sequence (also the model's context)")->capture_default_str();
  c->add_option("--lr", o->lr, "Peak learning rate")->capture_default_str();
  c->add_option("--eval_every", o->eval_every, "Validation every n updates")->capture_default_str();
  c->add_option("--eval_windows", o->eval_windows, "Validation sequences per evaluation (0 = all)")->capture_default_str();
  c->add_option("--emb_dim", o->d_model, "Model width")->capture_default_str();
  c->add_option("--n_layers", o->n_layers, "Blocks")->capture_default_str();
  c->add_option("--n_heads", o->n_heads, "Attention heads")->capture_default_str();
  c->add_option("--num_experts", o->n_experts, "Experts per MoE layer")->capture_default_str();
  c->add_option("--hidden_dim", o->expert_hidden, "Expert width")->capture_default_str();
  c->add_option("--top_k", o->top_k, "Experts per token")->capture_default_str();
  c->add_option("--seed", o->seed, "Seed (same for every run)")->capture_default_str();
  c->add_option("--threads", o->threads, "Threads (0 = all)")->capture_default_str();
  c->add_flag("--resume", o->resume, "Continue / reuse runs already in --out");
  c->add_flag("--overwrite", o->overwrite, "Retrain runs already in --out from scratch");
  c->add_flag_callback("--no_progress", [&v = o->progress] { v = false; }, "No progress lines");
  return [o, name, c]() -> int {
    if (!c->parsed()) return 0;
    std::vector<std::string> todo;
    if (*name == "all") {
      todo = experiment_names();
    } else {
      todo.push_back(*name);
    }
    for (const std::string& n : todo) {
      const nlohmann::json s = run_experiment(n, *o);
      std::printf("\n== %s: %s\n", n.c_str(), s["description"].get<std::string>().c_str());
      std::vector<std::vector<std::string>> rows;
      for (const auto& row : s["table"]) rows.push_back(row.get<std::vector<std::string>>());
      std::fputs(util::text_table(rows).c_str(), stdout);
      for (const auto& note : s["notes"]) std::printf("  %s\n", note.get<std::string>().c_str());
      std::printf("  -> %s/%s/summary.json\n", o->out_dir.c_str(), n.c_str());
    }
    return 0;
  };
}

}  // namespace moe::cli
