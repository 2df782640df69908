#include "kernels/cpu/microkernel.h"

namespace moe::cpu {

Isa detected_isa() {
  static const Isa isa = [] {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return Isa::avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::avx2;
    return Isa::scalar;
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
    default: return tile_f32_scalar;  // AVX2 kernel: not written yet; the portable one is correct everywhere
  }
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

}  // namespace moe::cpu
