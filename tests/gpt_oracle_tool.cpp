// Driver for the PyTorch oracle (tests/oracle/test_gpt.py): reads a GPT config (JSON), weights
// (safetensors, GPT names, any float dtype) and inputs (safetensors: "tokens", "targets" I32
// [B, S]); runs forward + backward in float64 and in float32 and writes, for p in {f64, f32}:
//   <p>.logits [B, S, V], <p>.loss.ce, <p>.loss.aux, <p>.loss.total ([1] each),
//   <p>.grad.<weight name> for every trainable weight, <p>.load.<layer> (I64 [E], MoE layers).
// With --adamw train.safetensors (tokens, targets I32 [N, B, S]; lr F64 [N]; hyper F64 [6] =
// beta1, beta2, eps, weight_decay, clip, bias_update_rate) it also runs N float32 training steps
// as the trainer does (zero grads, forward, backward, clip_grad_norm, AdamW with decay_matrices,
// the aux-loss-free bias update) and writes adamw.loss.total F64 [N], adamw.grad_norm F64 [N] and
// adamw.w.<name>: every weight after the last step.
// Usage: gpt_oracle_tool config.json weights.safetensors inputs.safetensors out.safetensors [--training]
//        [--adamw train.safetensors]
#include <cstdio>
#include <cstring>
#include <deque>
#include <span>
#include <string>

#include "moe/error.h"
#include "moe/gpt.h"
#include "moe/losses.h"
#include "moe/optimizer.h"
#include "moe/safetensors.h"
#include "util/json_file.h"

using namespace moe;

namespace {

struct Outputs {
  std::deque<Tensor> store;  // keeps the data the views point at
  NamedTensors named;
  void add(const std::string& name, Tensor t) {
    store.push_back(std::move(t));
    named.push_back({name, store.back().view()});
  }
};

template <class T>
void run(const GptConfig& c, const GptWeights& w, const GptStepInputs& in, const std::string& p, Outputs& out) {
  GptActivations<T> acts;
  Tensor logits(dtype_of<T>(), {in.batch, in.seq, c.vocab_size});
  const GptLosses l = gpt_forward<T>(c, w, in, acts, logits.as<T>());
  GptWeights g = make_gpt_weights(c, dtype_of<T>());
  gpt_backward<T>(c, w, in, acts, g);
  out.add(p + ".logits", std::move(logits));
  out.add(p + ".loss.ce", Tensor::from<double>({1}, {l.ce}));
  out.add(p + ".loss.aux", Tensor::from<double>({1}, {l.aux}));
  out.add(p + ".loss.total", Tensor::from<double>({1}, {l.total}));
  for (size_t layer = 0; layer < l.expert_load.size(); ++layer) {
    if (l.expert_load[layer].empty()) continue;
    out.add(p + ".load." + std::to_string(layer),
            Tensor::from<int64_t>({static_cast<int64_t>(l.expert_load[layer].size())}, l.expert_load[layer]));
  }
  g.for_each_tensor([&](const std::string& name, Tensor& t) {
    if (gpt_is_trainable(name)) out.add(p + ".grad." + name, std::move(t));
  });
}

NamedTensors named(GptWeights& w, bool trainable_only) {
  NamedTensors out;
  w.for_each_tensor([&](const std::string& name, Tensor& t) {
    if (!trainable_only || gpt_is_trainable(name)) out.emplace_back(name, t.view());
  });
  return out;
}

// N training steps in float32, as src/train/trainer.cpp does one update (grad_accum = 1).
void run_adamw(const GptConfig& c, GptWeights w, const std::string& path, Outputs& out) {
  const SafetensorsFile f = SafetensorsFile::open(path);
  const Tensor tokens = f.load("tokens"), targets = f.load("targets"), lr = f.load("lr"), hyper = f.load("hyper");
  if (tokens.rank() != 3 || targets.shape() != tokens.shape() || lr.numel() != tokens.dim(0) || hyper.numel() != 6) {
    throw InvalidInput("[gpt oracle] --adamw: tokens/targets [N, B, S], lr [N], hyper [6]");
  }
  const int64_t N = tokens.dim(0), B = tokens.dim(1), S = tokens.dim(2);
  const double* h = hyper.as<double>();
  GptWeights g = make_gpt_weights(c, DType::f32);
  const NamedTensors params = named(w, true), grads = named(g, true);
  AdamW adam(pair_params(params, grads), AdamWOptions{lr.as<double>()[0], h[0], h[1], h[2], h[3]});
  GptActivations<float> acts;
  std::vector<double> losses, norms;
  for (int64_t s = 0; s < N; ++s) {
    zero_grads(grads);
    GptStepInputs in;
    in.batch = B;
    in.seq = S;
    in.tokens = tokens.as<int32_t>() + s * B * S;
    in.targets = targets.as<int32_t>() + s * B * S;
    const GptLosses l = gpt_forward<float>(c, w, in, acts, nullptr);
    gpt_backward<float>(c, w, in, acts, g);
    norms.push_back(clip_grad_norm(grads, h[4]));
    adam.step(lr.as<double>()[s]);
    losses.push_back(l.total);
    for (int64_t layer = 0; layer < c.n_layers && h[5] > 0; ++layer) {
      Tensor& bias = w.blocks[layer].moe.selection_bias;
      if (bias.empty()) continue;
      const std::vector<double> load(l.expert_load[layer].begin(), l.expert_load[layer].end());
      aux_free_bias_update<float>(std::span<float>(bias.as<float>(), static_cast<size_t>(bias.numel())), load, h[5],
                                  false);
    }
  }
  out.add("adamw.loss.total", Tensor::from<double>({N}, losses));
  out.add("adamw.grad_norm", Tensor::from<double>({N}, norms));
  w.for_each_tensor([&](const std::string& name, Tensor& t) { out.add("adamw.w." + name, std::move(t)); });
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: %s config.json weights.safetensors inputs.safetensors out.safetensors [--training]\n",
                 argv[0]);
    return 2;
  }
  try {
    const GptConfig c = gpt_config_from_json(util::read_json_file(argv[1], "[gpt oracle]"));
    const SafetensorsFile wf = SafetensorsFile::open(argv[2]);
    GptWeights w64 = make_gpt_weights(c, DType::f64);
    GptWeights w32 = make_gpt_weights(c, DType::f32);
    w64.for_each_tensor([&](const std::string& name, Tensor& t) {
      if (!wf.contains(name)) throw InvalidInput("[gpt oracle] weights file lacks '" + name + "'");
      Tensor src = wf.load(name);
      if (src.shape() != t.shape()) {
        throw InvalidInput("[gpt oracle] '" + name + "' has shape " + shape_str(src.shape()) + ", expected " +
                           shape_str(t.shape()));
      }
      t = src.dtype() == DType::f64 ? std::move(src) : src.convert(DType::f64);
      *w32.find(name) = t.convert(DType::f32);
    });
    const SafetensorsFile inf = SafetensorsFile::open(argv[3]);
    const Tensor tokens = inf.load("tokens");
    const Tensor targets = inf.load("targets");
    if (tokens.rank() != 2 || targets.shape() != tokens.shape()) {
      throw InvalidInput("[gpt oracle] tokens and targets must be [B, S] of the same shape");
    }
    GptStepInputs in;
    in.batch = tokens.dim(0);
    in.seq = tokens.dim(1);
    in.tokens = tokens.as<int32_t>();
    in.targets = targets.as<int32_t>();
    std::string adamw;
    for (int i = 5; i < argc; ++i) {
      if (std::strcmp(argv[i], "--training") == 0) {
        in.training = true;
      } else if (std::strcmp(argv[i], "--adamw") == 0 && i + 1 < argc) {
        adamw = argv[++i];
      } else {
        throw InvalidInput(std::string("[gpt oracle] unknown argument ") + argv[i]);
      }
    }
    Outputs out;
    run<double>(c, w64, in, "f64", out);
    run<float>(c, w32, in, "f32", out);
    if (!adamw.empty()) run_adamw(c, std::move(w32), adamw, out);
    write_safetensors(argv[4], out.named);
  } catch (const InvalidInput& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  }
  return 0;
}
