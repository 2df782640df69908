// Reference expert FFNs: scalar loops with float64 accumulation.
#include "moe/experts.h"

#include <algorithm>
#include <cmath>

#include "kernels/ref/kernels.h"
#include "moe/error.h"

namespace moe {

ActivationGrad expert_activation(const ExpertConfig& c, double g, double u) {
  switch (c.act) {
    case ExpertAct::swiglu: {
      const ref::ValueGrad s = ref::silu(g);
      return {s.v * u, s.d * u, s.v};
    }
    case ExpertAct::gpt_oss_swiglu: {  // (clamp(u, ±l) + 1) · g'·σ(α g'),  g' = min(g, l)
      const ref::ValueGrad gc = ref::clamp(g, -INFINITY, c.limit);
      const ref::ValueGrad uc = ref::clamp(u, -c.limit, c.limit);
      const double s = ref::sigmoid(c.alpha * gc.v);
      const double glu = gc.v * s;
      const double dglu = s + gc.v * c.alpha * s * (1 - s);
      return {(uc.v + 1) * glu, (uc.v + 1) * dglu * gc.d, glu * uc.d};
    }
    case ExpertAct::gelu: {
      const ref::ValueGrad a = ref::gelu_erf(u);
      return {a.v, 0, a.d};
    }
    case ExpertAct::gelu_tanh: {
      const ref::ValueGrad a = ref::gelu_tanh(u);
      return {a.v, 0, a.d};
    }
    case ExpertAct::relu: {
      const ref::ValueGrad a = ref::relu(u);
      return {a.v, 0, a.d};
    }
  }
  return {0, 0, 0};
}

ExpertAct parse_expert_act(const std::string& name) {
  if (name == "swiglu" || name == "silu") return ExpertAct::swiglu;
  if (name == "gelu") return ExpertAct::gelu;
  if (name == "gelu_tanh" || name == "gelu_new" || name == "gelu_pytorch_tanh") return ExpertAct::gelu_tanh;
  if (name == "relu") return ExpertAct::relu;
  if (name == "gpt_oss_swiglu") return ExpertAct::gpt_oss_swiglu;
  throw InvalidInput("[experts] expert_act '" + name + "' is not one of: swiglu, gelu, gelu_tanh, relu, gpt_oss_swiglu");
}

const char* expert_act_name(ExpertAct a) {
  switch (a) {
    case ExpertAct::swiglu: return "swiglu";
    case ExpertAct::gelu: return "gelu";
    case ExpertAct::gelu_tanh: return "gelu_tanh";
    case ExpertAct::relu: return "relu";
    case ExpertAct::gpt_oss_swiglu: return "gpt_oss_swiglu";
  }
  return "?";
}

Routing dense_routing(int64_t n_tokens) {
  Routing r;
  r.n_tokens = n_tokens;
  r.n_experts = 1;
  r.top_k = 1;
  r.slot_token.resize(static_cast<size_t>(n_tokens));
  for (int64_t t = 0; t < n_tokens; ++t) r.slot_token[t] = static_cast<int32_t>(t);
  r.slot_expert.assign(static_cast<size_t>(n_tokens), 0);
  r.slot_kept.assign(static_cast<size_t>(n_tokens), 1);
  build_expert_order(r);
  return r;
}

template <class T>
void experts_forward(const ExpertConfig& c, const ExpertWeights<T>& w, const Routing& r, const T* x,
                     ExpertActivations<T>& a) {
  const int64_t H = w.d_model, I = w.hidden, A = r.n_kept();
  const bool gated = is_gated(c.act);
  a.pre_gate.assign(gated ? static_cast<size_t>(A * I) : 0, T(0));
  a.pre_up.assign(static_cast<size_t>(A * I), T(0));
  a.hidden.assign(static_cast<size_t>(A * I), T(0));
  a.out.assign(static_cast<size_t>(A * H), T(0));
  for (int64_t e = 0; e < r.n_experts; ++e) {
    const T* wg = gated ? w.gate + e * I * H : nullptr;
    const T* wu = w.up + e * I * H;
    const T* wd = w.down + e * H * I;
    const T* bg = w.gate_bias ? w.gate_bias + e * I : nullptr;
    const T* bu = w.up_bias ? w.up_bias + e * I : nullptr;
    const T* bd = w.down_bias ? w.down_bias + e * H : nullptr;
    for (int64_t row = r.expert_offsets[e]; row < r.expert_offsets[e + 1]; ++row) {
      const T* xt = x + static_cast<int64_t>(r.slot_token[r.rows[row]]) * H;
      if (gated) ref::linear(a.pre_gate.data() + row * I, xt, wg, bg, 1, H, I);
      ref::linear(a.pre_up.data() + row * I, xt, wu, bu, 1, H, I);
      for (int64_t i = 0; i < I; ++i) {
        const double g = gated ? static_cast<double>(a.pre_gate[row * I + i]) : 0.0;
        a.hidden[row * I + i] = static_cast<T>(expert_activation(c, g, static_cast<double>(a.pre_up[row * I + i])).h);
      }
      ref::linear(a.out.data() + row * H, a.hidden.data() + row * I, wd, bd, 1, I, H);
    }
  }
}

template <class T>
void experts_backward(const ExpertConfig& c, const ExpertWeights<T>& w, const Routing& r, const T* x,
                      const ExpertActivations<T>& a, const T* dout, T* dx, const ExpertGrads<T>& g) {
  const int64_t H = w.d_model, I = w.hidden;
  const bool gated = is_gated(c.act);
  std::vector<double> dh(static_cast<size_t>(I)), dgate(static_cast<size_t>(I)), dup(static_cast<size_t>(I));
  for (int64_t e = 0; e < r.n_experts; ++e) {
    const T* wg = gated ? w.gate + e * I * H : nullptr;
    const T* wu = w.up + e * I * H;
    const T* wd = w.down + e * H * I;
    for (int64_t row = r.expert_offsets[e]; row < r.expert_offsets[e + 1]; ++row) {
      const int64_t t = r.slot_token[r.rows[row]];
      const T* xt = x + t * H;
      const T* go = dout + row * H;
      const T* hid = a.hidden.data() + row * I;
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
        const double gv = gated ? static_cast<double>(a.pre_gate[row * I + i]) : 0.0;
        const ActivationGrad d = expert_activation(c, gv, static_cast<double>(a.pre_up[row * I + i]));
        dgate[i] = dh[i] * d.dg;
        dup[i] = dh[i] * d.du;
      }
      // gate/up: pre = W·x + b
      for (int64_t i = 0; i < I; ++i) {
        const T* wui = wu + i * H;
        const T* wgi = gated ? wg + i * H : nullptr;
        for (int64_t j = 0; j < H; ++j) {
          double acc = dup[i] * static_cast<double>(wui[j]);
          if (gated) acc += dgate[i] * static_cast<double>(wgi[j]);
          dx[t * H + j] += static_cast<T>(acc);
        }
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

template <class T>
void dense_ffn_forward(const ExpertConfig& c, const ExpertWeights<T>& w, const T* x, int64_t n_tokens,
                       ExpertActivations<T>& a, T* y) {
  if (w.n_experts != 1) throw InvalidInput("[experts] a dense FFN has one expert, got " + std::to_string(w.n_experts));
  experts_forward(c, w, dense_routing(n_tokens), x, a);
  std::copy(a.out.begin(), a.out.end(), y);  // rows are tokens in order
}

template <class T>
void dense_ffn_backward(const ExpertConfig& c, const ExpertWeights<T>& w, const T* x, int64_t n_tokens,
                        const ExpertActivations<T>& a, const T* dy, T* dx, const ExpertGrads<T>& g) {
  experts_backward(c, w, dense_routing(n_tokens), x, a, dy, dx, g);
}

#define MOE_INSTANTIATE_EXPERTS(T)                                                                            \
  template void experts_forward<T>(const ExpertConfig&, const ExpertWeights<T>&, const Routing&, const T*,    \
                                   ExpertActivations<T>&);                                                    \
  template void experts_backward<T>(const ExpertConfig&, const ExpertWeights<T>&, const Routing&, const T*,   \
                                    const ExpertActivations<T>&, const T*, T*, const ExpertGrads<T>&);  \
  template void dense_ffn_forward<T>(const ExpertConfig&, const ExpertWeights<T>&, const T*, int64_t,          \
                                     ExpertActivations<T>&, T*);                                               \
  template void dense_ffn_backward<T>(const ExpertConfig&, const ExpertWeights<T>&, const T*, int64_t,         \
                                      const ExpertActivations<T>&, const T*, T*, const ExpertGrads<T>&);
MOE_INSTANTIATE_EXPERTS(float)
MOE_INSTANTIATE_EXPERTS(double)

}  // namespace moe
