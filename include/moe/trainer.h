// Training a GPT (include/moe/gpt.h) on a byte corpus: AdamW with warmup + cosine, clipping,
// accumulation, the MoE layers' aux losses and the aux-loss-free bias update, periodic
// validation, metrics as JSONL, a live progress line, atomic checkpoints that resume
// bit-exactly, Ctrl-C = save and stop, and a clear stop on a non-finite loss or gradient.
//
// Output directory:
//   checkpoint.safetensors  parameters + AdamW state; config and train state in its metadata
//   metrics.jsonl           one line per step (loss, lr, grad norm, tokens/s, expert load, ...),
//                           validation fields on evaluation steps
//   loss.svg, load.svg      loss curves; max/mean expert load per MoE layer over the steps
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "moe/dataset.h"
#include "moe/gpt.h"
#include "moe/optimizer.h"
#include "moe/rng.h"

namespace moe {

struct TrainOptions {
  std::string data;                // corpus file, read as bytes (byte tokenizer)
  std::string val_data;            // validation file; empty = the tail of `data` (val_fraction)
  std::string out_dir;             // created if missing
  double val_fraction = 0.05;      // the corpus' tail used for validation
  BatchOptions batch;              // B, S, objective (next_token / masked)
  int64_t grad_accum = 1;          // micro-batches per update
  int64_t steps = 500;             // optimizer updates in total (a resumed run continues to this)
  double lr = 3e-3, min_lr = 3e-4; // cosine from lr to min_lr
  int64_t warmup = -1;             // linear warmup updates; -1 = min(50, steps / 10)
  AdamWOptions adam{3e-3, 0.9, 0.95, 1e-8, 0.1};
  double clip = 1.0;               // global gradient-norm clip; 0 = none
  int64_t eval_every = 50;         // validation every n updates (and after the last); 0 = last only
  int64_t eval_windows = 64;       // validation windows per evaluation (0 = the whole split)
  int64_t ckpt_every = 0;          // checkpoint every n updates (0 = off)
  double ckpt_minutes = 10;        // ... and whenever this many minutes passed since the last one (0 = off);
                                   // always at the end and on Ctrl-C / SIGTERM / SIGHUP
  double bias_update_rate = 0;     // DeepSeek aux-loss-free γ for layers with a selection bias
  bool bias_update_mean_center = false;
  uint64_t seed = 1;               // weights, batches, router noise
  int threads = 0;                 // 0 = OpenMP default
  bool resume = false;             // continue from out_dir/checkpoint.safetensors if present
  bool overwrite = false;          // replace a run already in out_dir (without: refused)
  // Settings a resume may change (keys of the run config's "optim" section, e.g. "steps",
  // "lr"); any other difference from the checkpoint's run is refused. Each change is reported.
  std::vector<std::string> resume_changes;
  bool progress = true;            // progress line on stderr
  bool plots = true;               // loss.svg / load.svg at the end
};

struct TrainSummary {
  int64_t first_step = 0;          // the step this invocation started from (resumed runs: > 0)
  int64_t step = 0;                // updates done (the whole run)
  double train_loss = 0;           // last step's total loss
  double val_ce = 0;               // last validation: mean cross-entropy (nats per byte)
  double val_bpb = 0;              // ... in bits per byte
  double tokens_per_s = 0;         // training throughput of this invocation
  double seconds = 0;              // wall time of this invocation
  bool already_done = false;       // resumed a run that had reached --steps: nothing trained
  std::vector<std::string> changes;  // settings a resume changed ("lr: 0.003 -> 0.001")
  bool interrupted = false;        // stopped by Ctrl-C / SIGTERM (a checkpoint was saved)
  bool resumed = false;
  std::string checkpoint;          // the checkpoint written last
};

// The config that must match to resume: the model, the data (canonical paths) and the batch
// shape, the seed, and the optimisation settings ("optim": steps, lr, min_lr, warmup, AdamW,
// clip, bias update), which a resume may change only when listed in resume_changes.
nlohmann::json train_run_config(const GptConfig& model, const TrainOptions& opt);

// Runs (or resumes) a training run. `on_record` (optional) sees every metrics record as written.
// Throws InvalidInput for a bad config, corpus or checkpoint (nothing overwritten), and
// std::runtime_error("[train] step N: ...") for a non-finite loss or gradient, naming the layer
// or tensor where it appeared (the last good checkpoint is kept).
TrainSummary train_gpt(const GptConfig& model, const TrainOptions& opt,
                       const std::function<void(const nlohmann::json&)>& on_record = {});

// Mean cross-entropy (nats per token) over up to `max_windows` validation windows of `tokens`.
// `on_batch(windows done, windows in all)` is called after every batch (a progress line).
double evaluate_gpt(const GptConfig& model, const GptWeights& weights, std::span<const int32_t> tokens,
                    const BatchOptions& batch, int64_t max_windows, uint64_t mask_seed,
                    const std::function<void(int64_t, int64_t)>& on_batch = {});

// What a resume reads from a checkpoint's train state (metadata "moe.train_state"), checked:
// InvalidInput naming the key for anything missing or of the wrong kind.
struct ResumeState {
  int64_t step = 0;
  RngState noise_rng;
  nlohmann::json batcher;  // Batcher::restore checks it against the run
};
ResumeState resume_state_from_json(const nlohmann::json& train_state, const std::string& origin);

// Loads the model config and weights of a checkpoint (optimizer state ignored).
struct LoadedModel {
  GptConfig config;
  GptWeights weights;
  nlohmann::json train_state;
  nlohmann::json run_config;  // train_run_config of the run that wrote it (batch shape, objective, data)
};
LoadedModel load_gpt_checkpoint(const std::string& path);

}  // namespace moe
