// Float inference with a KV cache: prefill (n > 1) or decode (n = 1) appends the new tokens'
// keys and values to the cache and returns the last token's logits. FFNs run on the fast
// inference kernels over weights packed once (in make_kv_cache): the MoE layer with
// need_backward = false, the dense FFN as one packed expert.
#include <chrono>
#include <cmath>

#include "gpt_internal.h"
#include "kernels/ref/transformer.h"
#include "moe/error.h"
#include "moe/layer_internal.h"

namespace moe {

using namespace gpt_detail;

namespace {

[[noreturn]] void bad(const std::string& m) { throw InvalidInput("[gpt infer] " + m); }

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

KvCache make_kv_cache(const GptConfig& c, const GptWeights& w) {
  validate_gpt(c);
  check_gpt_weights(c, w, DType::f32);
  if (!c.causal) bad("a KV cache needs a causal model (causal=false)");
  KvCache kv;
  kv.context = c.context;
  kv.kv_dim = c.n_kv_heads * c.head_dim();
  kv.k.assign(static_cast<size_t>(c.n_layers), std::vector<float>(static_cast<size_t>(c.context * kv.kv_dim)));
  kv.v.assign(static_cast<size_t>(c.n_layers), std::vector<float>(static_cast<size_t>(c.context * kv.kv_dim)));
  kv.packed.resize(static_cast<size_t>(c.n_layers));
  kv.moe_state.resize(static_cast<size_t>(c.n_layers));
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const GptBlockWeights& b = w.blocks[l];
    if (!c.is_moe_layer(l)) {
      kv.packed[l] = pack_experts(c.dense, dense_view<float>(b, c.d_model));
    } else if (c.moe.soft.slots_per_expert == 0) {
      kv.packed[l] = pack_experts(c.moe.expert, detail::expert_view<float>(b.moe, c.d_model));
    }
  }
  return kv;
}

void gpt_infer(const GptConfig& c, const GptWeights& w, const int32_t* tokens, int64_t n, KvCache& kv,
               float* logits_last, GptInferStats* stats) {
  const auto t_start = std::chrono::steady_clock::now();
  if (!c.causal) bad("a KV cache needs a causal model (causal=false)");
  if (n < 1) bad("no tokens (n=" + std::to_string(n) + ")");
  if (kv.len + n > c.context) {
    bad(std::to_string(kv.len) + " cached + " + std::to_string(n) + " new tokens > context=" + std::to_string(c.context));
  }
  if (static_cast<int64_t>(kv.k.size()) != c.n_layers || kv.context != c.context ||
      kv.kv_dim != c.n_kv_heads * c.head_dim()) {
    bad("the KV cache was made for another config");
  }
  if (w.wte.dtype() != DType::f32) bad("inference needs f32 weights");
  for (int64_t i = 0; i < n; ++i) {
    if (tokens[i] < 0 || tokens[i] >= c.vocab_size) {
      bad("token id " + std::to_string(tokens[i]) + " at " + std::to_string(i) + " is outside [0, vocab_size=" +
          std::to_string(c.vocab_size) + ")");
    }
  }
  const int64_t d = c.d_model, H = c.n_heads, Hkv = c.n_kv_heads, hd = c.head_dim(), V = c.vocab_size;
  const int64_t qd = H * hd, kvd = kv.kv_dim, p0 = kv.len, n_kv = p0 + n, half = hd / 2;

  // Work buffers carved from one reused allocation.
  const int64_t sizes[] = {n * d, n * d, n * d, n, n, n * qd, n * qd, n * half, n * half, n, V};
  int64_t total = 0;
  for (const int64_t s : sizes) total += s;
  if (static_cast<int64_t>(kv.scratch.size()) < total) kv.scratch.resize(static_cast<size_t>(total));
  float* next = kv.scratch.data();
  auto carve = [&next](int64_t s) {
    float* p = next;
    next += s;
    return p;
  };
  float* x = carve(n * d);      // [n, d] residual stream
  float* nx = carve(n * d);     // [n, d] norm output
  float* ffn = carve(n * d);    // [n, d] FFN output
  float* mean = carve(n);       // [n]
  float* rstd = carve(n);       // [n]
  float* q = carve(n * qd);     // [n, H·hd]
  float* att = carve(n * qd);   // [n, H·hd]
  float* cs = carve(n * half);  // [n, hd/2]
  float* sn = carve(n * half);
  float* ones = carve(n);       // [n] dense FFN combine weights
  float* logits = carve(V);     // [V]
  std::fill(ones, ones + n, 1.0f);

  const float* wte = w.wte.as<float>();
  const float* wpe = c.pos == PosEncoding::learned ? w.wpe.as<float>() : nullptr;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < d; ++j) {
      x[i * d + j] = wte[static_cast<int64_t>(tokens[i]) * d + j] + (wpe ? wpe[(p0 + i) * d + j] : 0.0f);
    }
  }
  if (c.pos == PosEncoding::rope) ref::rope_tables(cs, sn, p0, n, hd, c.rope_theta);
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  double attn_ms = 0, ffn_ms = 0, moe_ms = 0;

  for (int64_t l = 0; l < c.n_layers; ++l) {
    const GptBlockWeights& b = w.blocks[l];
    const auto t_attn = std::chrono::steady_clock::now();
    norm_forward(c, nx, mean, rstd, x, b.norm1_w, b.norm1_b, n);
    float* K = kv.k[l].data();  // [C, Hkv·hd]
    float* Vc = kv.v[l].data();
    linear_forward(q, nx, b.wq.as<float>(), static_cast<const float*>(nullptr), n, d, qd);
    linear_forward(K + p0 * kvd, nx, b.wk.as<float>(), static_cast<const float*>(nullptr), n, d, kvd);
    linear_forward(Vc + p0 * kvd, nx, b.wv.as<float>(), static_cast<const float*>(nullptr), n, d, kvd);
    if (c.pos == PosEncoding::rope) {
      for (int64_t i = 0; i < n; ++i) {
        ref::rope_row(q + i * qd, H, hd, cs + i * half, sn + i * half, false);
        ref::rope_row(K + (p0 + i) * kvd, Hkv, hd, cs + i * half, sn + i * half, false);
      }
    }
    // One task per (head, query): probabilities in a per-thread row [n_kv].
#pragma omp parallel if (H * n * n_kv * hd > kParallelWork)
    {
      std::vector<float> probs(static_cast<size_t>(n_kv));
#pragma omp for collapse(2) schedule(dynamic, 4)
      for (int64_t h = 0; h < H; ++h) {
        for (int64_t i = 0; i < n; ++i) {
          const int64_t kvh = h / (H / Hkv);
          ref::attention_head_forward(att + i * qd + h * hd, qd, probs.data(), q + i * qd + h * hd, qd, K + kvh * hd,
                                      Vc + kvh * hd, kvd, 1, n_kv, p0 + i, hd, scale, true);
        }
      }
    }
    linear_forward(ffn, att, b.wo.as<float>(), ptr<float>(b.bo), n, qd, d);
    for (int64_t i = 0; i < n * d; ++i) x[i] += ffn[i];
    norm_forward(c, nx, mean, rstd, x, b.norm2_w, b.norm2_b, n);
    attn_ms += ms_since(t_attn);

    const auto t_ffn = std::chrono::steady_clock::now();
    if (c.is_moe_layer(l)) {
      LayerInputs li;
      li.n_tokens = n;
      li.group_tokens = n;
      li.training = false;
      li.need_backward = false;
      li.packed = kv.packed[l].n_experts > 0 ? &kv.packed[l] : nullptr;
      moe_layer_forward(c.moe, b.moe, nx, li, kv.moe_state[l], ffn);
      moe_ms += ms_since(t_ffn);
    } else {
      fast_experts_forward(kv.packed[l], dense_routing(n), ones, nx, ffn);
    }
    ffn_ms += ms_since(t_ffn);
    for (int64_t i = 0; i < n * d; ++i) x[i] += ffn[i];
  }

  // Final norm and head of the last position only.
  const float* xl = x + (n - 1) * d;
  norm_forward(c, nx, mean, rstd, xl, w.normf_w, w.normf_b, 1);
  const Tensor& head = c.tied_head ? w.wte : w.head;
  linear_forward(logits, nx, head.as<float>(), static_cast<const float*>(nullptr), 1, d, V);
  if (logits_last) std::copy(logits, logits + V, logits_last);
  kv.len += n;
  if (stats) {
    stats->attn_ms += attn_ms;
    stats->ffn_ms += ffn_ms;
    stats->moe_ms += moe_ms;
    stats->ffn_calls += c.n_layers;
    for (int64_t l = 0; l < c.n_layers; ++l) stats->moe_calls += c.is_moe_layer(l) ? 1 : 0;
    stats->tokens += n;
    stats->total_ms += ms_since(t_start);
  }
}

}  // namespace moe
