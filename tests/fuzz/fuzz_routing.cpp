// libFuzzer target: recorded routings (`moe bench layer --routing ids.safetensors`). Bytes -> a
// file -> Routing, or InvalidInput. A routing that reads has k distinct experts per token, all
// in range, and an expert order that lists every slot once.
#include <set>

#include "fuzz_common.h"
#include "moe/bench.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = fuzz::write_scratch(data, size);
  constexpr int64_t T = 7, E = 6, k = 2;
  moe::Routing r;
  try {
    r = moe::bench::recorded_routing(path, T, E, k);
  } catch (const moe::InvalidInput&) {
    return 0;
  }
  fuzz::check(r.n_slots() == T * k, "T·k slots");
  for (int64_t t = 0; t < T; ++t) {
    std::set<int32_t> seen;
    for (int64_t j = 0; j < k; ++j) {
      const int32_t e = r.slot_expert[t * k + j];
      fuzz::check(e >= 0 && e < E, "expert ids in range");
      fuzz::check(seen.insert(e).second, "distinct experts per token");
    }
  }
  const std::set<int32_t> rows(r.rows.begin(), r.rows.end());
  fuzz::check(r.n_kept() == T * k && static_cast<int64_t>(rows.size()) == T * k, "the expert order lists every slot once");
  for (int64_t e = 0; e < E; ++e)
    for (int64_t i = r.expert_offsets[e]; i < r.expert_offsets[e + 1]; ++i)
      fuzz::check(r.slot_expert[r.rows[i]] == e, "rows grouped by expert");
  return 0;
}
