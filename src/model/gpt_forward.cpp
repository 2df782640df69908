// GPT forward: embeddings, pre-norm blocks (attention + dense or MoE FFN), final norm, head,
// cross-entropy. Keeps in GptActivations what gpt_backward (gpt_backward.cpp) needs.
#include <cmath>
#include <limits>

#include "gpt_internal.h"
#include "kernels/ref/transformer.h"
#include "moe/error.h"

namespace moe {

namespace gpt_detail {

template <class T>
void norm_forward(const GptConfig& c, T* y, T* mean, T* rstd, const T* x, const Tensor& w, const Tensor& b,
                  int64_t rows) {
  if (c.norm == NormKind::rmsnorm) {
    ops::rmsnorm_forward(y, rstd, x, w.as<T>(), rows, c.d_model, c.norm_eps);
  } else {
    ops::layernorm_forward(y, mean, rstd, x, w.as<T>(), b.as<T>(), rows, c.d_model, c.norm_eps);
  }
}

template <class T>
void norm_backward(const GptConfig& c, T* dx, Tensor& dw, Tensor& db, const T* dy, const T* x, const Tensor& w,
                   const T* mean, const T* rstd, int64_t rows) {
  if (c.norm == NormKind::rmsnorm) {
    ref::rmsnorm_backward(dx, mut<T>(dw), dy, x, w.as<T>(), rstd, rows, c.d_model);
  } else {
    ref::layernorm_backward(dx, mut<T>(dw), mut<T>(db), dy, x, w.as<T>(), mean, rstd, rows, c.d_model);
  }
}

void check_step_inputs(const GptConfig& c, const GptStepInputs& in) {
  auto bad = [](const std::string& m) { throw InvalidInput("[gpt] " + m); };
  if (in.batch < 1) bad("batch=" + std::to_string(in.batch) + " must be >= 1");
  if (in.seq < 1) bad("seq=" + std::to_string(in.seq) + " must be >= 1");
  if (in.seq > c.context) bad("seq=" + std::to_string(in.seq) + " > context=" + std::to_string(c.context));
  if (!in.tokens) bad("no tokens");
  auto where = [&](int64_t i) {  // appends, not const char* + string (GCC 12 -Wrestrict false positive)
    std::string s("[");
    s.append(std::to_string(i / in.seq)).append(", ").append(std::to_string(i % in.seq)).append("]");
    return s;
  };
  for (int64_t i = 0; i < in.batch * in.seq; ++i) {
    const int32_t t = in.tokens[i];
    if (t < 0 || t >= c.vocab_size) {
      bad("token id " + std::to_string(t) + " at " + where(i) + " is outside [0, vocab_size=" +
          std::to_string(c.vocab_size) + ")");
    }
    if (in.targets && in.targets[i] >= c.vocab_size) {
      bad("target id " + std::to_string(in.targets[i]) + " at " + where(i) + " >= vocab_size=" +
          std::to_string(c.vocab_size));
    }
  }
}

#define MOE_INSTANTIATE_NORM(T)                                                                                   \
  template void norm_forward<T>(const GptConfig&, T*, T*, T*, const T*, const Tensor&, const Tensor&, int64_t); \
  template void norm_backward<T>(const GptConfig&, T*, Tensor&, Tensor&, const T*, const T*, const Tensor&,      \
                                 const T*, const T*, int64_t);
MOE_INSTANTIATE_NORM(float)
MOE_INSTANTIATE_NORM(double)

}  // namespace gpt_detail

using namespace gpt_detail;

namespace {

// Row-wise log-sum-exp (in parallel) and the mean cross-entropy of counted targets (summed in
// order: the same for any thread count).
template <class T>
double cross_entropy(GptActivations<T>& g, const int32_t* targets, int64_t Tn, int64_t V) {
  fit(g.lse, Tn);
#pragma omp parallel for schedule(static) if (Tn * V > kParallelWork)
  for (int64_t t = 0; t < Tn; ++t) {
    const T* z = g.logits.data() + t * V;
    double m = -std::numeric_limits<double>::infinity();
    for (int64_t j = 0; j < V; ++j) m = std::max(m, static_cast<double>(z[j]));
    double s = 0;
    for (int64_t j = 0; j < V; ++j) s += std::exp(static_cast<double>(z[j]) - m);
    g.lse[t] = m + std::log(s);
  }
  double sum = 0;
  int64_t counted = 0;
  for (int64_t t = 0; targets && t < Tn; ++t) {
    if (targets[t] < 0) continue;
    sum += g.lse[t] - static_cast<double>(g.logits[t * V + targets[t]]);
    ++counted;
  }
  g.n_counted = counted;
  return counted > 0 ? sum / static_cast<double>(counted) : 0.0;
}

}  // namespace

template <class T>
GptLosses gpt_forward(const GptConfig& c, const GptWeights& w, const GptStepInputs& in, GptActivations<T>& g,
                      T* logits_out) {
  validate_gpt(c);
  check_gpt_weights(c, w, dtype_of<T>());
  check_step_inputs(c, in);
  const int64_t B = in.batch, S = in.seq, Tn = B * S, d = c.d_model, V = c.vocab_size, L = c.n_layers;
  g.batch = B;
  g.seq = S;
  g.blocks.resize(static_cast<size_t>(L));
  if (c.pos == PosEncoding::rope) {
    const int64_t half = c.head_dim() / 2;
    fit(g.rope_cos, S * half);  // [S, hd/2]
    fit(g.rope_sin, S * half);
    ops::rope_tables(g.rope_cos.data(), g.rope_sin.data(), 0, S, c.head_dim(), c.rope_theta);
  }

  // Embeddings into the first block's input.
  std::vector<T>* x = &g.blocks[0].x;
  fit(*x, Tn * d);  // [T, d]
  const T* wte = w.wte.as<T>();
  const T* wpe = c.pos == PosEncoding::learned ? w.wpe.as<T>() : nullptr;
  for (int64_t t = 0; t < Tn; ++t) {
    const T* e = wte + static_cast<int64_t>(in.tokens[t]) * d;
    T* xt = x->data() + t * d;
    for (int64_t j = 0; j < d; ++j) xt[j] = e[j] + (wpe ? wpe[(t % S) * d + j] : T(0));
  }

  GptLosses losses;
  losses.expert_load.resize(static_cast<size_t>(L));
  losses.layer_aux.assign(static_cast<size_t>(L), 0.0);
  fit(g.ones, Tn);
  std::fill(g.ones.begin(), g.ones.end(), T(1));
  const int64_t kvd = c.n_kv_heads * c.head_dim();
  for (int64_t l = 0; l < L; ++l) {
    GptBlockActs<T>& a = g.blocks[l];
    fit(a.k, Tn * kvd);  // [T, Hkv·hd]
    fit(a.v, Tn * kvd);
    BlockStep<T> step;
    step.B = B;
    step.S = S;
    step.k_rows = a.k.data();
    step.v_rows = a.v.data();
    step.moe_state = &a.moe;
    step.in = &in;
    step.ones = g.ones.data();
    std::vector<T>& next = l + 1 < L ? g.blocks[l + 1].x : g.x_final;
    fit(next, Tn * d);
    block_forward(c, w.blocks[l], l, step, a, g.rope_cos.data(), g.rope_sin.data(), g.ws, next.data());
    if (c.is_moe_layer(l)) {
      losses.layer_aux[l] = a.moe.losses.count("aux_total") ? a.moe.losses.at("aux_total") : 0.0;
      losses.aux += losses.layer_aux[l];
      if (c.moe.soft.slots_per_expert == 0) {
        const Routing& r = a.moe.router.routing;
        std::vector<int64_t>& load = losses.expert_load[l];
        load.assign(static_cast<size_t>(r.n_experts), 0);
        for (int64_t e = 0; e < r.n_experts; ++e) load[e] = r.expert_rows(e);
      }
    }
  }

  fit(g.nf, Tn * d);
  fit(g.meanf, Tn);
  fit(g.rstdf, Tn);
  norm_forward(c, g.nf.data(), g.meanf.data(), g.rstdf.data(), g.x_final.data(), w.normf_w, w.normf_b, Tn);
  fit(g.logits, Tn * V);  // [T, V]
  const Tensor& head = c.tied_head ? w.wte : w.head;
  ops::linear(g.logits.data(), g.nf.data(), head.as<T>(), static_cast<const T*>(nullptr), Tn, d, V, g.ws);
  if (logits_out) std::copy(g.logits.begin(), g.logits.end(), logits_out);
  losses.ce = cross_entropy(g, in.targets, Tn, V);
  losses.n_counted = g.n_counted;
  losses.total = losses.ce + losses.aux;
  return losses;
}

template GptLosses gpt_forward<float>(const GptConfig&, const GptWeights&, const GptStepInputs&,
                                      GptActivations<float>&, float*);
template GptLosses gpt_forward<double>(const GptConfig&, const GptWeights&, const GptStepInputs&,
                                       GptActivations<double>&, double*);

}  // namespace moe
