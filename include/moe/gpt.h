// MoE-GPT: a pre-norm transformer whose FFN is dense or a MoE layer (include/moe/moe_layer.h),
// with hand-written forward and backward (llm.c style) and KV-cache inference.
//
//   x0 = wte[tok] (+ wpe[pos])                                  [T, d]
//   per block:  x += wo·attn(rope(wq·n1), rope(wk·n1), wv·n1) (+ bo),  n1 = norm1(x)
//               x += ffn(norm2(x))              ffn: dense FFN or MoE layer
//   logits = normf(x)·headᵀ  (head = wte when tied)              [T, V]
//   loss   = mean CE over targets >= 0 + Σ_layers MoE aux_total (already scaled by its coefficients)
//
// Legend: B batch, S sequence, T = B·S tokens, d model width, H query heads, Hkv key/value heads,
// hd = d / H head width, V vocabulary, C context, F dense FFN width, E experts, L layers.
// T = float runs the fast kernels, T = double their float64 twins (what finite-difference tests
// check): the dense ops choose in kernels/ops.h, the FFNs through their expert store's format.
// One block step (src/model/gpt_block.cpp) serves the training forward and KV-cache inference.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "moe/dispatch.h"
#include "moe/expert_store.h"
#include "moe/experts.h"
#include "moe/moe_layer.h"
#include "moe/workspace.h"
#include "moe/rng.h"
#include "moe/tensor.h"

namespace moe {

enum class PosEncoding { rope, learned };
enum class NormKind { rmsnorm, layernorm };
// RMSNorm of the queries and keys between their projection and RoPE: per head over hd (Qwen3),
// or over the whole projection, H·hd and Hkv·hd (OLMoE).
enum class QkNorm { none, head, full };

struct GptConfig {
  int64_t vocab_size = 256;       // V
  int64_t context = 256;          // C: longest sequence (learned positions, KV cache)
  int64_t d_model = 128;          // d
  int64_t n_layers = 2;           // L
  int64_t n_heads = 4;            // H query heads
  int64_t head_dim_ = 0;          // hd; 0 = d_model / n_heads (HF head_dim may differ: Qwen3 2048 / 32 heads of 128)
  int64_t n_kv_heads = 4;         // Hkv key/value heads (GQA: n_heads % n_kv_heads == 0)
  PosEncoding pos = PosEncoding::rope;  // RoPE (HF rotate_half) or learned absolute positions
  double rope_theta = 10000;      // RoPE base: inv_freq_i = theta^(-2i/hd)
  NormKind norm = NormKind::rmsnorm;    // every norm of the model (norm1, norm2, normf)
  double norm_eps = 1e-5;         // added to the variance / mean square
  bool tied_head = true;          // head = wte (no separate head tensor)
  bool attn_bias = false;         // bias bo on the attention output projection (GPT-2: true)
  bool qkv_bias = false;          // biases bq, bk, bv on the query/key/value projections (Qwen2)
  QkNorm qk_norm = QkNorm::none;  // q/k RMSNorm before RoPE (eps = norm_eps)
  bool causal = true;             // false = bidirectional encoder (masked objective, expert choice / Soft MoE)
  ExpertConfig dense;             // dense FFN (act, hidden width F, biases), used by non-MoE layers
  MoeLayerConfig moe;             // MoE FFN template (moe.d_model == d_model); moe.router.n_experts == 0 -> all dense
  int64_t first_dense_layers = 0; // DeepSeek first_k_dense_replace: the first k layers are dense
  int64_t moe_every = 1;          // after those, layer l is MoE when (l - first_dense_layers) % moe_every == 0
  std::vector<int64_t> dense_layers;  // layers dense whatever the pattern (Qwen mlp_only_layers), sorted

  int64_t head_dim() const { return head_dim_ > 0 ? head_dim_ : d_model / n_heads; }
  bool has_moe() const { return moe.router.n_experts > 0; }
  bool is_moe_layer(int64_t layer) const;
  int64_t n_moe_layers() const;  // without walking the layers
};

// Throws InvalidInput "[gpt] n_heads=6 does not divide d_model=128" etc.; validates the MoE
// layer config (validate_layer) when the model has MoE layers.
void validate_gpt(const GptConfig& config);

// JSON with every field; "moe" holds the MoE layer in the layer-config format
// (docs/layer-format.md, model_type "custom") or is null for an all-dense model.
// Unknown keys or wrong types -> InvalidInput naming the key. from_json validates.
nlohmann::json gpt_config_to_json(const GptConfig& config);
GptConfig gpt_config_from_json(const nlohmann::json& j);

// Weights of one block. Absent tensors are empty.
struct GptBlockWeights {
  Tensor norm1_w, norm1_b;   // [d], [d] (layernorm only)
  Tensor wq;                 // [H·hd, d]
  Tensor wk, wv;             // [Hkv·hd, d]
  Tensor bq, bk, bv;         // [H·hd], [Hkv·hd], [Hkv·hd] (qkv_bias only)
  Tensor q_norm, k_norm;     // [hd] (qk_norm head) or [H·hd], [Hkv·hd] (full)
  Tensor wo;                 // [d, H·hd]
  Tensor bo;                 // [d] (attn_bias only)
  Tensor norm2_w, norm2_b;   // [d], [d] (layernorm only)
  Tensor ffn_gate, ffn_up;   // [F, d] dense layers (gate: gated activations only)
  Tensor ffn_down;           // [d, F]
  Tensor ffn_gate_bias, ffn_up_bias, ffn_down_bias;  // [F], [F], [d] (dense.bias only)
  MoeLayerWeights moe;       // MoE layers: canonical MoE layer tensors
};

// All weights (or gradients: the same struct). One visitor serves the optimizer, checkpoints
// and tests. Names: "wte", "wpe", "blocks.<l>.norm1.weight", "blocks.<l>.norm1.bias",
// "blocks.<l>.attn.{wq,wk,wv,bq,bk,bv,q_norm,k_norm,wo,bo}", "blocks.<l>.norm2.{weight,bias}",
// "blocks.<l>.ffn.{gate,up,down,gate_bias,up_bias,down_bias}", "blocks.<l>.moe.<MoE canonical
// name>" (e.g. "blocks.1.moe.experts.gate"), "normf.weight", "normf.bias", "head".
struct GptWeights {
  Tensor wte;                         // [V, d] token embeddings
  Tensor wpe;                         // [C, d] learned positions only
  std::vector<GptBlockWeights> blocks;  // [L]
  Tensor normf_w, normf_b;            // [d], [d] (layernorm only)
  Tensor head;                        // [V, d] untied head only

  // Visits only PRESENT tensors, in a stable order, with their stable names.
  void for_each_tensor(const std::function<void(const std::string&, Tensor&)>& f);
  void for_each_tensor(const std::function<void(const std::string&, const Tensor&)>& f) const;
  Tensor* find(const std::string& name);  // null for an unknown or absent name
  const Tensor* find(const std::string& name) const;
};

// False for tensors updated without a gradient (MoE "router.selection_bias").
bool gpt_is_trainable(const std::string& name);

GptWeights make_gpt_weights(const GptConfig& config, DType dtype);  // zeros, right shapes (weights or grads)
// Throws InvalidInput naming the tensor if a tensor is missing, extra, or of the wrong shape/dtype.
void check_gpt_weights(const GptConfig& config, const GptWeights& weights, DType dtype);
// GPT-2 style: N(0, 0.02); residual output projections (wo, ffn down, MoE experts.down,
// shared.down) scaled by 1/sqrt(2·L); norm weights 1, biases 0; router N(0, 0.02).
// `progress(values done, values in all)` is called every few million values (a progress line:
// a 353M-parameter model takes ~15 s on one core).
void init_gpt_weights(const GptConfig& config, GptWeights& weights, uint64_t seed,
                      const std::function<void(int64_t, int64_t)>& progress = {});
// Parameters of the model; active_only counts the experts one token uses (top_k of E routed
// experts; Soft MoE: all), embeddings and shared experts included. InvalidInput if the count
// overflows 64 bits.
int64_t gpt_param_count(const GptConfig& config, bool active_only);
// Memory estimates made before allocating (bytes): the weights in `dtype`; what a training step
// of B sequences of S tokens keeps beyond the weights (gradients, AdamW moments, activations);
// what inference adds (packed copies, the KV cache of the whole context). Used with
// util::check_memory so an impossible request fails at once, naming the size.
int64_t gpt_weight_bytes(const GptConfig& config, DType dtype);
int64_t gpt_training_bytes(const GptConfig& config, int64_t batch, int64_t seq);
int64_t gpt_inference_bytes(const GptConfig& config);

// What the backward of one block needs (kept by gpt_forward).
template <class T>
struct GptBlockActs {
  std::vector<T> x;                 // [T, d] block input (residual stream)
  std::vector<T> n1;                // [T, d] norm1 output
  std::vector<T> mean1, rstd1;      // [T] norm statistics (mean: layernorm only)
  std::vector<T> q_raw, k_raw;      // [T, H·hd], [T, Hkv·hd] projections before the q/k norm (qk_norm only)
  std::vector<T> rstd_q, rstd_k;    // q/k norm statistics: [T·H], [T·Hkv] (head) or [T] (full)
  std::vector<T> q;                 // [T, H·hd] queries after RoPE
  std::vector<T> k, v;              // [T, Hkv·hd] keys (after RoPE), values
  std::vector<T> probs;             // [B, H, S, S] attention probabilities
  std::vector<T> att;               // [T, H·hd] attention output (input of wo)
  std::vector<T> x_mid;             // [T, d] residual after attention
  std::vector<T> n2;                // [T, d] norm2 output (FFN input)
  std::vector<T> mean2, rstd2;      // [T]
  DispatchPlan dense_plan;          // dense FFN: every token once, to its one "expert"
  ExpertRunState<T> dense;          // dense FFN
  MoeLayerState<T> moe;             // MoE layers
  LayerInputs moe_in;               // what the MoE layer saw (backward needs the same)
  std::vector<T> noise;             // [T, E] router noise (training, noisy routers)
  std::vector<T> jitter;            // [T, d] jitter factors (training, jitter > 0)
};

// Forward state, reused across steps (no reallocation when shapes are unchanged).
template <class T>
struct GptActivations {
  int64_t batch = 0, seq = 0;
  std::vector<GptBlockActs<T>> blocks;  // [L]
  std::vector<T> x_final;           // [T, d] residual after the last block
  std::vector<T> nf;                // [T, d] final norm output
  std::vector<T> meanf, rstdf;      // [T]
  std::vector<T> logits;            // [T, V]
  std::vector<double> lse;          // [T] log-sum-exp of each logits row
  int64_t n_counted = 0;            // targets >= 0
  std::vector<T> rope_cos, rope_sin;  // [S, hd/2]
  std::vector<T> ones;              // [T] combine weights of the dense FFN
  // backward scratch
  std::vector<T> dx, dx_mid, dn, dq, dk, dv, dq_raw, dk_raw, datt, dlogits, dweights;
  Workspace ws;                     // kernel scratch
};

struct GptStepInputs {
  int64_t batch = 0, seq = 0;          // B, S (S <= context)
  const int32_t* tokens = nullptr;     // [B, S] ids in [0, V)
  const int32_t* targets = nullptr;    // [B, S] ids in [0, V), < 0 = ignored (masked objective); null = no loss
  bool training = false;               // router noise / jitter / training capacity behaviour
  Rng* rng = nullptr;                  // router noise and jitter when training; needed only if the config has them
};

struct GptLosses {
  double ce = 0;                       // mean cross-entropy over counted targets (0 if none)
  double aux = 0;                      // Σ over MoE layers of aux_total (scaled by the coefficients)
  double total = 0;                    // ce + aux: what gpt_backward differentiates
  int64_t n_counted = 0;               // targets counted in ce
  std::vector<std::vector<int64_t>> expert_load;  // [L][E] kept tokens per expert (empty: dense / Soft MoE)
  std::vector<double> layer_aux;       // [L] aux_total per layer (0 for dense)
};

// logits_out: [B·S, V] or null.
template <class T>
GptLosses gpt_forward(const GptConfig& config, const GptWeights& weights, const GptStepInputs& in,
                      GptActivations<T>& acts, T* logits_out);

// Accumulates (+=) d(total)/dθ into grads (make_gpt_weights(config, dtype_of<T>())). Uses the
// activations' scratch buffers; `in` must be the inputs of the forward that filled `acts`.
template <class T>
void gpt_backward(const GptConfig& config, const GptWeights& weights, const GptStepInputs& in,
                  GptActivations<T>& acts, GptWeights& grads);

// Weights prepared once for float inference: the attention projections, the head and every FFN
// packed for the fast kernels (the model owns these copies; embeddings, norms and biases are read
// from the weights, which must outlive it). Config and weights are validated here, once.
struct GptPreparedBlock {
  std::shared_ptr<const cpu::PackedMatrix> wq, wk, wv, wo;  // [H·hd, d], [Hkv·hd, d] ×2, [d, H·hd]
  PreparedMoeLayer moe;                                     // MoE layers
  ExpertStore dense;                                        // dense layers: the FFN as one packed expert
};
struct GptPrepared {
  GptConfig config;
  const GptWeights* weights = nullptr;
  ExpertFormat ffn_format = ExpertFormat::packed_f32;
  std::vector<GptPreparedBlock> blocks;            // [L]
  std::shared_ptr<const cpu::PackedMatrix> head;   // [V, d] (wte when tied)
};
// InvalidInput for a non-causal model, non-f32 weights, or a format that is not packed.
GptPrepared prepare_gpt(const GptConfig& config, const GptWeights& weights,
                        ExpertFormat ffn_format = ExpertFormat::packed_f32, int threads = 0);

// The keys and values of the positions seen so far, and the buffers of one inference step.
struct KvCache {
  int64_t context = 0;                  // C
  int64_t kv_dim = 0;                   // Hkv·hd
  int64_t len = 0;                      // positions filled
  std::vector<std::vector<float>> k, v; // [L][C, Hkv·hd] (k after RoPE)
  std::vector<MoeLayerState<float>> moe_state;  // [L] reused MoE layer states
  GptActivations<float> step;           // reused per-step buffers (one block's worth)
  void reset() { len = 0; }
};

KvCache make_kv_cache(const GptPrepared& model);

struct GptInferStats {
  double ffn_ms = 0;        // time in FFN layers (dense and MoE), accumulated
  int64_t ffn_calls = 0;    // FFN layer calls (one per layer per gpt_infer call)
  double moe_ms = 0;        // the MoE share of ffn_ms
  int64_t moe_calls = 0;
  double attn_ms = 0;       // attention incl. Q/K/V/O projections
  double total_ms = 0;      // whole gpt_infer calls
  int64_t tokens = 0;       // tokens processed
};

// Processes n new tokens (prefill n > 1, decode n = 1), appending them to the cache; writes the
// logits of the last one ([V]). InvalidInput if cache.len + n > context, bad ids, or a cache made
// for another model. MoE layers see the n new tokens as one group (capacity routers therefore
// route a prefill differently from a token-by-token decode).
void gpt_infer(const GptPrepared& model, const int32_t* tokens, int64_t n, KvCache& cache, float* logits_last,
               GptInferStats* stats);

}  // namespace moe
