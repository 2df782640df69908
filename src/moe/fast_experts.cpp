// Grouped expert execution over packed weights (include/moe/fast_experts.h). One driver serves
// f32 and bf16 weights through a small traits struct describing the packed layouts.
#include "moe/fast_experts.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "kernels/cpu/microkernel.h"
#include "moe/error.h"

namespace moe {

namespace {

using cpu::kMaxMR;
using cpu::kNR;

std::shared_ptr<uint8_t> aligned_bytes(int64_t n) {
  auto* p = static_cast<uint8_t*>(allocate_zeroed(static_cast<size_t>(std::max<int64_t>(n, 1))));
  return std::shared_ptr<uint8_t>(p, [](uint8_t* q) { std::free(q); });
}

// Packed layouts of one weight type. A panels hold mr rows; B panels 32 columns.
struct F32 {
  using T = float;
  static int64_t kpad(int64_t K) { return K; }
  static int64_t a_at(int64_t k, int64_t i, int64_t mr) { return k * mr + i; }
  static int64_t b_at(int64_t k, int64_t j) { return k * kNR + j; }
  static T from(float v) { return v; }
  static void tile(int64_t Kpad, const T* A, const T* B, float* C, int mr) { cpu::tile_f32()(Kpad, A, B, C, mr); }
};
struct Bf16 {
  using T = uint16_t;
  static int64_t kpad(int64_t K) { return (K + 1) / 2 * 2; }
  static int64_t a_at(int64_t k, int64_t i, int64_t mr) { return (k / 2) * 2 * mr + 2 * i + (k & 1); }
  static int64_t b_at(int64_t k, int64_t j) { return (k / 2) * 2 * kNR + 2 * j + (k & 1); }
  static T from(float v) { return f32_to_bf16(v); }
  static void tile(int64_t Kpad, const T* A, const T* B, float* C, int mr) { cpu::tile_bf16()(Kpad / 2, A, B, C, mr); }
};

// The activation on one hidden unit, in float (the fast path's precision).
inline float activate(const ExpertConfig& c, float g, float u) {
  switch (c.act) {
    case ExpertAct::swiglu: return g / (1.0f + std::exp(-g)) * u;
    case ExpertAct::gpt_oss_swiglu: {
      const float gc = std::min(g, static_cast<float>(c.limit));
      const float uc = std::clamp(u, static_cast<float>(-c.limit), static_cast<float>(c.limit));
      return (uc + 1.0f) * gc / (1.0f + std::exp(-static_cast<float>(c.alpha) * gc));
    }
    case ExpertAct::gelu: return 0.5f * u * (1.0f + std::erf(u * 0.70710678f));
    case ExpertAct::gelu_tanh: return 0.5f * u * (1.0f + std::tanh(0.7978845608f * (u + 0.044715f * u * u * u)));
    case ExpertAct::relu: return u > 0 ? u : 0.0f;
  }
  return 0;
}

// An expert's rows are cut into MR-row panels starting at its first row; the last may be short.
inline int64_t panel_rows(int64_t n_rows, int64_t panel_start) { return std::min<int64_t>(kMaxMR, n_rows - panel_start); }

struct UpTask {
  int32_t expert;
  int32_t p0, p1;  // up panel range
};

template <class L>
void allocate(PackedExperts& p) {
  using T = typename L::T;
  p.up = aligned_bytes(p.n_experts * p.up_panels * L::kpad(p.d_model) * kNR * static_cast<int64_t>(sizeof(T)));
  p.down = aligned_bytes(p.n_experts * p.down_panels * L::kpad(p.hidden) * kNR * static_cast<int64_t>(sizeof(T)));
}

// Packs expert e of w (w.gate/up/down point at expert `src` within their stacks).
template <class L>
void pack_expert(PackedExperts& p, const ExpertWeights<float>& w, int64_t e, int64_t src) {
  using T = typename L::T;
  const int64_t H = p.d_model, I = p.hidden, Hp = L::kpad(H), Ip = L::kpad(I);
  const bool gated = is_gated(p.config.act);
  T* up = reinterpret_cast<T*>(p.up.get());
  T* down = reinterpret_cast<T*>(p.down.get());
  {
    for (int64_t q = 0; q < p.up_panels; ++q) {
      T* B = up + (e * p.up_panels + q) * Hp * kNR;
      for (int64_t j = 0; j < p.hidden_per_panel; ++j) {
        const int64_t i = q * p.hidden_per_panel + j;
        if (i >= I) break;
        const float* gr = gated ? w.gate + (src * I + i) * H : nullptr;
        const float* ur = w.up + (src * I + i) * H;
        for (int64_t k = 0; k < H; ++k) {
          if (gated) {
            B[L::b_at(k, j)] = L::from(gr[k]);
            B[L::b_at(k, 16 + j)] = L::from(ur[k]);
          } else {
            B[L::b_at(k, j)] = L::from(ur[k]);
          }
        }
      }
    }
    for (int64_t q = 0; q < p.down_panels; ++q) {
      T* B = down + (e * p.down_panels + q) * Ip * kNR;
      for (int64_t j = 0; j < kNR && q * kNR + j < H; ++j) {
        const float* dr = w.down + (src * H + q * kNR + j) * I;
        for (int64_t k = 0; k < I; ++k) B[L::b_at(k, j)] = L::from(dr[k]);
      }
    }
  }
}

template <class L>
void forward(const PackedExperts& p, const Routing& r, const float* weights, const float* x, float* y, int threads) {
  using T = typename L::T;
  const int64_t E = p.n_experts, H = p.d_model, I = p.hidden, A = r.n_kept(), Tn = r.n_tokens;
  const int64_t Hp = L::kpad(H), Ip = L::kpad(I);
  const ExpertConfig& c = p.config;
  const bool gated = is_gated(c.act);
  const int64_t hpp = p.hidden_per_panel;
  const T* up = reinterpret_cast<const T*>(p.up.get());
  const T* down = reinterpret_cast<const T*>(p.down.get());
  // Rows per packed A block: within ~512 KiB, so it shares L2 with one weight panel.
  const int64_t mc = std::max<int64_t>(kMaxMR, (512 * 1024 / (static_cast<int64_t>(sizeof(T)) * std::max<int64_t>(Hp, 1))) / kMaxMR * kMaxMR);

  // Hidden rows, in the down GEMM's packed A layout (panel by panel, k padded).
  thread_local std::vector<T> h_store;
  if (static_cast<int64_t>(h_store.size()) < A * Ip) h_store.resize(static_cast<size_t>(A * Ip));
  T* hp = h_store.data();

  // Gate/up tasks: (expert, panel range), about 4 per thread overall.
  int64_t active = 0;
  for (int64_t e = 0; e < E; ++e) active += r.expert_rows(e) > 0;
  std::vector<UpTask> tasks;
  const int64_t per_expert = std::max<int64_t>(1, (4 * threads + active - 1) / std::max<int64_t>(active, 1));
  const int64_t chunk = std::max<int64_t>(1, (p.up_panels + per_expert - 1) / per_expert);
  for (int64_t e = 0; e < E; ++e) {
    if (r.expert_rows(e) == 0) continue;
    for (int64_t q = 0; q < p.up_panels; q += chunk) {
      tasks.push_back({static_cast<int32_t>(e), static_cast<int32_t>(q), static_cast<int32_t>(std::min(q + chunk, p.up_panels))});
    }
  }

#pragma omp parallel num_threads(threads)
  {
    thread_local std::vector<T> apack;
    alignas(64) float C[kMaxMR * kNR];
    float Hv[kMaxMR * 16];
    const cpu::SwigluTile swiglu = cpu::swiglu_tile(cpu::detected_isa());
    if (static_cast<int64_t>(apack.size()) < mc * Hp) apack.resize(static_cast<size_t>(mc * Hp));

#pragma omp for schedule(dynamic, 1)
    for (size_t ti = 0; ti < tasks.size(); ++ti) {
      const UpTask& task = tasks[ti];
      const int64_t e = task.expert, r0 = r.expert_offsets[e], n = r.expert_rows(e);
      for (int64_t m0 = 0; m0 < n; m0 += mc) {
        const int64_t m1 = std::min(n, m0 + mc);
        for (int64_t pr = m0; pr < m1; pr += kMaxMR) {  // gather + convert + pack
          const int64_t mr = panel_rows(n, pr);
          T* Ap = apack.data() + (pr - m0) * Hp;
          for (int64_t i = 0; i < mr; ++i) {
            const float* xr = x + static_cast<int64_t>(r.slot_token[r.rows[r0 + pr + i]]) * H;
            for (int64_t k = 0; k < H; ++k) Ap[L::a_at(k, i, mr)] = L::from(xr[k]);
            for (int64_t k = H; k < Hp; ++k) Ap[L::a_at(k, i, mr)] = T(0);
          }
        }
        for (int64_t q = task.p0; q < task.p1; ++q) {
          const T* B = up + (e * p.up_panels + q) * Hp * kNR;
          for (int64_t pr = m0; pr < m1; pr += kMaxMR) {
            const int64_t mr = panel_rows(n, pr);
            L::tile(Hp, apack.data() + (pr - m0) * Hp, B, C, static_cast<int>(mr));
            T* hpanel = hp + (r0 + pr) * Ip;
            const int64_t h0 = q * hpp, nh = std::min<int64_t>(hpp, I - h0);
            const bool has_bias = !(p.gate_bias.empty() && p.up_bias.empty());
            if (swiglu && c.act == ExpertAct::swiglu && (nh == hpp || !has_bias)) {
              // Vectorised SwiGLU on the tile, then the store into the packed layout.
              swiglu(C, p.gate_bias.empty() ? nullptr : p.gate_bias.data() + e * I + h0,
                     p.up_bias.empty() ? nullptr : p.up_bias.data() + e * I + h0, static_cast<int>(mr), Hv);
              for (int64_t j = 0; j < nh; ++j)
                for (int64_t i = 0; i < mr; ++i) hpanel[L::a_at(h0 + j, i, mr)] = L::from(Hv[i * 16 + j]);
            } else {
              for (int64_t j = 0; j < hpp; ++j) {  // epilogue: bias, activation, packed store
                const int64_t hid = q * hpp + j;
                if (hid >= I) break;
                const float gb = p.gate_bias.empty() ? 0.0f : p.gate_bias[e * I + hid];
                const float ub = p.up_bias.empty() ? 0.0f : p.up_bias[e * I + hid];
                for (int64_t i = 0; i < mr; ++i) {
                  const float g = gated ? C[i * kNR + j] + gb : 0.0f;
                  const float u = (gated ? C[i * kNR + 16 + j] : C[i * kNR + j]) + ub;
                  hpanel[L::a_at(hid, i, mr)] = L::from(activate(c, g, u));
                }
              }
            }
            if (Ip > I && q == p.up_panels - 1) {
              for (int64_t i = 0; i < mr; ++i) hpanel[L::a_at(I, i, mr)] = T(0);
            }
          }
        }
      }
    }

    // Down: threads own output column blocks, so the weighted scatter-add never races.
#pragma omp for schedule(static)
    for (int64_t i = 0; i < Tn * H; ++i) y[i] = 0.0f;
    const int64_t qchunk = std::max<int64_t>(1, (p.down_panels + 4 * threads - 1) / (4 * threads));
#pragma omp for schedule(dynamic, 1)
    for (int64_t q0 = 0; q0 < p.down_panels; q0 += qchunk) {
      const int64_t q1 = std::min(p.down_panels, q0 + qchunk);
      for (int64_t e = 0; e < E; ++e) {
        const int64_t r0 = r.expert_offsets[e], n = r.expert_rows(e);
        if (n == 0) continue;
        for (int64_t q = q0; q < q1; ++q) {
          const T* B = down + (e * p.down_panels + q) * Ip * kNR;
          const int64_t cols = std::min<int64_t>(kNR, H - q * kNR);
          const float* db = p.down_bias.empty() ? nullptr : p.down_bias.data() + e * H + q * kNR;
          for (int64_t pr = 0; pr < n; pr += kMaxMR) {
            const int64_t mr = panel_rows(n, pr);
            L::tile(Ip, hp + (r0 + pr) * Ip, B, C, static_cast<int>(mr));
            for (int64_t i = 0; i < mr; ++i) {
              const int32_t s = r.rows[r0 + pr + i];
              const float wt = weights[s];
              float* yr = y + static_cast<int64_t>(r.slot_token[s]) * H + q * kNR;
              for (int64_t j = 0; j < cols; ++j) yr[j] += wt * (C[i * kNR + j] + (db ? db[j] : 0.0f));
            }
          }
        }
      }
    }
  }
}

}  // namespace

const char* fast_experts_isa() { return cpu::isa_name(cpu::detected_isa()); }

int64_t PackedExperts::weight_bytes() const {
  const int64_t es = static_cast<int64_t>(dtype_size(weight_dtype));
  const int64_t gated = is_gated(config.act) ? 3 : 2;
  return gated * d_model * hidden * es;
}

namespace {

PackedExperts layout(const ExpertConfig& c, int64_t E, int64_t H, DType weights) {
  if (weights != DType::f32 && weights != DType::bf16) {
    throw InvalidInput(std::string("[fast_experts] weight type ") + dtype_name(weights) + " is not one of: F32, BF16");
  }
  PackedExperts p;
  p.config = c;
  p.weight_dtype = weights;
  p.n_experts = E;
  p.d_model = H;
  p.hidden = c.hidden;
  p.hidden_per_panel = is_gated(c.act) ? kNR / 2 : kNR;
  p.up_panels = (c.hidden + p.hidden_per_panel - 1) / p.hidden_per_panel;
  p.down_panels = (H + kNR - 1) / kNR;
  if (weights == DType::bf16) {
    allocate<Bf16>(p);
  } else {
    allocate<F32>(p);
  }
  return p;
}

void pack_one(PackedExperts& p, const ExpertWeights<float>& w, int64_t e, int64_t src) {
  if (p.weight_dtype == DType::bf16) {
    pack_expert<Bf16>(p, w, e, src);
  } else {
    pack_expert<F32>(p, w, e, src);
  }
}

}  // namespace

PackedExperts pack_experts(const ExpertConfig& c, int64_t E, int64_t H, DType weights,
                           const std::function<void(int64_t, float*, float*, float*)>& fill) {
  PackedExperts p = layout(c, E, H, weights);
  const int64_t I = c.hidden;
  std::vector<float> gate(static_cast<size_t>(I * H)), up(static_cast<size_t>(I * H)), down(static_cast<size_t>(H * I));
  for (int64_t e = 0; e < E; ++e) {
    fill(e, gate.data(), up.data(), down.data());
    pack_one(p, {1, H, I, gate.data(), up.data(), down.data(), nullptr, nullptr, nullptr}, e, 0);
  }
  return p;
}

PackedExperts pack_experts(const ExpertConfig& c0, const ExpertWeights<float>& w, DType weights) {
  ExpertConfig c = c0;
  c.hidden = w.hidden;
  PackedExperts p = layout(c, w.n_experts, w.d_model, weights);
  for (int64_t e = 0; e < w.n_experts; ++e) pack_one(p, w, e, e);
  const int64_t E = w.n_experts, H = w.d_model, I = w.hidden;
  if (w.up_bias) p.up_bias.assign(w.up_bias, w.up_bias + E * I);
  if (w.gate_bias) p.gate_bias.assign(w.gate_bias, w.gate_bias + E * I);
  if (w.down_bias) p.down_bias.assign(w.down_bias, w.down_bias + E * H);
  return p;
}

void fast_experts_forward(const PackedExperts& p, const Routing& r, const float* weights, const float* x, float* y,
                          const FastExpertsOptions& opt) {
  if (r.n_experts != p.n_experts) {
    throw InvalidInput("[fast_experts] routing has " + std::to_string(r.n_experts) + " experts, weights " +
                       std::to_string(p.n_experts));
  }
  const int threads = opt.threads > 0 ? opt.threads : omp_get_max_threads();
  if (p.weight_dtype == DType::bf16) {
    forward<Bf16>(p, r, weights, x, y, threads);
  } else {
    forward<F32>(p, r, weights, x, y, threads);
  }
}

PackedLinear pack_linear(const float* W, int64_t N, int64_t K) {
  PackedLinear p;
  p.out_features = N;
  p.in_features = K;
  p.panels = (N + kNR - 1) / kNR;
  auto bytes = aligned_bytes(p.panels * K * kNR * 4);
  p.w = std::shared_ptr<float>(bytes, reinterpret_cast<float*>(bytes.get()));
  for (int64_t q = 0; q < p.panels; ++q) {
    float* B = p.w.get() + q * K * kNR;
    for (int64_t j = 0; j < kNR && q * kNR + j < N; ++j) {
      for (int64_t k = 0; k < K; ++k) B[k * kNR + j] = W[(q * kNR + j) * K + k];
    }
  }
  return p;
}

void fast_linear(const PackedLinear& p, const float* x, int64_t rows, float* out, const FastExpertsOptions& opt) {
  const int threads = opt.threads > 0 ? opt.threads : omp_get_max_threads();
  const cpu::TileF32 tile = cpu::tile_f32();
  const int64_t K = p.in_features, N = p.out_features;
  const int64_t n_panels = (rows + kMaxMR - 1) / kMaxMR;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
  for (int64_t rp = 0; rp < n_panels; ++rp) {
    thread_local std::vector<float> apack;
    alignas(64) float C[kMaxMR * kNR];
    const int64_t r0 = rp * kMaxMR, mr = std::min<int64_t>(kMaxMR, rows - r0);
    if (static_cast<int64_t>(apack.size()) < kMaxMR * K) apack.resize(static_cast<size_t>(kMaxMR * K));
    for (int64_t i = 0; i < mr; ++i) {
      for (int64_t k = 0; k < K; ++k) apack[k * mr + i] = x[(r0 + i) * K + k];
    }
    for (int64_t q = 0; q < p.panels; ++q) {
      tile(K, apack.data(), p.w.get() + q * K * kNR, C, static_cast<int>(mr));
      const int64_t cols = std::min<int64_t>(kNR, N - q * kNR);
      for (int64_t i = 0; i < mr; ++i) std::copy(C + i * kNR, C + i * kNR + cols, out + (r0 + i) * N + q * kNR);
    }
  }
}

}  // namespace moe
