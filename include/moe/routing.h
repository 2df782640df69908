// Routing: the one object every router produces and every consumer reads (experts, losses,
// statistics, later the grouped kernels, offload cache and MPI dispatch). It holds only the
// discrete decisions; the differentiable combine weights live beside it in the router state.
//
// A slot is one (token, expert) pairing. Token-choice routers make k slots per token, slot
// s = t·k + j for the token's j-th choice (best first). Expert-choice routers make C slots per
// expert, s = e·C + j. A slot may be dropped by capacity; kept slots are listed in `rows`,
// ordered by expert and then by token, so each expert sees one contiguous row range.
#pragma once

#include <cstdint>
#include <vector>

namespace moe {

struct Routing {
  int64_t n_tokens = 0;
  int64_t n_experts = 0;
  int64_t top_k = 0;                    // slots per token (token choice); 0 for expert choice
  int64_t capacity = 0;                 // slots per expert per group; 0 = unlimited
  std::vector<int32_t> slot_token;      // [S]
  std::vector<int32_t> slot_expert;     // [S]
  std::vector<uint8_t> slot_kept;       // [S] 0 = dropped (over capacity)
  std::vector<int64_t> expert_offsets;  // [E+1] row ranges per expert
  std::vector<int32_t> rows;            // [kept S] slot ids, by expert then token

  int64_t n_slots() const { return static_cast<int64_t>(slot_token.size()); }
  int64_t n_kept() const { return static_cast<int64_t>(rows.size()); }
  int64_t n_dropped() const { return n_slots() - n_kept(); }
  int64_t expert_rows(int64_t e) const { return expert_offsets[e + 1] - expert_offsets[e]; }
};

// Fills expert_offsets and rows from the slot arrays: a counting sort, O(S + E).
void build_expert_order(Routing& routing);

struct RoutingStats {
  std::vector<int64_t> tokens_per_expert;  // kept slots per expert
  int64_t dropped_slots = 0;
  int64_t dropped_tokens = 0;              // tokens with no kept slot (token choice) / chosen by no expert
  double mean_load = 0;                    // kept slots / E
  double max_load = 0;
  double max_over_mean = 0;                // 1 = perfectly balanced
  double load_entropy = 0;                 // entropy (nats) of the kept-slot distribution over experts
  double mean_router_entropy = 0;          // mean over tokens of the entropy of the router's distribution
};

// probs: [T, E] router probabilities (rows summing to 1), or nullptr to skip mean_router_entropy.
RoutingStats routing_stats(const Routing& routing, const double* probs = nullptr);

}  // namespace moe
