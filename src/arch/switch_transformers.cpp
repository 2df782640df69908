// switch_transformers (transformers configuration_switch_transformers.py /
// modeling_switch_transformers.py): a T5 encoder-decoder whose FFN is a top-1 Switch layer every
// (num_layers / num_sparse_layers)-th block. Defaults for absent keys: num_decoder_layers =
// num_layers, num_sparse_{encoder,decoder}_layers 3, relative_attention_num_buckets 32,
// tie_word_embeddings true, dense_act_fn relu, expert_capacity 64, router_bias false,
// router_jitter_noise 0.01, router_aux_loss_coef 0.001 and router_z_loss_coef 0.001 (the model's
// forward defaults output_router_logits to true). Dropped tokens pass through as p·x (HF v4).
#include "arch/bindings.h"
#include "arch/registry.h"

namespace moe::arch {

namespace {

void moe_layer(const JsonFields& f, MoeLayerConfig& c) {
  read_moe_sizes(f, c, "d_model", "num_experts", "d_ff", nullptr);
  RouterConfig& r = c.router;
  c.expert.act = parse_expert_act(f.text_or("dense_act_fn", "relu"));
  r.capacity_mode = CapacityMode::absolute;
  r.expert_capacity = f.integer_or("expert_capacity", 64);
  r.dropped = DroppedPolicy::passthrough;
  r.logit_bias = f.flag_or("router_bias", false);
  c.jitter = f.number_or("router_jitter_noise", 0.01);
  hf_router_loss(f, c, "switch", 0.001, true);
  if (f.flag_or("output_router_logits", true)) set_loss(c, "z_loss", f.number_or("router_z_loss_coef", 0.001));
}

std::vector<WeightBinding> bindings(const MoeLayerConfig& c, bool) {
  return named_moe_bindings({"router.classifier.weight", "router.classifier.bias", nullptr, "experts.expert_",
                             ".gate_proj.weight", ".wi.weight", ".wo.weight", "shared_experts.", nullptr},
                            c, false);
}

// Sparse blocks: every step-th, starting at block 1 (HF: i % step == 1, or every block for step 1).
bool is_sparse(int64_t i, int64_t layers, int64_t sparse_layers) {
  const int64_t step = sparse_layers > 0 ? layers / sparse_layers : 0;
  return step > 0 && (i % step == 1 || step == 1);
}

struct Stacks {
  int64_t enc, dec, sparse_enc, sparse_dec;
};

Stacks stacks(const JsonFields& f) {
  Stacks s;
  s.enc = f.positive("num_layers");
  s.dec = f.positive_or("num_decoder_layers", s.enc);
  if (s.enc > kMaxLayers || s.dec > kMaxLayers) {
    f.fail("num_layers=" + std::to_string(s.enc) + ", num_decoder_layers=" + std::to_string(s.dec) +
           " is beyond any model (at most " + std::to_string(kMaxLayers) + " each)");
  }
  s.sparse_enc = f.non_negative_or("num_sparse_encoder_layers", 3);
  s.sparse_dec = f.non_negative_or("num_sparse_decoder_layers", 3);
  if (s.sparse_enc > s.enc) {
    f.fail("num_sparse_encoder_layers=" + std::to_string(s.sparse_enc) + " > num_layers=" + std::to_string(s.enc));
  }
  if (s.sparse_dec > s.dec) {
    f.fail("num_sparse_decoder_layers=" + std::to_string(s.sparse_dec) + " > num_decoder_layers=" +
           std::to_string(s.dec));
  }
  return s;
}

ModelArch distill(const JsonFields& f) {
  ModelArch m;
  m.model_type = "switch_transformers";
  m.hidden = f.positive("d_model");
  m.vocab = f.positive("vocab_size");
  m.tied_head = f.flag_or("tie_word_embeddings", true);
  m.final_norms = 2;
  const Stacks s = stacks(f);

  AttentionArch a;
  a.n_heads = a.n_kv_heads = f.positive("num_heads");
  a.head_dim = f.positive("d_kv");
  const int64_t buckets = f.positive_or("relative_attention_num_buckets", 32);

  FfnArch dense;
  dense.matrices = 2;  // DenseActDense: wi, wo
  dense.dense_hidden = f.positive("d_ff");
  const FfnArch sparse = moe_ffn(moe_layer_of(kSwitchTransformers, f));

  auto stack = [&](int64_t layers, int64_t sparse_layers, bool decoder) {
    for (int64_t i = 0; i < layers; ++i) {
      LayerArch l;
      l.decoder = decoder;
      l.self_attn = a;
      l.self_attn.relative_buckets = i == 0 ? buckets : 0;
      if (decoder) l.cross_attn = a;
      l.ffn = is_sparse(i, layers, sparse_layers) ? sparse : dense;
      l.norms = decoder ? 3 : 2;
      m.layers.push_back(l);
    }
  };
  stack(s.enc, s.sparse_enc, false);
  stack(s.dec, s.sparse_dec, true);
  return m;
}

// shared [V, D] (both stacks' embed_tokens are this table), {encoder,decoder}.block.{i}.layer.N:
// SelfAttention (+ relative_attention_bias in block 0), EncDecAttention (decoder), mlp, their
// layer_norms; {encoder,decoder}.final_layer_norm; lm_head unless tied.
std::vector<TensorSpec> checkpoint(const JsonFields& f, const ModelArch& m) {
  const int64_t D = m.hidden;
  std::vector<TensorSpec> out{{"shared.weight", {m.vocab, D}}};
  const std::vector<WeightBinding> moe = bindings(moe_layer_of(kSwitchTransformers, f), false);
  auto attention = [&](const std::string& p, const AttentionArch& a) {
    const int64_t inner = a.n_heads * a.head_dim;
    for (const char* x : {"q", "k", "v"}) out.push_back({p + x + ".weight", {inner, D}});
    out.push_back({p + "o.weight", {D, inner}});
    if (a.relative_buckets > 0) out.push_back({p + "relative_attention_bias.weight", {a.relative_buckets, a.n_heads}});
  };
  size_t layer = 0;
  for (const char* stack : {"encoder", "decoder"}) {
    const std::string st = stack;
    for (int64_t i = 0; layer < m.layers.size() && m.layers[layer].decoder == (st == "decoder"); ++i, ++layer) {
      const LayerArch& l = m.layers[layer];
      const std::string p = st + ".block." + std::to_string(i) + ".layer.";
      attention(p + "0.SelfAttention.", l.self_attn);
      out.push_back({p + "0.layer_norm.weight", {D}});
      int n = 1;
      if (l.cross_attn) {
        attention(p + "1.EncDecAttention.", *l.cross_attn);
        out.push_back({p + "1.layer_norm.weight", {D}});
        n = 2;
      }
      const std::string ff = p + std::to_string(n) + ".";
      if (l.ffn.moe) {
        append_tensors(out, ff + "mlp.", moe);
      } else {
        out.push_back({ff + "mlp.wi.weight", {l.ffn.dense_hidden, D}});
        out.push_back({ff + "mlp.wo.weight", {D, l.ffn.dense_hidden}});
      }
      out.push_back({ff + "layer_norm.weight", {D}});
    }
    out.push_back({st + ".final_layer_norm.weight", {D}});
  }
  if (!m.tied_head) out.push_back({"lm_head.weight", {m.vocab, D}});
  return out;
}

}  // namespace

const ArchEntry kSwitchTransformers = {"switch_transformers", moe_layer, bindings, false, "mlp.", checkpoint, distill};

}  // namespace moe::arch
