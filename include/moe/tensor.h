// Tensor (owns 64-byte-aligned memory) and TensorView (pointer + dtype + shape, owns nothing).
// Copies are explicit (Tensor::clone, convert); views are cheap and passed to kernels.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace moe {

// Values after `boolean` exist so safetensors files using them can be read and copied; no kernel
// computes on them. Append new values at the end: the numbering is used as-is elsewhere.
enum class DType : uint8_t { f32, f64, bf16, f16, i32, i64, u8, i8, boolean, i16, u16, u32, u64, f8_e4m3, f8_e5m2 };

size_t dtype_size(DType dtype);

// Zeroed memory aligned to 64 bytes (free with std::free). Blocks of 4 MiB and more are aligned to
// 2 MiB and marked for transparent huge pages: streaming gigabytes of weights through 4 KiB pages
// costs a TLB miss every 4 KiB and stops the hardware prefetchers at every page boundary.
void* allocate_zeroed(size_t bytes);
void* allocate_uninit(size_t bytes);  // the same without the zeroing (for buffers written in full)
const char* dtype_name(DType dtype);  // safetensors spelling: F32, F64, BF16, F16, I32, I64, U8, I8, BOOL, I16, ...

// C++ type -> DType, for typed access.
template <class T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::f32; }
template <> constexpr DType dtype_of<double>() { return DType::f64; }
template <> constexpr DType dtype_of<int32_t>() { return DType::i32; }
template <> constexpr DType dtype_of<int64_t>() { return DType::i64; }
template <> constexpr DType dtype_of<uint8_t>() { return DType::u8; }

using Shape = std::vector<int64_t>;
int64_t shape_numel(const Shape& shape);
std::string shape_str(const Shape& shape);  // "[2, 3, 4]"

// bf16 <-> f32. Rounding is to nearest, ties to even; NaN stays NaN (quiet).
inline uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
inline float bf16_to_f32(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
// IEEE half (f16) <-> f32: exact widening (subnormals, inf and NaN included); narrowing rounds to
// nearest, ties to even, overflowing to inf as a cast does.
inline float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
  uint32_t u;
  if (exp == 0x1f) {
    u = sign | 0x7f800000u | (man << 13);  // inf / NaN
  } else if (exp != 0) {
    u = sign | ((exp + 112u) << 23) | (man << 13);  // normal: rebias 15 -> 127
  } else if (man == 0) {
    u = sign;  // ±0
  } else {  // subnormal: man · 2^-24, normalised for f32
    int shift = 0;
    uint32_t m = man;
    while (!(m & 0x400u)) m <<= 1, ++shift;
    u = sign | ((113u - static_cast<uint32_t>(shift)) << 23) | ((m & 0x3ffu) << 13);
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline uint16_t f32_to_f16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  const uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u);  // NaN (quiet)
  if (a >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds past 65504: inf
  if (a < 0x38800000u) {  // below the smallest normal half (2^-14): a subnormal or 0
    const uint32_t m = (a & 0x7fffffu) | 0x800000u;
    const int shift = 126 - static_cast<int>(a >> 23);  // 2^(e-127) · 1.m = (m >> shift) · 2^-24
    if (shift > 24) return sign;  // under half the smallest subnormal (ties at 2^-25 round to 0, even)
    const uint32_t q = m >> shift, rest = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    return static_cast<uint16_t>(sign | (q + (rest > half || (rest == half && (q & 1u)))));
  }
  const uint32_t r = a - 0x38000000u;  // rebias 127 -> 15, still 13 extra mantissa bits
  return static_cast<uint16_t>(sign | ((r + 0xfffu + ((r >> 13) & 1u)) >> 13));
}

// Rounds a float to the nearest bf16 value and back (HF bf16 parity of router logits).
inline float round_to_bf16(float f) { return bf16_to_f32(f32_to_bf16(f)); }

class TensorView {
 public:
  TensorView() = default;
  TensorView(void* data, DType dtype, Shape shape) : data_(data), dtype_(dtype), shape_(std::move(shape)) {}

  void* data() const { return data_; }
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int64_t dim(size_t i) const { return shape_.at(i); }
  size_t rank() const { return shape_.size(); }
  int64_t numel() const { return shape_numel(shape_); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }

  // Typed pointer; asserts the dtype matches.
  template <class T> T* as() const {
    check_dtype(dtype_of<T>());
    return static_cast<T*>(data_);
  }

 private:
  void check_dtype(DType want) const;

  void* data_ = nullptr;
  DType dtype_ = DType::f32;
  Shape shape_;
};

class Tensor {
 public:
  Tensor() = default;
  Tensor(DType dtype, Shape shape);  // zero-filled
  static Tensor zeros(DType dtype, Shape shape) { return Tensor(dtype, std::move(shape)); }
  template <class T> static Tensor from(Shape shape, const std::vector<T>& values);

  Tensor(Tensor&&) noexcept = default;
  Tensor& operator=(Tensor&&) noexcept = default;
  Tensor(const Tensor&) = delete;  // copies are explicit: clone()
  Tensor& operator=(const Tensor&) = delete;

  Tensor clone() const;
  // Element-wise conversion between floating types (f32, f64, bf16); the copy is explicit.
  Tensor convert(DType to) const;

  TensorView view() const { return {data_.get(), dtype_, shape_}; }
  operator TensorView() const { return view(); }
  template <class T> T* as() const { return view().as<T>(); }
  void* data() const { return data_.get(); }
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int64_t dim(size_t i) const { return shape_.at(i); }
  size_t rank() const { return shape_.size(); }
  int64_t numel() const { return shape_numel(shape_); }
  size_t nbytes() const { return view().nbytes(); }
  bool empty() const { return !data_; }

 private:
  struct Free {
    void operator()(void* p) const;
  };
  std::unique_ptr<void, Free> data_;
  DType dtype_ = DType::f32;
  Shape shape_;
};

template <class T> Tensor Tensor::from(Shape shape, const std::vector<T>& values) {
  Tensor t(dtype_of<T>(), std::move(shape));
  if (static_cast<int64_t>(values.size()) != t.numel()) {
    throw std::invalid_argument("[tensor] " + std::to_string(values.size()) + " values for shape " + shape_str(t.shape()));
  }
  std::memcpy(t.data(), values.data(), values.size() * sizeof(T));
  return t;
}

// Reads element i of a floating tensor (f32, f64, bf16) as double; for conversions and checks.
double load_as_double(const TensorView& v, int64_t i);

}  // namespace moe
