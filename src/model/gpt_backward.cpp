// GPT backward, by hand, block by block in reverse: cross-entropy -> head -> final norm ->
// (FFN, norm2, attention output, attention, RoPE, q/k norm, q/k/v, norm1) per block -> embeddings.
// Accumulates d(total)/dθ into the gradients; the MoE layers add their aux-loss gradients.
#include <cmath>

#include "gpt_internal.h"
#include "kernels/ref/transformer.h"
#include "moe/error.h"

namespace moe {

using namespace gpt_detail;

namespace {

// d(mean CE)/d(logits) = (softmax − onehot) / N on counted rows, 0 elsewhere.  [T, V]
template <class T>
void cross_entropy_backward(GptActivations<T>& g, const int32_t* targets, int64_t Tn, int64_t V) {
  fit(g.dlogits, Tn * V);
  const double inv_n = g.n_counted > 0 ? 1.0 / static_cast<double>(g.n_counted) : 0.0;
#pragma omp parallel for schedule(static) if (Tn * V > kParallelWork)
  for (int64_t t = 0; t < Tn; ++t) {
    T* dz = g.dlogits.data() + t * V;
    const bool counted = targets && targets[t] >= 0;
    if (!counted) {
      std::fill(dz, dz + V, T(0));
      continue;
    }
    const T* z = g.logits.data() + t * V;
    for (int64_t j = 0; j < V; ++j) dz[j] = static_cast<T>(std::exp(static_cast<double>(z[j]) - g.lse[t]) * inv_n);
    dz[targets[t]] -= static_cast<T>(inv_n);
  }
}

// From d(block output) to d(n2) through the FFN: writes g.dn [T, d].
template <class T>
void ffn_backward(const GptConfig& c, const GptBlockWeights& w, GptBlockActs<T>& a, GptActivations<T>& g,
                  bool is_moe, const T* dy, GptBlockWeights& gw, int64_t Tn) {
  if (is_moe) {
    moe_layer_backward(c.moe, w.moe, a.moe_in, a.moe, dy, g.dn.data(), gw.moe);
    return;
  }
  std::fill(g.dn.begin(), g.dn.end(), T(0));
  fit(g.dweights, Tn);
  run_experts_backward(view_experts(c.dense, dense_view<T>(w, c.d_model)), a.dense_plan, g.ones.data(), a.n2.data(),
                       a.dense, dy, g.dn.data(), dense_grads<T>(gw), g.dweights.data());
}

// From d(att) (g.datt) to d(q), d(k), d(v) (pre-RoPE for q and k), then through the
// projections into g.dn = d(n1) and the weight gradients.
template <class T>
void attention_backward(const GptConfig& c, const GptBlockWeights& w, const GptBlockActs<T>& a, GptActivations<T>& g,
                        GptBlockWeights& gw, int64_t B, int64_t S) {
  const int64_t Tn = B * S, d = c.d_model, H = c.n_heads, Hkv = c.n_kv_heads, hd = c.head_dim();
  const int64_t qd = H * hd, kvd = Hkv * hd;
  fit(g.dq, Tn * qd);   // [T, H·hd]
  fit(g.dk, Tn * kvd);  // [T, Hkv·hd]
  fit(g.dv, Tn * kvd);
  std::fill(g.dq.begin(), g.dq.end(), T(0));
  std::fill(g.dk.begin(), g.dk.end(), T(0));
  std::fill(g.dv.begin(), g.dv.end(), T(0));
  ops::attention_backward({B, S, H, Hkv, hd, c.causal}, g.dq.data(), g.dk.data(), g.dv.data(), g.datt.data(),
                          a.probs.data(), a.q.data(), a.k.data(), a.v.data(), g.ws);
  if (c.pos == PosEncoding::rope) {
    const int64_t half = hd / 2;
#pragma omp parallel for schedule(static) if (Tn * qd > kParallelWork)
    for (int64_t t = 0; t < Tn; ++t) {
      const T* cs = g.rope_cos.data() + (t % S) * half;
      const T* sn = g.rope_sin.data() + (t % S) * half;
      ops::rope_row(g.dq.data() + t * qd, H, hd, cs, sn, true);
      ops::rope_row(g.dk.data() + t * kvd, Hkv, hd, cs, sn, true);
    }
  }
  const T* dq = g.dq.data();
  const T* dk = g.dk.data();
  if (c.qk_norm != QkNorm::none) {  // through the q/k RMSNorm to the raw projections
    const bool head = c.qk_norm == QkNorm::head;
    fit(g.dq_raw, Tn * qd);
    fit(g.dk_raw, Tn * kvd);
    std::fill(g.dq_raw.begin(), g.dq_raw.end(), T(0));
    std::fill(g.dk_raw.begin(), g.dk_raw.end(), T(0));
    ref::rmsnorm_backward(g.dq_raw.data(), mut<T>(gw.q_norm), dq, a.q_raw.data(), w.q_norm.as<T>(), a.rstd_q.data(),
                          head ? Tn * H : Tn, head ? hd : qd);
    ref::rmsnorm_backward(g.dk_raw.data(), mut<T>(gw.k_norm), dk, a.k_raw.data(), w.k_norm.as<T>(), a.rstd_k.data(),
                          head ? Tn * Hkv : Tn, head ? hd : kvd);
    dq = g.dq_raw.data();
    dk = g.dk_raw.data();
  }
  std::fill(g.dn.begin(), g.dn.end(), T(0));
  ops::linear_backward(g.dn.data(), mut<T>(gw.wq), mut<T>(gw.bq), dq, a.n1.data(), w.wq.as<T>(), Tn, d, qd, g.ws);
  ops::linear_backward(g.dn.data(), mut<T>(gw.wk), mut<T>(gw.bk), dk, a.n1.data(), w.wk.as<T>(), Tn, d, kvd, g.ws);
  ops::linear_backward(g.dn.data(), mut<T>(gw.wv), mut<T>(gw.bv), g.dv.data(), a.n1.data(), w.wv.as<T>(), Tn, d, kvd, g.ws);
}

}  // namespace

template <class T>
void gpt_backward(const GptConfig& c, const GptWeights& w, const GptStepInputs& in, GptActivations<T>& g,
                  GptWeights& grads) {
  check_gpt_weights(c, grads, dtype_of<T>());
  const int64_t B = in.batch, S = in.seq, Tn = B * S, d = c.d_model, V = c.vocab_size, L = c.n_layers;
  if (g.batch != B || g.seq != S || static_cast<int64_t>(g.blocks.size()) != L) {
    throw InvalidInput("[gpt] backward: the activations are not from a forward of these inputs");
  }
  const int64_t qd = c.n_heads * c.head_dim();

  // Loss -> logits -> head and final norm.
  cross_entropy_backward(g, in.targets, Tn, V);
  fit(g.dn, Tn * d);
  std::fill(g.dn.begin(), g.dn.end(), T(0));
  const Tensor& head = c.tied_head ? w.wte : w.head;
  Tensor& dhead = c.tied_head ? grads.wte : grads.head;
  ops::linear_backward(g.dn.data(), dhead.as<T>(), static_cast<T*>(nullptr), g.dlogits.data(), g.nf.data(), head.as<T>(),
                       Tn, d, V, g.ws);
  fit(g.dx, Tn * d);  // d(residual stream) [T, d]
  std::fill(g.dx.begin(), g.dx.end(), T(0));
  norm_backward(c, g.dx.data(), grads.normf_w, grads.normf_b, g.dn.data(), g.x_final.data(), w.normf_w, g.meanf.data(),
                g.rstdf.data(), Tn);

  fit(g.dx_mid, Tn * d);
  fit(g.datt, Tn * qd);
  for (int64_t l = L - 1; l >= 0; --l) {
    const GptBlockWeights& bw = w.blocks[l];
    GptBlockWeights& gw = grads.blocks[l];
    GptBlockActs<T>& a = g.blocks[l];
    // out = x_mid + ffn(norm2(x_mid))
    ffn_backward(c, bw, a, g, c.is_moe_layer(l), g.dx.data(), gw, Tn);
    std::copy(g.dx.begin(), g.dx.end(), g.dx_mid.begin());
    norm_backward(c, g.dx_mid.data(), gw.norm2_w, gw.norm2_b, g.dn.data(), a.x_mid.data(), bw.norm2_w, a.mean2.data(),
                  a.rstd2.data(), Tn);
    // x_mid = x + att·woᵀ (+ bo)
    std::fill(g.datt.begin(), g.datt.end(), T(0));
    ops::linear_backward(g.datt.data(), mut<T>(gw.wo), mut<T>(gw.bo), g.dx_mid.data(), a.att.data(), bw.wo.as<T>(), Tn,
                         qd, d, g.ws);
    attention_backward(c, bw, a, g, gw, B, S);
    std::copy(g.dx_mid.begin(), g.dx_mid.end(), g.dx.begin());
    norm_backward(c, g.dx.data(), gw.norm1_w, gw.norm1_b, g.dn.data(), a.x.data(), bw.norm1_w, a.mean1.data(),
                  a.rstd1.data(), Tn);
  }

  // Embeddings (in token order: repeated ids accumulate deterministically).
  T* dwte = grads.wte.as<T>();
  T* dwpe = c.pos == PosEncoding::learned ? grads.wpe.as<T>() : nullptr;
  for (int64_t t = 0; t < Tn; ++t) {
    const T* dxt = g.dx.data() + t * d;
    T* de = dwte + static_cast<int64_t>(in.tokens[t]) * d;
    for (int64_t j = 0; j < d; ++j) de[j] += dxt[j];
    if (dwpe) {
      T* dp = dwpe + (t % S) * d;
      for (int64_t j = 0; j < d; ++j) dp[j] += dxt[j];
    }
  }
}

template void gpt_backward<float>(const GptConfig&, const GptWeights&, const GptStepInputs&, GptActivations<float>&,
                                  GptWeights&);
template void gpt_backward<double>(const GptConfig&, const GptWeights&, const GptStepInputs&, GptActivations<double>&,
                                   GptWeights&);

}  // namespace moe
