// `moe report`: one self-contained HTML page from an analysis JSON, experiment summaries, the
// trained model's size and generation samples.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "commands.h"
#include "moe/error.h"
#include "moe/report.h"
#include "moe/trainer.h"
#include "util/json_file.h"

namespace moe::cli {

namespace {
struct ReportFlags {
  std::string out = "out/report.html";
  std::string analysis, experiments, samples, checkpoint, model, title = "moe.cpp report";
  std::vector<std::string> only;
};
}  // namespace

Run add_report(CLI::App& app) {
  auto f = std::make_shared<ReportFlags>();
  CLI::App* c = app.add_subcommand("report", "Write a self-contained HTML report (analysis, experiments, model, samples)");
  c->add_option("--out", f->out, "Output HTML file")->capture_default_str();
  c->add_option("--analysis", f->analysis, "Analysis JSON from `moe analyze --out`");
  auto* experiments = c->add_option("--experiments", f->experiments, "Folder whose */summary.json describe experiments");
  c->add_option("--only", f->only, "Only these experiments of --experiments, comma-separated (e.g. dense-vs-moe,balance)")
      ->delimiter(',')
      ->needs(experiments);
  c->add_option("--samples", f->samples, "Generation samples: JSON [{\"domain\", \"prompt\", \"text\"}]");
  c->add_option("--checkpoint", f->checkpoint, "Checkpoint whose model size is shown");
  c->add_option("--model", f->model, "Model JSON (as the report makes from --checkpoint) instead of a checkpoint");
  c->add_option("--title", f->title, "Page title")->capture_default_str();
  return [f, c]() -> int {
    if (!c->parsed()) return 0;
    if (!f->checkpoint.empty() && !f->model.empty()) throw InvalidInput("[report] give --checkpoint or --model, not both");
    report::ReportInputs in;
    in.title = f->title;
    std::string cmd = "moe report --out " + f->out;
    if (!f->analysis.empty()) {
      in.analysis = util::read_json_file(f->analysis, "[report]");
      cmd += " --analysis " + f->analysis;
    }
    if (!f->experiments.empty()) {
      in.experiments = report::load_experiments(f->experiments, f->only);
      cmd += " --experiments " + f->experiments;
    }
    if (!f->samples.empty()) {
      in.samples = util::read_json_file(f->samples, "[report]");
      cmd += " --samples " + f->samples;
    }
    if (!f->checkpoint.empty()) {
      in.model = report::model_info_json(load_gpt_checkpoint(f->checkpoint).config);
      cmd += " --checkpoint " + f->checkpoint;
    }
    if (!f->model.empty()) {
      in.model = util::read_json_file(f->model, "[report]");
      cmd += " --model " + f->model;
    }
    in.command = cmd;
    report::write_report(f->out, in);
    std::printf("report: %s (%zu experiments%s%s%s)\n", f->out.c_str(), in.experiments.size(),
                in.analysis.is_null() ? "" : ", routing analysis", in.model.is_null() ? "" : ", model",
                in.samples.is_null() ? "" : ", samples");
    for (const report::Experiment& x : in.experiments)  // the date shows an experiment left from an earlier run
      std::printf("  experiment %s: run %s\n", x.summary.value("experiment", x.dir).c_str(), report::experiment_when(x).c_str());
    return 0;
  };
}

}  // namespace moe::cli
