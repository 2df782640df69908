"""The table of `moe layer` oracle cases and their seeded weights / inputs (numpy).

A case is a dict: name, cfg (layer.json), shape ((T,) or (B, S)), seed, and options:
  fused      write v5 fused expert tensors (experts.gate_up_proj [E,2I,H] gate first)
  precision  "f64" (default) or "f32"        wdtype  safetensors dtype of weights/inputs
  training   pass --training (noise / jitter; inputs provide `noise` / `jitter`)
  mask       attention_mask [B,S] (list of lists)
  tweak      fn(W, X, L) editing the arrays in place (ties, crafted biases, ...)
"""

import numpy as np

from moe_torch import resolve, weight_specs


def _weights(L, rng, fused):
    W = {}
    for name, shape, _ in weight_specs(L, fused):
        if name.endswith("router.weight") or name in ("gate.weight", "router.classifier.weight"):
            a = rng.standard_normal(shape)
        elif name == "router.noise_weight":
            a = 0.5 * rng.standard_normal(shape)
        elif name in ("gate.e_score_correction_bias", "router.selection_bias"):
            a = 0.1 * rng.standard_normal(shape)
        elif name == "soft.scale":
            a = np.array(1.3)
        elif name == "soft.phi":
            a = rng.standard_normal(shape)
        elif "bias" in name:
            a = 0.3 * rng.standard_normal(shape)
        else:                                   # expert matrices: fan-in scaling
            fan_in = shape[-2] if name in ("experts.gate_up_proj", "experts.down_proj") \
                and L.model_type == "gpt_oss" else shape[-1]
            a = rng.standard_normal(shape) / np.sqrt(fan_in)
        W[name] = np.asarray(a, dtype=np.float64)
    return W


def build(case):
    """Returns (cfg, L, weights, inputs) for a case (float64 numpy arrays)."""
    cfg = case["cfg"]
    L = resolve(cfg)
    rng = np.random.default_rng(case["seed"])
    W = _weights(L, rng, case.get("fused", False))
    shape = tuple(case["shape"])
    T = int(np.prod(shape))
    X = {"x": rng.standard_normal(shape + (L.H,))}
    X["dy"] = rng.standard_normal(X["x"].shape)
    if case.get("mask") is not None:
        X["attention_mask"] = np.asarray(case["mask"], dtype=np.float64)
    if case.get("training"):
        if L.soft is not None and L.soft.get("noise_std", 0) > 0:     # Soft MoE: one per slot
            X["noise"] = rng.standard_normal((T, L.E * L.soft["slots_per_expert"]))
        elif L.router["noise"] != "none":
            X["noise"] = rng.standard_normal((T, L.E))
        if L.jitter:
            eps = cfg["router_jitter_noise"]
            X["jitter"] = rng.uniform(1 - eps, 1 + eps, (T, L.H))
    if case.get("tweak"):
        case["tweak"](W, X, L)
    if case.get("wdtype") in ("F32", "BF16"):      # the reference sees the stored values
        from safetensors_io import bf16_round
        rnd = bf16_round if case["wdtype"] == "BF16" else (lambda a: a.astype(np.float32).astype(np.float64))
        W = {n: rnd(a) for n, a in W.items()}
        X = {n: (a if n == "attention_mask" else rnd(a)) for n, a in X.items()}
    return cfg, L, W, X


# ---------------------------------------------------------------------------------------
# tweaks
# ---------------------------------------------------------------------------------------

def dup_router_rows(name, pairs):
    def f(W, X, L):
        for a, b in pairs:
            W[name][b] = W[name][a]
    return f


def dup_tokens(pairs):
    def f(W, X, L):
        x = X["x"].reshape(-1, L.H)
        for a, b in pairs:
            x[b] = x[a]
    return f


def near_tie_rows(name, a, b, rel):
    """Row b = row a·(1+rel): different in f64, usually equal after bf16 rounding."""
    def f(W, X, L):
        W[name][b] = W[name][a] * (1 + rel)
    return f


def dsv3_negative_bias(W, X, L):
    """Group 0 always wins (bias +3 on expert 1); expert 0 gets sigmoid - 0.6 < 0, so a 0.0
    fill would let masked experts 2/3 beat it, the -inf fill keeps expert 0 (spec §2.5 [Q])."""
    W["gate.weight"] *= 0.3
    W["gate.e_score_correction_bias"][:] = [-0.6, 3.0, 0.0, 0.0]


def dsv3_group_ties(W, X, L):
    """Experts 4..7 duplicate 0..3 (weights and bias): the two groups always tie."""
    W["gate.weight"][4:8] = W["gate.weight"][0:4]
    W["gate.e_score_correction_bias"][4:8] = W["gate.e_score_correction_bias"][0:4]


def all_equal_logits(name):
    def f(W, X, L):
        W[name][:] = 0.0
    return f


def chain(*fs):
    def f(W, X, L):
        for g in fs:
            g(W, X, L)
    return f


def scale_weights(names, factor):
    def f(W, X, L):
        for n in names:
            W[n] *= factor
    return f


# ---------------------------------------------------------------------------------------
# the table
# ---------------------------------------------------------------------------------------

def mixtral(E, k, I=5, H=7, **kw):
    return dict(model_type="mixtral", hidden_size=H, num_local_experts=E, num_experts_per_tok=k,
                intermediate_size=I, **kw)


def qwen(mt, E, k, I=5, H=7, **kw):
    return dict(model_type=mt, hidden_size=H, num_experts=E, num_experts_per_tok=k,
                moe_intermediate_size=I, **kw)


def custom(E, k, I=5, H=7, router=None, **kw):
    d = dict(model_type="custom", hidden_size=H, num_experts=E, num_experts_per_tok=k,
             intermediate_size=I, **kw)
    if router is not None:
        d["router"] = router
    return d


def switch(E, cap, d_ff=5, d_model=7, **kw):
    return dict(model_type="switch_transformers", d_model=d_model, num_experts=E, d_ff=d_ff,
                expert_capacity=cap, **kw)


def dsv3(E, k, n_group, topk_group, I=5, H=7, **kw):
    d = dict(model_type="deepseek_v3", hidden_size=H, n_routed_experts=E, num_experts_per_tok=k,
             moe_intermediate_size=I, n_group=n_group, topk_group=topk_group,
             norm_topk_prob=True, routed_scaling_factor=2.5, n_shared_experts=0)
    d.update(kw)
    return d


def dsv2(E, k, I=5, H=7, **kw):
    d = dict(model_type="deepseek_v2", hidden_size=H, n_routed_experts=E, num_experts_per_tok=k,
             moe_intermediate_size=I, n_shared_experts=0, norm_topk_prob=False,
             routed_scaling_factor=1.0, topk_method="greedy")
    d.update(kw)
    return d


LB = {"load_balancing": 0.02}
MASK_2x5 = [[1, 1, 1, 1, 0], [1, 1, 1, 0, 0]]

CASES = [
    # ---- Mixtral ------------------------------------------------------------------
    dict(name="mixtral_swiglu_T13_E4_k2", cfg=mixtral(4, 2, losses=LB), shape=(13,), seed=1),
    dict(name="mixtral_ties_T9_E4_k2", cfg=mixtral(4, 2, losses=LB), shape=(9,), seed=2,
         tweak=dup_router_rows("gate.weight", [(1, 2), (0, 3)])),
    dict(name="mixtral_kE_T5_E3_k3", cfg=mixtral(3, 3, losses=LB), shape=(5,), seed=3),
    dict(name="mixtral_E1_T1_k1", cfg=mixtral(1, 1, losses=LB), shape=(1,), seed=4),
    dict(name="mixtral_T1_E4_k2", cfg=mixtral(4, 2), shape=(1,), seed=5),
    dict(name="mixtral_mask_B2_S5_E4_k2", cfg=mixtral(4, 2, losses=LB), shape=(2, 5), seed=6,
         mask=MASK_2x5),
    dict(name="mixtral_jitter_train_B2_S4", cfg=mixtral(4, 2, router_jitter_noise=0.1, losses=LB),
         shape=(2, 4), seed=7, training=True),
    dict(name="mixtral_bf16_logits_T11_E4_k2",
         cfg=mixtral(4, 2, router={"bf16_logits": True}, losses=LB), shape=(11,), seed=8,
         tweak=near_tie_rows("gate.weight", 1, 2, 1e-4)),
    dict(name="mixtral_fused_T6_E3_k2", cfg=mixtral(3, 2), shape=(6,), seed=9, fused=True),
    # ---- Qwen / OLMoE -------------------------------------------------------------
    dict(name="qwen2_moe_shared_T13_E6_k3",
         cfg=qwen("qwen2_moe", 6, 3, shared_expert_intermediate_size=4, norm_topk_prob=False,
                  losses=LB), shape=(13,), seed=10),
    dict(name="qwen3_moe_norm_B2_S5_E5_k2",
         cfg=qwen("qwen3_moe", 5, 2, norm_topk_prob=True, losses=LB), shape=(2, 5), seed=11,
         mask=MASK_2x5),
    dict(name="qwen3_moe_fused_T7_E4_k4", cfg=qwen("qwen3_moe", 4, 4, norm_topk_prob=True),
         shape=(7,), seed=12, fused=True),
    dict(name="olmoe_T13_E6_k3",
         cfg=dict(model_type="olmoe", hidden_size=7, num_experts=6, num_experts_per_tok=3,
                  intermediate_size=5, norm_topk_prob=False, losses={"load_balancing": 0.01}),
         shape=(13,), seed=13),
    # ---- GPT-OSS ------------------------------------------------------------------
    dict(name="gpt_oss_T13_E4_k2",
         cfg=dict(model_type="gpt_oss", hidden_size=7, num_local_experts=4, num_experts_per_tok=2,
                  intermediate_size=5, swiglu_limit=0.8, losses=LB),
         shape=(13,), seed=14,
         tweak=scale_weights(["experts.gate_up_proj"], 2.0)),
    dict(name="gpt_oss_ties_T6_E4_k3",
         cfg=dict(model_type="gpt_oss", hidden_size=6, num_local_experts=4, num_experts_per_tok=3,
                  intermediate_size=4, swiglu_limit=7.0),
         shape=(6,), seed=15,
         tweak=chain(dup_router_rows("router.weight", [(0, 1), (2, 3)]),
                     dup_router_rows("router.bias", [(0, 1), (2, 3)]))),
    # ---- DeepSeek -----------------------------------------------------------------
    dict(name="deepseek_v3_groups_shared_B2_S6_E8_k3",
         cfg=dsv3(8, 3, 4, 2, n_shared_experts=2, losses={"deepseek_v3_seq": 0.001}),
         shape=(2, 6), seed=16),
    dict(name="deepseek_v3_neg_bias_inf_fill_T13_E4_k2", cfg=dsv3(4, 2, 2, 1), shape=(13,),
         seed=17, tweak=dsv3_negative_bias),
    dict(name="deepseek_v3_group_ties_T5_E8_k2", cfg=dsv3(8, 2, 2, 1), shape=(5,), seed=18,
         tweak=dsv3_group_ties),
    dict(name="deepseek_v3_k1_nogroup_T4_E3", cfg=dsv3(3, 1, 1, 1, routed_scaling_factor=1.5),
         shape=(4,), seed=19),
    dict(name="deepseek_v2_group_max_B2_S5_E8_k3",
         cfg=dsv2(8, 3, topk_method="group_limited_greedy", n_group=4, topk_group=2,
                  routed_scaling_factor=16.0, n_shared_experts=1, losses={"deepseek_v2_seq": 0.003}),
         shape=(2, 5), seed=20, training=True),
    dict(name="deepseek_v2_greedy_norm_T9_E5_k2",
         cfg=dsv2(5, 2, norm_topk_prob=True, routed_scaling_factor=2.0,
                  losses={"deepseek_v2_seq": 0.001}),
         shape=(9,), seed=21, training=True),
    # the gate's aux loss exists only in training: no loss.deepseek_v2_seq, aux_total 0
    dict(name="deepseek_v2_seq_eval_absent_B2_S4_E4_k2",
         cfg=dsv2(4, 2, losses={"deepseek_v2_seq": 0.01}), shape=(2, 4), seed=48),
    dict(name="deepseek_v2_greedy_k1_norm_T5_E4",
         cfg=dsv2(4, 1, norm_topk_prob=True, routed_scaling_factor=2.0), shape=(5,), seed=22),
    # ---- Switch -------------------------------------------------------------------
    dict(name="switch_passthrough_B2_S7_E4_cap2",
         cfg=switch(4, 2, switch_dropped="passthrough", losses={"switch": 0.01, "z_loss": 0.001}),
         shape=(2, 7), seed=23),
    dict(name="switch_zero_B3_S5_E3_cap1",
         cfg=switch(3, 1, switch_dropped="zero", losses={"switch": 0.01, "z_loss": 0.001}),
         shape=(3, 5), seed=24),
    dict(name="switch_ties_T6_E4_cap2",
         cfg=switch(4, 2, switch_dropped="passthrough", losses={"switch": 0.01}),
         shape=(6,), seed=25, tweak=all_equal_logits("router.classifier.weight")),
    dict(name="switch_E1_T1_cap1", cfg=switch(1, 1, losses={"z_loss": 0.001}), shape=(1,), seed=26),
    # ---- custom: capacity-factor top-k, BPR, noise -------------------------------
    dict(name="custom_capfactor_kmajor_relu_B2_S7_E4_k2",
         cfg=custom(4, 2, expert_act="relu",
                    router={"capacity_mode": "factor", "capacity_factor": 0.5, "normalize": True},
                    losses={"z_loss": 0.001, "load_balancing": 0.01}),
         shape=(2, 7), seed=27),
    dict(name="custom_capfactor_bpr_gelu_T13_E4_k2",
         cfg=custom(4, 2, expert_act="gelu",
                    router={"capacity_mode": "factor", "capacity_factor": 0.5,
                            "capacity_multiple_of": 2, "priority": "batch"},
                    losses={"importance": 0.01}),
         shape=(13,), seed=28),
    dict(name="custom_capfactor_bpr_ties_passthrough_T8_E3_k1",
         cfg=custom(3, 1, expert_act="gelu_tanh",
                    router={"capacity_mode": "factor", "capacity_factor": 0.75,
                            "priority": "batch", "dropped": "passthrough"},
                    losses={"switch": 0.01}),
         shape=(8,), seed=29, tweak=dup_tokens([(0, 3), (1, 5), (2, 7)])),
    dict(name="custom_shazeer_noise_train_B2_S6_E4_k2",
         cfg=custom(4, 2, router={"noise": "shazeer", "normalize": True},
                    losses={"importance": 0.1, "load_balancing": 0.01}),
         shape=(2, 6), seed=30, training=True),
    dict(name="custom_vmoe_noise_bpr_train_B2_S8_E4_k2",
         cfg=custom(4, 2, expert_act="gelu_tanh",
                    router={"noise": "vmoe", "noise_std": 1.0, "capacity_mode": "factor",
                            "capacity_factor": 1.0, "capacity_multiple_of": 4, "priority": "batch"},
                    losses={"importance": 1.0, "vmoe_load": 1.0}),
         shape=(2, 8), seed=31, training=True),
    dict(name="custom_vmoe_noise_eval_T9_E4_k2",
         cfg=custom(4, 2, router={"noise": "vmoe", "noise_std": 1.0}, losses={"importance": 1.0}),
         shape=(9,), seed=32),
    # ---- custom: expert choice ------------------------------------------------------
    dict(name="custom_expert_choice_gelu_B2_S6_E3_cf2",
         cfg=custom(3, 1, expert_act="gelu",
                    router={"selection": "expert_choice", "capacity_factor": 2.0},
                    losses={"z_loss": 0.001, "importance": 0.01}),
         shape=(2, 6), seed=33),
    dict(name="custom_expert_choice_ties_mult4_T10_E4",
         cfg=custom(4, 1, router={"selection": "expert_choice", "capacity_factor": 1.0,
                                  "capacity_multiple_of": 4}),
         shape=(10,), seed=34, tweak=dup_tokens([(1, 4), (2, 8), (0, 9)])),
    dict(name="custom_expert_choice_E1_T3",
         cfg=custom(1, 1, expert_act="relu",
                    router={"selection": "expert_choice", "capacity_factor": 1.0}),
         shape=(3,), seed=35),
    # ---- custom: Soft MoE -----------------------------------------------------------
    dict(name="custom_soft_moe_swiglu_B2_S5_E3_p2",
         cfg=custom(3, 1, soft_moe={"slots_per_expert": 2}), shape=(2, 5), seed=36),
    dict(name="custom_soft_moe_relu_T1_E2_p1",
         cfg=custom(2, 1, expert_act="relu", soft_moe={"slots_per_expert": 1}), shape=(1,), seed=37),
    dict(name="custom_soft_moe_gelu_big_T13_E4_p3",
         cfg=custom(4, 1, H=3, expert_act="gelu", soft_moe={"slots_per_expert": 3}),
         shape=(13,), seed=38),
    # a shared expert is added to a Soft MoE layer's output like any layer's (it was dropped)
    dict(name="custom_soft_moe_shared_gated_B2_S4_E3_p2",
         cfg=custom(3, 1, soft_moe={"slots_per_expert": 2}, shared_intermediate_size=4, shared_gate=True),
         shape=(2, 4), seed=51),
    # vmoe SoftRouter noise: logits + noise_std·ε in training
    dict(name="custom_soft_moe_noise_train_B2_S5_E2_p2",
         cfg=custom(2, 1, soft_moe={"slots_per_expert": 2, "noise_std": 0.6}), shape=(2, 5), seed=52,
         training=True),
    # ---- custom: experts / shared / biases / groups ---------------------------------
    dict(name="custom_gpt_oss_act_bias_sigmoid_T9_E4_k2",
         cfg=custom(4, 2, expert_act="gpt_oss_swiglu", expert_bias=True, swiglu_limit=0.9,
                    router={"logit_bias": True, "score": "sigmoid", "normalize": True,
                            "norm_eps": 1e-20, "scale": 1.7},
                    losses={"z_loss": 0.01, "deepseek_v3_seq": 0.01}),
         shape=(9,), seed=39),
    dict(name="custom_shared_gated_gelu_tanh_T13_E5_k2",
         cfg=custom(5, 2, expert_act="gelu_tanh", expert_bias=True,
                    shared_intermediate_size=6, shared_gate=True, shared_act="gelu_tanh",
                    router={"normalize": True}, losses={"load_balancing": 0.01}),
         shape=(13,), seed=40),
    dict(name="custom_shared_ungated_swiglu_groups_T8_E6_k2",
         cfg=custom(6, 2, shared_intermediate_size=3,
                    router={"selection": "group_limited", "n_group": 3, "topk_group": 2,
                            "group_score": "max", "selection_bias": True, "scale": 0.5}),
         shape=(8,), seed=41),
    dict(name="custom_bf16_ties_relu_T12_E5_k2",
         cfg=custom(5, 2, expert_act="relu", router={"bf16_logits": True, "normalize": True}),
         shape=(12,), seed=42,
         tweak=chain(near_tie_rows("router.weight", 3, 1, 2e-4),
                     near_tie_rows("router.weight", 0, 4, -1e-4))),
    # the DeepSeek losses read the scores of the rounded logits the selection used
    dict(name="custom_bf16_logits_dsv3_loss_T12_E4_k2",
         cfg=custom(4, 2, router={"score": "sigmoid", "normalize": True, "norm_eps": 1e-20,
                                  "bf16_logits": True},
                    losses={"deepseek_v3_seq": 0.1}),
         shape=(12,), seed=49, tweak=near_tie_rows("router.weight", 1, 2, 1e-4)),
    dict(name="deepseek_v2_bf16_logits_seq_train_B2_S5_E4_k2",
         cfg=dsv2(4, 2, router={"bf16_logits": True}, losses={"deepseek_v2_seq": 0.1}),
         shape=(2, 5), seed=50, training=True, tweak=near_tie_rows("gate.weight", 0, 3, 1e-4)),
    # ---- float32 runs ---------------------------------------------------------------
    dict(name="mixtral_f32_T13_E4_k2", cfg=mixtral(4, 2, losses=LB), shape=(13,), seed=43,
         precision="f32", wdtype="F32"),
    dict(name="deepseek_v3_f32_bf16weights_B2_S4_E4_k2",
         cfg=dsv3(4, 2, 2, 1, n_shared_experts=1, losses={"deepseek_v3_seq": 0.001}),
         shape=(2, 4), seed=44, precision="f32", wdtype="BF16"),
    dict(name="switch_f32_B2_S6_E3_cap2",
         cfg=switch(3, 2, switch_dropped="passthrough", losses={"switch": 0.01, "z_loss": 0.001}),
         shape=(2, 6), seed=45, precision="f32", wdtype="F32"),
    dict(name="custom_soft_moe_f32_T7_E2_p2",
         cfg=custom(2, 1, soft_moe={"slots_per_expert": 2}), shape=(7,), seed=46,
         precision="f32", wdtype="F32"),
    dict(name="custom_soft_moe_shared_noise_f32_B2_S4_E3_p1",
         cfg=custom(3, 1, soft_moe={"slots_per_expert": 1, "noise_std": 0.4}, shared_intermediate_size=3),
         shape=(2, 4), seed=53, precision="f32", wdtype="F32", training=True),
    dict(name="custom_expert_choice_f64_from_bf16_T8_E4",
         cfg=custom(4, 1, router={"selection": "expert_choice", "capacity_factor": 1.5}),
         shape=(8,), seed=47, wdtype="BF16"),
]
