// GPT forward: embeddings, pre-norm blocks (attention + dense or MoE FFN), final norm, head,
// cross-entropy. Keeps in GptActivations what gpt_backward (gpt_backward.cpp) needs.
#include <cmath>
#include <limits>

#include "attention.h"
#include "gpt_internal.h"
#include "kernels/cpu/microkernel.h"
#include "kernels/ref/transformer.h"
#include "moe/error.h"

namespace moe {

namespace gpt_detail {

template <class T>
void norm_forward(const GptConfig& c, T* y, T* mean, T* rstd, const T* x, const Tensor& w, const Tensor& b,
                  int64_t rows) {
  const int64_t d = c.d_model;
  if (c.norm == NormKind::rmsnorm) {
#pragma omp parallel for schedule(static) if (rows * d > kParallelWork)
    for (int64_t t = 0; t < rows; ++t) ref::rmsnorm_forward(y + t * d, rstd + t, x + t * d, w.as<T>(), 1, d, c.norm_eps);
  } else {
#pragma omp parallel for schedule(static) if (rows * d > kParallelWork)
    for (int64_t t = 0; t < rows; ++t) {
      ref::layernorm_forward(y + t * d, mean + t, rstd + t, x + t * d, w.as<T>(), b.as<T>(), 1, d, c.norm_eps);
    }
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

// Attention of one block: q/k/v projections, RoPE, per-(sequence, head) softmax attention.
template <class T>
void attention_forward(const GptConfig& c, const GptBlockWeights& w, GptBlockActs<T>& a, const GptActivations<T>& g,
                       int64_t B, int64_t S) {
  const int64_t Tn = B * S, d = c.d_model, H = c.n_heads, Hkv = c.n_kv_heads, hd = c.head_dim();
  const int64_t qd = H * hd, kvd = Hkv * hd;
  fit(a.q, Tn * qd);   // [T, H·hd]
  fit(a.k, Tn * kvd);  // [T, Hkv·hd]
  fit(a.v, Tn * kvd);
  linear_forward(a.q.data(), a.n1.data(), w.wq.as<T>(), static_cast<const T*>(nullptr), Tn, d, qd);
  linear_forward(a.k.data(), a.n1.data(), w.wk.as<T>(), static_cast<const T*>(nullptr), Tn, d, kvd);
  linear_forward(a.v.data(), a.n1.data(), w.wv.as<T>(), static_cast<const T*>(nullptr), Tn, d, kvd);
  if (c.pos == PosEncoding::rope) {
    const int64_t half = hd / 2;
#pragma omp parallel for schedule(static) if (Tn * qd > kParallelWork)
    for (int64_t t = 0; t < Tn; ++t) {
      const T* cs = g.rope_cos.data() + (t % S) * half;
      const T* sn = g.rope_sin.data() + (t % S) * half;
      ref::rope_row(a.q.data() + t * qd, H, hd, cs, sn, false);
      ref::rope_row(a.k.data() + t * kvd, Hkv, hd, cs, sn, false);
    }
  }
  fit(a.probs, B * H * S * S);  // [B, H, S, S]
  fit(a.att, Tn * qd);          // [T, H·hd]
  if constexpr (std::is_same_v<T, float>) {
    attention_forward_f32({B, S, H, Hkv, hd, c.causal}, a.att.data(), a.probs.data(), a.q.data(), a.k.data(),
                          a.v.data());
    return;
  }
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
#pragma omp parallel for collapse(2) schedule(dynamic, 1) if (B * H * S * S * hd > kParallelWork)
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t h = 0; h < H; ++h) {
      const int64_t kvh = h / (H / Hkv);
      ref::attention_head_forward(a.att.data() + b * S * qd + h * hd, qd, a.probs.data() + (b * H + h) * S * S,
                                  a.q.data() + b * S * qd + h * hd, qd, a.k.data() + b * S * kvd + kvh * hd,
                                  a.v.data() + b * S * kvd + kvh * hd, kvd, S, S, 0, hd, scale, c.causal);
    }
  }
}

// The dense FFN on the float path: out = act(x·Wgᵀ + bg, x·Wuᵀ + bu)·Wdᵀ + bd, each product a
// GEMM over all threads (as one expert of the fast-experts kernels, its narrow down projection
// would run on one thread). Keeps pre_gate, pre_up, hidden [T, F] in st for the backward.
void dense_ffn_forward_f32(const ExpertConfig& e, const GptBlockWeights& w, const float* x, int64_t Tn, int64_t d,
                           FastTrainState& st, float* out) {
  const int64_t F = e.hidden;
  const bool gated = is_gated(e.act);
  fit(st.pre_up, Tn * F);  // [T, F]
  fit(st.hidden, Tn * F);
  fit(st.pre_gate, gated ? Tn * F : 0);
  float* pu = st.pre_up.data();
  float* pg = gated ? st.pre_gate.data() : nullptr;
  float* h = st.hidden.data();
  linear_forward(pu, x, w.ffn_up.as<float>(), ptr<float>(w.ffn_up_bias), Tn, d, F);
  if (gated) linear_forward(pg, x, w.ffn_gate.as<float>(), ptr<float>(w.ffn_gate_bias), Tn, d, F);
  const cpu::SwigluRows vec = e.act == ExpertAct::swiglu ? cpu::swiglu_rows(cpu::detected_isa()) : nullptr;
#pragma omp parallel for schedule(static) if (Tn * F > kParallelWork)
  for (int64_t t = 0; t < Tn; ++t) {
    if (vec) {
      vec(pg + t * F, pu + t * F, h + t * F, F);
      continue;
    }
    for (int64_t j = 0; j < F; ++j) {
      h[t * F + j] = static_cast<float>(expert_activation(e, gated ? pg[t * F + j] : 0.0f, pu[t * F + j]).h);
    }
  }
  linear_forward(out, h, w.ffn_down.as<float>(), ptr<float>(w.ffn_down_bias), Tn, F, d);
}

// The FFN of one block on n2 -> out [T, d].
template <class T>
void ffn_forward(const GptConfig& c, const GptBlockWeights& w, GptBlockActs<T>& a,
                 const GptStepInputs& in, bool is_moe, T* out) {
  const int64_t Tn = in.batch * in.seq, d = c.d_model;
  if (!is_moe) {
    if constexpr (std::is_same_v<T, float>) {
      dense_ffn_forward_f32(c.dense, w, a.n2.data(), Tn, d, a.dense_fast, out);
    } else {
      dense_ffn_forward(c.dense, dense_view<T>(w, d), a.n2.data(), Tn, a.dense, out);
    }
    return;
  }
  const MoeLayerConfig& m = c.moe;
  LayerInputs& li = a.moe_in;
  li = LayerInputs{};
  li.n_tokens = Tn;
  li.group_tokens = in.seq;
  li.training = in.training;
  li.need_backward = true;
  const bool noisy = in.training && m.soft.slots_per_expert == 0 && m.router.noise != NoiseKind::none;
  const bool jitter = in.training && m.jitter > 0;
  if ((noisy || jitter) && !in.rng) {
    throw InvalidInput("[gpt] training with router noise or jitter needs an rng (GptStepInputs::rng)");
  }
  if (noisy) {
    fit(a.noise, Tn * m.router.n_experts);  // [T, E]
    for (T& v : a.noise) v = static_cast<T>(in.rng->normal());
    li.noise = a.noise.data();
  }
  if (jitter) {
    fit(a.jitter, Tn * d);  // [T, d]
    for (T& v : a.jitter) v = static_cast<T>(in.rng->uniform(1 - m.jitter, 1 + m.jitter));
    li.jitter = a.jitter.data();
  }
  moe_layer_forward(m, w.moe, a.n2.data(), li, a.moe, out);
}

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
    ref::rope_tables(g.rope_cos.data(), g.rope_sin.data(), 0, S, c.head_dim(), c.rope_theta);
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
  for (int64_t l = 0; l < L; ++l) {
    const GptBlockWeights& bw = w.blocks[l];
    GptBlockActs<T>& a = g.blocks[l];
    fit(a.n1, Tn * d);
    fit(a.mean1, Tn);
    fit(a.rstd1, Tn);
    norm_forward(c, a.n1.data(), a.mean1.data(), a.rstd1.data(), a.x.data(), bw.norm1_w, bw.norm1_b, Tn);
    attention_forward(c, bw, a, g, B, S);
    fit(a.x_mid, Tn * d);  // x + att·woᵀ (+ bo)
    linear_forward(a.x_mid.data(), a.att.data(), bw.wo.as<T>(), ptr<T>(bw.bo), Tn, c.n_heads * c.head_dim(), d);
    for (int64_t i = 0; i < Tn * d; ++i) a.x_mid[i] += a.x[i];
    fit(a.n2, Tn * d);
    fit(a.mean2, Tn);
    fit(a.rstd2, Tn);
    norm_forward(c, a.n2.data(), a.mean2.data(), a.rstd2.data(), a.x_mid.data(), bw.norm2_w, bw.norm2_b, Tn);
    std::vector<T>& next = l + 1 < L ? g.blocks[l + 1].x : g.x_final;
    fit(next, Tn * d);  // FFN output, then + x_mid
    const bool is_moe = c.is_moe_layer(l);
    ffn_forward(c, bw, a, in, is_moe, next.data());
    for (int64_t i = 0; i < Tn * d; ++i) next[i] += a.x_mid[i];
    if (is_moe) {
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
  linear_forward(g.logits.data(), g.nf.data(), head.as<T>(), static_cast<const T*>(nullptr), Tn, d, V);
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
