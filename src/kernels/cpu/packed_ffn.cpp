// Packing of FFN stacks and plain matrices into tile panels (kernels/cpu/packed_ffn.h).
// Every panel is one transposing copy of up to 32 source rows (pack_columns); panels are
// independent, so (FFN, panel) tasks run in parallel.
#include "kernels/cpu/packed_ffn.h"

#include <omp.h>

#include <algorithm>
#include <cstring>

#include "kernels/cpu/microkernel.h"
#include "moe/error.h"

namespace moe::cpu {

namespace {

std::shared_ptr<uint8_t> buffer(int64_t bytes) {
  auto* p = static_cast<uint8_t*>(allocate_uninit(static_cast<size_t>(std::max<int64_t>(bytes, 1))));
  return std::shared_ptr<uint8_t>(p, [](uint8_t* q) { std::free(q); });
}

int64_t elem_bytes(DType d) { return d == DType::bf16 ? 2 : 4; }

}  // namespace

void pack_columns_scalar(const float* src, int64_t ld, int64_t n_cols, int64_t width, int64_t K, int64_t Kpad,
                         DType dtype, int64_t col0, void* dst) {
  if (dtype == DType::bf16) {
    auto* d = static_cast<uint16_t*>(dst);
    for (int64_t k = 0; k < Kpad; ++k) {
      for (int64_t j = 0; j < width; ++j) {
        const float v = j < n_cols && k < K ? src[j * ld + k] : 0.0f;
        d[(k / 2) * 2 * kNR + 2 * (col0 + j) + (k & 1)] = f32_to_bf16(v);
      }
    }
    return;
  }
  auto* d = static_cast<float*>(dst);
  for (int64_t k = 0; k < Kpad; ++k) {
    for (int64_t j = 0; j < width; ++j) d[k * kNR + col0 + j] = j < n_cols && k < K ? src[j * ld + k] : 0.0f;
  }
}

int64_t PackedFfn::weight_bytes() const {
  return (is_gated(spec.act) ? 3 : 2) * d_model * hidden * elem_bytes(dtype);
}

int64_t PackedFfn::packed_bytes() const {
  return n_ffn * (up_panels * kpad(d_model) + down_panels * kpad(hidden)) * kNR * elem_bytes(dtype);
}

PackedFfn make_packed_ffn(const FfnSpec& spec, int64_t G, int64_t H, DType dtype) {
  if (dtype != DType::f32 && dtype != DType::bf16) {
    throw InvalidInput(std::string("[packed ffn] weight type ") + dtype_name(dtype) + " is not one of: F32, BF16");
  }
  PackedFfn p;
  p.spec = spec;
  p.dtype = dtype;
  p.n_ffn = G;
  p.d_model = H;
  p.hidden = spec.hidden;
  p.hidden_per_panel = is_gated(spec.act) ? kNR / 2 : kNR;
  p.up_panels = (spec.hidden + p.hidden_per_panel - 1) / p.hidden_per_panel;
  p.down_panels = (H + kNR - 1) / kNR;
  const int64_t es = elem_bytes(dtype);
  p.up = buffer(G * p.up_panels * p.kpad(H) * kNR * es);
  p.down = buffer(G * p.down_panels * p.kpad(spec.hidden) * kNR * es);
  if (spec.bias) {
    p.gate_bias.assign(static_cast<size_t>(G * spec.hidden), 0.0f);
    p.up_bias.assign(static_cast<size_t>(G * spec.hidden), 0.0f);
    p.down_bias.assign(static_cast<size_t>(G * H), 0.0f);
  }
  return p;
}

void pack_ffn(PackedFfn& p, int64_t g0, const FfnWeights<float>& w, int threads) {
  const int64_t H = p.d_model, I = p.hidden, Hp = p.kpad(H), Ip = p.kpad(I), n = w.n_experts;
  const int64_t es = elem_bytes(p.dtype), hpp = p.hidden_per_panel;
  const bool gated = is_gated(p.spec.act);
  const int64_t per_ffn = p.up_panels + p.down_panels;
#pragma omp parallel for schedule(dynamic, 4) num_threads(std::max(threads, 1)) if (threads > 1)
  for (int64_t task = 0; task < n * per_ffn; ++task) {
    const int64_t e = task / per_ffn, q = task % per_ffn, g = g0 + e;
    if (q < p.up_panels) {
      uint8_t* B = p.up.get() + ((g * p.up_panels + q) * Hp * kNR) * es;
      const int64_t i0 = q * hpp, cols = std::min(hpp, I - i0);
      if (gated) {
        pack_columns(w.gate + (e * I + i0) * H, H, cols, 16, H, Hp, p.dtype, 0, B);
        pack_columns(w.up + (e * I + i0) * H, H, cols, 16, H, Hp, p.dtype, 16, B);
      } else {
        pack_columns(w.up + (e * I + i0) * H, H, cols, kNR, H, Hp, p.dtype, 0, B);
      }
    } else {
      const int64_t qd = q - p.up_panels, h0 = qd * kNR, cols = std::min<int64_t>(kNR, H - h0);
      uint8_t* B = p.down.get() + ((g * p.down_panels + qd) * Ip * kNR) * es;
      pack_columns(w.down + (e * H + h0) * I, I, cols, kNR, I, Ip, p.dtype, 0, B);
    }
  }
  if (p.spec.bias) {
    auto copy = [&](const float* src, std::vector<float>& dst, int64_t m) {
      if (src) std::copy(src, src + n * m, dst.begin() + g0 * m);
    };
    copy(w.gate_bias, p.gate_bias, I);
    copy(w.up_bias, p.up_bias, I);
    copy(w.down_bias, p.down_bias, H);
  }
}

PackedMatrix pack_matrix(const float* W, int64_t N, int64_t K, int threads) {
  PackedMatrix p;
  p.n = N;
  p.k = K;
  p.panels = (N + kNR - 1) / kNR;
  auto bytes = buffer(p.panels * K * kNR * 4);
  p.w = std::shared_ptr<float>(bytes, reinterpret_cast<float*>(bytes.get()));
#pragma omp parallel for schedule(dynamic, 4) num_threads(std::max(threads, 1)) if (threads > 1)
  for (int64_t q = 0; q < p.panels; ++q) {
    pack_columns(W + q * kNR * K, K, std::min<int64_t>(kNR, N - q * kNR), kNR, K, K, DType::f32, 0, p.w.get() + q * K * kNR);
  }
  return p;
}

}  // namespace moe::cpu
