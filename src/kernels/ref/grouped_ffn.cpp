// Reference grouped FFNs (kernels/ref/grouped_ffn.h) and the scalar activation definitions.
#include "kernels/ref/grouped_ffn.h"

#include <algorithm>
#include <cmath>

#include "kernels/ref/kernels.h"
#include "moe/error.h"

namespace moe {

ActivationGrad ffn_activation(const FfnSpec& c, double g, double u) {
  switch (c.act) {
    case FfnAct::swiglu: {
      const ref::ValueGrad s = ref::silu(g);
      return {s.v * u, s.d * u, s.v};
    }
    case FfnAct::gpt_oss_swiglu: {  // (clamp(u, ±l) + 1) · g'·σ(α g'),  g' = min(g, l)
      const ref::ValueGrad gc = ref::clamp(g, -INFINITY, c.limit);
      const ref::ValueGrad uc = ref::clamp(u, -c.limit, c.limit);
      const double s = ref::sigmoid(c.alpha * gc.v);
      const double glu = gc.v * s;
      const double dglu = s + gc.v * c.alpha * s * (1 - s);
      return {(uc.v + 1) * glu, (uc.v + 1) * dglu * gc.d, glu * uc.d};
    }
    case FfnAct::gelu: {
      const ref::ValueGrad a = ref::gelu_erf(u);
      return {a.v, 0, a.d};
    }
    case FfnAct::gelu_tanh: {
      const ref::ValueGrad a = ref::gelu_tanh(u);
      return {a.v, 0, a.d};
    }
    case FfnAct::relu: {
      const ref::ValueGrad a = ref::relu(u);
      return {a.v, 0, a.d};
    }
  }
  return {0, 0, 0};
}

FfnAct parse_ffn_act(const std::string& name) {
  if (name == "swiglu" || name == "silu") return FfnAct::swiglu;
  if (name == "gelu") return FfnAct::gelu;
  if (name == "gelu_tanh" || name == "gelu_new" || name == "gelu_pytorch_tanh") return FfnAct::gelu_tanh;
  if (name == "relu") return FfnAct::relu;
  if (name == "gpt_oss_swiglu") return FfnAct::gpt_oss_swiglu;
  throw InvalidInput("[experts] expert_act '" + name + "' is not one of: swiglu, gelu, gelu_tanh, relu, gpt_oss_swiglu");
}

const char* ffn_act_name(FfnAct a) {
  switch (a) {
    case FfnAct::swiglu: return "swiglu";
    case FfnAct::gelu: return "gelu";
    case FfnAct::gelu_tanh: return "gelu_tanh";
    case FfnAct::relu: return "relu";
    case FfnAct::gpt_oss_swiglu: return "gpt_oss_swiglu";
  }
  return "?";
}

}  // namespace moe

namespace moe::ref {

template <class T>
void grouped_ffn_forward(const FfnSpec& c, const FfnWeights<T>& w, const RowGroups& rg, const T* x, T* pre_gate,
                         T* pre_up, T* hidden, T* out) {
  const int64_t H = w.d_model, I = w.hidden;
  const bool gated = is_gated(c.act);
  for (int64_t e = 0; e < rg.n_groups; ++e) {
    const T* wg = gated ? w.gate + e * I * H : nullptr;
    const T* wu = w.up + e * I * H;
    const T* wd = w.down + e * H * I;
    const T* bg = w.gate_bias ? w.gate_bias + e * I : nullptr;
    const T* bu = w.up_bias ? w.up_bias + e * I : nullptr;
    const T* bd = w.down_bias ? w.down_bias + e * H : nullptr;
    for (int64_t row = rg.offsets[e]; row < rg.offsets[e + 1]; ++row) {
      const T* xt = x + rg.input_row(row) * H;
      if (gated) linear(pre_gate + row * I, xt, wg, bg, 1, H, I);
      linear(pre_up + row * I, xt, wu, bu, 1, H, I);
      for (int64_t i = 0; i < I; ++i) {
        const double g = gated ? static_cast<double>(pre_gate[row * I + i]) : 0.0;
        hidden[row * I + i] = static_cast<T>(ffn_activation(c, g, static_cast<double>(pre_up[row * I + i])).h);
      }
      linear(out + row * H, hidden + row * I, wd, bd, 1, I, H);
    }
  }
}

template <class T>
void grouped_ffn_backward(const FfnSpec& c, const FfnWeights<T>& w, const RowGroups& rg, const T* x, const T* pre_gate,
                          const T* pre_up, const T* hidden, const T* dout, T* dx_rows, const FfnGrads<T>& g,
                          double* scratch) {
  const int64_t H = w.d_model, I = w.hidden;
  const bool gated = is_gated(c.act);
  double* dh = scratch;
  double* dgate = scratch + I;
  double* dup = scratch + 2 * I;
  for (int64_t e = 0; e < rg.n_groups; ++e) {
    const T* wg = gated ? w.gate + e * I * H : nullptr;
    const T* wu = w.up + e * I * H;
    const T* wd = w.down + e * H * I;
    for (int64_t row = rg.offsets[e]; row < rg.offsets[e + 1]; ++row) {
      const T* xt = x + rg.input_row(row) * H;
      const T* go = dout + row * H;
      const T* hid = hidden + row * I;
      T* dxr = dx_rows + row * H;
      // down: out = Wd·h + bd
      for (int64_t i = 0; i < I; ++i) dh[i] = 0;
      for (int64_t o = 0; o < H; ++o) {
        const double gov = static_cast<double>(go[o]);
        if (gov == 0) continue;
        const T* wdo = wd + o * I;
        for (int64_t i = 0; i < I; ++i) dh[i] += gov * static_cast<double>(wdo[i]);
        if (g.down) {
          T* gdo = g.down + e * H * I + o * I;
          for (int64_t i = 0; i < I; ++i) gdo[i] += static_cast<T>(gov * static_cast<double>(hid[i]));
        }
        if (g.down_bias) g.down_bias[e * H + o] += static_cast<T>(gov);
      }
      for (int64_t i = 0; i < I; ++i) {
        const double gv = gated ? static_cast<double>(pre_gate[row * I + i]) : 0.0;
        const ActivationGrad d = ffn_activation(c, gv, static_cast<double>(pre_up[row * I + i]));
        dgate[i] = dh[i] * d.dg;
        dup[i] = dh[i] * d.du;
      }
      // gate/up: pre = W·x + b;  dx = Σ_i dup_i·Wu[i] + dgate_i·Wg[i], summed in float64
      for (int64_t j = 0; j < H; ++j) {
        double acc = 0;
        for (int64_t i = 0; i < I; ++i) {
          acc += dup[i] * static_cast<double>(wu[i * H + j]);
          if (gated) acc += dgate[i] * static_cast<double>(wg[i * H + j]);
        }
        dxr[j] = static_cast<T>(acc);
      }
      for (int64_t i = 0; i < I; ++i) {
        if (g.up) {
          T* gu = g.up + e * I * H + i * H;
          for (int64_t j = 0; j < H; ++j) gu[j] += static_cast<T>(dup[i] * static_cast<double>(xt[j]));
        }
        if (gated && g.gate) {
          T* gg = g.gate + e * I * H + i * H;
          for (int64_t j = 0; j < H; ++j) gg[j] += static_cast<T>(dgate[i] * static_cast<double>(xt[j]));
        }
        if (g.up_bias) g.up_bias[e * I + i] += static_cast<T>(dup[i]);
        if (gated && g.gate_bias) g.gate_bias[e * I + i] += static_cast<T>(dgate[i]);
      }
    }
  }
}

#define MOE_INSTANTIATE_REF_FFN(T)                                                                                 \
  template void grouped_ffn_forward<T>(const FfnSpec&, const FfnWeights<T>&, const RowGroups&, const T*, T*, T*, T*, \
                                       T*);                                                                         \
  template void grouped_ffn_backward<T>(const FfnSpec&, const FfnWeights<T>&, const RowGroups&, const T*, const T*,  \
                                        const T*, const T*, const T*, T*, const FfnGrads<T>&, double*);
MOE_INSTANTIATE_REF_FFN(float)
MOE_INSTANTIATE_REF_FFN(double)

}  // namespace moe::ref
