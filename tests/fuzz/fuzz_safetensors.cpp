// libFuzzer target for the safetensors parser: arbitrary bytes must either parse or throw
// moe::InvalidInput (any other exception aborts and is reported). A file that parses must
// survive a round trip through the writer unchanged, which also reads every tensor byte under ASan.
// Built and run as docs/fuzzing.md says (tests/fuzz/fuzz.cmake).
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>

#include "moe/error.h"
#include "moe/safetensors.h"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  moe::SafetensorsHeader h;
  try {
    h = moe::parse_safetensors(std::span<const uint8_t>(data, size), "<fuzz>");
  } catch (const moe::InvalidInput&) {
    return 0;
  }
  // Views straight into the input: serialize only memcpy's them, so alignment does not matter.
  moe::NamedTensors tensors;
  for (const auto& [name, e] : h.tensors) {
    void* p = const_cast<uint8_t*>(data + h.data_start + e.begin);
    tensors.emplace_back(name, moe::TensorView(p, e.dtype, e.shape));
  }
  const std::string again = moe::serialize_safetensors(tensors, h.metadata);
  const auto* bytes = reinterpret_cast<const uint8_t*>(again.data());
  const moe::SafetensorsHeader h2 = moe::parse_safetensors({bytes, again.size()}, "<fuzz round trip>");
  check(h2.metadata == h.metadata);
  check(h2.tensors.size() == h.tensors.size());
  for (const auto& [name, e] : h.tensors) {
    const auto it = h2.tensors.find(name);
    check(it != h2.tensors.end());
    const moe::SafetensorsEntry& e2 = it->second;
    check(e2.dtype == e.dtype && e2.shape == e.shape && e2.end - e2.begin == e.end - e.begin);
    check(std::memcmp(bytes + h2.data_start + e2.begin, data + h.data_start + e.begin, e.end - e.begin) == 0);
  }
  return 0;
}
