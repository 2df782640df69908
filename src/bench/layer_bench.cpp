// `moe bench layer`: the MoE layer forward vs a dense FFN of equal active FLOPs, with ceilings.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <numeric>

#include <nlohmann/json.hpp>

#include "moe/bench.h"
#include "moe/error.h"
#include "kernels/cpu/linear.h"
#include "kernels/cpu/microkernel.h"
#include "kernels/cpu/packed_ffn.h"
#include "moe/dispatch.h"
#include "moe/expert_store.h"
#include "moe/experts.h"
#include "moe/rng.h"
#include "moe/router.h"
#include "moe/safetensors.h"

namespace moe::bench {

namespace {

using nlohmann::json;

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

struct Timing {
  double min_ms = 0, median_ms = 0;
  int runs = 0;
};

template <class F>
Timing time_it(F&& f, double min_seconds) {
  f();  // warm-up: page faults, thread pool, caches
  std::vector<double> ms;
  const double end = now() + min_seconds;
  do {
    const double t0 = now();
    f();
    ms.push_back((now() - t0) * 1e3);
  } while (now() < end || ms.size() < 3);
  std::sort(ms.begin(), ms.end());
  return {ms.front(), ms[ms.size() / 2], static_cast<int>(ms.size())};
}

}  // namespace

Routing recorded_routing(const std::string& path, int64_t T, int64_t E, int64_t k) {
  const SafetensorsFile f = SafetensorsFile::open(path);
  if (!f.contains("expert_ids")) throw InvalidInput("[bench] " + path + ": no 'expert_ids' [T, k] tensor");
  const Tensor ids = f.load("expert_ids");
  if (ids.rank() != 2 || ids.dim(1) != k) {
    throw InvalidInput("[bench] " + path + ": expert_ids has shape " + shape_str(ids.shape()) + ", need [T, " + std::to_string(k) + "]");
  }
  if (ids.dim(0) < 1) throw InvalidInput("[bench] " + path + ": expert_ids has no rows (shape " + shape_str(ids.shape()) + ")");
  if (ids.dtype() != DType::i32 && ids.dtype() != DType::i64) {
    throw InvalidInput("[bench] " + path + ": expert_ids is " + dtype_name(ids.dtype()) + ", expected I32 or I64");
  }
  Routing r;
  r.n_tokens = T;
  r.n_experts = E;
  r.top_k = k;
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t j = 0; j < k; ++j) {
      const int64_t src = (t % ids.dim(0)) * k + j;  // repeat the recording to fill T tokens
      const int64_t e = ids.dtype() == DType::i64 ? ids.as<int64_t>()[src] : ids.as<int32_t>()[src];
      if (e < 0 || e >= E) throw InvalidInput("[bench] " + path + ": expert id " + std::to_string(e) + " outside [0, " + std::to_string(E) + ")");
      for (int64_t i = 0; i < j; ++i)  // a router picks k distinct experts
        if (r.slot_expert[r.slot_expert.size() - 1 - i] == e)
          throw InvalidInput("[bench] " + path + ": row " + std::to_string(t % ids.dim(0)) + " of expert_ids names expert " +
                             std::to_string(e) + " twice");
      r.slot_token.push_back(static_cast<int32_t>(t));
      r.slot_expert.push_back(static_cast<int32_t>(e));
      r.slot_kept.push_back(1);
    }
  }
  build_expert_order(r);
  return r;
}


Routing synthetic_routing(int64_t T, int64_t E, int64_t k, double s, uint64_t seed) {
  Rng rng(seed);
  std::vector<double> weight(static_cast<size_t>(E));
  std::vector<int32_t> id(static_cast<size_t>(E));
  std::iota(id.begin(), id.end(), 0);
  for (int64_t i = E - 1; i > 0; --i) std::swap(id[i], id[static_cast<int64_t>(rng.uniform() * (i + 1))]);
  Routing r;
  r.n_tokens = T;
  r.n_experts = E;
  r.top_k = k;
  std::vector<uint8_t> taken(static_cast<size_t>(E));
  for (int64_t t = 0; t < T; ++t) {
    std::fill(taken.begin(), taken.end(), 0);
    for (int64_t j = 0; j < k; ++j) {
      double total = 0;
      for (int64_t e = 0; e < E; ++e) total += taken[e] ? 0 : (weight[e] = std::pow(e + 1.0, -s));
      double u = rng.uniform() * total;
      int64_t pick = 0;
      for (int64_t e = 0; e < E; ++e) {
        if (taken[e]) continue;
        pick = e;
        u -= weight[e];
        if (u <= 0) break;
      }
      taken[pick] = 1;
      r.slot_token.push_back(static_cast<int32_t>(t));
      r.slot_expert.push_back(id[pick]);
      r.slot_kept.push_back(1);
    }
  }
  build_expert_order(r);
  return r;
}

json run_layer_bench(const LayerBenchConfig& c) {
  const int64_t H = c.emb_dim, I = c.hidden_dim, E = c.num_experts, k = c.top_k, T = c.tokens;
  auto bad = [](const std::string& m) { throw InvalidInput("[bench] " + m); };
  if (H < 1 || I < 1 || E < 1 || T < 1) bad("--emb_dim, --hidden_dim, --num_experts and --tokens must be >= 1");
  if (k < 1 || k > E) bad("--top_k=" + std::to_string(k) + " must be in [1, --num_experts=" + std::to_string(E) + "]");
  if (c.threads < 1) bad("--threads=" + std::to_string(c.threads) + " must be >= 1");
  if (c.dtype != "fp32" && c.dtype != "bf16") bad("--dtype=" + c.dtype + " is not one of: fp32, bf16");
  const DType wdt = c.dtype == "bf16" ? DType::bf16 : DType::f32;
  const ExpertFormat format = wdt == DType::bf16 ? ExpertFormat::packed_bf16 : ExpertFormat::packed_f32;

  Routing routing;
  if (c.routing == "uniform") {
    routing = synthetic_routing(T, E, k, 0.0, c.seed);
  } else if (c.routing.rfind("zipf:", 0) == 0) {
    const char* text = c.routing.c_str() + 5;
    char* end = nullptr;
    const double s = std::strtod(text, &end);
    if (end == text || *end != '\0' || !(s >= 0) || !std::isfinite(s)) {
      bad("--routing " + c.routing + ": the Zipf exponent must be a number >= 0 (e.g. zipf:1.2)");
    }
    routing = synthetic_routing(T, E, k, s, c.seed);
  } else {
    routing = recorded_routing(c.routing, T, E, k);
  }

  // Weights and inputs: random, scaled like a trained model's.
  Rng rng(c.seed);
  auto randv = [&](int64_t n, double scale) {
    std::vector<float> v(static_cast<size_t>(n));
    for (float& f : v) f = static_cast<float>(scale * rng.normal());
    return v;
  };
  const double sh = 1 / std::sqrt(static_cast<double>(H)), si = 1 / std::sqrt(static_cast<double>(I));
  std::vector<float> x = randv(T * H, 1.0), router_w = randv(E * H, sh);
  const ExpertConfig ec{ExpertAct::swiglu, I, false, 1.702, 7.0};
  // Expert weights: generated a few experts at a time and packed, so only the packed copy is
  // ever resident (DeepSeek-sized layers fit); the training path needs the raw f32 stacks as well.
  // Only the packing is timed: source f32 bytes per second is what a model load sees.
  std::vector<float> gate, up, down;
  ExpertStore experts = make_packed_experts(ec, E, H, format);
  double pack_s = 0;
  const int64_t chunk = c.backward ? E : std::max<int64_t>(1, std::min<int64_t>(E, (64 << 20) / (3 * I * H * 4)));
  for (int64_t e0 = 0; e0 < E; e0 += chunk) {
    const int64_t n = std::min(chunk, E - e0);
    gate = randv(n * I * H, sh), up = randv(n * I * H, sh), down = randv(n * H * I, si);
    const double t0 = now();
    pack_experts_into(experts, e0, {n, H, I, gate.data(), up.data(), down.data(), nullptr, nullptr, nullptr}, c.threads);
    pack_s += now() - t0;
  }
  const double pack_bytes = 3.0 * static_cast<double>(E) * I * H * 4;
  if (!c.backward) gate.clear(), up.clear(), down.clear();
  const ExpertWeights<float> raw{E, H, I, gate.data(), up.data(), down.data(), nullptr, nullptr, nullptr};
  const cpu::PackedMatrix router = cpu::pack_matrix(router_w.data(), E, H, c.threads);
  // Dense FFN with the same active FLOPs: width k·I, every token.
  ExpertStore dense;
  {
    std::vector<float> dg = randv(k * I * H, sh), du = randv(k * I * H, sh), dd = randv(H * k * I, si);
    dense = pack_experts({ExpertAct::swiglu, k * I, false, 1.702, 7.0},
                         {1, H, k * I, dg.data(), du.data(), dd.data(), nullptr, nullptr, nullptr}, format, c.threads);
  }
  DispatchPlan plan, all;
  make_dispatch_plan(routing, plan);
  make_dense_plan(T, all);
  const std::vector<float> ones(static_cast<size_t>(T), 1.0f);
  std::vector<float> weights(static_cast<size_t>(routing.n_slots()), 1.0f / static_cast<float>(k));
  std::vector<float> y(static_cast<size_t>(T * H)), logits(static_cast<size_t>(T * E));
  const ExpertRunOptions opt{c.threads};
  ExpertRunState<float> st, dense_st;
  Workspace ws;

  RouterConfig rc;
  rc.n_experts = E;
  rc.top_k = k;
  rc.normalize = true;
  RouterState<float> rs;
  DispatchPlan routed_plan;
  const Timing t_router = time_it([&] {
    cpu::linear_packed(router, x.data(), T, nullptr, logits.data(), c.threads,
                       ws.get(cpu::linear_packed_scratch_bytes(router, T, c.threads)));
    router_forward<float>(rc, logits.data(), nullptr, nullptr, nullptr, T, T, false, rs);
    make_dispatch_plan(rs.routing, routed_plan);
  }, c.min_seconds / 2);
  const Timing t_experts = time_it([&] { run_experts(experts, plan, weights.data(), x.data(), y.data(), st, opt); }, c.min_seconds);
  const Timing t_dense = time_it([&] { run_experts(dense, all, ones.data(), x.data(), y.data(), dense_st, opt); }, c.min_seconds);
  json backward = nullptr;
  if (c.backward) {
    if (wdt != DType::f32) bad("--backward: the training path runs on f32 weights");
    const ExpertStore train = view_experts(ec, raw);
    ExpertRunState<float> ts;
    std::vector<float> dy = randv(T * H, 1.0), dx(static_cast<size_t>(T * H)), dw(static_cast<size_t>(routing.n_slots()));
    std::vector<float> g_gate(gate.size()), g_up(up.size()), g_down(down.size());
    const ExpertGrads<float> grads{g_gate.data(), g_up.data(), g_down.data(), nullptr, nullptr, nullptr};
    const Timing t_fwd = time_it([&] { run_experts(train, plan, weights.data(), x.data(), y.data(), ts, opt); }, c.min_seconds);
    const Timing t_bwd = time_it([&] {
      std::fill(dx.begin(), dx.end(), 0.0f);
      run_experts_backward(train, plan, weights.data(), x.data(), ts, dy.data(), dx.data(), grads, dw.data(), opt);
    }, c.min_seconds);
    const double bwd_flops = 2 * 2.0 * static_cast<double>(routing.n_kept()) * 3 * H * I;
    backward = {{"train_forward_ms", t_fwd.min_ms}, {"backward_ms", t_bwd.min_ms},
                {"backward_gflops", bwd_flops / (t_bwd.min_ms * 1e6)},
                {"backward_over_forward", t_bwd.min_ms / t_experts.min_ms},
                {"backward_over_train_forward", t_bwd.min_ms / t_fwd.min_ms}};
  }
  const double fma = wdt == DType::bf16 ? bf16_dot_peak_gflops(c.threads) : fma_peak_gflops(c.threads);
  const double triad = triad_gbps(c.threads);

  int64_t active_experts = 0;
  for (int64_t e = 0; e < E; ++e) active_experts += routing.expert_rows(e) > 0;
  const RoutingStats stats = routing_stats(routing);
  const double expert_flops = 2.0 * static_cast<double>(routing.n_kept()) * 3 * H * I;
  const double router_flops = 2.0 * T * H * E;
  const double weight_bytes = static_cast<double>(active_experts) * static_cast<double>(experts.expert_bytes());
  const double layer_ms = t_router.min_ms + t_experts.min_ms;
  const double gflops = (expert_flops + router_flops) / (layer_ms * 1e6);
  const double dense_gflops = 2.0 * T * 3 * H * k * I / (t_dense.min_ms * 1e6);
  const double weight_gbps = weight_bytes / (t_experts.min_ms * 1e6);
  return {
      {"config", {{"emb_dim", H}, {"hidden_dim", I}, {"num_experts", E}, {"top_k", k}, {"tokens", T}, {"dtype", c.dtype},
                  {"threads", c.threads}, {"routing", c.routing}, {"isa", cpu::isa_name(cpu::detected_isa())}}},
      {"routing", {{"max_over_mean", stats.max_over_mean}, {"active_experts", active_experts}, {"rows", routing.n_kept()}}},
      {"ceilings", {{"fma_gflops", fma}, {"peak_kind", wdt == DType::bf16 ? "vdpbf16ps" : "f32 FMA"}, {"triad_gbps", triad}}},
      {"moe", {{"ms", layer_ms}, {"router_ms", t_router.min_ms}, {"experts_ms", t_experts.min_ms},
               {"experts_median_ms", t_experts.median_ms}, {"runs", t_experts.runs}, {"gflops", gflops},
               {"pct_fma_peak", fma > 0 ? 100 * gflops / fma : 0}, {"weight_gbps", weight_gbps},
               {"pct_triad", triad > 0 ? 100 * weight_gbps / triad : 0}, {"pack_ms", pack_s * 1e3},
               {"pack_gbps", pack_bytes / std::max(pack_s, 1e-9) / 1e9}}},
      {"dense", {{"ms", t_dense.min_ms}, {"median_ms", t_dense.median_ms}, {"gflops", dense_gflops}, {"hidden_dim", k * I}}},
      {"moe_over_dense", layer_ms / t_dense.min_ms},
      {"backward", backward},
  };
}

std::string format_layer_bench(const json& j) {
  const json& c = j["config"];
  char buf[2048];
  std::snprintf(buf, sizeof buf,
                "MoE layer forward  d=%lld f=%lld E=%lld k=%lld tokens=%lld %s threads=%d routing=%s (%s kernels)\n"
                "  routing: %lld active experts, max/mean load %.2f\n"
                "  ceilings (this run): %s peak %.0f GFLOP/s, triad %.1f GB/s\n"
                "  MoE      %9.3f ms  (router %.3f + experts %.3f)  %6.1f GFLOP/s  %5.1f%% of peak  weights %6.1f GB/s = %5.1f%% of triad\n"
                "  dense    %9.3f ms  (width %lld, same active FLOPs)  %6.1f GFLOP/s\n"
                "  MoE / dense = %.2f\n"
                "  packing  %9.1f ms  %.2f GB/s of f32 source weights\n",
                c["emb_dim"].get<long long>(), c["hidden_dim"].get<long long>(), c["num_experts"].get<long long>(),
                c["top_k"].get<long long>(), c["tokens"].get<long long>(), c["dtype"].get<std::string>().c_str(),
                c["threads"].get<int>(), c["routing"].get<std::string>().c_str(), c["isa"].get<std::string>().c_str(),
                j["routing"]["active_experts"].get<long long>(), j["routing"]["max_over_mean"].get<double>(),
                j["ceilings"]["peak_kind"].get<std::string>().c_str(), j["ceilings"]["fma_gflops"].get<double>(),
                j["ceilings"]["triad_gbps"].get<double>(),
                j["moe"]["ms"].get<double>(), j["moe"]["router_ms"].get<double>(), j["moe"]["experts_ms"].get<double>(),
                j["moe"]["gflops"].get<double>(), j["moe"]["pct_fma_peak"].get<double>(), j["moe"]["weight_gbps"].get<double>(),
                j["moe"]["pct_triad"].get<double>(), j["dense"]["ms"].get<double>(), j["dense"]["hidden_dim"].get<long long>(),
                j["dense"]["gflops"].get<double>(), j["moe_over_dense"].get<double>(), j["moe"]["pack_ms"].get<double>(),
                j["moe"]["pack_gbps"].get<double>());
  std::string out = buf;
  if (!j["backward"].is_null()) {
    const json& b = j["backward"];
    std::snprintf(buf, sizeof buf,
                  "  backward %9.3f ms  %6.1f GFLOP/s  = %.2f x forward (training forward %.3f ms)\n",
                  b["backward_ms"].get<double>(), b["backward_gflops"].get<double>(), b["backward_over_forward"].get<double>(),
                  b["train_forward_ms"].get<double>());
    out += buf;
  }
  return out;
}

}  // namespace moe::bench
