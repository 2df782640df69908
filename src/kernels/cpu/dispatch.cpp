#include "kernels/cpu/microkernel.h"
#include "kernels/cpu/packed_ffn.h"

#include <cstdlib>
#include <string>

namespace moe::cpu {

Isa detected_isa() {
  static const Isa isa = [] {
    __builtin_cpu_init();
    Isa best = Isa::scalar;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) best = Isa::avx2;
    if (__builtin_cpu_supports("avx512f")) best = Isa::avx512;
    const char* want = std::getenv("MOE_ISA");
    if (!want) return best;
    const std::string w(want);
    const Isa asked = w == "scalar" ? Isa::scalar : w == "avx2" ? Isa::avx2 : Isa::avx512;
    return static_cast<int>(asked) < static_cast<int>(best) ? asked : best;
  }();
  return isa;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::avx512: return "avx512";
    case Isa::avx2: return "avx2";
    case Isa::scalar: return "scalar";
  }
  return "?";
}

TileF32 tile_f32(Isa isa) {
  switch (isa) {
    case Isa::avx512: return tile_f32_avx512;
    case Isa::avx2: return tile_f32_avx2;
    default: return tile_f32_scalar;
  }
}

SwigluTile swiglu_tile(Isa isa) { return isa == Isa::avx512 ? swiglu_tile_avx512 : nullptr; }

SwigluRows swiglu_rows(Isa isa) { return isa == Isa::avx512 ? swiglu_rows_avx512 : nullptr; }
SwigluBackwardRows swiglu_backward_rows(Isa isa) {
  return isa == Isa::avx512 ? swiglu_backward_rows_avx512 : nullptr;
}

bool has_avx512_bf16() {
  static const bool yes = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bf16");
  }();
  return yes;
}

TileBf16 tile_bf16(Isa isa) {
  if (isa == Isa::avx512 && has_avx512_bf16()) return tile_bf16_avx512;
  return tile_bf16_scalar;
}

void pack_columns(const float* src, int64_t ld, int64_t n_cols, int64_t width, int64_t K, int64_t Kpad, DType dtype,
                  int64_t col0, void* dst) {
  if (detected_isa() == Isa::avx512) return pack_columns_avx512(src, ld, n_cols, width, K, Kpad, dtype, col0, dst);
  pack_columns_scalar(src, ld, n_cols, width, K, Kpad, dtype, col0, dst);
}

}  // namespace moe::cpu
