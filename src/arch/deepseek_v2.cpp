// deepseek_v2 (transformers configuration_deepseek_v2.py; the aux-loss keys, which only the
// checkpoints' remote configuration_deepseek.py / modeling_deepseek.py read, from there).
// Defaults for absent keys: n_shared_experts 2 (null: none), routed_scaling_factor 1.0,
// norm_topk_prob false, topk_method "greedy" (group_limited_greedy needs n_group and topk_group,
// which have no default), aux_loss_alpha 0.001, seq_aux true, first_k_dense_replace 0.
// Softmax scores; as the remote MoEGate: normalise (+1e-20) when norm_topk_prob and k > 1,
// otherwise scale. Its aux loss is computed only in training (layer_losses.cpp).
// Names under model.layers.{i}.mlp.: gate.weight, experts.{e}.{gate,up,down}_proj,
// shared_experts.{gate,up,down}_proj ([n_shared_experts · moe_intermediate_size, H]).
#include "arch/bindings.h"
#include "arch/registry.h"

namespace moe::arch {

namespace {

void moe_layer(const JsonFields& f, MoeLayerConfig& c) {
  deepseek_moe_layer(f, c, 2, 1.0);
  RouterConfig& r = c.router;
  r.normalize = f.flag_or("norm_topk_prob", false) && r.top_k > 1;
  r.scale_only_unnormalized = true;
  const std::string method = f.text_or("topk_method", "greedy");
  if (method == "group_limited_greedy") {
    r.selection = Selection::group_limited;
    r.group_score = GroupScore::max;
    r.n_group = f.positive("n_group");
    r.topk_group = f.positive("topk_group");
  } else if (method != "greedy") {
    f.fail("topk_method '" + method + "' is not one of: greedy, group_limited_greedy");
  }
  c.losses.deepseek_v2_seq_aux = f.flag_or("seq_aux", true);
  set_loss(c, "deepseek_v2_seq", f.number_or("aux_loss_alpha", 0.001));
}

ModelArch distill(const JsonFields& f) { return deepseek_model(f, kDeepseekV2, 0); }

}  // namespace

const ArchEntry kDeepseekV2 = {"deepseek_v2", moe_layer, gate_proj_bindings, true, "mlp.", nullptr, distill};

}  // namespace moe::arch
