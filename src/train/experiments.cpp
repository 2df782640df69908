// The experiments of `moe experiment`: each is a list of runs (a model preset and a few training
// options) trained with the same corpus, tokens, seed and schedule, then summarised.
#include "moe/experiments.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <stdexcept>

#include "moe/atomic_file.h"
#include "moe/corpus.h"
#include "moe/metrics.h"
#include "moe/error.h"
#include "moe/generate.h"
#include "moe/gpt_presets.h"
#include "moe/sampling.h"
#include "moe/tokenizer.h"
#include "moe/trainer.h"
#include "util/format.h"

namespace moe {

namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

struct RunSpec {
  std::string name, label;
  GptPreset model;
  bool masked = false;            // bidirectional encoder, masked-byte objective
  double bias_update_rate = 0;    // aux-loss-free balancing
};

GptPreset base_model(const ExperimentOptions& o) {
  GptPreset p;
  p.vocab_size = 256;
  p.context = o.seq;
  p.d_model = o.d_model;
  p.n_layers = o.n_layers;
  p.n_heads = o.n_heads;
  p.hidden = o.expert_hidden;
  p.n_experts = o.n_experts;
  p.top_k = o.top_k;
  p.router = "softmax";
  p.aux_coef = 0.01;
  return p;
}

RunSpec encoder(RunSpec r) {
  r.masked = true;
  r.model.encoder = true;
  r.model.vocab_size = 257;  // bytes + the mask id
  return r;
}

std::vector<RunSpec> runs_of(const std::string& name, const ExperimentOptions& o) {
  const GptPreset moe = base_model(o);
  const int64_t E = o.n_experts, I = o.expert_hidden, k = o.top_k;
  std::vector<RunSpec> r;
  auto add = [&](std::string n, std::string label, GptPreset p) {
    r.push_back({std::move(n), std::move(label), std::move(p)});
    return &r.back();
  };
  if (name == "dense-vs-moe") {
    add("moe", "MoE " + std::to_string(E) + "×" + std::to_string(I) + ", top-" + std::to_string(k), moe);
    GptPreset d = moe;
    d.n_experts = 0;
    d.hidden = k * I;
    add("dense-active", "dense, equal active (FFN " + std::to_string(k * I) + ")", d);
    d.hidden = E * I;
    add("dense-total", "dense, equal total (FFN " + std::to_string(E * I) + ")", d);
  } else if (name == "balance") {
    GptPreset p = moe;
    p.aux_coef = 0;
    add("none", "no balancing", p);
    p.aux_coef = 0.01;
    add("aux", "aux loss (Switch/HF load balancing, α=0.01)", p);
    p.aux_coef = 0;
    p.z_coef = 1e-3;
    add("z-loss", "router z-loss only (1e-3)", p);
    p.z_coef = 0;
    p.router = "sigmoid";
    add("aux-free", "aux-loss-free bias (sigmoid, γ=1e-3)", p)->bias_update_rate = 1e-3;
  } else if (name == "capacity") {
    add("dropless", "dropless (token choice)", moe);
    for (const double cf : {0.5, 1.0, 1.25, 2.0}) {
      GptPreset p = moe;
      p.capacity_factor = cf;
      char n[32];
      std::snprintf(n, sizeof n, "cf-%g", cf);
      add(n, std::string("capacity factor ") + (n + 3) + " (drops)", p);
    }
    r.push_back(encoder({"enc-dropless", "encoder: token choice, dropless", moe}));
    for (const double cf : {1.0, 2.0}) {
      GptPreset p = moe;
      p.router = "expert_choice";
      p.capacity_factor = cf;
      char n[32];
      std::snprintf(n, sizeof n, "enc-ec-%g", cf);
      r.push_back(encoder({n, std::string("encoder: expert choice, capacity ") + (n + 7), p}));
    }
  } else if (name == "routers") {
    add("softmax-top" + std::to_string(k), "softmax top-" + std::to_string(k) + " (Mixtral)", moe);
    GptPreset p = moe;
    p.router = "switch";
    p.top_k = 1;
    p.hidden = k * I;
    p.capacity_factor = 1.25;
    add("switch-top1", "Switch top-1, experts ×" + std::to_string(k) + " wide, capacity 1.25", p);
    p = moe;
    p.router = "noisy";
    add("noisy-top" + std::to_string(k), "noisy top-" + std::to_string(k) + " (Shazeer)", p);
    p = moe;
    p.router = "sigmoid";
    p.aux_coef = 0;
    add("sigmoid-bias", "sigmoid + selection bias (DeepSeek-V3, aux-free)", p)->bias_update_rate = 1e-3;
    p = moe;
    p.top_k = std::max<int64_t>(1, k - 1);
    p.shared_hidden = I;
    add("shared+top" + std::to_string(p.top_k), "shared expert + top-" + std::to_string(p.top_k) + " (equal active)", p);
    r.push_back(encoder({"enc-softmax", "encoder: softmax top-" + std::to_string(k), moe}));
    p = moe;
    p.router = "expert_choice";
    p.capacity_factor = static_cast<double>(k);
    r.push_back(encoder({"enc-expert-choice", "encoder: expert choice, capacity " + std::to_string(k), p}));
    p = moe;
    p.router = "soft";
    // 4 slots per expert: 32 slots per sequence, a quarter of top-2's expert rows. Equal compute
    // (k·seq/E = 32 slots per expert) would be 8× slower here: the Soft MoE dispatch/combine
    // (src/moe/soft_moe.cpp) still runs on scalar float64 loops that scale with the slot count.
    p.soft_slots = 4;
    r.push_back(encoder({"enc-soft-moe", "encoder: Soft MoE, " + std::to_string(p.soft_slots) + " slots/expert", p}));
  } else {
    std::string known;
    for (const auto& n : experiment_names()) known += (known.empty() ? "" : ", ") + n;
    throw InvalidInput("[experiment] unknown experiment '" + name + "' (one of: " + known + ")");
  }
  return r;
}

// Final figures of a run from its metrics: validation, speed, and the late-training averages of
// load balance, dead experts and drops (last 10 % of the steps).
json summarise(const std::vector<json>& m) {
  json f = json::object();
  if (m.empty()) return f;
  double best = INFINITY;
  for (const json& r : m)
    if (r.contains("val_bpb") && r["val_bpb"].is_number()) {
      best = std::min(best, r["val_bpb"].get<double>());
      f["val_bpb"] = r["val_bpb"];
    }
  if (std::isfinite(best)) f["best_val_bpb"] = best;
  const size_t n = m.size(), late = n - std::max<size_t>(1, n / 10);
  double ms = 0, tps = 0;
  size_t cnt = 0;
  for (size_t i = std::min<size_t>(3, n - 1); i < n; ++i) {
    if (!m[i].contains("step_ms")) continue;
    ms += m[i].value("step_ms", 0.0);
    tps += m[i].value("tokens_per_s", 0.0);
    ++cnt;
  }
  if (cnt > 0) {  // absent rather than 0 when no record has timings
    f["ms_per_step"] = ms / static_cast<double>(cnt);
    f["tokens_per_s"] = tps / static_cast<double>(cnt);
  }
  if (m.back().contains("loss")) f["train_loss"] = m.back()["loss"];
  if (m.back().contains("ce")) f["train_ce"] = m.back()["ce"];
  double load = 0, drop = 0;
  size_t nl = 0, nd = 0;
  std::map<std::string, std::vector<double>> sums;
  for (size_t i = late; i < n; ++i) {
    if (m[i].contains("load_max_over_mean"))
      for (auto& [l, v] : m[i]["load_max_over_mean"].items()) load += v.get<double>(), ++nl;
    if (m[i].contains("drop_fraction")) drop += m[i]["drop_fraction"].get<double>(), ++nd;
    if (m[i].contains("expert_load"))
      for (auto& [l, v] : m[i]["expert_load"].items()) {
        auto& s = sums[l];
        s.resize(v.size(), 0.0);
        for (size_t e = 0; e < v.size(); ++e) s[e] += v[e].get<double>();
      }
  }
  if (nl) f["load_max_over_mean"] = load / nl;
  if (nd) f["drop_fraction"] = drop / nd;
  if (!sums.empty()) {
    // Dead: an expert getting under 10 % of an even share late in training.
    int64_t dead = 0, total = 0;
    for (auto& [l, s] : sums) {
      double tot = 0;
      for (double v : s) tot += v;
      for (double v : s) {
        ++total;
        if (v < 0.1 * tot / static_cast<double>(s.size())) ++dead;
      }
    }
    f["dead_experts"] = dead;
    f["experts_total"] = total;
  }
  return f;
}

// A table cell: the number with `decimals` decimals, or "n/a" where the run has no such value.
std::string fmt(const json& v, int decimals) { return util::fixed_or_na(v.is_number() ? v.get<double>() : NAN, decimals); }

// The `moe experiment` command that reproduces these options, every flag spelled out (the names
// of tools/cmd_experiment.cpp). --resume is kept: it says finished runs may have been reused.
std::string experiment_command(const std::string& name, const ExperimentOptions& o) {
  char lr[32];
  std::snprintf(lr, sizeof lr, "%g", o.lr);
  std::string c = "moe experiment " + util::shell_quote(name) + " --data " + util::shell_quote(o.data_dir) + " --out " +
                  util::shell_quote(o.out_dir);
  const std::pair<const char*, std::string> flags[] = {
      {"--steps", std::to_string(o.steps)},          {"--batch", std::to_string(o.batch)},
      {"--seq", std::to_string(o.seq)},              {"--lr", lr},
      {"--eval_every", std::to_string(o.eval_every)}, {"--eval_windows", std::to_string(o.eval_windows)},
      {"--emb_dim", std::to_string(o.d_model)},      {"--n_layers", std::to_string(o.n_layers)},
      {"--n_heads", std::to_string(o.n_heads)},      {"--num_experts", std::to_string(o.n_experts)},
      {"--hidden_dim", std::to_string(o.expert_hidden)}, {"--top_k", std::to_string(o.top_k)},
      {"--seed", std::to_string(o.seed)},            {"--threads", std::to_string(o.threads)}};
  for (const auto& [flag, value] : flags) c += std::string(" ") + flag + " " + value;
  return c + (o.resume ? " --resume" : "");
}

// A few sampled continuations per domain from a checkpoint (prompts: the first words of the first
// validation document of each domain), each with the settings it was sampled with.
json domain_samples(const std::string& checkpoint, const std::string& data_dir, uint64_t seed) {
  const LoadedModel m = load_gpt_checkpoint(checkpoint);
  const GptPrepared model = prepare_gpt(m.config, m.weights);
  const LabelledText val = read_labelled_split(data_dir, "val");
  json out = json::array();
  const auto& domains = corpus_domains();
  for (size_t d = 0; d < domains.size(); ++d) {
    size_t at = 0;
    while (at < val.domain.size() && val.domain[at] != d) ++at;
    if (at >= val.domain.size()) continue;
    size_t end = at;
    while (end < val.domain.size() && val.domain[end] == d && end - at < 64) ++end;
    // Up to 32 bytes, at most half the context: the other half is the model's.
    const size_t max_prompt = static_cast<size_t>(std::min<int64_t>(32, m.config.context / 2));
    const std::string prompt = util::word_prefix(std::string_view(val.text).substr(at, end - at), max_prompt);
    std::vector<int32_t> seq(prompt.begin(), prompt.end());
    for (int32_t& t : seq) t = static_cast<uint8_t>(t);
    const int64_t n_new = std::min<int64_t>(200, m.config.context - static_cast<int64_t>(seq.size()));
    GenerateOptions go;
    go.max_new_tokens = n_new;
    go.sampling.temperature = 0.7;
    go.sampling.top_k = 40;
    go.seed = seed + d;
    std::string text;
    for (const int32_t t : generate(model, seq, go).tokens) text += static_cast<char>(t);
    const SamplingOptions& so = go.sampling;
    // Byte-level samples may split a character: store them as valid UTF-8 (U+FFFD where broken).
    out.push_back({{"domain", domains[d].name},
                   {"description", domains[d].description},
                   {"prompt", printable_utf8(prompt)},
                   {"text", printable_utf8(text)},
                   {"temperature", so.temperature},
                   {"top_k", so.top_k},
                   {"seed", seed + d},
                   {"max_new_tokens", n_new}});
  }
  return out;
}

}  // namespace

const std::vector<std::string>& experiment_names() {
  static const std::vector<std::string> n = {"dense-vs-moe", "balance", "capacity", "routers"};
  return n;
}

std::string experiment_description(const std::string& name) {
  if (name == "dense-vs-moe")
    return "MoE vs dense FFNs of equal active and of equal total parameters: validation bits per byte over training";
  if (name == "balance")
    return "No balancing vs an aux loss vs z-loss vs the aux-loss-free bias: expert load over time, dead experts, loss";
  if (name == "capacity")
    return "Capacity factor sweep (token choice with drops) vs dropless, and expert choice in the encoder: drops, loss, time";
  if (name == "routers")
    return "Softmax top-k, Switch top-1, noisy top-k, sigmoid + bias, shared expert at equal active parameters; "
           "expert choice and Soft MoE vs token choice in the bidirectional (masked-byte) encoder";
  return "";
}

json run_experiment(const std::string& name, const ExperimentOptions& o) {
  const std::vector<RunSpec> runs = runs_of(name, o);
  const std::string train = o.data_dir + "/train.txt", val = o.data_dir + "/val.txt";
  if (!fs::exists(train) || !fs::exists(val))
    throw InvalidInput("[experiment] no corpus in " + o.data_dir + " (run `moe data --out " + o.data_dir + "` first)");
  const std::string dir = o.out_dir + "/" + name;
  fs::create_directories(dir);
  json summary = {{"experiment", name}, {"title", name}, {"description", experiment_description(name)}};
  // When and with what: the report shows both, so that runs of another day or other flags stand out.
  summary["created"] = util::utc_timestamp(std::time(nullptr));
  summary["command"] = experiment_command(name, o);
  summary["settings"] = {{"steps", o.steps}, {"batch", o.batch}, {"seq", o.seq}, {"tokens", o.steps * o.batch * o.seq},
                         {"lr", o.lr}, {"eval_every", o.eval_every}, {"eval_windows", o.eval_windows},
                         {"emb_dim", o.d_model}, {"n_layers", o.n_layers}, {"n_heads", o.n_heads},
                         {"num_experts", o.n_experts}, {"hidden_dim", o.expert_hidden}, {"top_k", o.top_k},
                         {"seed", o.seed}, {"threads", o.threads}, {"data", o.data_dir}, {"resumed", o.resume}};
  summary["runs"] = json::array();
  json table = json::array();
  table.push_back({"run", "parameters (active)", "val bits/byte (best)", "ms/step", "load max/mean", "dead experts", "drop %"});
  for (size_t i = 0; i < runs.size(); ++i) {
    const RunSpec& rs = runs[i];
    const GptConfig model = make_gpt_config(rs.model);
    TrainOptions t;
    t.data = train;
    t.val_data = val;
    t.out_dir = dir + "/" + rs.name;
    t.batch.batch = o.batch;
    t.batch.seq_len = o.seq;
    if (rs.masked) {
      t.batch.objective = Objective::masked;
      t.batch.mask_id = 256;
    }
    t.steps = o.steps;
    t.lr = o.lr;
    t.min_lr = o.lr / 10;
    t.adam.lr = o.lr;
    t.eval_every = o.eval_every;
    t.eval_windows = o.eval_windows;
    t.bias_update_rate = rs.bias_update_rate;
    t.seed = o.seed;
    t.threads = o.threads;
    t.progress = o.progress;
    t.resume = o.resume;
    t.overwrite = o.overwrite;
    if (o.progress)
      std::fprintf(stderr, "[%s %zu/%zu] %s: %s parameters (%s active)\n", name.c_str(), i + 1, runs.size(),
                   rs.label.c_str(), util::group_thousands(gpt_param_count(model, false)).c_str(),
                   util::group_thousands(gpt_param_count(model, true)).c_str());
    const TrainSummary ts = train_gpt(model, t);
    if (ts.interrupted)  // Ctrl-C: the run saved its checkpoint; `--resume` continues from there
      throw Interrupted("[experiment] " + name + " interrupted during run '" + rs.name + "' at step " +
                               std::to_string(ts.step) + "; rerun with --resume to continue");
    json fin = summarise(read_metrics(t.out_dir + "/metrics.jsonl"));
    fin["params_total"] = gpt_param_count(model, false);
    fin["params_active"] = gpt_param_count(model, true);
    summary["runs"].push_back({{"name", rs.name},
                               {"label", rs.label},
                               {"objective", rs.masked ? "masked" : "next_token"},
                               {"metrics", rs.name + "/metrics.jsonl"},
                               {"checkpoint", rs.name + "/checkpoint.safetensors"},
                               {"model", gpt_config_to_json(model)},
                               {"final", fin}});
    const std::string params = util::group_thousands(fin["params_total"].get<int64_t>()) + " (" +
                               util::group_thousands(fin["params_active"].get<int64_t>()) + ")";
    table.push_back({rs.label, params, fmt(fin.value("val_bpb", json()), 4) + " (" + fmt(fin.value("best_val_bpb", json()), 4) + ")",
                     fmt(fin.value("ms_per_step", json()), 1), fmt(fin.value("load_max_over_mean", json()), 2),
                     fin.contains("dead_experts") ? std::to_string(fin["dead_experts"].get<int64_t>()) + "/" +
                                                        std::to_string(fin["experts_total"].get<int64_t>())
                                                  : "n/a",
                     fin.contains("drop_fraction") ? fmt(json(100.0 * fin["drop_fraction"].get<double>()), 1) : "n/a"});
  }
  summary["table"] = table;
  json notes = json::array();
  notes.push_back("Each run: " + std::to_string(o.steps) + " updates of " + std::to_string(o.batch) + " × " +
                  std::to_string(o.seq) + " bytes, seed " + std::to_string(o.seed) +
                  ", AdamW with warmup + cosine; validation on the held-out documents of every domain.");
  if (name == "capacity" || name == "routers")
    notes.push_back("Encoder rows are trained with the masked-byte objective (15 % of bytes masked, loss on those): their "
                    "bits per byte are not comparable with the decoder rows, only with each other.");
  if (name == "dense-vs-moe") {
    const json& runs_j = summary["runs"];
    const double m = runs_j[0]["final"].value("val_bpb", NAN), d = runs_j[1]["final"].value("val_bpb", NAN);
    notes.push_back("MoE " + util::fixed_or_na(m, 4) + " vs dense (equal active) " + util::fixed_or_na(d, 4) +
                    " bits per byte: " + (m < d ? "MoE is better" : "MoE is NOT better") + " by " +
                    util::fixed_or_na(std::fabs(d - m), 4) + ".");
    summary["samples"] = domain_samples(dir + "/moe/checkpoint.safetensors", o.data_dir, o.seed);
    write_file_atomic(dir + "/samples.json", summary["samples"].dump(2) + "\n");
  }
  summary["notes"] = notes;
  write_file_atomic(dir + "/summary.json", summary.dump(2) + "\n");
  return summary;
}

}  // namespace moe
