// Running a checkpoint over a labelled split and recording each MoE layer's routing choices.
#include <algorithm>
#include <limits>

#include "moe/analysis.h"
#include "moe/corpus.h"
#include "moe/error.h"
#include "moe/trainer.h"

namespace moe {

namespace {

constexpr int64_t kWindowsPerBatch = 8;

// Appends the choices of one forward (n tokens starting at byte `base`) to `out`.
void record_layer(const GptConfig& c, const MoeLayerState<float>& st, int64_t base, int64_t n, LayerChoices& out) {
  const int64_t E = c.moe.router.n_experts;
  if (c.moe.soft.slots_per_expert > 0) {
    // Soft MoE: every token feeds every slot; its expert is the one whose slots weigh it most.
    const int64_t p = c.moe.soft.slots_per_expert, S = E * p;
    for (int64_t t = 0; t < n; ++t) {
      const float* dsp = st.soft.dispatch.data() + t * S;  // [S]
      int32_t best = 0;
      double best_w = -1;
      for (int64_t e = 0; e < E; ++e) {
        double w = 0;
        for (int64_t j = 0; j < p; ++j) w += dsp[e * p + j];
        if (w > best_w) best_w = w, best = static_cast<int32_t>(e);
      }
      out.first[base + t] = best;
      out.slot_token.push_back(static_cast<int32_t>(base + t));
      out.slot_expert.push_back(best);
    }
    return;
  }
  // Token choice (k slots per token) and expert choice (C slots per expert) alike: every slot
  // pairs a token with an expert; the token's first choice is its slot of highest weight.
  const Routing& r = st.router.routing;
  std::vector<float> best(static_cast<size_t>(n), -std::numeric_limits<float>::infinity());
  for (int64_t s = 0; s < r.n_slots(); ++s) {
    const int32_t t = r.slot_token[s], e = r.slot_expert[s];
    const float w = st.router.weights[s];
    out.slot_token.push_back(static_cast<int32_t>(base + t));
    out.slot_expert.push_back(e);
    if (w > best[t] || out.first[base + t] < 0) {
      best[t] = w;
      out.first[base + t] = e;
    }
  }
}

}  // namespace

std::vector<LayerChoices> collect_choices(const GptConfig& c, const GptWeights& w, std::span<const uint8_t> text,
                                          const std::function<void(int64_t, int64_t)>& on_progress) {
  if (!c.has_moe()) throw InvalidInput("[analyze] the checkpoint is a dense model: routing analysis needs MoE layers");
  const int64_t n = static_cast<int64_t>(text.size());
  std::vector<LayerChoices> out;
  for (int64_t l = 0; l < c.n_layers; ++l) {
    if (!c.is_moe_layer(l)) continue;
    LayerChoices lc;
    lc.layer = l;
    lc.first.assign(static_cast<size_t>(n), -1);
    out.push_back(std::move(lc));
  }
  GptActivations<float> acts;
  std::vector<int32_t> tokens;
  const int64_t C = c.context;
  int64_t pos = 0;
  while (pos < n) {
    // Full windows in batches; the tail as one shorter window.
    int64_t seq = C, batch = std::min(kWindowsPerBatch, (n - pos) / C);
    if (batch == 0) seq = n - pos, batch = 1;
    const int64_t len = batch * seq;
    tokens.assign(text.begin() + pos, text.begin() + pos + len);
    GptStepInputs in;
    in.batch = batch;
    in.seq = seq;
    in.tokens = tokens.data();
    in.training = false;
    gpt_forward<float>(c, w, in, acts, nullptr);
    size_t li = 0;
    for (int64_t l = 0; l < c.n_layers; ++l)
      if (c.is_moe_layer(l)) record_layer(c, acts.blocks[l].moe, pos, len, out[li++]);
    pos += len;
    if (on_progress) on_progress(pos, n);
  }
  return out;
}

RoutingAnalysis analyze_checkpoint(const AnalyzeOptions& o) {
  if (o.max_bytes < 0) throw InvalidInput("[analyze] --max_bytes must be >= 0");
  if (o.top_n < 1) throw InvalidInput("[analyze] top_n must be >= 1");
  const LoadedModel m = load_gpt_checkpoint(o.checkpoint);
  const GptConfig& c = m.config;
  if (!c.has_moe()) throw InvalidInput("[analyze] " + o.checkpoint + " is a dense model: routing analysis needs MoE layers");
  LabelledText split = read_labelled_split(o.data_dir, o.split);
  if (o.max_bytes > 0 && static_cast<int64_t>(split.text.size()) > o.max_bytes) {
    split.text.resize(static_cast<size_t>(o.max_bytes));
    split.domain.resize(static_cast<size_t>(o.max_bytes));
  }
  if (split.text.empty()) throw InvalidInput("[analyze] " + o.data_dir + "/" + o.split + ".txt is empty");
  for (const char ch : split.text)
    if (static_cast<int64_t>(static_cast<uint8_t>(ch)) >= c.vocab_size)
      throw InvalidInput("[analyze] the text holds byte values outside the model's vocabulary of " +
                         std::to_string(c.vocab_size));

  RoutingAnalysis a;
  a.checkpoint = o.checkpoint;
  a.data_dir = o.data_dir;
  a.split = o.split;
  for (const CorpusDomain& d : corpus_domains()) a.domains.push_back(d.name);
  const int64_t D = static_cast<int64_t>(a.domains.size());
  a.n_bytes = static_cast<int64_t>(split.text.size());
  a.bytes_per_domain.assign(static_cast<size_t>(D), 0);
  for (const uint8_t d : split.domain) {
    if (d >= D) throw InvalidInput("[analyze] " + o.split + ".domain holds domain id " + std::to_string(d) + " >= " + std::to_string(D));
    ++a.bytes_per_domain[d];
  }
  const RouterConfig& r = c.moe.router;
  a.router = c.moe.soft.slots_per_expert > 0 ? "soft" : r.selection == Selection::expert_choice ? "expert_choice" : "token_choice";
  a.n_experts = r.n_experts;
  a.top_k = a.router == "token_choice" ? r.top_k : a.router == "soft" ? 1 : 0;
  a.context = c.context;
  a.n_layers = c.n_layers;

  const std::span<const uint8_t> text(reinterpret_cast<const uint8_t*>(split.text.data()), split.text.size());
  const std::vector<LayerChoices> choices = collect_choices(c, m.weights, text, o.on_progress);
  for (const LayerChoices& ch : choices)
    a.layers.push_back(analyze_layer(ch, text, split.domain, a.n_experts, D, o.top_n, o.sample_bytes));
  return a;
}

}  // namespace moe
