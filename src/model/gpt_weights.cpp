// GptWeights: stable names, the visitor, shapes per config, GPT-2 style initialisation.
#include <cmath>
#include <type_traits>

#include "moe/error.h"
#include "moe/gpt.h"
#include "util/resources.h"

namespace moe {

namespace {

// Every tensor slot of a block with its name (present or not), in visiting order.
template <class Block, class F>
void block_slots(Block& b, const std::string& p, F&& f) {
  f(p + "norm1.weight", b.norm1_w);
  f(p + "norm1.bias", b.norm1_b);
  f(p + "attn.wq", b.wq);
  f(p + "attn.wk", b.wk);
  f(p + "attn.wv", b.wv);
  f(p + "attn.bq", b.bq);
  f(p + "attn.bk", b.bk);
  f(p + "attn.bv", b.bv);
  f(p + "attn.q_norm", b.q_norm);
  f(p + "attn.k_norm", b.k_norm);
  f(p + "attn.wo", b.wo);
  f(p + "attn.bo", b.bo);
  f(p + "norm2.weight", b.norm2_w);
  f(p + "norm2.bias", b.norm2_b);
  f(p + "ffn.gate", b.ffn_gate);
  f(p + "ffn.up", b.ffn_up);
  f(p + "ffn.down", b.ffn_down);
  f(p + "ffn.gate_bias", b.ffn_gate_bias);
  f(p + "ffn.up_bias", b.ffn_up_bias);
  f(p + "ffn.down_bias", b.ffn_down_bias);
}

template <class W, class F>
void all_slots(W& w, F&& f) {
  f(std::string("wte"), w.wte);
  f(std::string("wpe"), w.wpe);
  for (size_t l = 0; l < w.blocks.size(); ++l) {
    const std::string p = "blocks." + std::to_string(l) + ".";
    block_slots(w.blocks[l], p, f);
    if constexpr (std::is_const_v<W>) {
      w.blocks[l].moe.for_each_tensor([&](const std::string& n, const Tensor& t) { f(p + "moe." + n, t); });
    } else {
      w.blocks[l].moe.for_each_tensor([&](const std::string& n, Tensor& t) { f(p + "moe." + n, t); });
    }
  }
  f(std::string("normf.weight"), w.normf_w);
  f(std::string("normf.bias"), w.normf_b);
  f(std::string("head"), w.head);
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

void set_value(Tensor& t, int64_t i, double v) {
  if (t.dtype() == DType::f32) {
    t.as<float>()[i] = static_cast<float>(v);
  } else if (t.dtype() == DType::f64) {
    t.as<double>()[i] = v;
  } else {
    throw InvalidInput(std::string("[gpt] weights of dtype ") + dtype_name(t.dtype()) + " cannot be initialised");
  }
}

}  // namespace

void GptWeights::for_each_tensor(const std::function<void(const std::string&, Tensor&)>& f) {
  all_slots(*this, [&](const std::string& n, Tensor& t) {
    if (!t.empty()) f(n, t);
  });
}

void GptWeights::for_each_tensor(const std::function<void(const std::string&, const Tensor&)>& f) const {
  all_slots(*this, [&](const std::string& n, const Tensor& t) {
    if (!t.empty()) f(n, t);
  });
}

Tensor* GptWeights::find(const std::string& name) {
  Tensor* found = nullptr;
  for_each_tensor([&](const std::string& n, Tensor& t) {
    if (n == name) found = &t;
  });
  return found;
}

const Tensor* GptWeights::find(const std::string& name) const { return const_cast<GptWeights*>(this)->find(name); }

bool gpt_is_trainable(const std::string& name) { return !ends_with(name, ".router.selection_bias"); }

namespace {

// Names and shapes of every present tensor outside the MoE layers.
std::vector<std::pair<std::string, Shape>> base_shapes(const GptConfig& c) {
  const int64_t d = c.d_model, hd = c.head_dim(), V = c.vocab_size;
  const bool ln = c.norm == NormKind::layernorm;
  std::vector<std::pair<std::string, Shape>> s;
  s.push_back({"wte", {V, d}});
  if (c.pos == PosEncoding::learned) s.push_back({"wpe", {c.context, d}});
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const std::string p = "blocks." + std::to_string(l) + ".";
    s.push_back({p + "norm1.weight", {d}});
    if (ln) s.push_back({p + "norm1.bias", {d}});
    s.push_back({p + "attn.wq", {c.n_heads * hd, d}});
    s.push_back({p + "attn.wk", {c.n_kv_heads * hd, d}});
    s.push_back({p + "attn.wv", {c.n_kv_heads * hd, d}});
    if (c.qkv_bias) {
      s.push_back({p + "attn.bq", {c.n_heads * hd}});
      s.push_back({p + "attn.bk", {c.n_kv_heads * hd}});
      s.push_back({p + "attn.bv", {c.n_kv_heads * hd}});
    }
    if (c.qk_norm != QkNorm::none) {
      const bool full = c.qk_norm == QkNorm::full;
      s.push_back({p + "attn.q_norm", {full ? c.n_heads * hd : hd}});
      s.push_back({p + "attn.k_norm", {full ? c.n_kv_heads * hd : hd}});
    }
    s.push_back({p + "attn.wo", {d, c.n_heads * hd}});
    if (c.attn_bias) s.push_back({p + "attn.bo", {d}});
    s.push_back({p + "norm2.weight", {d}});
    if (ln) s.push_back({p + "norm2.bias", {d}});
    if (!c.is_moe_layer(l)) {
      const int64_t F = c.dense.hidden;
      const bool gated = is_gated(c.dense.act);
      if (gated) s.push_back({p + "ffn.gate", {F, d}});
      s.push_back({p + "ffn.up", {F, d}});
      s.push_back({p + "ffn.down", {d, F}});
      if (c.dense.bias) {
        if (gated) s.push_back({p + "ffn.gate_bias", {F}});
        s.push_back({p + "ffn.up_bias", {F}});
        s.push_back({p + "ffn.down_bias", {d}});
      }
    }
  }
  s.push_back({"normf.weight", {d}});
  if (ln) s.push_back({"normf.bias", {d}});
  if (!c.tied_head) s.push_back({"head", {V, d}});
  return s;
}

bool is_moe_name(const std::string& n) { return n.find(".moe.") != std::string::npos; }

}  // namespace

GptWeights make_gpt_weights(const GptConfig& c, DType dtype) {
  validate_gpt(c);
  util::check_memory(gpt_weight_bytes(c, dtype),
                     "the model's weights (" + std::to_string(gpt_param_count(c, false)) + " parameters)", "[gpt]");
  GptWeights w;
  w.blocks.resize(static_cast<size_t>(c.n_layers));
  const auto shapes = base_shapes(c);
  size_t next = 0;
  all_slots(w, [&](const std::string& n, Tensor& t) {
    if (next < shapes.size() && shapes[next].first == n) t = Tensor(dtype, shapes[next++].second);
  });
  for (int64_t l = 0; l < c.n_layers; ++l) {
    if (c.is_moe_layer(l)) w.blocks[l].moe = make_layer_weights(c.moe, dtype);
  }
  return w;
}

void check_gpt_weights(const GptConfig& c, const GptWeights& w, DType dtype) {
  if (static_cast<int64_t>(w.blocks.size()) != c.n_layers) {
    throw InvalidInput("[gpt] weights have " + std::to_string(w.blocks.size()) + " blocks, the config " +
                       std::to_string(c.n_layers));
  }
  const auto shapes = base_shapes(c);
  size_t next = 0;
  all_slots(w, [&](const std::string& n, const Tensor& t) {
    if (is_moe_name(n)) return;
    const bool wanted = next < shapes.size() && shapes[next].first == n;
    if (!wanted) {
      if (!t.empty()) throw InvalidInput("[gpt] weight '" + n + "' is not used by this config");
      return;
    }
    const Shape& want = shapes[next++].second;
    if (t.empty()) throw InvalidInput("[gpt] missing weight '" + n + "' " + shape_str(want));
    if (t.shape() != want) {
      throw InvalidInput("[gpt] weight '" + n + "' has shape " + shape_str(t.shape()) + ", the config needs " +
                         shape_str(want));
    }
    if (t.dtype() != dtype) {
      throw InvalidInput("[gpt] weight '" + n + "' has dtype " + dtype_name(t.dtype()) + ", expected " +
                         dtype_name(dtype));
    }
  });
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const std::string p = "[gpt] blocks." + std::to_string(l) + ".moe: ";
    if (c.is_moe_layer(l)) {
      try {
        check_layer_weights(c.moe, w.blocks[l].moe, dtype);
      } catch (const InvalidInput& e) {
        throw InvalidInput(p + e.what());
      }
    } else {
      w.blocks[l].moe.for_each_tensor([&](const std::string& n, const Tensor& t) {
        if (!t.empty()) throw InvalidInput(p + "weight '" + n + "' in a dense layer");
      });
    }
  }
}

void init_gpt_weights(const GptConfig& c, GptWeights& w, uint64_t seed,
                      const std::function<void(int64_t, int64_t)>& progress) {
  Rng rng(seed);
  const double std = 0.02, resid_std = 0.02 / std::sqrt(2.0 * static_cast<double>(c.n_layers));
  int64_t total = 0, done = 0, reported = 0;
  w.for_each_tensor([&](const std::string&, Tensor& t) { total += t.numel(); });
  w.for_each_tensor([&](const std::string& n, Tensor& t) {
    const bool one = ends_with(n, "norm1.weight") || ends_with(n, "norm2.weight") || n == "normf.weight" ||
                     ends_with(n, "moe.soft.scale") || ends_with(n, "attn.q_norm") || ends_with(n, "attn.k_norm");
    const bool zero = ends_with(n, ".bias") || ends_with(n, "_bias") || ends_with(n, "attn.bo") || ends_with(n, "attn.bq") ||
                      ends_with(n, "attn.bk") || ends_with(n, "attn.bv");
    const bool resid = ends_with(n, "attn.wo") || ends_with(n, "ffn.down") || ends_with(n, "moe.experts.down") ||
                       ends_with(n, "moe.shared.down");
    const double scale = resid ? resid_std : std;
    for (int64_t i = 0; i < t.numel(); ++i) {
      set_value(t, i, one ? 1.0 : zero ? 0.0 : scale * rng.normal());
      if (progress && ++done - reported >= (int64_t(1) << 22)) progress(reported = done, total);
    }
  });
  if (progress) progress(total, total);
}

}  // namespace moe
