// `moe eval`: a checkpoint's loss on a text file (cross-entropy in nats and bits per byte), with
// the sequence shape and objective of the run that trained it unless given.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>

#include <nlohmann/json.hpp>
#include <omp.h>

#include "commands.h"
#include "moe/dataset.h"
#include "moe/error.h"
#include "moe/progress.h"
#include "moe/trainer.h"

namespace moe::cli {

namespace {

struct EvalFlags {
  std::string checkpoint, data;
  int64_t seq = 0, batch = 8, max_windows = 0;
  int threads = 0;
  uint64_t seed = 1;
  bool json = false, progress = true;
};

}  // namespace

Run add_eval(CLI::App& app) {
  auto f = std::make_shared<EvalFlags>();
  CLI::App* c = app.add_subcommand("eval", "A checkpoint's loss (nats and bits per byte) on a text file");
  c->add_option("--checkpoint", f->checkpoint, "A checkpoint from `moe train` (file or its directory)")->required();
  c->add_option("--data", f->data, "Text to evaluate on (bytes)")->required();
  c->add_option("--seq", f->seq, "Bytes per window (0 = the training run's)")->capture_default_str();
  c->add_option("--batch", f->batch, "Windows per forward")->capture_default_str();
  c->add_option("--max_windows", f->max_windows, "Windows to evaluate (0 = the whole file)")->capture_default_str();
  CLI::Option* seed = c->add_option("--seed", f->seed, "Mask seed of a masked-objective model (default: the training run's)");
  c->add_option("--threads", f->threads, "Threads (0 = all)")->capture_default_str();
  c->add_flag("--json", f->json, "Print the figures as JSON");
  c->add_flag_callback("--no_progress", [&v = f->progress] { v = false; }, "No progress line");
  return [f, c, seed]() -> int {
    if (!c->parsed()) return 0;
    if (f->seq < 0 || f->batch < 1 || f->max_windows < 0 || f->threads < 0) {
      throw InvalidInput("[eval] --seq, --max_windows and --threads must be >= 0 and --batch >= 1");
    }
    if (f->threads > 0) omp_set_num_threads(f->threads);
    const LoadedModel m = load_gpt_checkpoint(f->checkpoint);
    BatchOptions b;
    const nlohmann::json trained = m.run_config.value("batch", nlohmann::json::object());
    b.seq_len = f->seq > 0 ? f->seq : trained.value("seq_len", m.config.context);
    b.batch = f->batch;
    if (trained.value("objective", std::string("next_token")) == "masked") {
      b.objective = Objective::masked;
      b.mask_id = trained.value("mask_id", int64_t(256));
      b.mask_fraction = trained.value("mask_fraction", b.mask_fraction);
    }
    if (seed->count() == 0) f->seed = m.run_config.value("seed", f->seed);
    if (b.seq_len > m.config.context) {
      throw InvalidInput("[eval] --seq=" + std::to_string(b.seq_len) + " > the model's context " +
                         std::to_string(m.config.context));
    }
    const std::vector<int32_t> tokens = load_byte_corpus(f->data);
    if (static_cast<int64_t>(tokens.size()) < window_tokens(b)) {
      throw InvalidInput("[eval] " + f->data + " has " + std::to_string(tokens.size()) + " bytes; one window needs " +
                         std::to_string(window_tokens(b)));
    }
    std::unique_ptr<Progress> progress;
    const auto t0 = std::chrono::steady_clock::now();
    const double ce = evaluate_gpt(m.config, m.weights, tokens, b, f->max_windows, f->seed, [&](int64_t done, int64_t total) {
      if (!f->progress) return;
      if (!progress) progress = std::make_unique<Progress>(total, "eval");
      progress->update(done);
    });
    if (progress) progress->finish();
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const ValBatches windows(tokens, b, f->seed);
    const int64_t n = f->max_windows > 0 ? std::min(f->max_windows, windows.windows()) : windows.windows();
    const double tokens_per_s = static_cast<double>(n * b.seq_len) / std::max(secs, 1e-9);
    if (f->json) {
      std::printf("%s\n", nlohmann::json{{"checkpoint", f->checkpoint}, {"data", f->data}, {"windows", n},
                                         {"seq", b.seq_len}, {"loss_nats", ce}, {"bits_per_byte", ce / std::log(2.0)},
                                         {"seconds", secs}, {"tokens_per_s", tokens_per_s}}
                              .dump(2)
                              .c_str());
    } else {
      std::printf("%s on %s: %.4f nats = %.4f bits per byte over %lld windows of %lld bytes (%.1f s, %.0f tokens/s)\n",
                  f->checkpoint.c_str(), f->data.c_str(), ce, ce / std::log(2.0), static_cast<long long>(n),
                  static_cast<long long>(b.seq_len), secs, tokens_per_s);
    }
    return 0;
  };
}

}  // namespace moe::cli
