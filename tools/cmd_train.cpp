// `moe train`: flags and the closing summary; the loop is in src/train/trainer.cpp.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "util/format.h"
#include "util/json_file.h"
#include "model_flags.h"
#include "moe/error.h"
#include "moe/trainer.h"

namespace moe::cli {

namespace {

struct TrainFlags {
  GptPreset model;
  std::string config;  // model config JSON (overrides the model flags)
  TrainOptions opt;
  std::string objective = "next_token";
};

}  // namespace

Run add_train(CLI::App& app) {
  auto f = std::make_shared<TrainFlags>();
  CLI::App* c = app.add_subcommand("train", "Train a GPT whose FFN is dense or MoE on a byte corpus");
  TrainOptions& o = f->opt;
  c->add_option("--data", o.data, "Corpus file (bytes; e.g. from `moe data`)")->required();
  c->add_option("--val_data", o.val_data, "Validation file (default: the tail of --data, --val_fraction)");
  c->add_option("--out", o.out_dir, "Output directory: checkpoint, metrics.jsonl, loss.svg, load.svg")->required();
  c->add_option("--config", f->config, "Model config JSON (as saved in a checkpoint's metadata); replaces the model flags");
  add_model_flags(c, f->model);
  c->add_option("--steps", o.steps, "Optimizer updates")->capture_default_str();
  c->add_option("--batch", o.batch.batch, "Sequences per micro-batch")->capture_default_str();
  c->add_option("--seq", o.batch.seq_len, "Tokens (bytes) per sequence")->capture_default_str();
  c->add_option("--grad_accum", o.grad_accum, "Micro-batches per update")->capture_default_str();
  c->add_option("--objective", f->objective, "next_token, or masked (encoder; mask id 256, vocab 257)")->capture_default_str();
  c->add_option("--lr", o.lr, "Peak learning rate")->capture_default_str();
  c->add_option("--min_lr", o.min_lr, "Final learning rate (cosine)")->capture_default_str();
  c->add_option("--warmup", o.warmup, "Linear warmup updates (-1 = min(50, steps/10))")->capture_default_str();
  c->add_option("--weight_decay", o.adam.weight_decay, "AdamW decoupled weight decay (matrices only)")->capture_default_str();
  c->add_option("--beta1", o.adam.beta1, "AdamW beta1")->capture_default_str();
  c->add_option("--beta2", o.adam.beta2, "AdamW beta2")->capture_default_str();
  c->add_option("--clip", o.clip, "Global gradient-norm clip (0 = none)")->capture_default_str();
  c->add_option("--eval_every", o.eval_every, "Validation every n updates (0 = at the end)")->capture_default_str();
  c->add_option("--eval_windows", o.eval_windows, "Validation sequences per evaluation (0 = all)")->capture_default_str();
  c->add_option("--val_fraction", o.val_fraction, "Tail of the corpus held out for validation")->capture_default_str();
  c->add_option("--ckpt_every", o.ckpt_every, "Checkpoint every n updates (0 = off)")->capture_default_str();
  c->add_option("--ckpt_minutes", o.ckpt_minutes,
                "Checkpoint whenever this many minutes passed since the last one (0 = off); always at the end and "
                "on Ctrl-C, SIGTERM or SIGHUP")
      ->capture_default_str();
  c->add_option("--bias_update_rate", o.bias_update_rate, "Aux-loss-free bias update rate (sigmoid router)")->capture_default_str();
  c->add_option("--seed", o.seed, "Seed for weights, batches and router noise")->capture_default_str();
  c->add_option("--threads", o.threads, "Threads (0 = all)")->capture_default_str();
  c->add_flag("--resume", o.resume, "Continue from --out's checkpoint (bit-exact)");
  c->add_flag("--overwrite", o.overwrite, "Replace a run already in --out (without it, or --resume, that is an error)");
  c->add_option("--resume_changes", o.resume_changes,
                "With --resume: settings this run may change from the checkpoint's (steps, lr, min_lr, warmup, "
                "weight_decay, beta1, beta2, eps, clip, bias_update_rate, bias_update_mean_center)")
      ->delimiter(',');
  c->add_flag_callback("--no_progress", [&v = o.progress] { v = false; }, "No progress line");
  return [f, c]() -> int {
    if (!c->parsed()) return 0;
    TrainOptions& o = f->opt;
    if (f->objective == "masked") {
      o.batch.objective = Objective::masked;
      o.batch.mask_id = 256;
      if (f->config.empty() && f->model.vocab_size == 256) f->model.vocab_size = 257;
      f->model.encoder = true;
    } else if (f->objective != "next_token") {
      throw InvalidInput("[train] --objective=" + f->objective + " (next_token or masked)");
    }
    GptConfig model;
    if (!f->config.empty()) {
      const nlohmann::json j = util::read_json_file(f->config, "[train] --config");
      model = gpt_config_from_json(j.contains("model") ? j["model"] : j);
    } else {
      model = make_gpt_config(f->model);
    }
    std::fprintf(stderr, "model: %s parameters (%s active per token), %s\n",
                 util::group_thousands(gpt_param_count(model, false)).c_str(),
                 util::group_thousands(gpt_param_count(model, true)).c_str(), model.has_moe() ? "MoE" : "dense");
    const TrainSummary s = train_gpt(model, o);
    for (const std::string& change : s.changes) std::fprintf(stderr, "resume: %s\n", change.c_str());
    auto num = [](double v, const char* fmt) {
      if (!(v > 0) || !std::isfinite(v)) return std::string("n/a");
      char b[32];
      std::snprintf(b, sizeof b, fmt, v);
      return std::string(b);
    };
    if (s.already_done) {
      std::printf("the run in %s is complete at step %lld of --steps %lld: nothing to train (raise --steps and pass "
                  "--resume_changes steps to continue); train loss %s; validation %s nats = %s bits per byte\n",
                  o.out_dir.c_str(), static_cast<long long>(s.step), static_cast<long long>(o.steps),
                  num(s.train_loss, "%.4f").c_str(), num(s.val_ce, "%.4f").c_str(), num(s.val_bpb, "%.4f").c_str());
    } else {
      const std::string span = s.first_step > 0 ? " (steps " + std::to_string(s.first_step + 1) + "-" +
                                                      std::to_string(s.step) + " of the run)"
                                                : "";
      std::printf("%s %lld steps%s in %.1f s (%s tokens/s); train loss %s; validation %s nats = %s bits per byte\n",
                  s.interrupted ? "interrupted after" : "trained", static_cast<long long>(s.step - s.first_step),
                  span.c_str(), s.seconds, num(s.tokens_per_s, "%.0f").c_str(), num(s.train_loss, "%.4f").c_str(),
                  num(s.val_ce, "%.4f").c_str(), num(s.val_bpb, "%.4f").c_str());
    }
    std::printf("checkpoint: %s\nmetrics: %s/metrics.jsonl, plots: %s/loss.svg%s\n", s.checkpoint.c_str(), o.out_dir.c_str(),
                o.out_dir.c_str(), model.has_moe() ? (", " + o.out_dir + "/load.svg").c_str() : "");
    return s.interrupted ? 130 : 0;
  };
}

}  // namespace moe::cli
