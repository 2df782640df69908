// Weight bindings: external tensor layouts <-> canonical MoeLayerWeights (docs/layer-format.md).
#include "arch/bindings.h"

#include "moe/error.h"

namespace moe::arch {

namespace {

double get(const Tensor& t, int64_t i) { return load_as_double(t.view(), i); }
void put(Tensor& t, int64_t i, double v) {
  if (t.dtype() == DType::f64) {
    t.as<double>()[i] = v;
  } else {
    t.as<float>()[i] = static_cast<float>(v);
  }
}

}  // namespace

// The whole canonical tensor, same layout.
WeightBinding whole(const std::string& name, Shape shape, Member m) {
  const int64_t n = shape_numel(shape);
  return {name, std::move(shape),
          [m, n](const double* src, MoeLayerWeights& w) {
            for (int64_t i = 0; i < n; ++i) put(w.*m, i, src[i]);
          },
          [m, n](const MoeLayerWeights& w, double* dst) {
            for (int64_t i = 0; i < n; ++i) dst[i] = get(w.*m, i);
          }};
}

// Expert e's slice [e, ...] of a stacked canonical tensor.
WeightBinding expert_slice(const std::string& name, Shape shape, Member m, int64_t e) {
  const int64_t n = shape_numel(shape);
  return {name, std::move(shape),
          [m, n, e](const double* src, MoeLayerWeights& w) {
            for (int64_t i = 0; i < n; ++i) put(w.*m, e * n + i, src[i]);
          },
          [m, n, e](const MoeLayerWeights& w, double* dst) {
            for (int64_t i = 0; i < n; ++i) dst[i] = get(w.*m, e * n + i);
          }};
}

// HF v5 fused gate_up_proj [E, 2I, H]: rows [0, I) gate, [I, 2I) up.
WeightBinding fused_gate_up(int64_t E, int64_t I, int64_t H) {
  return {"experts.gate_up_proj", {E, 2 * I, H},
          [=](const double* src, MoeLayerWeights& w) {
            for (int64_t e = 0; e < E; ++e)
              for (int64_t i = 0; i < 2 * I; ++i)
                for (int64_t h = 0; h < H; ++h) {
                  const double v = src[(e * 2 * I + i) * H + h];
                  if (i < I) put(w.gate, (e * I + i) * H + h, v);
                  else put(w.up, (e * I + i - I) * H + h, v);
                }
          },
          [=](const MoeLayerWeights& w, double* dst) {
            for (int64_t e = 0; e < E; ++e)
              for (int64_t i = 0; i < 2 * I; ++i)
                for (int64_t h = 0; h < H; ++h)
                  dst[(e * 2 * I + i) * H + h] = i < I ? get(w.gate, (e * I + i) * H + h) : get(w.up, (e * I + i - I) * H + h);
          }};
}

// GPT-OSS: gate_up_proj [E, H, 2I] applied as x @ W, gate/up interleaved on the last axis
// (column 2j = gate j, 2j+1 = up j); bias [E, 2I] interleaved the same way.
WeightBinding interleaved_gate_up(int64_t E, int64_t I, int64_t H) {
  return {"experts.gate_up_proj", {E, H, 2 * I},
          [=](const double* src, MoeLayerWeights& w) {
            for (int64_t e = 0; e < E; ++e)
              for (int64_t h = 0; h < H; ++h)
                for (int64_t i = 0; i < I; ++i) {
                  put(w.gate, (e * I + i) * H + h, src[(e * H + h) * 2 * I + 2 * i]);
                  put(w.up, (e * I + i) * H + h, src[(e * H + h) * 2 * I + 2 * i + 1]);
                }
          },
          [=](const MoeLayerWeights& w, double* dst) {
            for (int64_t e = 0; e < E; ++e)
              for (int64_t h = 0; h < H; ++h)
                for (int64_t i = 0; i < I; ++i) {
                  dst[(e * H + h) * 2 * I + 2 * i] = get(w.gate, (e * I + i) * H + h);
                  dst[(e * H + h) * 2 * I + 2 * i + 1] = get(w.up, (e * I + i) * H + h);
                }
          }};
}

WeightBinding interleaved_gate_up_bias(int64_t E, int64_t I) {
  return {"experts.gate_up_proj_bias", {E, 2 * I},
          [=](const double* src, MoeLayerWeights& w) {
            for (int64_t e = 0; e < E; ++e)
              for (int64_t i = 0; i < I; ++i) {
                put(w.gate_bias, e * I + i, src[e * 2 * I + 2 * i]);
                put(w.up_bias, e * I + i, src[e * 2 * I + 2 * i + 1]);
              }
          },
          [=](const MoeLayerWeights& w, double* dst) {
            for (int64_t e = 0; e < E; ++e)
              for (int64_t i = 0; i < I; ++i) {
                dst[e * 2 * I + 2 * i] = get(w.gate_bias, e * I + i);
                dst[e * 2 * I + 2 * i + 1] = get(w.up_bias, e * I + i);
              }
          }};
}

// A transposed stacked tensor: external [E, A, B] is canonical [E, B, A] (GPT-OSS down_proj [E, I, H]).
WeightBinding transposed(const std::string& name, int64_t E, int64_t A, int64_t B, Member m) {
  return {name, {E, A, B},
          [=](const double* src, MoeLayerWeights& w) {
            for (int64_t e = 0; e < E; ++e)
              for (int64_t a = 0; a < A; ++a)
                for (int64_t b = 0; b < B; ++b) put(w.*m, (e * B + b) * A + a, src[(e * A + a) * B + b]);
          },
          [=](const MoeLayerWeights& w, double* dst) {
            for (int64_t e = 0; e < E; ++e)
              for (int64_t a = 0; a < A; ++a)
                for (int64_t b = 0; b < B; ++b) dst[(e * A + a) * B + b] = get(w.*m, (e * B + b) * A + a);
          }};
}

std::vector<WeightBinding> canonical_bindings(const MoeLayerConfig& c) {
  std::vector<WeightBinding> b;
  const MoeLayerWeights shapes = make_layer_weights(c, DType::f64);
  shapes.for_each_tensor([&](const std::string& name, const Tensor& t) {
    if (t.empty()) return;
    const int64_t n = t.numel();
    b.push_back({name, t.shape(),
                 [name, n](const double* src, MoeLayerWeights& w) {
                   for (int64_t i = 0; i < n; ++i) put(*w.find(name), i, src[i]);
                 },
                 [name, n](const MoeLayerWeights& w, double* dst) {
                   for (int64_t i = 0; i < n; ++i) dst[i] = get(*w.find(name), i);
                 },
                 is_trainable(name)});
  });
  return b;
}

std::vector<WeightBinding> named_moe_bindings(const MoeNames& n, const MoeLayerConfig& c, bool fused) {
  const int64_t E = c.router.n_experts, H = c.d_model, I = c.expert.hidden, Is = c.shared_hidden;
  std::vector<WeightBinding> b;
  b.push_back(whole(n.router, {E, H}, &MoeLayerWeights::router_w));
  if (c.router.logit_bias && n.router_bias) b.push_back(whole(n.router_bias, {E}, &MoeLayerWeights::router_b));
  if (c.router.selection_bias && n.selection_bias) {
    b.push_back(whole(n.selection_bias, {E}, &MoeLayerWeights::selection_bias));
    b.back().trainable = false;
  }
  const bool gated = is_gated(c.expert.act);
  if (fused && gated) {
    b.push_back(fused_gate_up(E, I, H));
    b.push_back(whole("experts.down_proj", {E, H, I}, &MoeLayerWeights::down));
  } else {
    for (int64_t e = 0; e < E; ++e) {
      const std::string p = n.expert + std::to_string(e);
      if (gated) b.push_back(expert_slice(p + n.gate, {I, H}, &MoeLayerWeights::gate, e));
      b.push_back(expert_slice(p + n.up, {I, H}, &MoeLayerWeights::up, e));
      b.push_back(expert_slice(p + n.down, {H, I}, &MoeLayerWeights::down, e));
    }
  }
  if (Is > 0 && n.shared) {
    const std::string s = n.shared;
    if (is_gated(c.shared_act)) b.push_back(whole(s + "gate_proj.weight", {Is, H}, &MoeLayerWeights::shared_gate));
    b.push_back(whole(s + "up_proj.weight", {Is, H}, &MoeLayerWeights::shared_up));
    b.push_back(whole(s + "down_proj.weight", {H, Is}, &MoeLayerWeights::shared_down));
    if (c.shared_gate && n.shared_gate) b.push_back(whole(n.shared_gate, {1, H}, &MoeLayerWeights::shared_gate_w));
  }
  return b;
}

std::vector<WeightBinding> gate_proj_bindings(const MoeLayerConfig& c, bool fused) {
  return named_moe_bindings({"gate.weight", nullptr, "gate.e_score_correction_bias", "experts.", ".gate_proj.weight",
                             ".up_proj.weight", ".down_proj.weight", "shared_experts.", nullptr},
                            c, fused);
}

}  // namespace moe::arch
