// FFN weights repacked once for the tile kernels (kernels/cpu/microkernel.h): gate/up as
// 32-column panels over H (gated activations: 16 gate + 16 up columns of the same hidden units,
// so the activation applies inside the tile), down as 32-column panels over I; zero padding at
// the edges. Elements are f32, or bf16 stored as k-pairs ([Kpad/2][32][2], the vdpbf16ps operand
// layout). A plain matrix (a linear layer's weight) packs like a down projection.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "moe/ffn.h"
#include "moe/tensor.h"

namespace moe::cpu {

struct PackedFfn {
  FfnSpec spec;
  DType dtype = DType::f32;       // f32 or bf16
  int64_t n_ffn = 0, d_model = 0, hidden = 0;  // G, H, I
  int64_t up_panels = 0;          // per FFN; each [Hp][32]
  int64_t down_panels = 0;        // per FFN; each [Ip][32]
  int64_t hidden_per_panel = 0;   // 16 (gated) or 32
  std::shared_ptr<uint8_t> up;    // [G][up_panels][Hp][32] elements of dtype
  std::shared_ptr<uint8_t> down;  // [G][down_panels][Ip][32]
  std::vector<float> up_bias, gate_bias, down_bias;  // [G·I], [G·I], [G·H] (spec.bias only)

  int64_t kpad(int64_t K) const { return dtype == DType::bf16 ? (K + 1) / 2 * 2 : K; }
  int64_t weight_bytes() const;   // one FFN's weights as stored (unpadded)
  int64_t packed_bytes() const;   // the whole stack as stored (padded panels)
};

// The layout of G FFNs (storage allocated, contents undefined until pack_ffn). Throws
// InvalidInput for a dtype other than F32/BF16.
PackedFfn make_packed_ffn(const FfnSpec& spec, int64_t n_ffn, int64_t d_model, DType dtype);
// Packs the FFNs of src into slots [g0, g0 + src.n_experts) of dst (biases too), on `threads`
// threads. Writes every element of those slots, padding included.
void pack_ffn(PackedFfn& dst, int64_t g0, const FfnWeights<float>& src, int threads);

// A plain weight W [N, K] (out = x·Wᵀ) as 32-column panels over K: [panels][K][32] f32.
struct PackedMatrix {
  int64_t n = 0, k = 0, panels = 0;
  std::shared_ptr<float> w;
};
PackedMatrix pack_matrix(const float* W, int64_t n, int64_t k, int threads);

// The transposing copy both use (and its scalar twin, for the kernel tests): panel columns
// [col0, col0 + n_cols) from n_cols source rows (stride ld, K elements each) into a 32-column
// panel of Kpad rows; columns [col0 + n_cols, col0 + width) are zero-filled, as are rows
// [K, Kpad). dtype f32: dst[k·32 + j]; bf16: dst[(k/2)·64 + 2j + (k&1)] (round to nearest even).
// dst is 64-byte aligned (a panel; the AVX-512 version writes whole lines with streaming stores).
void pack_columns(const float* src, int64_t ld, int64_t n_cols, int64_t width, int64_t K, int64_t Kpad, DType dtype,
                  int64_t col0, void* dst);
void pack_columns_scalar(const float* src, int64_t ld, int64_t n_cols, int64_t width, int64_t K, int64_t Kpad,
                         DType dtype, int64_t col0, void* dst);
void pack_columns_avx512(const float* src, int64_t ld, int64_t n_cols, int64_t width, int64_t K, int64_t Kpad,
                         DType dtype, int64_t col0, void* dst);  // width a multiple of 16

}  // namespace moe::cpu
