// Driver for the PyTorch oracle (tests/oracle/test_gpt.py): reads a GPT config (JSON), weights
// (safetensors, GPT names, any float dtype) and inputs (safetensors: "tokens", "targets" I32
// [B, S]); runs forward + backward in float64 and in float32 and writes, for p in {f64, f32}:
//   <p>.logits [B, S, V], <p>.loss.ce, <p>.loss.aux, <p>.loss.total ([1] each),
//   <p>.grad.<weight name> for every trainable weight, <p>.load.<layer> (I64 [E], MoE layers).
// Usage: gpt_oracle_tool config.json weights.safetensors inputs.safetensors out.safetensors [--training]
#include <cstdio>
#include <cstring>
#include <deque>
#include <string>

#include "moe/error.h"
#include "moe/gpt.h"
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
    in.training = argc > 5 && std::strcmp(argv[5], "--training") == 0;
    Outputs out;
    run<double>(c, w64, in, "f64", out);
    run<float>(c, w32, in, "f32", out);
    write_safetensors(argv[4], out.named);
  } catch (const InvalidInput& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  }
  return 0;
}
