#include "moe/tensor.h"

#include <sys/mman.h>

#include <algorithm>
#include <cassert>
#include <cstdlib>
#include <new>
#include <stdexcept>

#include "moe/error.h"
#include "util/resources.h"

namespace moe {

size_t dtype_size(DType d) {
  switch (d) {
    case DType::f32: case DType::i32: case DType::u32: return 4;
    case DType::f64: case DType::i64: case DType::u64: return 8;
    case DType::bf16: case DType::f16: case DType::i16: case DType::u16: return 2;
    case DType::u8: case DType::i8: case DType::boolean: case DType::f8_e4m3: case DType::f8_e5m2: return 1;
  }
  return 0;
}

const char* dtype_name(DType d) {
  switch (d) {
    case DType::f32: return "F32";
    case DType::f64: return "F64";
    case DType::bf16: return "BF16";
    case DType::f16: return "F16";
    case DType::i32: return "I32";
    case DType::i64: return "I64";
    case DType::u8: return "U8";
    case DType::i8: return "I8";
    case DType::boolean: return "BOOL";
    case DType::i16: return "I16";
    case DType::u16: return "U16";
    case DType::u32: return "U32";
    case DType::u64: return "U64";
    case DType::f8_e4m3: return "F8_E4M3";
    case DType::f8_e5m2: return "F8_E5M2";
  }
  return "?";
}

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) throw InvalidInput("[tensor] negative dimension in shape " + shape_str(shape));
    if (__builtin_mul_overflow(n, d, &n)) {
      throw InvalidInput("[tensor] shape " + shape_str(shape) + " has more elements than 64 bits count");
    }
  }
  return n;
}

std::string shape_str(const Shape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

void TensorView::check_dtype(DType want) const {
  if (want != dtype_) {
    throw std::logic_error(std::string("[tensor] typed access as ") + dtype_name(want) + " to a " +
                           dtype_name(dtype_) + " tensor");
  }
}

namespace {

constexpr size_t kHugePage = size_t(2) << 20;

// What allocate_* really reserves: whole huge pages for large blocks, whole 64-byte lines else.
size_t padded_size(size_t bytes) {
  if (bytes >= 2 * kHugePage) return (bytes + kHugePage - 1) / kHugePage * kHugePage;
  return std::max<size_t>((bytes + 63) / 64 * 64, 64);
}

}  // namespace

void* allocate_uninit(size_t bytes) {
  // A backstop under the estimates made at the API edges: no single block beyond what the machine
  // can give (a bad_alloc after minutes of swapping, or the OOM killer, otherwise).
  if (bytes >= (size_t(256) << 20)) util::check_memory(static_cast<int64_t>(bytes), "a block of", "[memory]");
  const size_t padded = padded_size(bytes);
  const bool huge = bytes >= 2 * kHugePage;
  void* p = std::aligned_alloc(huge ? kHugePage : 64, padded);
  if (!p) throw std::bad_alloc();
  if (huge) madvise(p, padded, MADV_HUGEPAGE);  // advice only: without THP the pages stay 4 KiB
  return p;
}

void* allocate_zeroed(size_t bytes) {
  void* p = allocate_uninit(bytes);
  std::memset(p, 0, padded_size(bytes));
  return p;
}

void Tensor::Free::operator()(void* p) const { std::free(p); }

Tensor::Tensor(DType dtype, Shape shape) : dtype_(dtype), shape_(std::move(shape)) {
  for (int64_t d : shape_) {
    if (d < 0) throw std::invalid_argument("[tensor] negative dimension in shape " + shape_str(shape_));
  }
  const int64_t n = shape_numel(shape_), size = static_cast<int64_t>(dtype_size(dtype_));
  if (n > INT64_MAX / size) throw InvalidInput("[tensor] shape " + shape_str(shape_) + " needs more bytes than 64 bits count");
  data_.reset(allocate_zeroed(nbytes()));
}

Tensor Tensor::clone() const {
  Tensor t(dtype_, shape_);
  std::memcpy(t.data(), data(), nbytes());
  return t;
}

double load_as_double(const TensorView& v, int64_t i) {
  switch (v.dtype()) {
    case DType::f32: return static_cast<const float*>(v.data())[i];
    case DType::f64: return static_cast<const double*>(v.data())[i];
    case DType::bf16: return bf16_to_f32(static_cast<const uint16_t*>(v.data())[i]);
    case DType::f16: return f16_to_f32(static_cast<const uint16_t*>(v.data())[i]);
    default: throw std::invalid_argument(std::string("[tensor] not a floating tensor: ") + dtype_name(v.dtype()));
  }
}

Tensor Tensor::convert(DType to) const {
  Tensor t(to, shape_);
  const int64_t n = numel();
  for (int64_t i = 0; i < n; ++i) {
    double x = load_as_double(view(), i);
    switch (to) {
      case DType::f32: t.as<float>()[i] = static_cast<float>(x); break;
      case DType::f64: t.as<double>()[i] = x; break;
      case DType::bf16: static_cast<uint16_t*>(t.data())[i] = f32_to_bf16(static_cast<float>(x)); break;
      case DType::f16: static_cast<uint16_t*>(t.data())[i] = f32_to_f16(static_cast<float>(x)); break;
      default: throw std::invalid_argument(std::string("[tensor] cannot convert to ") + dtype_name(to));
    }
  }
  return t;
}

}  // namespace moe
