// MoE layer configurations covering every router, expert and shared-expert path, shared by the
// layer tests (finite differences, invariants).
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "moe/moe_layer.h"
#include "moe/rng.h"

namespace moe::testing {

struct LayerCase {
  std::string name;
  MoeLayerConfig config;
  int64_t n_tokens = 8;
  int64_t group_tokens = 8;
  bool training = false;
};

inline void PrintTo(const LayerCase& c, std::ostream* os) { *os << c.name; }

inline MoeLayerConfig base_config(int64_t H, int64_t E, int64_t k, int64_t I, ExpertAct act) {
  MoeLayerConfig c;
  c.d_model = H;
  c.router.n_experts = E;
  c.router.top_k = k;
  c.expert.act = act;
  c.expert.hidden = I;
  return c;
}

inline std::vector<LayerCase> layer_cases() {
  std::vector<LayerCase> cases;
  {
    auto c = base_config(5, 4, 2, 3, ExpertAct::swiglu);
    c.router.normalize = true;
    c.losses.coef = {{"load_balancing", 0.3}, {"z_loss", 0.1}};
    cases.push_back({"mixtral", c, 7, 7, false});
  }
  {
    auto c = base_config(5, 4, 2, 3, ExpertAct::swiglu);
    c.shared_hidden = 4;
    c.shared_gate = true;
    cases.push_back({"qwen2_shared_gate", c, 6, 3, false});
  }
  {
    auto c = base_config(5, 6, 3, 3, ExpertAct::swiglu);
    c.router.score = ScoreFn::sigmoid;
    c.router.selection = Selection::group_limited;
    c.router.group_score = GroupScore::top2_sum;
    c.router.n_group = 3;
    c.router.topk_group = 2;
    c.router.selection_bias = true;
    c.router.normalize = true;
    c.router.norm_eps = 1e-20;
    c.router.scale = 2.5;
    c.shared_hidden = 4;
    c.losses.coef = {{"deepseek_v3_seq", 0.2}};
    cases.push_back({"deepseek_v3", c, 7, 7, false});
  }
  {
    auto c = base_config(5, 6, 2, 3, ExpertAct::swiglu);
    c.router.selection = Selection::group_limited;
    c.router.group_score = GroupScore::max;
    c.router.n_group = 3;
    c.router.topk_group = 2;
    c.router.scale = 16;
    c.router.scale_only_unnormalized = true;
    c.shared_hidden = 6;
    c.losses.coef = {{"deepseek_v2_seq", 0.2}};
    cases.push_back({"deepseek_v2", c, 5, 5, true});  // DeepSeek computes this loss only in training
  }
  {
    auto c = base_config(5, 4, 2, 3, ExpertAct::gpt_oss_swiglu);
    c.router.logit_bias = true;
    c.router.normalize = true;
    c.expert.bias = true;
    c.expert.limit = 1.5;  // small limit so the clamps are exercised on random data
    cases.push_back({"gpt_oss", c, 6, 6, false});
  }
  {
    auto c = base_config(5, 3, 1, 4, ExpertAct::relu);
    c.router.capacity_mode = CapacityMode::absolute;
    c.router.expert_capacity = 2;
    c.router.dropped = DroppedPolicy::passthrough;
    c.losses.coef = {{"switch", 0.5}, {"z_loss", 0.1}};
    cases.push_back({"switch_passthrough", c, 8, 4, false});
  }
  {
    auto c = base_config(5, 4, 2, 3, ExpertAct::gelu);
    c.router.capacity_mode = CapacityMode::factor;
    c.router.capacity_factor = 0.5;
    c.router.priority = Priority::batch;
    cases.push_back({"topk_capacity_bpr", c, 8, 8, false});
  }
  {
    auto c = base_config(5, 4, 2, 3, ExpertAct::gelu_tanh);
    c.router.noise = NoiseKind::vmoe;
    c.router.noise_std = 1.0;
    c.losses.coef = {{"importance", 0.5}, {"vmoe_load", 0.5}};
    cases.push_back({"vmoe_noise", c, 6, 6, true});
  }
  {
    auto c = base_config(5, 4, 2, 3, ExpertAct::swiglu);
    c.router.noise = NoiseKind::shazeer;
    c.router.normalize = true;
    cases.push_back({"shazeer_noise", c, 6, 6, true});
  }
  {
    auto c = base_config(5, 4, 2, 3, ExpertAct::swiglu);
    c.router.normalize = true;
    c.jitter = 0.05;
    cases.push_back({"mixtral_jitter", c, 5, 5, true});
  }
  {
    auto c = base_config(5, 4, 0, 3, ExpertAct::gelu);
    c.router.selection = Selection::expert_choice;
    c.router.capacity_factor = 1.5;
    cases.push_back({"expert_choice", c, 8, 4, false});
  }
  {
    auto c = base_config(5, 3, 0, 3, ExpertAct::gelu);
    c.soft.slots_per_expert = 2;
    cases.push_back({"soft_moe", c, 6, 3, false});
    c.shared_hidden = 3;  // Soft MoE with a gated shared expert
    c.shared_gate = true;
    cases.push_back({"soft_moe_shared", c, 6, 3, false});
  }
  {
    auto c = base_config(5, 3, 0, 3, ExpertAct::swiglu);
    c.soft.slots_per_expert = 2;
    c.soft.noise_std = 0.7;  // vmoe SoftRouter noise, training only
    cases.push_back({"soft_moe_noise", c, 6, 3, true});
  }
  {
    auto c = base_config(4, 1, 1, 3, ExpertAct::swiglu);  // E = 1
    cases.push_back({"single_expert", c, 1, 1, false});
  }
  {
    auto c = base_config(4, 3, 3, 2, ExpertAct::swiglu);  // k = E
    c.router.normalize = true;
    cases.push_back({"k_equals_e", c, 3, 3, false});
  }
  return cases;
}

// Random weights: N(0, 0.5²); Soft MoE scale 1.5; shapes from the config.
inline MoeLayerWeights random_weights(const MoeLayerConfig& c, Rng& rng) {
  MoeLayerWeights w = make_layer_weights(c, DType::f64);
  w.for_each_tensor([&](const std::string& name, Tensor& t) {
    if (t.empty()) return;
    double* p = t.as<double>();
    for (int64_t i = 0; i < t.numel(); ++i) p[i] = 0.5 * rng.normal();
    if (name == "soft.scale") p[0] = 1.5;
  });
  return w;
}

}  // namespace moe::testing
