#include "moe/routing.h"

#include <cassert>
#include <cmath>

namespace moe {

void build_expert_order(Routing& r) {
  const int64_t E = r.n_experts;
  const int64_t S = r.n_slots();
  assert(static_cast<int64_t>(r.slot_expert.size()) == S && static_cast<int64_t>(r.slot_kept.size()) == S);
  r.expert_offsets.assign(static_cast<size_t>(E + 1), 0);
  for (int64_t s = 0; s < S; ++s) {
    if (r.slot_kept[s]) ++r.expert_offsets[r.slot_expert[s] + 1];
  }
  for (int64_t e = 0; e < E; ++e) r.expert_offsets[e + 1] += r.expert_offsets[e];
  r.rows.assign(static_cast<size_t>(r.expert_offsets[E]), 0);
  std::vector<int64_t> next(r.expert_offsets.begin(), r.expert_offsets.end() - 1);
  // Slots are visited in token order for token choice (s = t·k + j), so rows come out sorted by
  // token within each expert; expert-choice slots are already grouped by expert.
  if (r.top_k > 0) {
    for (int64_t s = 0; s < S; ++s) {
      if (r.slot_kept[s]) r.rows[next[r.slot_expert[s]]++] = static_cast<int32_t>(s);
    }
  } else {
    // Expert choice: order each expert's slots by token.
    std::vector<int32_t> by_token(static_cast<size_t>(S));
    std::vector<int64_t> count(static_cast<size_t>(r.n_tokens + 1), 0);
    for (int64_t s = 0; s < S; ++s) ++count[r.slot_token[s] + 1];
    for (int64_t t = 0; t < r.n_tokens; ++t) count[t + 1] += count[t];
    for (int64_t s = 0; s < S; ++s) by_token[count[r.slot_token[s]]++] = static_cast<int32_t>(s);
    for (int32_t s : by_token) {
      if (r.slot_kept[s]) r.rows[next[r.slot_expert[s]]++] = s;
    }
  }
}

RoutingStats routing_stats(const Routing& r, const double* probs) {
  RoutingStats st;
  const int64_t E = r.n_experts;
  st.tokens_per_expert.assign(static_cast<size_t>(E), 0);
  for (int64_t e = 0; e < E; ++e) st.tokens_per_expert[e] = r.expert_rows(e);
  st.dropped_slots = r.n_dropped();
  std::vector<uint8_t> served(static_cast<size_t>(r.n_tokens), 0);
  for (int32_t s : r.rows) served[r.slot_token[s]] = 1;
  for (uint8_t v : served) st.dropped_tokens += v == 0;
  const double kept = static_cast<double>(r.n_kept());
  st.mean_load = E > 0 ? kept / static_cast<double>(E) : 0;
  for (int64_t n : st.tokens_per_expert) st.max_load = std::max(st.max_load, static_cast<double>(n));
  st.max_over_mean = st.mean_load > 0 ? st.max_load / st.mean_load : 0;
  for (int64_t n : st.tokens_per_expert) {
    if (n > 0) {
      const double p = static_cast<double>(n) / kept;
      st.load_entropy -= p * std::log(p);
    }
  }
  if (probs && r.n_tokens > 0) {
    double sum = 0;
    for (int64_t t = 0; t < r.n_tokens; ++t) {
      for (int64_t e = 0; e < E; ++e) {
        const double p = probs[t * E + e];
        if (p > 0) sum -= p * std::log(p);
      }
    }
    st.mean_router_entropy = sum / static_cast<double>(r.n_tokens);
  }
  return st;
}

}  // namespace moe
