// Routing analysis: what the experts of a trained MoE-GPT specialise in. Runs the model over a
// labelled split (include/moe/corpus.h) and relates each byte's chosen experts to its domain and
// to the byte itself: tokens per expert by domain, the mutual information I(expert; domain),
// the most frequent bytes per expert (ST-MoE's table) and text coloured by first-choice expert
// (the Mixtral paper's figure). Formulas: docs/analysis.md.
//
// Legend: N analysed bytes, E experts, D domains, L layers.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "moe/gpt.h"

namespace moe {

// The choices of one MoE layer over N bytes. `first` is the expert with the highest combine
// weight for each byte (-1: no expert took it, e.g. expert choice); the slot arrays list every
// (byte, expert) pairing the router made (token choice: k per byte).
struct LayerChoices {
  int64_t layer = 0;
  std::vector<int32_t> first;        // [N] first-choice expert, -1 = none
  std::vector<int32_t> slot_token;   // [S] byte index of each pairing
  std::vector<int32_t> slot_expert;  // [S]
};

// One row of the "what experts learn" table.
struct TokenStat {
  int byte = 0;
  std::string label;   // printable form (byte_label)
  int64_t count = 0;   // first-choice routings of this byte to the expert
  double share = 0;    // count / the expert's first-choice tokens
  double lift = 0;     // P(byte | expert) / P(byte)
};

// ~sample_bytes of one domain's text with the first-choice expert of every byte.
struct ColouredSample {
  int domain = 0;
  std::vector<uint8_t> bytes;
  std::vector<int32_t> experts;  // [bytes.size()]
};

struct LayerAnalysis {
  int64_t layer = 0;
  int64_t n_experts = 0, n_domains = 0;
  std::vector<int64_t> first_counts;  // [E, D] first-choice tokens per expert and domain
  std::vector<int64_t> all_counts;    // [E, D] every slot counted
  int64_t unrouted = 0;               // bytes no expert took
  double h_domain_bits = 0;           // H(domain) of the first-choice table
  double mi_first_bits = 0, mi_first_norm = 0;  // I(first expert; domain), and / H(domain)
  double mi_all_bits = 0, mi_all_norm = 0;      // the same over all slots
  std::vector<std::vector<TokenStat>> top_tokens;  // [E] up to top_n, most frequent first
  std::vector<ColouredSample> samples;             // one per domain present
};

struct RoutingAnalysis {
  std::string checkpoint, data_dir, split;
  std::vector<std::string> domains;   // names, by id
  int64_t n_bytes = 0;
  std::vector<int64_t> bytes_per_domain;  // [D]
  std::string router;                 // "token_choice", "expert_choice" or "soft"
  int64_t n_experts = 0, top_k = 0;
  int64_t context = 0, n_layers = 0;
  std::vector<LayerAnalysis> layers;  // MoE layers only, in order
};

// counts: [R, C] joint counts. Mutual information in bits (0 for an empty table).
double mutual_information_bits(std::span<const int64_t> counts, int64_t rows, int64_t cols);
// Entropy in bits of the column marginal of a [R, C] table.
double column_entropy_bits(std::span<const int64_t> counts, int64_t rows, int64_t cols);

// ' ' -> "␣", '\n' -> "⏎", '\t' -> "⇥", other controls and bytes >= 0x7f -> "\xNN", else the character.
std::string byte_label(uint8_t b);

// Statistics of one layer. text, domain: [N]; domain ids < n_domains. Throws InvalidInput
// ("[analyze] ...") for mismatched sizes or out-of-range ids.
LayerAnalysis analyze_layer(const LayerChoices& choices, std::span<const uint8_t> text,
                            std::span<const uint8_t> domain, int64_t n_experts, int64_t n_domains,
                            int64_t top_n = 10, int64_t sample_bytes = 300);

// Runs the model (float, inference mode) over `text` in windows of its context and records the
// choices of every MoE layer. Throws InvalidInput for a dense model.
// `on_progress(bytes done, bytes in all)` after every batch of windows.
std::vector<LayerChoices> collect_choices(const GptConfig& config, const GptWeights& weights,
                                          std::span<const uint8_t> text,
                                          const std::function<void(int64_t, int64_t)>& on_progress = {});

struct AnalyzeOptions {
  std::string checkpoint;    // file or its directory
  std::string data_dir;      // DIR with <split>.txt and <split>.domain
  std::string split = "val";
  int64_t max_bytes = 200000;  // 0 = the whole split
  int64_t top_n = 10;
  int64_t sample_bytes = 300;
  std::function<void(int64_t, int64_t)> on_progress;  // bytes run through the model, of all (a progress line)
};

RoutingAnalysis analyze_checkpoint(const AnalyzeOptions& options);

nlohmann::json analysis_to_json(const RoutingAnalysis& analysis);
// One block of text: per layer the MI figures and each domain's most used expert.
std::string format_analysis_summary(const RoutingAnalysis& analysis);

}  // namespace moe
