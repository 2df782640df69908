// GEMM microkernels on packed panels, chosen at run time by CPU features.
//   C[MR × 32] = A[K][MR] · B[K][32]
// A: a micro-panel of MR rows, k-major (A[k·MR + i]); B: a 32-column micro-panel, k-major
// (B[k·32 + j]); C: a dense MR × 32 tile (row stride 32) that the caller's epilogue consumes
// while it is hot in L1. The same packed formats serve every ISA, so weights are packed once.
#pragma once

#include <cstdint>

namespace moe::cpu {

constexpr int kNR = 32;      // columns per B micro-panel (two 512-bit vectors of f32)
constexpr int kMaxMR = 12;   // rows per A micro-panel (24 accumulators + B + broadcast fit 32 zmm)

// tile_f32(K, A, B, C, mr): mr in [1, kMaxMR]; A is packed with stride mr (A[k·mr + i]).
using TileF32 = void (*)(int64_t K, const float* A, const float* B, float* C, int mr);

enum class Isa { scalar, avx2, avx512 };
// The best ISA this CPU supports, or the one the MOE_ISA environment variable names (scalar,
// avx2, avx512; never more than the CPU has), read once.
Isa detected_isa();
const char* isa_name(Isa isa);

// The best f32 tile kernel for this CPU, or a forced one (tests compare every ISA the machine has).
TileF32 tile_f32(Isa isa);
inline TileF32 tile_f32() { return tile_f32(detected_isa()); }

// bf16 weights: C[MR × 32] += Σ over k-pairs, with A and B holding bf16 pairs (k, k+1):
// A[kp·2·mr + 2i + (k&1)], B[kp·64 + 2j + (k&1)] (the vdpbf16ps operand layout). Kp = K/2 pairs.
using TileBf16 = void (*)(int64_t Kp, const uint16_t* A, const uint16_t* B, float* C, int mr);
bool has_avx512_bf16();
TileBf16 tile_bf16(Isa isa);
inline TileBf16 tile_bf16() { return tile_bf16(detected_isa()); }
void tile_bf16_scalar(int64_t Kp, const uint16_t* A, const uint16_t* B, float* C, int mr);
void tile_bf16_avx512(int64_t Kp, const uint16_t* A, const uint16_t* B, float* C, int mr);

// SwiGLU epilogue of a gate/up tile: H[i][j] = silu(C[i][j] + gb[j]) · (C[i][16 + j] + ub[j]) for
// j < 16 (biases may be null). Null when the CPU has no vector version (callers go scalar).
using SwigluTile = void (*)(const float* C, const float* gate_bias, const float* up_bias, int mr, float* H);
SwigluTile swiglu_tile(Isa isa);
void swiglu_tile_avx512(const float* C, const float* gate_bias, const float* up_bias, int mr, float* H);

// Row-wise SwiGLU of the training path (h = silu(g)·u) and its backward (dg, du from dh), any n.
// Null when the CPU has no vector version (callers go scalar).
using SwigluRows = void (*)(const float* g, const float* u, float* h, int64_t n);
using SwigluBackwardRows = void (*)(const float* g, const float* u, const float* dh, float* dg, float* du, int64_t n);
SwigluRows swiglu_rows(Isa isa);
SwigluBackwardRows swiglu_backward_rows(Isa isa);
void swiglu_rows_avx512(const float* g, const float* u, float* h, int64_t n);
void swiglu_backward_rows_avx512(const float* g, const float* u, const float* dh, float* dg, float* du, int64_t n);

// Per-ISA entry points (defined in their own translation units, compiled with their flags).
void tile_f32_scalar(int64_t K, const float* A, const float* B, float* C, int mr);
void tile_f32_avx512(int64_t K, const float* A, const float* B, float* C, int mr);
void tile_f32_avx2(int64_t K, const float* A, const float* B, float* C, int mr);

}  // namespace moe::cpu
