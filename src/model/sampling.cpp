#include "moe/sampling.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "moe/error.h"

namespace moe {

void validate_sampling(const SamplingOptions& o) {
  if (!(o.temperature >= 0)) throw InvalidInput("[sample] --temperature=" + std::to_string(o.temperature) + " must be >= 0");
  if (o.top_k < 0) throw InvalidInput("[sample] --top_k=" + std::to_string(o.top_k) + " must be >= 0");
  if (!(o.top_p > 0 && o.top_p <= 1)) throw InvalidInput("[sample] --top_p=" + std::to_string(o.top_p) + " must be in (0, 1]");
}

int32_t sample_token(const float* logits, int64_t V, const SamplingOptions& o, Rng& rng) {
  for (int64_t i = 0; i < V; ++i)
    if (!std::isfinite(logits[i])) throw InvalidInput("[sample] logit " + std::to_string(i) + " is not finite");
  if (o.temperature == 0) return static_cast<int32_t>(std::max_element(logits, logits + V) - logits);
  // Candidates by decreasing logit (ties: lower id first).
  std::vector<int32_t> ids(static_cast<size_t>(V));
  std::iota(ids.begin(), ids.end(), 0);
  std::stable_sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  int64_t keep = o.top_k > 0 ? std::min<int64_t>(o.top_k, V) : V;
  std::vector<double> p(static_cast<size_t>(keep));
  const double mx = logits[ids[0]];
  double total = 0;
  for (int64_t i = 0; i < keep; ++i) total += p[i] = std::exp((logits[ids[i]] - mx) / o.temperature);
  if (o.top_p < 1) {  // smallest prefix whose mass reaches top_p (at least one token)
    double acc = 0;
    int64_t n = 0;
    while (n < keep) {
      acc += p[n++] / total;
      if (acc >= o.top_p) break;
    }
    keep = n;
    total = 0;
    for (int64_t i = 0; i < keep; ++i) total += p[i];
  }
  double u = rng.uniform() * total;
  for (int64_t i = 0; i < keep; ++i) {
    u -= p[i];
    if (u < 0) return ids[i];
  }
  return ids[keep - 1];
}

}  // namespace moe
