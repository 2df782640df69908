// One pre-norm transformer block, the step both the training forward and KV-cache inference run:
//   n1 = norm1(x);  q, k, v = n1·Wq/k/vᵀ (+ bq/k/v) (q/k norm, then RoPE on q, k);  att = attention(q, k, v)
//   x_mid = x + att·Woᵀ (+ bo);  n2 = norm2(x_mid);  x_out = x_mid + ffn(n2)
// Training keeps every intermediate (and the attention probabilities) for the backward; inference
// writes its keys and values into the cache rows after the p0 already there and attends over all
// of them. The projections and FFNs run on the packed copies of a prepared model when given.
#include <chrono>

#include "gpt_internal.h"
#include "kernels/ref/transformer.h"
#include "moe/error.h"

namespace moe::gpt_detail {

namespace {

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

template <class T>
ops::Matrix<T> matrix(const Tensor& w, const std::shared_ptr<const cpu::PackedMatrix>* packed) {
  return {w.as<T>(), packed ? packed->get() : nullptr};
}

// The MoE FFN of a block: draws the training noise / jitter the config asks for.
template <class T>
void moe_ffn(const GptConfig& c, const GptBlockWeights& w, const BlockStep<T>& st, GptBlockActs<T>& a, int64_t n, T* out) {
  const MoeLayerConfig& m = c.moe;
  const GptStepInputs* in = st.in;
  LayerInputs& li = a.moe_in;
  li = LayerInputs{};
  li.n_tokens = n;
  li.group_tokens = in ? in->seq : n;
  li.training = in && in->training;
  li.prepared = st.prepared ? &st.prepared->moe : nullptr;
  li.validated = true;  // gpt_forward / prepare_gpt validated the model
  const bool soft = m.soft.slots_per_expert > 0;
  const bool noisy = li.training && (soft ? m.soft.noise_std > 0 : m.router.noise != NoiseKind::none);
  const bool jitter = li.training && m.jitter > 0;
  if ((noisy || jitter) && !in->rng) {
    throw InvalidInput("[gpt] training with router noise or jitter needs an rng (GptStepInputs::rng)");
  }
  if (noisy) {
    fit(a.noise, n * (soft ? m.router.n_experts * m.soft.slots_per_expert : m.router.n_experts));  // [T, E] or [T, E·p]
    for (T& v : a.noise) v = static_cast<T>(in->rng->normal());
    li.noise = a.noise.data();
  }
  if (jitter) {
    fit(a.jitter, n * c.d_model);  // [T, d]
    for (T& v : a.jitter) v = static_cast<T>(in->rng->uniform(1 - m.jitter, 1 + m.jitter));
    li.jitter = a.jitter.data();
  }
  moe_layer_forward(m, w.moe, a.n2.data(), li, *st.moe_state, out);
}

}  // namespace

template <class T>
void block_forward(const GptConfig& c, const GptBlockWeights& w, int64_t layer, const BlockStep<T>& st,
                   GptBlockActs<T>& a, const T* cs, const T* sn, Workspace& ws, T* x_out) {
  const auto t_attn = std::chrono::steady_clock::now();
  const int64_t n = st.B * st.S, d = c.d_model, H = c.n_heads, Hkv = c.n_kv_heads, hd = c.head_dim();
  const int64_t qd = H * hd, kvd = Hkv * hd, half = hd / 2;
  const GptPreparedBlock* pb = st.prepared;
  fit(a.n1, n * d);
  fit(a.mean1, n);
  fit(a.rstd1, n);
  norm_forward(c, a.n1.data(), a.mean1.data(), a.rstd1.data(), a.x.data(), w.norm1_w, w.norm1_b, n);
  fit(a.q, n * qd);  // [n, H·hd]
  T* K = st.k_rows + st.p0 * kvd;  // this step's rows of the keys and values
  T* V = st.v_rows + st.p0 * kvd;
  const bool qk_norm = c.qk_norm != QkNorm::none;
  if (qk_norm) {  // the projections go to q_raw / k_raw, their norms to q and the cache rows
    fit(a.q_raw, n * qd);
    fit(a.k_raw, n * kvd);
  }
  T* q_proj = qk_norm ? a.q_raw.data() : a.q.data();
  T* k_proj = qk_norm ? a.k_raw.data() : K;
  ops::linear(q_proj, a.n1.data(), matrix<T>(w.wq, pb ? &pb->wq : nullptr), ptr<T>(w.bq), n, d, qd, ws);
  ops::linear(k_proj, a.n1.data(), matrix<T>(w.wk, pb ? &pb->wk : nullptr), ptr<T>(w.bk), n, d, kvd, ws);
  ops::linear(V, a.n1.data(), matrix<T>(w.wv, pb ? &pb->wv : nullptr), ptr<T>(w.bv), n, d, kvd, ws);
  if (qk_norm) {
    const bool head = c.qk_norm == QkNorm::head;  // rows of hd (per head) or of the whole projection
    fit(a.rstd_q, head ? n * H : n);
    fit(a.rstd_k, head ? n * Hkv : n);
    ops::rmsnorm_forward(a.q.data(), a.rstd_q.data(), q_proj, w.q_norm.as<T>(), head ? n * H : n, head ? hd : qd, c.norm_eps);
    ops::rmsnorm_forward(K, a.rstd_k.data(), k_proj, w.k_norm.as<T>(), head ? n * Hkv : n, head ? hd : kvd, c.norm_eps);
  }
  if (c.pos == PosEncoding::rope) {
#pragma omp parallel for schedule(static) if (n * qd > kParallelWork)
    for (int64_t t = 0; t < n; ++t) {
      ops::rope_row(a.q.data() + t * qd, H, hd, cs + (t % st.S) * half, sn + (t % st.S) * half, false);
      ops::rope_row(K + t * kvd, Hkv, hd, cs + (t % st.S) * half, sn + (t % st.S) * half, false);
    }
  }
  fit(a.att, n * qd);  // [n, H·hd]
  if (st.keep_probs) {
    fit(a.probs, st.B * H * st.S * st.S);  // [B, H, S, S]
    ops::attention_forward({st.B, st.S, H, Hkv, hd, c.causal}, a.att.data(), a.probs.data(), a.q.data(), K, V, ws);
  } else {
    ops::attention_cached(n, st.p0, H, Hkv, hd, a.att.data(), a.q.data(), st.k_rows, st.v_rows, ws);
  }
  fit(a.x_mid, n * d);  // x + att·Woᵀ (+ bo)
  ops::linear(a.x_mid.data(), a.att.data(), matrix<T>(w.wo, pb ? &pb->wo : nullptr), ptr<T>(w.bo), n, qd, d, ws);
  for (int64_t i = 0; i < n * d; ++i) a.x_mid[i] += a.x[i];
  fit(a.n2, n * d);
  fit(a.mean2, n);
  fit(a.rstd2, n);
  norm_forward(c, a.n2.data(), a.mean2.data(), a.rstd2.data(), a.x_mid.data(), w.norm2_w, w.norm2_b, n);
  const auto t_ffn = std::chrono::steady_clock::now();
  const bool is_moe = c.is_moe_layer(layer);
  if (is_moe) {
    moe_ffn(c, w, st, a, n, x_out);
  } else {
    make_dense_plan(n, a.dense_plan);
    const ExpertStore store = pb ? pb->dense : view_experts(c.dense, dense_view<T>(w, d));
    run_experts(store, a.dense_plan, st.ones, a.n2.data(), x_out, a.dense);
  }
  for (int64_t i = 0; i < n * d; ++i) x_out[i] += a.x_mid[i];
  if (st.stats) {
    const double ffn = ms_since(t_ffn);
    st.stats->attn_ms += std::chrono::duration<double, std::milli>(t_ffn - t_attn).count();
    st.stats->ffn_ms += ffn;
    if (is_moe) st.stats->moe_ms += ffn;
  }
}

template void block_forward<float>(const GptConfig&, const GptBlockWeights&, int64_t, const BlockStep<float>&,
                                   GptBlockActs<float>&, const float*, const float*, Workspace&, float*);
template void block_forward<double>(const GptConfig&, const GptBlockWeights&, int64_t, const BlockStep<double>&,
                                    GptBlockActs<double>&, const double*, const double*, Workspace&, double*);

}  // namespace moe::gpt_detail
