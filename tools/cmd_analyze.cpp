// `moe analyze`: routing analysis of a trained MoE checkpoint over a labelled split (what the
// experts specialise in); writes JSON for `moe report`, optionally a small HTML page.
#include <omp.h>

#include <cstdio>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "moe/analysis.h"
#include "moe/atomic_file.h"
#include "moe/error.h"
#include "moe/progress.h"
#include "moe/report.h"

namespace moe::cli {

namespace {
struct AnalyzeFlags {
  AnalyzeOptions o;
  std::string out, html;
  int threads = 0;
  bool progress = true;
};
}  // namespace

Run add_analyze(CLI::App& app) {
  auto f = std::make_shared<AnalyzeFlags>();
  CLI::App* c = app.add_subcommand("analyze", "Routing analysis of an MoE checkpoint: experts by domain, mutual information, top tokens");
  c->add_option("checkpoint", f->o.checkpoint, "Checkpoint from `moe train` (file or its directory)")->required();
  c->add_option("--data", f->o.data_dir, "Corpus directory from `moe data` (<split>.txt + <split>.domain)")->required();
  c->add_option("--split", f->o.split, "Split to analyse")->capture_default_str();
  c->add_option("--max_bytes", f->o.max_bytes, "Analyse at most this many bytes of the split (0 = all)")->capture_default_str();
  c->add_option("--top_n", f->o.top_n, "Most frequent bytes listed per expert")->capture_default_str();
  c->add_option("--sample_bytes", f->o.sample_bytes, "Bytes of coloured text per domain")->capture_default_str();
  c->add_option("--out", f->out, "Write the analysis as JSON (input of `moe report --analysis`)");
  c->add_option("--html", f->html, "Write an HTML page with the analysis alone");
  c->add_option("--threads", f->threads, "Threads (0 = all)")->capture_default_str();
  c->add_flag_callback("--no_progress", [&v = f->progress] { v = false; }, "No progress line");
  return [f, c]() -> int {
    if (!c->parsed()) return 0;
    if (f->threads < 0) throw InvalidInput("[analyze] --threads must be >= 0");
    if (f->threads > 0) omp_set_num_threads(f->threads);
    std::unique_ptr<Progress> bar;
    if (f->progress) {
      f->o.on_progress = [&bar](int64_t done, int64_t total) {
        if (!bar) bar = std::make_unique<Progress>(total, "analyze");
        bar->update(done);
        if (done == total) bar->finish();
      };
    }
    const RoutingAnalysis a = analyze_checkpoint(f->o);
    const nlohmann::json j = analysis_to_json(a);
    std::fputs(format_analysis_summary(a).c_str(), stdout);
    if (!f->out.empty()) {
      write_file_atomic(f->out, j.dump(1) + "\n");
      std::printf("analysis: %s\n", f->out.c_str());
    }
    if (!f->html.empty()) {
      report::ReportInputs in;
      in.title = "moe.cpp routing analysis";
      in.analysis = j;
      in.command = "moe analyze " + f->o.checkpoint + " --data " + f->o.data_dir + " --split " + f->o.split;
      report::write_report(f->html, in);
      std::printf("html: %s\n", f->html.c_str());
    }
    return 0;
  };
}

}  // namespace moe::cli
