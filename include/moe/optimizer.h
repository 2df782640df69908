// AdamW as torch.optim.AdamW (torch 1.13, foreach=False) in float32 with the same operation
// order, gradient clipping as torch.nn.utils.clip_grad_norm_, gradient accumulation helpers, and
// the warmup + cosine learning-rate schedule. Model-agnostic: parameters are named f32 tensors.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "moe/safetensors.h"  // NamedTensors
#include "moe/tensor.h"

namespace moe {

// A model's `for_each_tensor(f(name, Tensor&))`, as a callable: collect_tensors(
//   [&](const TensorVisitor& f) { model.for_each_tensor(f); }) gives its tensors in visiting order.
using TensorVisitor = std::function<void(const std::string&, Tensor&)>;
NamedTensors collect_tensors(const std::function<void(const TensorVisitor&)>& for_each);

// A trainable tensor and its gradient (same shape, both f32).
struct ParamRef {
  std::string name;
  TensorView param;
  TensorView grad;
};

// Pairs parameters with gradients by position; throws InvalidInput("[optimizer] ...") if the
// lists differ in length, names, shapes, or a tensor is not f32.
std::vector<ParamRef> pair_params(const NamedTensors& params, const NamedTensors& grads);

// Which parameters get weight decay. Default: tensors of rank >= 2 (matrices, embeddings);
// norms' gains and biases (rank 1) are not decayed.
using DecayPredicate = std::function<bool(const std::string& name, const TensorView& param)>;
bool decay_matrices(const std::string& name, const TensorView& param);

struct AdamWOptions {
  double lr = 1e-3;  // used by step() without an explicit lr
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.01;  // decoupled; applied to parameters the predicate selects
};

class AdamW {
 public:
  // Throws InvalidInput("[adamw] ...") for betas outside [0, 1), eps/lr/weight_decay < 0.
  AdamW(std::vector<ParamRef> params, const AdamWOptions& opt, DecayPredicate decay = decay_matrices);

  // One update with learning rate `lr` (torch: param.mul_(1 - lr*wd); m = b1*m + (1-b1)*g;
  // v = b2*v + (1-b2)*g*g; p += -lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps)). Parameters are updated
  // element-wise and in parallel for large tensors; results do not depend on the thread count.
  void step(double lr);
  void step() { step(opt_.lr); }

  int64_t step_count() const { return step_.as<int64_t>()[0]; }
  const AdamWOptions& options() const { return opt_; }
  const std::vector<ParamRef>& params() const { return params_; }
  bool decays(size_t i) const { return decay_[i]; }

  // Optimizer state as named tensors for checkpoints: "adam.m.<name>", "adam.v.<name>" (f32,
  // the parameter's shape) and "adam.step" (i64 [1]). Views into the optimizer: restoring a
  // checkpoint into them (restore_into in checkpoint.h) restores the optimizer.
  NamedTensors state_tensors() const;

 private:
  std::vector<ParamRef> params_;
  AdamWOptions opt_;
  std::vector<bool> decay_;
  std::vector<Tensor> m_, v_;  // [same as param] f32
  Tensor step_;                // [1] i64
};

// torch.nn.utils.clip_grad_norm_(norm_type=2): the global L2 norm of all gradients (each
// tensor's norm in float, then the norm of those), and, if finite, grads *= min(1, max_norm /
// (norm + 1e-6)). Returns the norm before clipping. A non-finite norm is returned and the
// gradients are left untouched: the caller decides (skip the step, stop, report the tensor).
float clip_grad_norm(const NamedTensors& grads, double max_norm);
float grad_norm(const NamedTensors& grads);  // the same norm, nothing changed

// grads *= factor (e.g. 1/n after accumulating n micro-batches).
void scale_grads(const NamedTensors& grads, float factor);
void zero_grads(const NamedTensors& grads);
// The first tensor (in list order) holding a NaN or Inf, for "non-finite gradient in <name>".
std::optional<std::string> first_nonfinite(const NamedTensors& tensors);

// Learning rate at update `step` (0-based): linear warmup on the line from 0 to `peak` (step s <
// warmup gets peak * (s + 1) / warmup, so step warmup-1 reaches peak), then cosine from peak at
// step `warmup` down to min_lr at step `total`, and min_lr afterwards.
struct LrSchedule {
  double peak = 1e-3;
  double min_lr = 1e-4;
  int64_t warmup = 0;
  int64_t total = 1;

  void validate() const;  // InvalidInput("[lr_schedule] ...")
  double lr_at(int64_t step) const;
};

}  // namespace moe
