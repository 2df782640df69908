#include "moe/optimizer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numbers>

#include "kernels/cpu/adamw.h"
#include "moe/error.h"

// The step's scalars are rounded as torch rounds them: no contraction into FMAs (the update
// itself is kernels/cpu/adamw.cpp).
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#else
#pragma GCC optimize("fp-contract=off")
#endif

namespace moe {

namespace {

// Tensors above this many elements are updated by all OpenMP threads; every element's update is
// independent, so the result does not depend on the thread count.
constexpr int64_t kParallelMin = 1 << 15;
constexpr int64_t kChunk = 1 << 14;  // elements per parallel work item (and per partial sum)

[[noreturn]] void fail(const std::string& origin, const std::string& what) { throw InvalidInput(origin + " " + what); }

// Sum of squares of x[0, n) in double, in fixed chunks added in order: the same result for any
// thread count.
double sum_squares(const float* x, int64_t n) {
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> part(static_cast<size_t>(chunks), 0.0);
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t c = 0; c < chunks; ++c) {
    const float* xc = x + c * kChunk;
    const int64_t len = std::min(kChunk, n - c * kChunk);
    double s = 0;
    for (int64_t i = 0; i < len; ++i) s += static_cast<double>(xc[i]) * xc[i];
    part[c] = s;
  }
  double total = 0;
  for (double s : part) total += s;
  return total;
}

void check_f32(const std::string& origin, const std::string& name, const TensorView& t) {
  if (t.dtype() != DType::f32) fail(origin, "tensor '" + name + "' is " + dtype_name(t.dtype()) + ", expected F32");
  if (t.numel() > 0 && t.data() == nullptr) fail(origin, "tensor '" + name + "' has no data");
}

}  // namespace

NamedTensors collect_tensors(const std::function<void(const TensorVisitor&)>& for_each) {
  NamedTensors out;
  for_each([&](const std::string& name, Tensor& t) { out.emplace_back(name, t.view()); });
  return out;
}

std::vector<ParamRef> pair_params(const NamedTensors& params, const NamedTensors& grads) {
  const std::string origin = "[optimizer]";
  if (params.size() != grads.size()) {
    fail(origin, std::to_string(params.size()) + " parameters but " + std::to_string(grads.size()) + " gradients");
  }
  std::vector<ParamRef> out;
  for (size_t i = 0; i < params.size(); ++i) {
    const auto& [name, p] = params[i];
    const auto& [gname, g] = grads[i];
    if (name != gname) fail(origin, "parameter " + std::to_string(i) + " is '" + name + "' but its gradient is '" + gname + "'");
    if (p.shape() != g.shape()) {
      fail(origin, "'" + name + "' has shape " + shape_str(p.shape()) + " but its gradient " + shape_str(g.shape()));
    }
    check_f32(origin, name, p);
    check_f32(origin, "grad of " + name, g);
    out.push_back({name, p, g});
  }
  return out;
}

bool decay_matrices(const std::string&, const TensorView& param) { return param.rank() >= 2; }

// ---- AdamW ----------------------------------------------------------------------------------------

AdamW::AdamW(std::vector<ParamRef> params, const AdamWOptions& opt, DecayPredicate decay)
    : params_(std::move(params)), opt_(opt), step_(DType::i64, {1}) {
  const std::string origin = "[adamw]";
  const auto in_unit = [](double b) { return b >= 0 && b < 1; };
  if (!in_unit(opt.beta1) || !in_unit(opt.beta2)) {
    fail(origin, "betas (" + std::to_string(opt.beta1) + ", " + std::to_string(opt.beta2) + ") must be in [0, 1)");
  }
  if (!(opt.eps >= 0) || !(opt.lr >= 0) || !(opt.weight_decay >= 0)) {
    fail(origin, "lr=" + std::to_string(opt.lr) + ", eps=" + std::to_string(opt.eps) +
                     ", weight_decay=" + std::to_string(opt.weight_decay) + " must all be >= 0");
  }
  if (!decay) decay = decay_matrices;
  for (const ParamRef& p : params_) {
    check_f32(origin, p.name, p.param);
    check_f32(origin, "grad of " + p.name, p.grad);
    if (p.param.shape() != p.grad.shape()) {
      fail(origin, "'" + p.name + "' has shape " + shape_str(p.param.shape()) + " but its gradient " +
                       shape_str(p.grad.shape()));
    }
    decay_.push_back(decay(p.name, p.param));
    m_.emplace_back(DType::f32, p.param.shape());
    v_.emplace_back(DType::f32, p.param.shape());
  }
}

void AdamW::step(double lr) {
  if (!(lr >= 0) || !std::isfinite(lr)) fail("[adamw]", "lr=" + std::to_string(lr) + " must be finite and >= 0");
  const int64_t step = ++step_.as<int64_t>()[0];
  // As torch: Python floats (double) for the bias corrections, cast to float at each tensor op.
  const double t = static_cast<double>(step);
  const double bias_correction1 = 1 - std::pow(opt_.beta1, t);
  const double bias_correction2 = 1 - std::pow(opt_.beta2, t);
  cpu::AdamCoefs c{};
  c.b1 = static_cast<float>(opt_.beta1);
  c.one_m_b1 = static_cast<float>(1 - opt_.beta1);
  c.b2 = static_cast<float>(opt_.beta2);
  c.one_m_b2 = static_cast<float>(1 - opt_.beta2);
  c.bc2_sqrt = static_cast<float>(std::sqrt(bias_correction2));
  c.eps = static_cast<float>(opt_.eps);
  c.neg_step_size = static_cast<float>(-(lr / bias_correction1));
  for (size_t k = 0; k < params_.size(); ++k) {
    c.decay = static_cast<float>(1 - lr * (decay_[k] ? opt_.weight_decay : 0.0));
    float* p = params_[k].param.as<float>();
    float* m = m_[k].as<float>();
    float* v = v_[k].as<float>();
    const float* g = params_[k].grad.as<float>();
    const int64_t n = params_[k].param.numel();
    const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
    for (int64_t ch = 0; ch < chunks; ++ch) {
      const int64_t off = ch * kChunk;
      cpu::adamw_chunk(p + off, m + off, v + off, g + off, std::min(kChunk, n - off), c);
    }
  }
}

NamedTensors AdamW::state_tensors() const {
  NamedTensors out;
  out.emplace_back("adam.step", step_.view());
  for (size_t k = 0; k < params_.size(); ++k) out.emplace_back("adam.m." + params_[k].name, m_[k].view());
  for (size_t k = 0; k < params_.size(); ++k) out.emplace_back("adam.v." + params_[k].name, v_[k].view());
  return out;
}

// ---- gradients ------------------------------------------------------------------------------------

float grad_norm(const NamedTensors& grads) {
  // torch: norm(stack([norm(g) for g in grads])), each norm a float32 tensor.
  double total = 0;
  for (const auto& [name, g] : grads) {
    check_f32("[clip_grad_norm]", name, g);
    const auto norm = static_cast<float>(std::sqrt(sum_squares(g.as<float>(), g.numel())));
    total += static_cast<double>(norm) * norm;
  }
  return static_cast<float>(std::sqrt(total));
}

float clip_grad_norm(const NamedTensors& grads, double max_norm) {
  const float norm = grad_norm(grads);
  if (!std::isfinite(norm)) return norm;
  // torch: clip_coef = max_norm / (total_norm + 1e-6), a float tensor; Tensor.__rtruediv__ is
  // reciprocal() * max_norm. Clamped at 1, where the multiplication changes nothing.
  const float coef = (1.0f / (norm + 1e-6f)) * static_cast<float>(max_norm);
  if (coef < 1.0f) scale_grads(grads, coef);
  return norm;
}

void scale_grads(const NamedTensors& grads, float factor) {
  for (const auto& [name, g] : grads) {
    check_f32("[scale_grads]", name, g);
    float* x = g.as<float>();
    const int64_t n = g.numel();
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
    for (int64_t i = 0; i < n; ++i) x[i] *= factor;
  }
}

void zero_grads(const NamedTensors& grads) {
  for (const auto& [name, g] : grads) {
    if (g.numel() > 0) std::memset(g.data(), 0, g.nbytes());
  }
}

std::optional<std::string> first_nonfinite(const NamedTensors& tensors) {
  for (const auto& [name, t] : tensors) {
    if (t.dtype() != DType::f32) continue;
    const float* x = t.as<float>();
    const int64_t n = t.numel();
    int bad = 0;
#pragma omp parallel for schedule(static) reduction(| : bad) if (n >= kParallelMin)
    for (int64_t i = 0; i < n; ++i) bad |= !std::isfinite(x[i]);
    if (bad) return name;
  }
  return std::nullopt;
}

// ---- learning-rate schedule -------------------------------------------------------------------------

void LrSchedule::validate() const {
  const std::string origin = "[lr_schedule]";
  if (!(peak > 0) || !std::isfinite(peak)) fail(origin, "peak lr=" + std::to_string(peak) + " must be > 0");
  if (!(min_lr >= 0 && min_lr <= peak)) {
    fail(origin, "min_lr=" + std::to_string(min_lr) + " must be in [0, peak=" + std::to_string(peak) + "]");
  }
  if (warmup < 0) fail(origin, "warmup=" + std::to_string(warmup) + " must be >= 0");
  if (total < 1 || total < warmup) {
    fail(origin, "total steps=" + std::to_string(total) + " must be >= 1 and >= warmup=" + std::to_string(warmup));
  }
}

double LrSchedule::lr_at(int64_t step) const {
  if (step < 0) step = 0;
  if (step < warmup) return peak * static_cast<double>(step + 1) / static_cast<double>(warmup);
  if (step >= total) return min_lr;
  const double progress = static_cast<double>(step - warmup) / static_cast<double>(total - warmup);
  return min_lr + 0.5 * (1 + std::cos(std::numbers::pi * progress)) * (peak - min_lr);
}

}  // namespace moe
