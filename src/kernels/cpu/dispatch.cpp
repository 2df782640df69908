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

}  // namespace moe::cpu
