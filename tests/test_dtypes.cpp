// Half-precision conversions against the CPU's own F16C instructions (an independent
// implementation): every one of the 65,536 halves widens exactly, and narrowing rounds like
// vcvtps2ph with round-to-nearest-even on normal, subnormal, tie, overflow and NaN inputs.
#include <gtest/gtest.h>
#include <immintrin.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "moe/rng.h"
#include "moe/tensor.h"

using namespace moe;

namespace {

__attribute__((target("f16c"))) float hw_widen(uint16_t h) { return _cvtsh_ss(h); }
__attribute__((target("f16c"))) uint16_t hw_narrow(float f) {
  return static_cast<uint16_t>(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

}  // namespace

TEST(F16, WidensEveryHalfExactly) {
  if (!__builtin_cpu_supports("f16c")) GTEST_SKIP() << "no F16C on this CPU";
  for (uint32_t h = 0; h < 65536; ++h) {
    const float want = hw_widen(static_cast<uint16_t>(h)), got = f16_to_f32(static_cast<uint16_t>(h));
    if (std::isnan(want)) {
      ASSERT_TRUE(std::isnan(got)) << h;
    } else {
      ASSERT_EQ(bits(got), bits(want)) << "half 0x" << std::hex << h;
    }
  }
}

TEST(F16, NarrowsLikeTheHardware) {
  if (!__builtin_cpu_supports("f16c")) GTEST_SKIP() << "no F16C on this CPU";
  std::vector<float> xs = {0.0f, -0.0f, 65504.0f, 65519.99f, 65520.0f, -65520.0f, 1e10f,
                           std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                           std::numeric_limits<float>::quiet_NaN(), 5.96e-8f, 2.98e-8f, 2.99e-8f, 1e-30f,
                           std::numeric_limits<float>::denorm_min(), 6.1035e-5f, 6.1e-5f};
  // Every half, the midpoints between neighbouring halves (the ties) and a float either side.
  for (uint32_t h = 0; h < 0x7c00; ++h) {
    const float a = f16_to_f32(static_cast<uint16_t>(h)), b = f16_to_f32(static_cast<uint16_t>(h + 1));
    const float mid = static_cast<float>((static_cast<double>(a) + b) / 2);
    for (float x : {a, mid, std::nextafter(mid, 0.0f), std::nextafter(mid, 1e9f)}) xs.push_back(x), xs.push_back(-x);
  }
  Rng rng(3);
  for (int i = 0; i < 200000; ++i) xs.push_back(from_bits(static_cast<uint32_t>(rng.next())));
  for (float x : xs) {
    const uint16_t want = hw_narrow(x), got = f32_to_f16(x);
    if (std::isnan(x)) {
      ASSERT_EQ(got & 0x7c00, 0x7c00);
      ASSERT_NE(got & 0x3ff, 0);
    } else {
      ASSERT_EQ(got, want) << x << " (bits 0x" << std::hex << bits(x) << ")";
    }
  }
}

TEST(F16, TensorsLoadAndConvert) {
  Tensor t(DType::f16, {3});
  auto* h = static_cast<uint16_t*>(t.data());
  h[0] = 0x3c00;  // 1
  h[1] = 0xc000;  // -2
  h[2] = 0x0001;  // 2^-24
  EXPECT_EQ(load_as_double(t.view(), 0), 1.0);
  EXPECT_EQ(load_as_double(t.view(), 1), -2.0);
  EXPECT_EQ(load_as_double(t.view(), 2), std::ldexp(1.0, -24));
  const Tensor back = t.convert(DType::f32).convert(DType::f16);
  EXPECT_EQ(std::memcmp(back.data(), t.data(), 6), 0);
}
