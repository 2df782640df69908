// Float inference with a KV cache on a prepared model: prefill (n > 1) or decode (n = 1) runs the
// same block step as training (gpt_block.cpp) on the packed weights, appends the new tokens' keys
// and values to the cache and returns the last token's logits. Config and weights were validated
// by prepare_gpt; a step checks only what changes per call.
#include <chrono>
#include <cmath>

#include "gpt_internal.h"
#include "kernels/cpu/packed_ffn.h"
#include "kernels/ref/transformer.h"
#include "moe/error.h"
#include "util/resources.h"

namespace moe {

using namespace gpt_detail;

namespace {

[[noreturn]] void bad(const std::string& m) { throw InvalidInput("[gpt infer] " + m); }

std::shared_ptr<const cpu::PackedMatrix> packed(const Tensor& w, int threads) {
  return std::make_shared<cpu::PackedMatrix>(cpu::pack_matrix(w.as<float>(), w.dim(0), w.dim(1), threads));
}

}  // namespace

GptPrepared prepare_gpt(const GptConfig& c, const GptWeights& w, ExpertFormat format, int threads) {
  validate_gpt(c);
  check_gpt_weights(c, w, DType::f32);
  if (!c.causal) bad("a KV cache needs a causal model (causal=false)");
  if (format != ExpertFormat::packed_f32 && format != ExpertFormat::packed_bf16) {
    bad(std::string("FFN format ") + expert_format_name(format) + " is not one of: packed_f32, packed_bf16");
  }
  util::check_memory(gpt_inference_bytes(c),
                     "inference (packed weights and a KV cache of context " + std::to_string(c.context) + ")",
                     "[gpt infer]");
  const int th = threads > 0 ? threads : ops::threads();
  GptPrepared m;
  m.config = c;
  m.weights = &w;
  m.ffn_format = format;
  m.blocks.resize(static_cast<size_t>(c.n_layers));
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const GptBlockWeights& b = w.blocks[l];
    GptPreparedBlock& p = m.blocks[l];
    p.wq = packed(b.wq, th);
    p.wk = packed(b.wk, th);
    p.wv = packed(b.wv, th);
    p.wo = packed(b.wo, th);
    if (c.is_moe_layer(l)) {
      p.moe = prepare_layer(c.moe, b.moe, format, th);
    } else {
      p.dense = pack_experts(c.dense, dense_view<float>(b, c.d_model), format, th);
    }
  }
  m.head = packed(c.tied_head ? w.wte : w.head, th);
  return m;
}

KvCache make_kv_cache(const GptPrepared& m) {
  const GptConfig& c = m.config;
  KvCache kv;
  kv.context = c.context;
  kv.kv_dim = c.n_kv_heads * c.head_dim();
  kv.k.assign(static_cast<size_t>(c.n_layers), std::vector<float>(static_cast<size_t>(c.context * kv.kv_dim)));
  kv.v.assign(static_cast<size_t>(c.n_layers), std::vector<float>(static_cast<size_t>(c.context * kv.kv_dim)));
  kv.moe_state.resize(static_cast<size_t>(c.n_layers));
  kv.step.blocks.resize(1);
  return kv;
}

void gpt_infer(const GptPrepared& m, const int32_t* tokens, int64_t n, KvCache& kv, float* logits_last,
               GptInferStats* stats) {
  const auto t_start = std::chrono::steady_clock::now();
  const GptConfig& c = m.config;
  const GptWeights& w = *m.weights;
  if (n < 1) bad("no tokens (n=" + std::to_string(n) + ")");
  if (kv.len + n > c.context) {
    bad(std::to_string(kv.len) + " cached + " + std::to_string(n) + " new tokens > context=" + std::to_string(c.context));
  }
  if (static_cast<int64_t>(kv.k.size()) != c.n_layers || kv.context != c.context ||
      kv.kv_dim != c.n_kv_heads * c.head_dim() || kv.step.blocks.size() != 1) {
    bad("the KV cache was made for another model");
  }
  for (int64_t i = 0; i < n; ++i) {
    if (tokens[i] < 0 || tokens[i] >= c.vocab_size) {
      bad("token id " + std::to_string(tokens[i]) + " at " + std::to_string(i) + " is outside [0, vocab_size=" +
          std::to_string(c.vocab_size) + ")");
    }
  }
  const int64_t d = c.d_model, V = c.vocab_size, p0 = kv.len, half = c.head_dim() / 2;
  GptActivations<float>& g = kv.step;
  GptBlockActs<float>& a = g.blocks[0];

  // The residual stream ping-pongs between the block's input (a.x) and x_final.
  fit(a.x, n * d);
  fit(g.x_final, n * d);
  const float* wte = w.wte.as<float>();
  const float* wpe = c.pos == PosEncoding::learned ? w.wpe.as<float>() : nullptr;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < d; ++j) {
      a.x[i * d + j] = wte[static_cast<int64_t>(tokens[i]) * d + j] + (wpe ? wpe[(p0 + i) * d + j] : 0.0f);
    }
  }
  if (c.pos == PosEncoding::rope) {
    fit(g.rope_cos, n * half);  // positions p0 .. p0+n-1
    fit(g.rope_sin, n * half);
    ops::rope_tables(g.rope_cos.data(), g.rope_sin.data(), p0, n, c.head_dim(), c.rope_theta);
  }
  fit(g.ones, n);
  std::fill(g.ones.begin(), g.ones.end(), 1.0f);
  GptInferStats layer_stats;
  for (int64_t l = 0; l < c.n_layers; ++l) {
    BlockStep<float> step;
    step.B = 1;
    step.S = n;
    step.p0 = p0;
    step.k_rows = kv.k[l].data();
    step.v_rows = kv.v[l].data();
    step.keep_probs = false;
    step.prepared = &m.blocks[l];
    step.moe_state = &kv.moe_state[l];
    step.ones = g.ones.data();
    step.stats = &layer_stats;
    block_forward(c, w.blocks[l], l, step, a, g.rope_cos.data(), g.rope_sin.data(), g.ws, g.x_final.data());
    std::swap(a.x, g.x_final);  // the block's output is the next block's input
  }

  // Final norm and head of the last position only.
  fit(g.nf, d);
  fit(g.logits, V);
  norm_forward(c, g.nf.data(), static_cast<float*>(nullptr), static_cast<float*>(nullptr), a.x.data() + (n - 1) * d,
               w.normf_w, w.normf_b, 1);
  ops::linear(g.logits.data(), g.nf.data(), ops::Matrix<float>{nullptr, m.head.get()}, static_cast<const float*>(nullptr),
              1, d, V, g.ws);
  if (logits_last) std::copy(g.logits.begin(), g.logits.end(), logits_last);
  kv.len += n;
  if (stats) {
    stats->attn_ms += layer_stats.attn_ms;
    stats->ffn_ms += layer_stats.ffn_ms;
    stats->moe_ms += layer_stats.moe_ms;
    stats->ffn_calls += c.n_layers;
    for (int64_t l = 0; l < c.n_layers; ++l) stats->moe_calls += c.is_moe_layer(l) ? 1 : 0;
    stats->tokens += n;
    stats->total_ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t_start).count();
  }
}

}  // namespace moe
