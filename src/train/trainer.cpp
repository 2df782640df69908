// The training loop: one update = grad_accum micro-batches of forward + backward, clip, AdamW,
// the aux-loss-free bias update; validation, metrics, checkpoints and the progress line around it.
#include "moe/trainer.h"

#include <omp.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <span>

#include "moe/atomic_file.h"
#include "moe/checkpoint.h"
#include "moe/error.h"
#include "moe/interrupt.h"
#include "moe/losses.h"
#include "moe/metrics.h"
#include "moe/progress.h"
#include "moe/svg_chart.h"
#include "util/resources.h"

namespace moe {

namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

bool all_finite(const std::vector<float>& v) {
  for (const float f : v)
    if (!std::isfinite(f)) return false;
  return true;
}

// Where a non-finite forward first shows: the first block whose attention or FFN output is not
// finite, else the logits.
std::string locate_nonfinite(const GptConfig& c, const GptActivations<float>& acts) {
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const GptBlockActs<float>& b = acts.blocks[l];
    if (!all_finite(b.x)) return "the input of layer " + std::to_string(l);
    if (!all_finite(b.x_mid)) return "layer " + std::to_string(l) + " (attention)";
    const std::vector<float>& out = l + 1 < c.n_layers ? acts.blocks[l + 1].x : acts.x_final;
    if (!all_finite(out)) return "layer " + std::to_string(l) + (c.is_moe_layer(l) ? " (MoE FFN)" : " (dense FFN)");
  }
  return "the final norm / logits";
}

void check_options(const GptConfig& model, const TrainOptions& o) {
  auto bad = [](const std::string& m) { throw InvalidInput("[train] " + m); };
  if (o.data.empty()) bad("no corpus given (--data)");
  if (o.out_dir.empty()) bad("no output directory given (--out)");
  if (o.steps < 1) bad("--steps=" + std::to_string(o.steps) + " must be >= 1");
  if (o.threads < 0) bad("--threads=" + std::to_string(o.threads) + " must be >= 0 (0 = all cores)");
  if (o.grad_accum < 1) bad("--grad_accum=" + std::to_string(o.grad_accum) + " must be >= 1");
  if (o.batch.batch < 1 || o.batch.seq_len < 1) bad("--batch and --seq must be >= 1");
  if (o.batch.seq_len > model.context)
    bad("--seq=" + std::to_string(o.batch.seq_len) + " > the model's context " + std::to_string(model.context));
  if (model.vocab_size < 256) bad("the byte tokenizer needs vocab_size >= 256, got " + std::to_string(model.vocab_size));
  if (o.batch.objective == Objective::masked) {
    if (model.causal) bad("the masked objective needs a bidirectional model (causal = false)");
    if (o.batch.mask_id < 0 || o.batch.mask_id >= model.vocab_size)
      bad("mask id " + std::to_string(o.batch.mask_id) + " is outside the vocabulary (vocab_size " +
          std::to_string(model.vocab_size) + "; use 257 for bytes + mask)");
  } else if (!model.causal) {
    bad("next-token training needs a causal model (use the masked objective for an encoder)");
  }
  if (!(o.lr > 0) || !(o.min_lr >= 0) || o.min_lr > o.lr) bad("need 0 <= --min_lr <= --lr and --lr > 0");
  if (o.warmup < -1) bad("--warmup must be >= 0 (or -1: automatic)");
  if (o.warmup > o.steps) bad("--warmup=" + std::to_string(o.warmup) + " > --steps=" + std::to_string(o.steps));
  if (!(o.clip >= 0)) bad("--clip must be >= 0");
  if (!(o.val_fraction > 0 && o.val_fraction < 1)) bad("--val_fraction must be in (0, 1)");
  if (o.eval_every < 0 || o.ckpt_every < 0 || o.eval_windows < 0) bad("--eval_every/--ckpt_every/--eval_windows must be >= 0");
  if (!(o.ckpt_minutes >= 0) || !std::isfinite(o.ckpt_minutes)) bad("--ckpt_minutes must be a number >= 0");
  if (!(o.bias_update_rate >= 0) || !std::isfinite(o.bias_update_rate)) bad("--bias_update_rate must be a number >= 0");
  if (o.bias_update_rate > 0) {
    bool any_bias = model.has_moe() && model.moe.router.selection_bias;
    if (!any_bias) bad("--bias_update_rate needs a router with a selection bias (--router sigmoid); this model has none");
  }
  for (const double v : {o.lr, o.min_lr, o.clip, o.adam.weight_decay, o.adam.beta1, o.adam.beta2, o.adam.eps}) {
    if (!std::isfinite(v)) bad("learning rates, --clip, --weight_decay and the betas must be finite numbers");
  }
  if (o.adam.weight_decay < 0) bad("--weight_decay must be >= 0");
  if (!(o.adam.beta1 >= 0 && o.adam.beta1 < 1) || !(o.adam.beta2 >= 0 && o.adam.beta2 < 1)) {
    bad("--beta1 and --beta2 must be in [0, 1)");
  }
}

// Files a crash left behind: write_file_atomic's "<name>.tmp.XXXXXX" in the run directory (a
// kill -9 during a checkpoint leaves one the size of the checkpoint).
void remove_stale_temp_files(const std::string& dir) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    const size_t at = name.rfind(".tmp.");
    if (at == std::string::npos || at == 0 || name.size() != at + 11 || !entry.is_regular_file(ec)) continue;
    fs::remove(entry.path(), ec);
  }
}

// The checkpoint's run and this one: equal but for the listed "optim" settings, each reported.
std::vector<std::string> check_resume(const json& ck_config, const json& run, const TrainOptions& o,
                                      const std::string& origin) {
  std::vector<std::string> ignore, changes;
  for (const std::string& k : o.resume_changes) {
    if (!run.at("optim").contains(k)) {
      std::string known;
      for (const auto& [name, v] : run.at("optim").items()) known += (known.empty() ? "" : ", ") + name, (void)v;
      throw InvalidInput("[train] --resume_changes: '" + k + "' is not one of: " + known);
    }
    ignore.push_back("optim." + k);
  }
  json old = ck_config;
  if (!old.contains("optim")) old["optim"] = run.at("optim");  // a checkpoint from before the optim section
  if (const auto d = first_config_difference(old, run, ignore)) {
    const bool optim = d->key.rfind("optim.", 0) == 0;
    throw InvalidInput("[train] " + origin + ": the checkpoint's run differs from this one at " + d->key +
                       ": checkpoint has " + d->a + ", this run has " + d->b +
                       (optim ? " (to change it on resume: --resume_changes " + d->key.substr(6) + ")" : ""));
  }
  for (const std::string& k : o.resume_changes) {
    if (old["optim"].contains(k) && old["optim"][k] != run["optim"][k]) {
      changes.push_back(k + ": " + old["optim"][k].dump() + " -> " + run["optim"][k].dump());
    }
  }
  return changes;
}

// A path as the run config records it: canonical, so ./data.txt and its absolute path agree.
std::string canonical_path(const std::string& p) {
  if (p.empty()) return p;
  std::error_code ec;
  const fs::path c = fs::weakly_canonical(fs::absolute(p, ec), ec);
  return ec ? p : c.string();
}

// Trainable parameters and their gradients, in visiting order.
NamedTensors trainable(GptWeights& w) {
  NamedTensors out;
  w.for_each_tensor([&](const std::string& name, Tensor& t) {
    if (gpt_is_trainable(name)) out.emplace_back(name, t.view());
  });
  return out;
}

NamedTensors all_tensors(GptWeights& w) {
  NamedTensors out;
  w.for_each_tensor([&](const std::string& name, Tensor& t) { out.emplace_back(name, t.view()); });
  return out;
}

// Loss and expert-load charts from the metrics file (all of it, so resumed runs plot whole).
void write_plots(const std::string& dir, const std::string& metrics_path) {
  std::ifstream in(metrics_path);
  plot::Series train, val;
  train.label = "train cross-entropy";
  val.label = "validation cross-entropy";
  val.marker = plot::Marker::circle;
  std::vector<plot::Series> load;
  std::string line;
  while (std::getline(in, line)) {
    json r = json::parse(line, nullptr, false);
    if (r.is_discarded() || !r.contains("step")) continue;
    const double step = r["step"].get<double>();
    // Cross-entropy, not the loss (which adds the balance losses), so train and validation compare.
    const char* key = r.contains("ce") ? "ce" : "loss";
    if (r.contains(key) && r[key].is_number()) train.x.push_back(step), train.y.push_back(r[key].get<double>());
    if (r.contains("val_loss") && r["val_loss"].is_number()) val.x.push_back(step), val.y.push_back(r["val_loss"].get<double>());
    if (r.contains("load_max_over_mean") && r["load_max_over_mean"].is_object()) {
      for (auto& [layer, v] : r["load_max_over_mean"].items()) {
        if (!v.is_number()) continue;
        const std::string label = "layer " + layer;
        auto it = std::find_if(load.begin(), load.end(), [&](const plot::Series& s) { return s.label == label; });
        if (it == load.end()) {
          load.emplace_back();
          load.back().label = label;
          it = load.end() - 1;
        }
        it->x.push_back(step);
        it->y.push_back(v.get<double>());
      }
    }
  }
  if (train.x.size() >= 1) {
    plot::ChartSpec spec;
    spec.title = "Cross-entropy (balance losses left out)";
    spec.x_label = "step";
    spec.y_label = "cross-entropy (nats per byte)";
    spec.series.push_back(train);
    if (!val.x.empty()) spec.series.push_back(val);
    write_file_atomic(dir + "/loss.svg", plot::render_svg(spec));
  }
  if (!load.empty()) {
    plot::ChartSpec spec;
    spec.title = "Expert load: max / mean tokens per expert";
    spec.x_label = "step";
    spec.y_label = "max / mean (1 = balanced)";
    spec.series = load;
    spec.hlines.push_back({"balanced", 1.0});
    write_file_atomic(dir + "/load.svg", plot::render_svg(spec));
  }
}

}  // namespace

json train_run_config(const GptConfig& model, const TrainOptions& o) {
  return {{"model", gpt_config_to_json(model)},
          {"data", {{"path", canonical_path(o.data)}, {"val_path", canonical_path(o.val_data)}, {"val_fraction", o.val_fraction}}},
          {"optim",
           {{"steps", o.steps},
            {"lr", o.lr},
            {"min_lr", o.min_lr},
            {"warmup", o.warmup},
            {"weight_decay", o.adam.weight_decay},
            {"beta1", o.adam.beta1},
            {"beta2", o.adam.beta2},
            {"eps", o.adam.eps},
            {"clip", o.clip},
            {"bias_update_rate", o.bias_update_rate},
            {"bias_update_mean_center", o.bias_update_mean_center}}},
          {"batch",
           {{"batch", o.batch.batch},
            {"seq_len", o.batch.seq_len},
            {"objective", o.batch.objective == Objective::masked ? "masked" : "next_token"},
            {"mask_id", o.batch.mask_id},
            {"mask_fraction", o.batch.mask_fraction},
            {"grad_accum", o.grad_accum}}},
          {"seed", o.seed}};
}

double evaluate_gpt(const GptConfig& model, const GptWeights& weights, std::span<const int32_t> tokens,
                    const BatchOptions& batch, int64_t max_windows, uint64_t mask_seed,
                    const std::function<void(int64_t, int64_t)>& on_batch) {
  ValBatches val(tokens, batch, mask_seed);
  const int64_t total = max_windows == 0 ? val.windows() : std::min(val.windows(), max_windows);
  GptActivations<float> acts;
  Batch b;
  double sum = 0;
  int64_t counted = 0, windows = 0;
  while ((max_windows == 0 || windows < max_windows) && val.next(b)) {
    const int64_t rows = max_windows == 0 ? b.rows() : std::min(b.rows(), max_windows - windows);
    GptStepInputs in{rows, batch.seq_len, b.inputs.as<int32_t>(), b.targets.as<int32_t>(), false, nullptr};
    const GptLosses l = gpt_forward<float>(model, weights, in, acts, nullptr);
    sum += l.ce * static_cast<double>(l.n_counted);
    counted += l.n_counted;
    windows += rows;
    if (on_batch) on_batch(windows, total);
  }
  return counted > 0 ? sum / static_cast<double>(counted) : 0.0;
}

ResumeState resume_state_from_json(const json& ts, const std::string& origin) {
  auto bad = [&](const std::string& m) { throw InvalidInput("[checkpoint] " + origin + ": train state " + m); };
  if (!ts.is_object()) bad("is not a JSON object");
  for (const char* key : {"step", "noise_rng", "batcher"})
    if (!ts.contains(key)) bad(std::string("has no \"") + key + "\"");
  const json& step = ts.at("step");
  if (!step.is_number_integer() || (step.is_number_unsigned() ? step.get<uint64_t>() > INT64_MAX : step.get<int64_t>() < 0))
    bad("has step " + step.dump() + ", not a count");
  if (!ts.at("batcher").is_object()) bad("has a batcher state that is not an object");
  ResumeState r;
  r.step = step.get<int64_t>();
  r.noise_rng = rng_state_from_json(ts.at("noise_rng"), origin);
  r.batcher = ts.at("batcher");
  return r;
}

LoadedModel load_gpt_checkpoint(const std::string& path) {
  Checkpoint ck = load_checkpoint(path);
  if (!ck.config.contains("model")) throw InvalidInput("[checkpoint] " + ck.path + ": no model config in its metadata");
  LoadedModel m;
  m.config = gpt_config_from_json(ck.config["model"]);
  m.weights = make_gpt_weights(m.config, DType::f32);
  restore_into(all_tensors(m.weights), ck.tensors, ck.path, /*allow_unused=*/true);
  m.train_state = ck.train_state;
  m.run_config = ck.config;
  return m;
}

TrainSummary train_gpt(const GptConfig& model, const TrainOptions& o,
                       const std::function<void(const json&)>& on_record) {
  validate_gpt(model);
  check_options(model, o);
  if (o.threads > 0) omp_set_num_threads(o.threads);
  const double t_start = now_s();

  const std::vector<int32_t> corpus = load_byte_corpus(o.data);
  TokenSplit split;
  if (o.val_data.empty()) {
    split = split_tokens(corpus, o.val_fraction, window_tokens(o.batch));
  } else {
    split.train = corpus;
    split.val = load_byte_corpus(o.val_data);
    for (const auto* part : {&split.train, &split.val})
      if (static_cast<int64_t>(part->size()) < window_tokens(o.batch))
        throw InvalidInput("[train] " + std::string(part == &split.train ? o.data : o.val_data) + " has " +
                           std::to_string(part->size()) + " bytes; one sequence needs " +
                           std::to_string(window_tokens(o.batch)));
  }

  util::check_memory(gpt_weight_bytes(model, DType::f32) + gpt_training_bytes(model, o.batch.batch, o.batch.seq_len),
                     "training this model (weights, gradients, AdamW moments and the activations of a batch of " +
                         std::to_string(o.batch.batch) + " x " + std::to_string(o.batch.seq_len) + " tokens)",
                     "[train]");
  GptWeights weights = make_gpt_weights(model, DType::f32);  // initialised below unless resumed
  GptWeights grads = make_gpt_weights(model, DType::f32);
  const NamedTensors params = trainable(weights), grad_list = trainable(grads);
  AdamW adam(pair_params(params, grad_list), o.adam);
  const LrSchedule sched{o.lr, o.min_lr, o.warmup >= 0 ? o.warmup : std::min<int64_t>(50, o.steps / 10), o.steps};
  sched.validate();
  Batcher batcher(split.train, o.batch, o.seed * 0x9E3779B97F4A7C15ULL + 1);
  Rng noise_rng(o.seed + 0x5EED);

  const std::string ckpt_path = o.out_dir + "/checkpoint.safetensors";
  const std::string metrics_path = o.out_dir + "/metrics.jsonl";
  std::error_code ec;
  if (!o.resume && !o.overwrite && (fs::exists(ckpt_path, ec) || fs::exists(metrics_path, ec))) {
    throw InvalidInput("[train] " + o.out_dir + " holds a run already (" +
                       (fs::exists(ckpt_path, ec) ? "checkpoint.safetensors" : "metrics.jsonl") +
                       "): --resume continues it, --overwrite replaces it");
  }
  try {
    fs::create_directories(o.out_dir);
  } catch (const fs::filesystem_error& e) {
    throw InvalidInput("[train] --out " + o.out_dir + ": cannot create the directory (" + e.code().message() + ")");
  }
  remove_stale_temp_files(o.out_dir);
  const json run_config = train_run_config(model, o);
  NamedTensors state = all_tensors(weights);
  for (auto& t : adam.state_tensors()) state.push_back(t);

  TrainSummary sum;
  GptActivations<float> acts;
  int64_t step = 0;
  if (o.resume && fs::exists(ckpt_path)) {
    Checkpoint ck = load_checkpoint(ckpt_path);
    sum.changes = check_resume(ck.config, run_config, o, ck.path);
    restore_into(state, ck.tensors, ck.path);
    const ResumeState rs = resume_state_from_json(ck.train_state, ck.path);
    step = rs.step;
    noise_rng.set_state(rs.noise_rng);
    batcher.restore(rs.batcher);
    trim_metrics_after(metrics_path, step);
    sum.resumed = true;
  } else {
    std::unique_ptr<Progress> bar;  // a big model's init takes seconds: say so
    init_gpt_weights(model, weights, o.seed, [&](int64_t done, int64_t total) {
      if (!o.progress || total < (int64_t(1) << 24)) return;
      if (!bar) bar = std::make_unique<Progress>(total, "init");
      bar->update(done);
      if (done == total) bar->finish();
    });
  }
  // A checkpoint is written only for weights whose forward is finite on a validation window, so
  // the last checkpoint of a diverging run is one to go back to.
  auto check_finite = [&](int64_t at) {
    ValBatches val(split.val, o.batch, o.seed);
    Batch vb;
    val.next(vb);
    const GptStepInputs in{1, o.batch.seq_len, vb.inputs.as<int32_t>(), vb.targets.as<int32_t>(), false, nullptr};
    const GptLosses l = gpt_forward<float>(model, weights, in, acts, nullptr);
    if (!std::isfinite(l.total))
      throw std::runtime_error("[train] step " + std::to_string(at) + ": the weights give a non-finite loss on validation data; "
                               "it first appears in " + locate_nonfinite(model, acts) +
                               (sum.checkpoint.empty() ? "; no checkpoint was written" : "; the last good checkpoint is " + ckpt_path) +
                               " (try a lower --lr)");
  };
  auto save = [&](int64_t at) {
    check_finite(at);
    const json ts = {{"step", at}, {"noise_rng", rng_state_to_json(noise_rng.state())}, {"batcher", batcher.state()},
                     {"lr", sched.lr_at(std::max<int64_t>(at - 1, 0))}, {"steps", o.steps}};
    save_checkpoint(ckpt_path, run_config, state, ts);
    sum.checkpoint = ckpt_path;
  };

  MetricsWriter metrics(metrics_path, sum.resumed);
  InterruptGuard guard;
  sum.first_step = step;
  if (step >= o.steps) {  // a finished run: nothing to train, report where it stands
    sum.already_done = true;
    sum.step = step;
    sum.checkpoint = ckpt_path;
    sum.seconds = now_s() - t_start;
    const std::vector<json> done = read_metrics(metrics_path);
    for (auto it = done.rbegin(); it != done.rend(); ++it) {
      if (sum.train_loss == 0 && it->contains("loss")) sum.train_loss = (*it)["loss"].get<double>();
      if (!(sum.val_ce > 0) && it->contains("val_loss")) {
        sum.val_ce = (*it)["val_loss"].get<double>();
        sum.val_bpb = sum.val_ce / std::log(2.0);
      }
    }
    return sum;
  }
  ProgressOptions popt;
  popt.first_step = step;
  std::unique_ptr<Progress> progress;
  if (o.progress) progress = std::make_unique<Progress>(o.steps, "train", stderr, popt);

  Batch batch;
  const int64_t tokens_per_update = o.batch.batch * o.batch.seq_len * o.grad_accum;
  const int64_t first = step;
  double last_val = NAN, last_save = now_s();
  std::string last_load;
  while (step < o.steps) {
    const double t0 = now_s();
    zero_grads(grad_list);
    double loss = 0, ce = 0, aux = 0;
    std::vector<std::vector<double>> load(static_cast<size_t>(model.n_layers));
    int64_t kept = 0, slots = 0;
    for (int64_t micro = 0; micro < o.grad_accum; ++micro) {
      batcher.next(batch);
      const GptStepInputs in{o.batch.batch, o.batch.seq_len, batch.inputs.as<int32_t>(), batch.targets.as<int32_t>(),
                             true, &noise_rng};
      const GptLosses l = gpt_forward<float>(model, weights, in, acts, nullptr);
      if (!std::isfinite(l.total)) {
        throw std::runtime_error("[train] step " + std::to_string(step + 1) + ": the loss is " +
                                 (std::isnan(l.total) ? "NaN" : "infinite") + "; it first appears in " +
                                 locate_nonfinite(model, acts) +
                                 (sum.checkpoint.empty() && !sum.resumed ? "; no checkpoint was written" : "; the last good checkpoint is " + ckpt_path) +
                                 " (try a lower --lr)");
      }
      gpt_backward<float>(model, weights, in, acts, grads);
      loss += l.total / o.grad_accum;
      ce += l.ce / o.grad_accum;
      aux += l.aux / o.grad_accum;
      for (size_t li = 0; li < l.expert_load.size(); ++li) {
        if (l.expert_load[li].empty()) continue;
        auto& acc = load[li];
        acc.resize(l.expert_load[li].size(), 0.0);
        for (size_t e = 0; e < acc.size(); ++e) {
          acc[e] += static_cast<double>(l.expert_load[li][e]);
          kept += l.expert_load[li][e];
        }
        // Drops are a token-choice notion (k slots per token); expert choice fills its slots.
        if (model.moe.router.selection != Selection::expert_choice) slots += o.batch.batch * o.batch.seq_len * model.moe.router.top_k;
      }
    }
    if (o.grad_accum > 1) scale_grads(grad_list, 1.0f / static_cast<float>(o.grad_accum));
    const float gnorm = o.clip > 0 ? clip_grad_norm(grad_list, o.clip) : grad_norm(grad_list);
    if (!std::isfinite(gnorm)) {
      const auto where = first_nonfinite(grad_list);
      throw std::runtime_error("[train] step " + std::to_string(step + 1) + ": a non-finite gradient" +
                               (where ? " first in '" + *where + "'" : std::string()) +
                               "; the last good checkpoint is kept (try a lower --lr)");
    }
    const double lr = sched.lr_at(step);
    adam.step(lr);
    // Aux-loss-free balancing: bias += γ·sign(mean load − load), per layer, from this update's loads.
    if (o.bias_update_rate > 0) {
      for (int64_t l = 0; l < model.n_layers; ++l) {
        Tensor& b = weights.blocks[l].moe.selection_bias;
        if (b.empty() || load[l].empty()) continue;
        aux_free_bias_update<float>(std::span<float>(b.as<float>(), static_cast<size_t>(b.numel())), load[l],
                                    o.bias_update_rate, o.bias_update_mean_center);
      }
    }
    ++step;
    const double dt = now_s() - t0;
    json rec = {{"step", step}, {"loss", loss}, {"ce", ce}, {"aux", aux}, {"lr", lr}, {"grad_norm", gnorm},
                {"step_ms", dt * 1e3}, {"tokens_per_s", tokens_per_update / dt}, {"tokens", step * tokens_per_update}};
    json lm = json::object(), counts = json::object();
    double worst = 0;
    for (int64_t l = 0; l < model.n_layers; ++l) {
      if (load[l].empty()) continue;
      counts[std::to_string(l)] = load[l];
      double mx = 0, mean = 0;
      for (const double v : load[l]) mx = std::max(mx, v), mean += v;
      mean /= static_cast<double>(load[l].size());
      const double r = mean > 0 ? mx / mean : 0;
      lm[std::to_string(l)] = r;
      worst = std::max(worst, r);
    }
    if (!lm.empty()) {
      rec["load_max_over_mean"] = lm;
      rec["expert_load"] = counts;  // kept slots per expert, per MoE layer, this update
      if (slots > 0 && model.moe.router.top_k > 0) rec["drop_fraction"] = 1.0 - static_cast<double>(kept) / slots;
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.2f", worst);
      last_load = buf;
    }
    if ((o.eval_every > 0 && step % o.eval_every == 0) || step == o.steps) {
      last_val = evaluate_gpt(model, weights, split.val, o.batch, o.eval_windows, o.seed);
      rec["val_loss"] = last_val;
      rec["val_bpb"] = last_val / std::log(2.0);
    }
    metrics.write(rec);
    if (on_record) on_record(rec);
    sum.train_loss = loss;
    if (progress) {
      char l[32], v[32], tps[32];
      std::snprintf(l, sizeof l, "%.4f", loss);
      std::snprintf(v, sizeof v, "%.4f", last_val / std::log(2.0));
      std::snprintf(tps, sizeof tps, "%.0f", tokens_per_update / dt);
      ProgressFields f{{"loss", l}, {"tok/s", tps}};
      if (std::isfinite(last_val)) f.push_back({"val bpb", v});
      if (!last_load.empty()) f.push_back({"load max/mean", last_load});
      progress->update(step, f);
    }
    const bool every = o.ckpt_every > 0 && step % o.ckpt_every == 0;
    const bool minutes = o.ckpt_minutes > 0 && now_s() - last_save >= 60 * o.ckpt_minutes;
    if ((every || minutes) && step < o.steps) {
      save(step);
      last_save = now_s();
    }
    if (interrupted()) {
      sum.interrupted = true;
      break;
    }
  }
  save(step);
  if (progress) progress->finish();
  if (o.plots) write_plots(o.out_dir, metrics_path);
  sum.step = step;
  sum.seconds = now_s() - t_start;
  if (!std::isfinite(last_val)) last_val = evaluate_gpt(model, weights, split.val, o.batch, o.eval_windows, o.seed);
  sum.tokens_per_s = static_cast<double>((step - first) * tokens_per_update) / std::max(sum.seconds, 1e-9);
  if (std::isfinite(last_val)) {
    sum.val_ce = last_val;
    sum.val_bpb = last_val / std::log(2.0);
  }
  return sum;
}

}  // namespace moe
