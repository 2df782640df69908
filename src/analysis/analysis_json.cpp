// The routing analysis as JSON (what `moe report` reads) and as a short text summary.
#include <cmath>
#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

#include "moe/analysis.h"
#include "util/format.h"

namespace moe {

namespace {

using nlohmann::json;

json table(const std::vector<int64_t>& counts, int64_t E, int64_t D) {
  json rows = json::array();
  for (int64_t e = 0; e < E; ++e) rows.push_back(std::vector<int64_t>(counts.begin() + e * D, counts.begin() + (e + 1) * D));
  return rows;
}

// Each expert's row divided by its total (the domain mix of the expert's tokens).
json row_shares(const std::vector<int64_t>& counts, int64_t E, int64_t D) {
  json rows = json::array();
  for (int64_t e = 0; e < E; ++e) {
    int64_t sum = 0;
    for (int64_t d = 0; d < D; ++d) sum += counts[e * D + d];
    std::vector<double> r(static_cast<size_t>(D), 0.0);
    for (int64_t d = 0; d < D; ++d) r[d] = sum > 0 ? static_cast<double>(counts[e * D + d]) / static_cast<double>(sum) : 0.0;
    rows.push_back(r);
  }
  return rows;
}

// For each domain: the expert taking most of its first-choice tokens, and that share.
std::vector<std::pair<int64_t, double>> top_expert_per_domain(const LayerAnalysis& l) {
  std::vector<std::pair<int64_t, double>> out;
  for (int64_t d = 0; d < l.n_domains; ++d) {
    int64_t best = -1, best_n = 0, total = 0;
    for (int64_t e = 0; e < l.n_experts; ++e) {
      const int64_t v = l.first_counts[e * l.n_domains + d];
      total += v;
      if (v > best_n) best_n = v, best = e;
    }
    out.emplace_back(best, total > 0 ? static_cast<double>(best_n) / static_cast<double>(total) : 0.0);
  }
  return out;
}

}  // namespace

json analysis_to_json(const RoutingAnalysis& a) {
  json j;
  j["format"] = "moe-analysis/1";
  j["checkpoint"] = a.checkpoint;
  j["data_dir"] = a.data_dir;
  j["split"] = a.split;
  j["domains"] = a.domains;
  j["n_bytes"] = a.n_bytes;
  j["bytes_per_domain"] = a.bytes_per_domain;
  j["router"] = a.router;
  j["n_experts"] = a.n_experts;
  j["top_k"] = a.top_k;
  j["context"] = a.context;
  j["n_layers"] = a.n_layers;
  j["layers"] = json::array();
  for (const LayerAnalysis& l : a.layers) {
    json lj;
    lj["layer"] = l.layer;
    lj["n_experts"] = l.n_experts;
    lj["n_domains"] = l.n_domains;
    lj["first_counts"] = table(l.first_counts, l.n_experts, l.n_domains);
    lj["first_shares"] = row_shares(l.first_counts, l.n_experts, l.n_domains);
    lj["all_counts"] = table(l.all_counts, l.n_experts, l.n_domains);
    lj["all_shares"] = row_shares(l.all_counts, l.n_experts, l.n_domains);
    lj["unrouted"] = l.unrouted;
    lj["h_domain_bits"] = l.h_domain_bits;
    lj["mi_first_bits"] = l.mi_first_bits;
    lj["mi_first_norm"] = l.mi_first_norm;
    lj["mi_all_bits"] = l.mi_all_bits;
    lj["mi_all_norm"] = l.mi_all_norm;
    json top = json::array();
    for (const auto& [e, share] : top_expert_per_domain(l)) top.push_back({{"expert", e}, {"share", share}});
    lj["top_expert_per_domain"] = top;
    json tokens = json::array();
    for (const auto& list : l.top_tokens) {
      json tl = json::array();
      for (const TokenStat& s : list)
        tl.push_back({{"byte", s.byte}, {"label", s.label}, {"count", s.count}, {"share", s.share}, {"lift", s.lift}});
      tokens.push_back(tl);
    }
    lj["top_tokens"] = tokens;
    json samples = json::array();
    for (const ColouredSample& s : l.samples) {
      const std::string name = s.domain < static_cast<int>(a.domains.size()) ? a.domains[s.domain] : std::to_string(s.domain);
      samples.push_back({{"domain", name}, {"domain_id", s.domain}, {"bytes", s.bytes}, {"experts", s.experts}});
    }
    lj["samples"] = samples;
    j["layers"].push_back(lj);
  }
  return j;
}

std::string format_analysis_summary(const RoutingAnalysis& a) {
  std::string o;
  char buf[256];
  std::string k = a.router == "token_choice" ? ", top-" + std::to_string(a.top_k) : "";
  o += "routing analysis: " + util::group_thousands(a.n_bytes) + " bytes of " + a.split + " (";
  for (size_t d = 0; d < a.domains.size(); ++d)
    o += (d ? ", " : "") + a.domains[d] + " " + util::group_thousands(a.bytes_per_domain[d]);
  o += "); " + a.router + ", " + std::to_string(a.n_experts) + " experts" + k + "\n";
  std::snprintf(buf, sizeof buf, "%-6s %13s %6s %11s %6s  %s\n", "layer", "MI first/bit", "norm", "MI all/bit", "norm",
                "top expert per domain (share of the domain's tokens)");
  o += buf;
  for (const LayerAnalysis& l : a.layers) {
    std::snprintf(buf, sizeof buf, "%-6lld %13.4f %6.3f %11.4f %6.3f ", static_cast<long long>(l.layer), l.mi_first_bits,
                  l.mi_first_norm, l.mi_all_bits, l.mi_all_norm);
    o += buf;
    const auto top = top_expert_per_domain(l);
    for (size_t d = 0; d < top.size(); ++d) {
      if (top[d].first < 0) continue;
      std::snprintf(buf, sizeof buf, " %s:e%lld(%.0f%%)", d < a.domains.size() ? a.domains[d].c_str() : "?",
                    static_cast<long long>(top[d].first), 100 * top[d].second);
      o += buf;
    }
    if (l.unrouted > 0) o += "  [" + util::group_thousands(l.unrouted) + " bytes unrouted]";
    o += "\n";
  }
  o += "H(domain) = " + util::fixed_or_na(a.layers.empty() ? NAN : a.layers[0].h_domain_bits, 4) +
       " bits; normalised MI = I / H(domain) (0 = no relation, 1 = expert determines domain)\n";
  return o;
}

}  // namespace moe
