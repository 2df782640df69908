// Per-layer statistics of recorded routing choices: expert × domain tables, mutual information,
// the most frequent bytes per expert and coloured text samples (docs/analysis.md).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <string>

#include "moe/analysis.h"
#include "moe/error.h"

namespace moe {

namespace {

// A byte that starts a UTF-8 character (not a continuation byte).
bool char_start(uint8_t b) { return (b & 0xC0) != 0x80; }

ColouredSample take_sample(const LayerChoices& ch, std::span<const uint8_t> text, std::span<const uint8_t> domain,
                           int d, int64_t sample_bytes) {
  ColouredSample s;
  s.domain = d;
  const int64_t n = static_cast<int64_t>(text.size());
  // Start at the first document of the domain (a domain change or a blank line before it).
  int64_t p = 0;
  for (; p < n; ++p) {
    if (domain[p] != d) continue;
    if (p == 0 || domain[p - 1] != d || (p >= 2 && text[p - 1] == '\n' && text[p - 2] == '\n')) break;
  }
  const int64_t soft_limit = sample_bytes, hard_limit = sample_bytes + 80;
  for (; p < n; ++p) {
    if (domain[p] != d) continue;  // other documents in between: skip them
    const int64_t have = static_cast<int64_t>(s.bytes.size());
    // Stop on a character boundary, preferably after white space.
    if (have >= soft_limit && char_start(text[p])) {
      const uint8_t prev = s.bytes.back();
      if (prev == ' ' || prev == '\n' || have >= hard_limit) break;
    }
    s.bytes.push_back(text[p]);
    s.experts.push_back(ch.first[p]);
  }
  return s;
}

}  // namespace

double column_entropy_bits(std::span<const int64_t> counts, int64_t rows, int64_t cols) {
  std::vector<double> col(static_cast<size_t>(cols), 0.0);
  double total = 0;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      col[c] += static_cast<double>(counts[r * cols + c]);
      total += static_cast<double>(counts[r * cols + c]);
    }
  if (total <= 0) return 0;
  double h = 0;
  for (const double v : col)
    if (v > 0) h -= v / total * std::log2(v / total);
  return h;
}

// I = Σ p(r,c) log2(p(r,c) / (p(r) p(c))) = Σ n_rc/n · log2(n_rc · n / (n_r · n_c)).
double mutual_information_bits(std::span<const int64_t> counts, int64_t rows, int64_t cols) {
  std::vector<double> row(static_cast<size_t>(rows), 0.0), col(static_cast<size_t>(cols), 0.0);
  double total = 0;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      const double v = static_cast<double>(counts[r * cols + c]);
      row[r] += v;
      col[c] += v;
      total += v;
    }
  if (total <= 0) return 0;
  double mi = 0;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      const double v = static_cast<double>(counts[r * cols + c]);
      if (v > 0) mi += v / total * std::log2(v * total / (row[r] * col[c]));
    }
  return std::max(0.0, mi);  // rounding can leave -1e-17 for independent tables
}

std::string byte_label(uint8_t b) {
  if (b == ' ') return "\u2423";   // ␣ (U+2420 ␠ is missing from common fonts, DejaVu included)
  if (b == '\n') return "\u23CE";  // ⏎
  if (b == '\t') return "\u21E5";  // ⇥
  if (b < 0x20 || b >= 0x7F) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "\\x%02x", b);
    return buf;
  }
  return std::string(1, static_cast<char>(b));
}

LayerAnalysis analyze_layer(const LayerChoices& ch, std::span<const uint8_t> text, std::span<const uint8_t> domain,
                            int64_t n_experts, int64_t n_domains, int64_t top_n, int64_t sample_bytes) {
  const int64_t n = static_cast<int64_t>(text.size()), E = n_experts, D = n_domains;
  if (E < 1 || D < 1) throw InvalidInput("[analyze] need at least one expert and one domain");
  if (static_cast<int64_t>(domain.size()) != n || static_cast<int64_t>(ch.first.size()) != n)
    throw InvalidInput("[analyze] layer " + std::to_string(ch.layer) + ": " + std::to_string(ch.first.size()) +
                       " choices and " + std::to_string(domain.size()) + " domain labels for " + std::to_string(n) +
                       " bytes");
  if (ch.slot_token.size() != ch.slot_expert.size()) throw InvalidInput("[analyze] slot arrays differ in length");
  LayerAnalysis a;
  a.layer = ch.layer;
  a.n_experts = E;
  a.n_domains = D;
  a.first_counts.assign(static_cast<size_t>(E * D), 0);
  a.all_counts.assign(static_cast<size_t>(E * D), 0);
  std::vector<int64_t> bytes(static_cast<size_t>(E * 256), 0), byte_total(256, 0), expert_total(static_cast<size_t>(E), 0);
  int64_t routed = 0;
  for (int64_t t = 0; t < n; ++t) {
    if (domain[t] >= D)
      throw InvalidInput("[analyze] byte " + std::to_string(t) + " has domain id " + std::to_string(domain[t]) +
                         " >= " + std::to_string(D) + " domains");
    const int32_t e = ch.first[t];
    if (e < -1 || e >= E) throw InvalidInput("[analyze] expert id " + std::to_string(e) + " out of range");
    if (e < 0) {
      ++a.unrouted;
      continue;
    }
    ++a.first_counts[e * D + domain[t]];
    ++bytes[e * 256 + text[t]];
    ++byte_total[text[t]];
    ++expert_total[e];
    ++routed;
  }
  for (size_t s = 0; s < ch.slot_token.size(); ++s) {
    const int32_t t = ch.slot_token[s], e = ch.slot_expert[s];
    if (t < 0 || t >= n || e < 0 || e >= E) throw InvalidInput("[analyze] slot " + std::to_string(s) + " out of range");
    ++a.all_counts[e * D + domain[t]];
  }
  a.h_domain_bits = column_entropy_bits(a.first_counts, E, D);
  a.mi_first_bits = mutual_information_bits(a.first_counts, E, D);
  a.mi_first_norm = a.h_domain_bits > 0 ? a.mi_first_bits / a.h_domain_bits : 0;
  a.mi_all_bits = mutual_information_bits(a.all_counts, E, D);
  const double h_all = column_entropy_bits(a.all_counts, E, D);
  a.mi_all_norm = h_all > 0 ? a.mi_all_bits / h_all : 0;

  a.top_tokens.resize(static_cast<size_t>(E));
  for (int64_t e = 0; e < E; ++e) {
    std::vector<int> order(256);
    std::iota(order.begin(), order.end(), 0);
    const int64_t* row = bytes.data() + e * 256;
    std::stable_sort(order.begin(), order.end(), [row](int x, int y) { return row[x] > row[y]; });
    for (int64_t i = 0; i < std::min<int64_t>(top_n, 256); ++i) {
      const int b = order[i];
      if (row[b] == 0) break;
      TokenStat s;
      s.byte = b;
      s.label = byte_label(static_cast<uint8_t>(b));
      s.count = row[b];
      s.share = static_cast<double>(row[b]) / static_cast<double>(expert_total[e]);
      s.lift = s.share / (static_cast<double>(byte_total[b]) / static_cast<double>(routed));
      a.top_tokens[e].push_back(s);
    }
  }
  if (sample_bytes > 0) {
    std::vector<bool> present(static_cast<size_t>(D), false);
    for (const uint8_t d : domain) present[d] = true;
    for (int64_t d = 0; d < D; ++d)
      if (present[d]) a.samples.push_back(take_sample(ch, text, domain, static_cast<int>(d), sample_bytes));
  }
  return a;
}

}  // namespace moe
