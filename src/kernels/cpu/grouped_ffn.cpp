// The inference path of the grouped FFNs over packed weights (kernels/cpu/grouped_ffn.h). One
// driver serves f32 and bf16 weights through a small traits struct describing the packed layouts.
#include "kernels/cpu/grouped_ffn.h"

#include <omp.h>

#include <algorithm>
#include <cmath>

#include "kernels/cpu/microkernel.h"

namespace moe::cpu {

namespace {

// Packed layouts of one weight type. A panels hold mr rows; B panels 32 columns.
struct F32 {
  using T = float;
  static int64_t kpad(int64_t K) { return K; }
  static int64_t a_at(int64_t k, int64_t i, int64_t mr) { return k * mr + i; }
  static T from(float v) { return v; }
  static void tile(int64_t Kpad, const T* A, const T* B, float* C, int mr) { tile_f32()(Kpad, A, B, C, mr); }
};
struct Bf16 {
  using T = uint16_t;
  static int64_t kpad(int64_t K) { return (K + 1) / 2 * 2; }
  static int64_t a_at(int64_t k, int64_t i, int64_t mr) { return (k / 2) * 2 * mr + 2 * i + (k & 1); }
  static T from(float v) { return f32_to_bf16(v); }
  static void tile(int64_t Kpad, const T* A, const T* B, float* C, int mr) { tile_bf16()(Kpad / 2, A, B, C, mr); }
};

// The activation on one hidden unit, in float (this path's precision).
inline float activate(const FfnSpec& c, float g, float u) {
  switch (c.act) {
    case FfnAct::swiglu: return g / (1.0f + std::exp(-g)) * u;
    case FfnAct::gpt_oss_swiglu: {
      const float gc = std::min(g, static_cast<float>(c.limit));
      const float uc = std::clamp(u, static_cast<float>(-c.limit), static_cast<float>(c.limit));
      return (uc + 1.0f) * gc / (1.0f + std::exp(-static_cast<float>(c.alpha) * gc));
    }
    case FfnAct::gelu: return 0.5f * u * (1.0f + std::erf(u * 0.70710678f));
    case FfnAct::gelu_tanh: return 0.5f * u * (1.0f + std::tanh(0.7978845608f * (u + 0.044715f * u * u * u)));
    case FfnAct::relu: return u > 0 ? u : 0.0f;
  }
  return 0;
}

// A group's rows are cut into MR-row panels starting at its first row; the last may be short.
inline int64_t panel_rows(int64_t n_rows, int64_t panel_start) { return std::min<int64_t>(kMaxMR, n_rows - panel_start); }

// Rows per packed A block: within ~512 KiB, so it shares L2 with one weight panel.
template <class L>
int64_t block_rows(int64_t Hp) {
  const int64_t per_row = static_cast<int64_t>(sizeof(typename L::T)) * std::max<int64_t>(Hp, 1);
  return std::max<int64_t>(kMaxMR, (512 * 1024 / per_row) / kMaxMR * kMaxMR);
}

template <class L>
size_t scratch_bytes(const PackedFfn& p, int64_t A, int threads) {
  using T = typename L::T;
  const int64_t Hp = L::kpad(p.d_model), Ip = L::kpad(p.hidden);
  const size_t hidden = align64(static_cast<size_t>(A * Ip) * sizeof(T));
  const size_t apack = align64(static_cast<size_t>(block_rows<L>(Hp) * Hp) * sizeof(T));
  return hidden + static_cast<size_t>(threads) * apack;
}

struct UpTask {
  int32_t group;
  int32_t p0, p1;  // up panel range
};

template <class L>
void forward(const PackedFfn& p, const RowGroups& rg, const float* x, const RowSink& sink, float* y, int threads,
             Scratch scratch) {
  using T = typename L::T;
  const int64_t G = p.n_ffn, H = p.d_model, I = p.hidden, A = rg.n_rows();
  const int64_t Hp = L::kpad(H), Ip = L::kpad(I);
  const FfnSpec& c = p.spec;
  const bool gated = is_gated(c.act);
  const int64_t hpp = p.hidden_per_panel;
  const T* up = reinterpret_cast<const T*>(p.up.get());
  const T* down = reinterpret_cast<const T*>(p.down.get());
  const int64_t mc = block_rows<L>(Hp);
  // Hidden rows, in the down GEMM's packed A layout (panel by panel, k padded).
  T* hp = scratch.take<T>(static_cast<size_t>(A * Ip));
  const size_t apack_bytes = align64(static_cast<size_t>(mc * Hp) * sizeof(T));

  // Gate/up tasks: (group, panel range), about 4 per thread overall.
  int64_t active = 0;
  for (int64_t g = 0; g < G; ++g) active += rg.rows(g) > 0;
  UpTask tasks_small[64];
  const int64_t per_group = std::max<int64_t>(1, (4 * threads + active - 1) / std::max<int64_t>(active, 1));
  const int64_t chunk = std::max<int64_t>(1, (p.up_panels + per_group - 1) / per_group);
  const int64_t n_tasks_max = active * ((p.up_panels + chunk - 1) / chunk);
  UpTask* tasks = n_tasks_max <= 64 ? tasks_small : scratch.take<UpTask>(static_cast<size_t>(n_tasks_max));
  int64_t n_tasks = 0;
  for (int64_t g = 0; g < G; ++g) {
    if (rg.rows(g) == 0) continue;
    for (int64_t q = 0; q < p.up_panels; q += chunk) {
      tasks[n_tasks++] = {static_cast<int32_t>(g), static_cast<int32_t>(q), static_cast<int32_t>(std::min(q + chunk, p.up_panels))};
    }
  }
  const bool has_bias = !p.up_bias.empty();

#pragma omp parallel num_threads(threads)
  {
    T* apack = scratch.slice(static_cast<size_t>(omp_get_thread_num()), apack_bytes).template take<T>(static_cast<size_t>(mc * Hp));
    alignas(64) float C[kMaxMR * kNR];
    float Hv[kMaxMR * 16];
    const SwigluTile swiglu = swiglu_tile(detected_isa());

#pragma omp for schedule(dynamic, 1)
    for (int64_t ti = 0; ti < n_tasks; ++ti) {
      const UpTask& task = tasks[ti];
      const int64_t g = task.group, r0 = rg.offsets[g], n = rg.rows(g);
      for (int64_t m0 = 0; m0 < n; m0 += mc) {
        const int64_t m1 = std::min(n, m0 + mc);
        for (int64_t pr = m0; pr < m1; pr += kMaxMR) {  // gather + convert + pack
          const int64_t mr = panel_rows(n, pr);
          T* Ap = apack + (pr - m0) * Hp;
          for (int64_t i = 0; i < mr; ++i) {
            const float* xr = x + rg.input_row(r0 + pr + i) * H;
            for (int64_t k = 0; k < H; ++k) Ap[L::a_at(k, i, mr)] = L::from(xr[k]);
            for (int64_t k = H; k < Hp; ++k) Ap[L::a_at(k, i, mr)] = T(0);
          }
        }
        for (int64_t q = task.p0; q < task.p1; ++q) {
          const T* B = up + (g * p.up_panels + q) * Hp * kNR;
          for (int64_t pr = m0; pr < m1; pr += kMaxMR) {
            const int64_t mr = panel_rows(n, pr);
            L::tile(Hp, apack + (pr - m0) * Hp, B, C, static_cast<int>(mr));
            T* hpanel = hp + (r0 + pr) * Ip;
            const int64_t h0 = q * hpp, nh = std::min<int64_t>(hpp, I - h0);
            if (swiglu && c.act == FfnAct::swiglu && (nh == hpp || !has_bias)) {
              // Vectorised SwiGLU on the tile, then the store into the packed layout.
              swiglu(C, has_bias ? p.gate_bias.data() + g * I + h0 : nullptr,
                     has_bias ? p.up_bias.data() + g * I + h0 : nullptr, static_cast<int>(mr), Hv);
              for (int64_t j = 0; j < nh; ++j)
                for (int64_t i = 0; i < mr; ++i) hpanel[L::a_at(h0 + j, i, mr)] = L::from(Hv[i * 16 + j]);
            } else {
              for (int64_t j = 0; j < hpp; ++j) {  // epilogue: bias, activation, packed store
                const int64_t hid = q * hpp + j;
                if (hid >= I) break;
                const float gb = has_bias ? p.gate_bias[g * I + hid] : 0.0f;
                const float ub = has_bias ? p.up_bias[g * I + hid] : 0.0f;
                for (int64_t i = 0; i < mr; ++i) {
                  const float gv = gated ? C[i * kNR + j] + gb : 0.0f;
                  const float uv = (gated ? C[i * kNR + 16 + j] : C[i * kNR + j]) + ub;
                  hpanel[L::a_at(hid, i, mr)] = L::from(activate(c, gv, uv));
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
    if (sink.dst) {
#pragma omp for schedule(static)
      for (int64_t i = 0; i < sink.n_out * H; ++i) y[i] = 0.0f;
    }
    const int64_t qchunk = std::max<int64_t>(1, (p.down_panels + 4 * threads - 1) / (4 * threads));
#pragma omp for schedule(dynamic, 1)
    for (int64_t q0 = 0; q0 < p.down_panels; q0 += qchunk) {
      const int64_t q1 = std::min(p.down_panels, q0 + qchunk);
      for (int64_t g = 0; g < G; ++g) {
        const int64_t r0 = rg.offsets[g], n = rg.rows(g);
        if (n == 0) continue;
        for (int64_t q = q0; q < q1; ++q) {
          const T* B = down + (g * p.down_panels + q) * Ip * kNR;
          const int64_t cols = std::min<int64_t>(kNR, H - q * kNR);
          const float* db = has_bias ? p.down_bias.data() + g * H + q * kNR : nullptr;
          for (int64_t pr = 0; pr < n; pr += kMaxMR) {
            const int64_t mr = panel_rows(n, pr);
            L::tile(Ip, hp + (r0 + pr) * Ip, B, C, static_cast<int>(mr));
            for (int64_t i = 0; i < mr; ++i) {
              const int64_t row = r0 + pr + i;
              if (sink.dst) {
                const float wt = sink.scale[row];
                float* yr = y + static_cast<int64_t>(sink.dst[row]) * H + q * kNR;
                for (int64_t j = 0; j < cols; ++j) yr[j] += wt * (C[i * kNR + j] + (db ? db[j] : 0.0f));
              } else {
                float* yr = y + row * H + q * kNR;
                for (int64_t j = 0; j < cols; ++j) yr[j] = C[i * kNR + j] + (db ? db[j] : 0.0f);
              }
            }
          }
        }
      }
    }
  }
}

}  // namespace

size_t grouped_ffn_forward_scratch_bytes(const PackedFfn& p, int64_t n_rows, int threads) {
  const int64_t G = p.n_ffn;
  const size_t tasks = align64(static_cast<size_t>(G * p.up_panels) * sizeof(UpTask));
  return tasks + (p.dtype == DType::bf16 ? scratch_bytes<Bf16>(p, n_rows, threads) : scratch_bytes<F32>(p, n_rows, threads));
}

void grouped_ffn_forward(const PackedFfn& p, const RowGroups& rows, const float* x, const RowSink& sink, float* y,
                         int threads, Scratch scratch) {
  if (p.dtype == DType::bf16) {
    forward<Bf16>(p, rows, x, sink, y, threads, scratch);
  } else {
    forward<F32>(p, rows, x, sink, y, threads, scratch);
  }
}

}  // namespace moe::cpu
