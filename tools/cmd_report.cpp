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
#include "util/format.h"
#include "util/json_file.h"

namespace moe::cli {

namespace {
struct ReportFlags {
  std::string out = "out/report.html";
  std::string analysis, experiments, samples, checkpoint, model, title = "moe.cpp report";
  std::vector<std::string> only;
};
// The command as given, every flag with its value(s), quoted for a shell: the footer's "made by".
std::string command_line(const CLI::App& c) {
  std::string cmd = "moe " + c.get_name();
  for (const CLI::Option* o : c.get_options()) {
    if (o->count() == 0 || o->get_name() == "--help") continue;
    std::string values;
    for (const std::string& v : o->results()) values += (values.empty() ? "" : ",") + v;
    cmd += " " + o->get_name() + " " + util::shell_quote(values);
  }
  return cmd;
}

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
  c->add_option("--samples", f->samples, "Generation samples: JSON [{\"domain\", \"prompt\", \"text\"}], optionally with their \"temperature\", \"top_k\", \"seed\"");
  c->add_option("--checkpoint", f->checkpoint, "Checkpoint whose model size is shown");
  c->add_option("--model", f->model, "Model JSON (as the report makes from --checkpoint) instead of a checkpoint");
  c->add_option("--title", f->title, "Page title")->capture_default_str();
  return [f, c]() -> int {
    if (!c->parsed()) return 0;
    if (!f->checkpoint.empty() && !f->model.empty()) throw InvalidInput("[report] give --checkpoint or --model, not both");
    report::ReportInputs in;
    in.title = f->title;
    if (!f->analysis.empty()) in.analysis = util::read_json_file(f->analysis, "[report]");
    if (!f->experiments.empty()) in.experiments = report::load_experiments(f->experiments, f->only);
    if (!f->samples.empty()) in.samples = util::read_json_file(f->samples, "[report]");
    if (!f->checkpoint.empty()) in.model = report::model_info_json(load_gpt_checkpoint(f->checkpoint).config);
    if (!f->model.empty()) in.model = util::read_json_file(f->model, "[report]");
    in.command = command_line(*c);
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
