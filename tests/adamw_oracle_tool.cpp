// Test helper for tests/oracle/adamw_oracle.py: runs our AdamW + clip_grad_norm for the steps
// described in IN and writes the final state to OUT.
//   adamw_oracle_tool IN OUT
// IN (safetensors): "param.<name>" initial parameters, "grad.<k>.<name>" the gradient of step k;
//   metadata "config": {"names": [...], "steps": n, "lr": [per step], "beta1", "beta2", "eps",
//   "weight_decay", "max_norm"}; 1-D tensors get no weight decay (the default predicate).
// OUT: "param.<name>", "adam.m.<name>", "adam.v.<name>", and "norms" [steps] (before clipping).
// Exit status 2 with the error on stderr for invalid input.
#include <cstdio>
#include <cstring>
#include <exception>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "moe/error.h"
#include "moe/optimizer.h"
#include "moe/safetensors.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: adamw_oracle_tool IN OUT\n");
    return 2;
  }
  try {
    const moe::SafetensorsFile in = moe::SafetensorsFile::open(argv[1]);
    const nlohmann::json cfg = nlohmann::json::parse(in.metadata().at("config"));
    const auto names = cfg.at("names").get<std::vector<std::string>>();
    const int steps = cfg.at("steps").get<int>();
    std::map<std::string, moe::Tensor> params, grads;
    moe::NamedTensors param_list, grad_list;
    for (const std::string& name : names) {
      params.emplace(name, in.load("param." + name));
      grads.emplace(name, moe::Tensor(moe::DType::f32, params.at(name).shape()));
      param_list.emplace_back(name, params.at(name).view());
      grad_list.emplace_back(name, grads.at(name).view());
    }
    moe::AdamWOptions opt;
    opt.beta1 = cfg.at("beta1").get<double>();
    opt.beta2 = cfg.at("beta2").get<double>();
    opt.eps = cfg.at("eps").get<double>();
    opt.weight_decay = cfg.at("weight_decay").get<double>();
    moe::AdamW adamw(moe::pair_params(param_list, grad_list), opt);
    moe::Tensor norms(moe::DType::f32, {steps});
    for (int k = 0; k < steps; ++k) {
      for (const std::string& name : names) {
        const moe::Tensor g = in.load("grad." + std::to_string(k) + "." + name);
        std::memcpy(grads.at(name).data(), g.data(), g.nbytes());
      }
      norms.as<float>()[k] = moe::clip_grad_norm(grad_list, cfg.at("max_norm").get<double>());
      adamw.step(cfg.at("lr").at(k).get<double>());
    }
    moe::NamedTensors out;
    for (const auto& [name, t] : param_list) out.emplace_back("param." + name, t);
    for (const auto& [name, t] : adamw.state_tensors()) {
      if (name != "adam.step") out.emplace_back(name, t);
    }
    out.emplace_back("norms", norms.view());
    moe::write_safetensors(argv[2], out);
    return adamw.step_count() == steps ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  }
}
