// llama: the dense baseline (transformers configuration_llama.py / modeling_llama.py).
// Defaults: num_key_value_heads None -> heads, head_dim None -> hidden / heads,
// attention_bias false (q/k/v/o), mlp_bias false, tie_word_embeddings false.
#include "arch/registry.h"

namespace moe::arch {

namespace {

ModelArch distill(const JsonFields& f) {
  ModelArch m = decoder_base(f, "llama");
  const AttentionArch a = gqa(f, m.hidden, {.bias = false});
  FfnArch ffn = dense_ffn(f.positive("intermediate_size"));
  ffn.dense_bias = f.flag_or("mlp_bias", false);
  uniform_layers(m, a, ffn);
  return m;
}

}  // namespace

const ArchEntry kLlama = {"llama", nullptr, nullptr, false, "mlp.", nullptr, distill};

}  // namespace moe::arch
