// Test helper for the Python interop oracle (tests/oracle/safetensors_interop.py).
//   safetensors_tool dump FILE     metadata lines, then one line per tensor (sorted by name):
//                                  "<name>\t<DTYPE>\t[d0,d1,...]\t<sum of values as double, %.17g>"
//   safetensors_tool copy IN OUT   re-writes IN through our writer, keeping the tensor order.
// Exit status 2 with the error on stderr for invalid input.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>

#include "moe/error.h"
#include "moe/safetensors.h"

namespace {

double f16_to_double(uint16_t h) {
  const int sign = h >> 15, exp = (h >> 10) & 0x1F, mant = h & 0x3FF;
  double v = exp == 0    ? std::ldexp(mant, -24)
             : exp == 31 ? (mant ? NAN : INFINITY)
                         : std::ldexp(1024 + mant, exp - 25);
  return sign ? -v : v;
}

// OCP FP8 E4M3 ("fn": no infinities, S.1111.111 is NaN).
double f8_e4m3_to_double(uint8_t b) {
  const int sign = b >> 7, exp = (b >> 3) & 0xF, mant = b & 0x7;
  double v = exp == 15 && mant == 7 ? NAN : exp == 0 ? std::ldexp(mant, -9) : std::ldexp(8 + mant, exp - 10);
  return sign ? -v : v;
}

template <class T> double sum_as(const void* p, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(static_cast<const T*>(p)[i]);
  return s;
}

double sum_of(const moe::Tensor& t) {
  const void* p = t.data();
  const int64_t n = t.numel();
  const auto* u16 = static_cast<const uint16_t*>(p);
  const auto* u8 = static_cast<const uint8_t*>(p);
  double s = 0;
  switch (t.dtype()) {
    case moe::DType::f32: return sum_as<float>(p, n);
    case moe::DType::f64: return sum_as<double>(p, n);
    case moe::DType::i8: return sum_as<int8_t>(p, n);
    case moe::DType::i16: return sum_as<int16_t>(p, n);
    case moe::DType::i32: return sum_as<int32_t>(p, n);
    case moe::DType::i64: return sum_as<int64_t>(p, n);
    case moe::DType::u8: case moe::DType::boolean: return sum_as<uint8_t>(p, n);
    case moe::DType::u16: return sum_as<uint16_t>(p, n);
    case moe::DType::u32: return sum_as<uint32_t>(p, n);
    case moe::DType::u64: return sum_as<uint64_t>(p, n);
    case moe::DType::bf16: for (int64_t i = 0; i < n; ++i) s += moe::bf16_to_f32(u16[i]); return s;
    case moe::DType::f16: for (int64_t i = 0; i < n; ++i) s += f16_to_double(u16[i]); return s;
    case moe::DType::f8_e5m2: for (int64_t i = 0; i < n; ++i) s += f16_to_double(uint16_t(u8[i] << 8)); return s;
    case moe::DType::f8_e4m3: for (int64_t i = 0; i < n; ++i) s += f8_e4m3_to_double(u8[i]); return s;
  }
  return NAN;
}

std::string shape_text(const moe::Shape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ',';  // appends: GCC 12 warns (-Wrestrict) on const char* + std::string
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

int dump(const std::string& path) {
  const auto f = moe::SafetensorsFile::open(path);
  for (const auto& [key, value] : f.metadata()) std::printf("__metadata__\t%s\t%s\n", key.c_str(), value.c_str());
  for (const std::string& name : f.names()) {
    const moe::Tensor t = f.load(name);  // aligned copy: the file may place tensors anywhere
    std::printf("%s\t%s\t%s\t%.17g\n", name.c_str(), moe::dtype_name(t.dtype()), shape_text(t.shape()).c_str(),
                sum_of(t));
  }
  return 0;
}

int copy(const std::string& in, const std::string& out) {
  const auto f = moe::SafetensorsFile::open(in);
  std::vector<moe::Tensor> owned;
  moe::NamedTensors tensors;
  const std::vector<std::string> order = f.names_in_file_order();
  owned.reserve(order.size());
  for (const std::string& name : order) {
    owned.push_back(f.load(name));
    tensors.emplace_back(name, owned.back().view());
  }
  moe::write_safetensors(out, tensors, f.metadata());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc == 3 && std::strcmp(argv[1], "dump") == 0) return dump(argv[2]);
    if (argc == 4 && std::strcmp(argv[1], "copy") == 0) return copy(argv[2], argv[3]);
    std::fprintf(stderr, "usage: %s dump FILE | copy IN OUT\n", argv[0]);
    return 64;
  } catch (const moe::InvalidInput& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  }
}
