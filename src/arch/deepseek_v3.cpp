// deepseek_v3 (transformers configuration_deepseek_v3.py / modeling_deepseek_v3.py). Defaults
// for absent keys: n_shared_experts 1 (null: none), n_group 8, topk_group 4,
// routed_scaling_factor 2.5, norm_topk_prob true, first_k_dense_replace 3. Sigmoid scores, the
// selection-only e_score_correction_bias, group-limited top-k by top-2 sums (-inf fill),
// normalise (+1e-20) for any k, then scale. HF computes no balance loss for it (the remote
// gate's noaux_tc is inference-only). Names under model.layers.{i}.mlp.: gate.weight,
// gate.e_score_correction_bias, experts.{e}.{gate,up,down}_proj, shared_experts.*.
#include "arch/bindings.h"
#include "arch/registry.h"

namespace moe::arch {

namespace {

void moe_layer(const JsonFields& f, MoeLayerConfig& c) {
  deepseek_moe_layer(f, c, 1, 2.5);
  RouterConfig& r = c.router;
  r.score = ScoreFn::sigmoid;
  r.selection = Selection::group_limited;
  r.group_score = GroupScore::top2_sum;
  r.selection_bias = true;
  r.n_group = f.integer_or("n_group", 8);
  r.topk_group = f.integer_or("topk_group", 4);
  r.normalize = f.flag_or("norm_topk_prob", true);  // HF and DeepSeek's inference code: for any k
}

ModelArch distill(const JsonFields& f) { return deepseek_model(f, kDeepseekV3, 3); }

}  // namespace

const ArchEntry kDeepseekV3 = {"deepseek_v3", moe_layer, gate_proj_bindings, true, "mlp.", nullptr, distill};

}  // namespace moe::arch
