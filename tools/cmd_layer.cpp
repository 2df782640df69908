// `moe layer`: one MoE layer on the user's weights and inputs, outputs and gradients to a
// safetensors file (docs/layer-format.md). Parsing and file plumbing only; math is in src/moe.
#include <cmath>
#include <fstream>
#include <iostream>
#include <memory>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "moe/error.h"
#include "moe/expert_store.h"
#include "moe/layer_format.h"
#include "moe/moe_layer.h"
#include "moe/rng.h"
#include "moe/safetensors.h"
#include "util/json_file.h"

namespace moe::cli {

namespace {

struct LayerFlags {
  std::string config, weights, inputs, out, precision = "f32", prefix, experts = "auto";
  bool training = false;
  uint64_t seed = 0;
};

template <class T>
std::vector<T> cast(const std::vector<double>& v) {
  return std::vector<T>(v.begin(), v.end());
}

// An output that overflowed (inputs near the type's range) is an error, not a result: names the
// tensor, where, and what to do.
template <class T>
void require_finite(const std::string& name, const std::vector<T>& v, const std::string& precision) {
  for (size_t i = 0; i < v.size(); ++i) {
    if (std::isfinite(v[i])) continue;
    std::ostringstream m;
    m << "[layer] output '" << name << "' is not finite (" << (std::isnan(v[i]) ? "nan" : v[i] > 0 ? "inf" : "-inf")
      << " at flat index " << i
      << "): the inputs or weights are too large for " << precision
      << "; scale them" << (precision == "f32" ? " or use --precision f64" : "");
    throw InvalidInput(m.str());
  }
}

template <class T>
int run_typed(const LayerFlags& f) {
  const DType dt = dtype_of<T>();
  const nlohmann::json cj = util::read_json_file(f.config, "[layer]");
  const std::string type = arch::layer_model_type(cj);
  const MoeLayerConfig cfg = arch::layer_config_from_json(cj);
  const int64_t H = cfg.d_model, E = cfg.router.n_experts;

  // Weights: every tensor the config needs, nothing else, under the model type's names.
  const SafetensorsFile wf = SafetensorsFile::open(f.weights);
  const arch::LayerWeightsFile lw = arch::load_layer_weights(type, cfg, wf, f.prefix, dt);
  const MoeLayerWeights& w = lw.weights;

  // Inputs.
  const SafetensorsFile inf = SafetensorsFile::open(f.inputs);
  for (const std::string& n : inf.names()) {
    static const std::set<std::string> known = {"x", "dy", "attention_mask", "noise", "jitter"};
    if (!known.count(n)) throw InvalidInput("[layer] " + f.inputs + ": unknown input '" + n + "'");
  }
  if (!inf.contains("x")) throw InvalidInput("[layer] " + f.inputs + ": missing input 'x' [T, H] or [B, S, H]");
  const Shape xs = inf.entry("x").shape;
  if ((xs.size() != 2 && xs.size() != 3) || xs.back() != H) {
    throw InvalidInput("[layer] " + f.inputs + ": input 'x' has shape " + shape_str(xs) + ", expected [T, " +
                       std::to_string(H) + "] or [B, S, " + std::to_string(H) + "]");
  }
  const int64_t Tn = xs.size() == 2 ? xs[0] : xs[0] * xs[1];
  const int64_t S = xs.size() == 2 ? xs[0] : xs[1];
  const int64_t B = Tn / std::max<int64_t>(S, 1);
  auto input = [&](const std::string& name, const Shape& want) {
    if (inf.entry(name).shape != want) {
      throw InvalidInput("[layer] " + f.inputs + ": input '" + name + "' has shape " + shape_str(inf.entry(name).shape) +
                         ", expected " + shape_str(want));
    }
    return cast<T>(arch::finite_tensor_values(inf, name));
  };
  const std::vector<T> x = cast<T>(arch::finite_tensor_values(inf, "x"));
  LayerInputs in;
  in.n_tokens = Tn;
  in.group_tokens = S;
  in.training = f.training;
  Rng rng(f.seed);
  std::vector<T> noise, jitter, dy;
  std::vector<uint8_t> mask;
  // Router noise: [T, E] for a noisy token router, [T, E·p] for Soft MoE's slots.
  const bool soft = cfg.soft.slots_per_expert > 0;
  const int64_t noise_cols = soft ? E * cfg.soft.slots_per_expert : E;
  if (inf.contains("noise")) {
    noise = input("noise", {Tn, noise_cols});
  } else if (f.training && (soft ? cfg.soft.noise_std > 0 : cfg.router.noise != NoiseKind::none)) {
    for (int64_t i = 0; i < Tn * noise_cols; ++i) noise.push_back(static_cast<T>(rng.normal()));
  }
  if (inf.contains("jitter")) {
    jitter = input("jitter", {Tn, H});
  } else if (f.training && cfg.jitter > 0) {
    for (int64_t i = 0; i < Tn * H; ++i) jitter.push_back(static_cast<T>(rng.uniform(1 - cfg.jitter, 1 + cfg.jitter)));
  }
  if (inf.contains("attention_mask")) {
    const Shape ms = inf.entry("attention_mask").shape;
    if (ms != Shape{B, S} && !(xs.size() == 2 && ms == Shape{Tn})) {
      throw InvalidInput("[layer] " + f.inputs + ": input 'attention_mask' has shape " + shape_str(ms) + ", expected " +
                         shape_str({B, S}));
    }
    const Tensor m = inf.load("attention_mask");
    for (int64_t i = 0; i < Tn; ++i) {
      double v = 0;
      switch (m.dtype()) {
        case DType::boolean: case DType::u8: v = static_cast<const uint8_t*>(m.data())[i]; break;
        case DType::i32: v = m.as<int32_t>()[i]; break;
        case DType::i64: v = static_cast<double>(m.as<int64_t>()[i]); break;
        default: v = load_as_double(m.view(), i);
      }
      if (v != 0 && v != 1) {  // HF's attention_mask is 0 (padding) or 1 (a token); NaN is neither
        std::ostringstream m;
        m << "[layer] " << f.inputs << ": input 'attention_mask' has " << v << " at flat index " << i
          << "; expected 0 (padding) or 1 (a token)";
        throw InvalidInput(m.str());
      }
      mask.push_back(v != 0);
    }
    in.mask = mask.data();
  }
  if (inf.contains("dy")) dy = input("dy", xs);
  // The experts' storage: the weights as given (f32 training path, f64 reference) when gradients
  // are wanted, else by default the packed inference kernels for f32 (--experts overrides).
  const ExpertFormat format = f.experts == "auto" ? (dy.empty() && dt == DType::f32 ? ExpertFormat::packed_f32 : ExpertFormat::f32)
                                                  : parse_expert_format(f.experts);
  PreparedMoeLayer prepared;
  const bool packed = format == ExpertFormat::packed_f32 || format == ExpertFormat::packed_bf16;
  if (packed) {
    if (dt != DType::f32) throw InvalidInput("[layer] --experts " + f.experts + " needs --precision f32");
    if (!dy.empty()) throw InvalidInput("[layer] --experts " + f.experts + " is inference-only: no backward with dy");
    prepared = prepare_layer(cfg, w, format);
    in.prepared = &prepared;
  } else if (f.experts != "auto" && format != (dt == DType::f64 ? ExpertFormat::f64 : ExpertFormat::f32)) {
    throw InvalidInput("[layer] --experts " + f.experts + " does not match --precision " + f.precision);
  }
  const std::string kernels = packed ? expert_format_name(format) : dt == DType::f64 ? "f64 reference" : "f32 training";
  in.noise = noise.empty() ? nullptr : noise.data();
  in.jitter = jitter.empty() ? nullptr : jitter.data();

  MoeLayerState<T> st;
  std::vector<T> y(static_cast<size_t>(Tn * H));
  moe_layer_forward(cfg, w, x.data(), in, st, y.data());
  if (!st.raw_logits.empty()) require_finite("router_logits", st.raw_logits, f.precision);  // the first to overflow
  require_finite("y", y, f.precision);
  for (const auto& [name, v] : st.losses) require_finite("loss." + name, std::vector<double>{static_cast<double>(v)}, f.precision);

  // Outputs (owned here, then viewed for the writer).
  std::vector<std::pair<std::string, Tensor>> out;
  out.emplace_back("y", Tensor::from<T>(xs, y));
  auto scalar = [&](const std::string& name, double v) { out.emplace_back(name, Tensor::from<T>({}, {static_cast<T>(v)})); };
  for (const auto& [name, v] : st.losses) scalar(name == "aux_total" ? "loss.aux_total" : "loss." + name, v);
  if (cfg.soft.slots_per_expert > 0) {
    const int64_t SL = E * cfg.soft.slots_per_expert;
    out.emplace_back("soft.dispatch", Tensor::from<T>({Tn, SL}, st.soft.dispatch));
    out.emplace_back("soft.combine", Tensor::from<T>({Tn, SL}, st.soft.combine));
  } else {
    const Routing& r = st.router.routing;
    out.emplace_back("router_logits", Tensor::from<T>({Tn, E}, st.raw_logits));
    if (r.top_k > 0) {
      std::vector<uint8_t> kept(r.slot_kept.begin(), r.slot_kept.end());
      out.emplace_back("expert_ids", Tensor::from<int32_t>({Tn, r.top_k}, r.slot_expert));
      out.emplace_back("expert_weights", Tensor::from<T>({Tn, r.top_k}, st.router.weights));
      out.emplace_back("expert_kept", Tensor::from<uint8_t>({Tn, r.top_k}, kept));
    } else {
      const Shape ec = xs.size() == 2 ? Shape{E, r.capacity} : Shape{B, E, r.capacity};
      out.emplace_back("ec_tokens", Tensor::from<int32_t>(ec, r.slot_token));
      out.emplace_back("ec_weights", Tensor::from<T>(ec, st.router.weights));
    }
    std::vector<double> probs(st.router.scores.begin(), st.router.scores.end());
    const RoutingStats s = routing_stats(r, cfg.router.score == ScoreFn::softmax ? probs.data() : nullptr);
    out.emplace_back("stats.tokens_per_expert", Tensor::from<int64_t>({E}, s.tokens_per_expert));
    out.emplace_back("stats.dropped_slots", Tensor::from<int64_t>({}, {s.dropped_slots}));
    out.emplace_back("stats.dropped_tokens", Tensor::from<int64_t>({}, {s.dropped_tokens}));
    scalar("stats.max_over_mean", s.max_over_mean);
    scalar("stats.load_entropy", s.load_entropy);
    scalar("stats.router_entropy", s.mean_router_entropy);
  }

  if (!dy.empty()) {
    std::vector<T> dx(static_cast<size_t>(Tn * H));
    MoeLayerWeights g = make_layer_weights(cfg, dt);
    moe_layer_backward(cfg, w, in, st, dy.data(), dx.data(), g);
    require_finite("grad.x", dx, f.precision);
    out.emplace_back("grad.x", Tensor::from<T>(xs, dx));
    for (auto& named : arch::store_layer_gradients(lw, g, dt)) {
      const Tensor& t = named.second;
      std::vector<double> v(static_cast<size_t>(t.numel()));
      for (int64_t i = 0; i < t.numel(); ++i) v[i] = load_as_double(t.view(), i);
      require_finite(named.first, v, f.precision);
      out.push_back(std::move(named));
    }
  }
  NamedTensors views;
  for (const auto& [name, t] : out) views.emplace_back(name, t.view());
  write_safetensors(f.out, views);
  std::cerr << "moe layer: " << type << ", " << Tn << " tokens, " << E << " experts, "
            << kernels << " experts -> "
            << f.out << "\n";
  return 0;
}

}  // namespace

Run add_layer(CLI::App& app) {
  auto f = std::make_shared<LayerFlags>();
  CLI::App* cmd = app.add_subcommand("layer", "Run one MoE layer on given weights and inputs; write outputs, losses, "
                                               "statistics and (with dy) every gradient");
  cmd->footer("Formats: docs/layer-format.md.");
  cmd->add_option("--config", f->config, "Layer config JSON (Hugging Face key names)")->required();
  cmd->add_option("--weights", f->weights, "Weights (safetensors, HF tensor names)")->required();
  cmd->add_option("--inputs", f->inputs, "Inputs (safetensors): x, and optionally dy, attention_mask, noise, jitter")->required();
  cmd->add_option("--out", f->out, "Output safetensors file (written atomically)")->required();
  cmd->add_option("--precision", f->precision, "f32 or f64: the compute and output type")->capture_default_str();
  cmd->add_option("--prefix", f->prefix, "Prefix every weight name carries (e.g. model.layers.0.mlp.)");
  cmd->add_option("--experts", f->experts,
                  "Expert storage: auto (packed_f32 for f32 without dy, else the weights as given), f32, f64, "
                  "packed_f32, packed_bf16 (the last two: inference only)")
      ->capture_default_str();
  cmd->add_flag("--training", f->training,
                "Training mode: router noise (Soft MoE: soft_moe.noise_std), input jitter and the training-only loss "
                "(deepseek_v2_seq)");
  cmd->add_option("--seed", f->seed, "Seed for noise/jitter not given in the inputs")->capture_default_str();
  return [f]() -> int {
    if (f->precision == "f32") return run_typed<float>(*f);
    if (f->precision == "f64") return run_typed<double>(*f);
    throw InvalidInput("[layer] --precision=" + f->precision + " is not one of: f32, f64");
  };
}

}  // namespace moe::cli
