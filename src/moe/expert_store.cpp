// The expert store and its entry points (include/moe/expert_store.h). Format-specific work goes
// through the traits table (expert_formats.cpp); here are only the stages around it.
#include "moe/expert_store.h"

#include <omp.h>

#include <algorithm>

#include "expert_formats.h"
#include "kernels/cpu/packed_ffn.h"
#include "moe/error.h"

namespace moe {

using detail::format_traits;
using detail::RowActs;

namespace {

[[noreturn]] void bad(const std::string& m) { throw InvalidInput("[experts] " + m); }

int threads_of(const ExpertRunOptions& o) { return o.threads > 0 ? o.threads : omp_get_max_threads(); }

template <class T>
void check_run(const ExpertStore& s, const DispatchPlan& p) {
  const detail::ExpertFormatTraits& t = format_traits(s.format);
  if (t.activations != dtype_of<T>()) {
    bad(std::string("a ") + t.name + " store computes in " + dtype_name(t.activations) + ", not " +
        dtype_name(dtype_of<T>()));
  }
  if (p.n_experts != s.n_experts) {
    bad("the plan routes to " + std::to_string(p.n_experts) + " experts, the store has " + std::to_string(s.n_experts));
  }
}

void check_trains(const ExpertStore& s) {
  if (!format_traits(s.format).trains) {
    bad(std::string("the ") + format_traits(s.format).name + " format is inference-only: no backward");
  }
}

// Sizes the per-row tensors of a training format and hands them out type-erased.
template <class T>
RowActs row_acts(const ExpertStore& s, int64_t A, ExpertRunState<T>& st) {
  if (!format_traits(s.format).trains) return {};
  const int64_t I = s.spec.hidden;
  st.pre_gate.resize(is_gated(s.spec.act) ? static_cast<size_t>(A * I) : 0);
  st.pre_up.resize(static_cast<size_t>(A * I));
  st.hidden.resize(static_cast<size_t>(A * I));
  return {st.pre_gate.empty() ? nullptr : st.pre_gate.data(), st.pre_up.data(), st.hidden.data()};
}

template <class T>
RowActs kept_acts(const ExpertRunState<T>& st) {
  return {const_cast<T*>(st.pre_gate.empty() ? nullptr : st.pre_gate.data()), const_cast<T*>(st.pre_up.data()),
          const_cast<T*>(st.hidden.data())};
}

}  // namespace

const char* expert_format_name(ExpertFormat f) { return format_traits(f).name; }

ExpertFormat parse_expert_format(const std::string& name) {
  if (name == "f64") return ExpertFormat::f64;
  if (name == "f32") return ExpertFormat::f32;
  if (name == "packed_f32" || name == "fp32") return ExpertFormat::packed_f32;
  if (name == "packed_bf16" || name == "bf16") return ExpertFormat::packed_bf16;
  bad("format '" + name + "' is not one of: f64, f32, packed_f32, packed_bf16");
}

bool expert_format_trains(ExpertFormat f) { return format_traits(f).trains; }

int64_t ExpertStore::expert_bytes() const {
  const int64_t mats = is_gated(spec.act) ? 3 : 2;
  return mats * d_model * spec.hidden * static_cast<int64_t>(dtype_size(format_traits(format).weights));
}

namespace {

template <class T>
ExpertStore view(const FfnSpec& spec, const FfnWeights<T>& w, ExpertFormat format, FfnWeights<T> ExpertStore::*slot) {
  ExpertStore s;
  s.format = format;
  s.spec = spec;
  s.spec.hidden = w.hidden;
  s.n_experts = w.n_experts;
  s.d_model = w.d_model;
  s.*slot = w;
  return s;
}

}  // namespace

ExpertStore view_experts(const FfnSpec& spec, const FfnWeights<double>& w) {
  return view(spec, w, ExpertFormat::f64, &ExpertStore::f64);
}
ExpertStore view_experts(const FfnSpec& spec, const FfnWeights<float>& w) {
  return view(spec, w, ExpertFormat::f32, &ExpertStore::f32);
}

ExpertStore make_packed_experts(const FfnSpec& spec, int64_t E, int64_t H, ExpertFormat format) {
  const detail::ExpertFormatTraits& t = format_traits(format);
  if (!t.packed) bad(std::string("format ") + t.name + " is not a packed format");
  ExpertStore s;
  s.format = format;
  s.spec = spec;
  s.n_experts = E;
  s.d_model = H;
  s.packed = std::make_shared<cpu::PackedFfn>(cpu::make_packed_ffn(spec, E, H, t.weights));
  return s;
}

void pack_experts_into(ExpertStore& s, int64_t e0, const FfnWeights<float>& w, int threads) {
  if (!s.packed) bad("pack_experts_into needs a packed store (make_packed_experts)");
  if (e0 < 0 || e0 + w.n_experts > s.n_experts || w.d_model != s.d_model || w.hidden != s.spec.hidden) {
    bad("experts [" + std::to_string(e0) + ", " + std::to_string(e0 + w.n_experts) + ") of width " +
        std::to_string(w.hidden) + " do not fit a store of " + std::to_string(s.n_experts) + " experts of width " +
        std::to_string(s.spec.hidden));
  }
  cpu::pack_ffn(*s.packed, e0, w, threads > 0 ? threads : omp_get_max_threads());
}

ExpertStore pack_experts(const FfnSpec& spec0, const FfnWeights<float>& w, ExpertFormat format, int threads) {
  FfnSpec spec = spec0;
  spec.hidden = w.hidden;
  spec.bias = spec.bias || w.up_bias || w.down_bias || w.gate_bias;
  ExpertStore s = make_packed_experts(spec, w.n_experts, w.d_model, format);
  pack_experts_into(s, 0, w, threads);
  return s;
}

template <class T>
void run_experts(const ExpertStore& s, const DispatchPlan& p, const T* weights, const T* x, T* y, ExpertRunState<T>& st,
                 const ExpertRunOptions& o) {
  check_run<T>(s, p);
  const detail::ExpertFormatTraits& t = format_traits(s.format);
  const int threads = threads_of(o);
  const int64_t A = p.n_rows(), H = s.d_model;
  if (t.fused_forward) {
    st.row_scale.resize(static_cast<size_t>(A));
    for (int64_t i = 0; i < A; ++i) st.row_scale[i] = static_cast<float>(weights[p.row_slot[i]]);
    t.fused_forward(s, p.groups(true), p.row_token.data(), st.row_scale.data(), p.n_tokens, x, y, threads, st.ws);
    return;
  }
  st.out.resize(static_cast<size_t>(A * H));
  t.rows_forward(s, p.groups(true), x, st.out.data(), row_acts(s, A, st), threads, st.ws);
  combine_rows(p, weights, st.out.data(), H, y);
}

template <class T>
void run_experts_backward(const ExpertStore& s, const DispatchPlan& p, const T* weights, const T* x,
                          ExpertRunState<T>& st, const T* dy, T* dx, const FfnGrads<T>& grads, T* dweights,
                          const ExpertRunOptions& o) {
  check_run<T>(s, p);
  check_trains(s);
  const int64_t A = p.n_rows(), H = s.d_model;
  if (static_cast<int64_t>(st.out.size()) != A * H) bad("backward without the state of a forward of this plan");
  st.dout.resize(static_cast<size_t>(A * H));
  combine_rows_backward(p, weights, st.out.data(), dy, H, st.dout.data(), dweights);
  format_traits(s.format).rows_backward(s, p.groups(true), x, kept_acts(st), st.dout.data(), st.dout.data(), &grads,
                                        threads_of(o), st.ws);
  dispatch_rows_backward(p, st.dout.data(), H, dx);
}

template <class T>
void run_expert_rows(const ExpertStore& s, const DispatchPlan& p, const T* xrows, T* out_rows, ExpertRunState<T>& st,
                     const ExpertRunOptions& o) {
  check_run<T>(s, p);
  format_traits(s.format).rows_forward(s, p.groups(false), xrows, out_rows, row_acts(s, p.n_rows(), st), threads_of(o),
                                       st.ws);
}

template <class T>
void run_expert_rows_backward(const ExpertStore& s, const DispatchPlan& p, const T* xrows, ExpertRunState<T>& st,
                              const T* dout_rows, T* dx_rows, const FfnGrads<T>& grads, const ExpertRunOptions& o) {
  check_run<T>(s, p);
  check_trains(s);
  if (static_cast<int64_t>(st.pre_up.size()) != p.n_rows() * s.spec.hidden) {
    bad("backward without the state of a forward of this plan");
  }
  format_traits(s.format).rows_backward(s, p.groups(false), xrows, kept_acts(st), dout_rows, dx_rows, &grads,
                                        threads_of(o), st.ws);
}

#define MOE_INSTANTIATE_STORE(T)                                                                                   \
  template void run_experts<T>(const ExpertStore&, const DispatchPlan&, const T*, const T*, T*, ExpertRunState<T>&, \
                               const ExpertRunOptions&);                                                           \
  template void run_experts_backward<T>(const ExpertStore&, const DispatchPlan&, const T*, const T*,               \
                                        ExpertRunState<T>&, const T*, T*, const FfnGrads<T>&, T*,                   \
                                        const ExpertRunOptions&);                                                  \
  template void run_expert_rows<T>(const ExpertStore&, const DispatchPlan&, const T*, T*, ExpertRunState<T>&,      \
                                   const ExpertRunOptions&);                                                       \
  template void run_expert_rows_backward<T>(const ExpertStore&, const DispatchPlan&, const T*, ExpertRunState<T>&, \
                                            const T*, T*, const FfnGrads<T>&, const ExpertRunOptions&);
MOE_INSTANTIATE_STORE(float)
MOE_INSTANTIATE_STORE(double)

}  // namespace moe
