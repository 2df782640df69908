"""Independent PyTorch reference of one MoE layer, for `moe layer` (docs/layer-format.md).

Written from shared/spec/semantics.md in the style of the Hugging Face modeling code:
the forward is plain torch, the backward is whatever autograd gives (gradients flow
through the combine weights and never through a discrete choice).

Everything runs in float64. Every top-k / argmax / sort breaks ties toward the LOWEST
index (spec §1.5): `torch.topk` does not promise that, so selection always goes through
`stable_topk` (a stable sort of the negated values).

Layout:
  resolve(cfg)            config JSON -> Layer (router fields as in include/moe/router.h)
  weight_specs(L, fused)  HF / canonical tensor names and shapes (docs/layer-format.md)
  layer_forward(...)      forward; returns outputs with the names of the outputs file
  run_reference(...)      forward + autograd backward of  sum(y*dy) + aux_total
The routers, losses and experts are in moe_torch_parts.py.
"""

import numpy as np
import torch
import torch.nn.functional as F

from moe_torch_parts import (
    EXPERT_ACTS, GATED_ACTS, bf16, capacity_of, combine_token_choice, deepseek_v2_router,
    deepseek_v3_router, expert_choice_router, expert_forward, generic_token_choice,
    apply_capacity, gpt_oss_router, compute_losses, mixtral_router, qwen_router,
    soft_moe, switch_router, routing_stats)

torch.set_default_dtype(torch.float64)

# RouterConfig defaults (include/moe/router.h); enum values spelled as in the header.
ROUTER_DEFAULTS = dict(
    n_experts=0, top_k=1, score="softmax", selection="topk", normalize=False, norm_eps=0.0,
    scale=1.0, scale_only_unnormalized=False, logit_bias=False, selection_bias=False,
    bf16_logits=False, n_group=1, topk_group=1, group_score="top2_sum", noise="none",
    noise_std=1.0, capacity_mode="none", expert_capacity=0, capacity_factor=1.0,
    capacity_multiple_of=1, priority="position", dropped="zero")

MODEL_TYPES = ("mixtral", "qwen2_moe", "qwen3_moe", "olmoe", "deepseek_v2", "deepseek_v3",
               "gpt_oss", "switch_transformers", "custom")
NOT_TRAINABLE = ("gate.e_score_correction_bias", "router.selection_bias")  # selection only
TRAINING_ONLY_LOSSES = ("deepseek_v2_seq",)
LOSS_NAMES = ("load_balancing", "switch", "z_loss", "importance", "vmoe_load",
              "deepseek_v2_seq", "deepseek_v3_seq")


class Layer:
    """The resolved layer description (what the C++ must derive from the config)."""

    def __repr__(self):
        return "Layer(%r)" % self.__dict__


def _get(cfg, key, default):
    v = cfg.get(key)
    return default if v is None else v


def hf_losses(cfg):
    """The loss terms an HF model type implies without a `losses` object: HF adds
    router_aux_loss_coef (and Switch's router_z_loss_coef) only with output_router_logits
    (config default false; Switch's forward defaults it to true); DeepSeek-V2's gate uses
    aux_loss_alpha (remote configuration_deepseek.py default 0.001)."""
    mt = cfg["model_type"]
    coef = {"mixtral": 0.001, "qwen2_moe": 0.001, "qwen3_moe": 0.001, "olmoe": 0.01,
            "gpt_oss": 0.001, "switch_transformers": 0.001}
    out = {}
    if mt in coef and _get(cfg, "output_router_logits", mt == "switch_transformers"):
        aux = float(_get(cfg, "router_aux_loss_coef", coef[mt]))
        out["switch" if mt == "switch_transformers" else "load_balancing"] = aux
        if mt == "switch_transformers":
            out["z_loss"] = float(_get(cfg, "router_z_loss_coef", 0.001))
    if mt == "deepseek_v2":
        out["deepseek_v2_seq"] = float(_get(cfg, "aux_loss_alpha", 0.001))
    return {n: c for n, c in out.items() if c != 0}


def resolve(cfg):
    mt = cfg["model_type"]
    if mt not in MODEL_TYPES:
        raise ValueError("unknown model_type " + mt)
    L = Layer()
    L.model_type = mt
    L.H = cfg["d_model"] if mt == "switch_transformers" else cfg["hidden_size"]
    L.E = cfg[{"mixtral": "num_local_experts", "gpt_oss": "num_local_experts",
               "deepseek_v2": "n_routed_experts", "deepseek_v3": "n_routed_experts"}.get(mt, "num_experts")]
    L.k = 1 if mt == "switch_transformers" else _get(cfg, "num_experts_per_tok", 1)
    L.I = cfg[{"qwen2_moe": "moe_intermediate_size", "qwen3_moe": "moe_intermediate_size",
               "deepseek_v2": "moe_intermediate_size", "deepseek_v3": "moe_intermediate_size",
               "switch_transformers": "d_ff"}.get(mt, "intermediate_size")]
    L.act = cfg.get("expert_act") or {"switch_transformers": "relu",
                                      "gpt_oss": "gpt_oss_swiglu"}.get(mt, "swiglu")
    assert L.act in EXPERT_ACTS, L.act
    L.swiglu_limit = float(_get(cfg, "swiglu_limit", 7.0))
    L.swiglu_alpha = float(_get(cfg, "swiglu_alpha", 1.702))
    L.expert_bias = mt == "gpt_oss" or bool(cfg.get("expert_bias", False))
    # HF config-class defaults for absent keys (src/arch/<model_type>.cpp, docs/layer-format.md)
    L.jitter = float(_get(cfg, "router_jitter_noise",
                          0.01 if mt == "switch_transformers" else 0.0)) > 0
    L.soft = cfg.get("soft_moe")
    L.losses = dict(cfg["losses"]) if "losses" in cfg else hf_losses(cfg)
    for name in L.losses:
        assert name in LOSS_NAMES, name

    r = dict(ROUTER_DEFAULTS, n_experts=L.E, top_k=L.k)
    norm = cfg.get("norm_topk_prob")
    if mt == "mixtral":
        r["normalize"] = True
    elif mt in ("qwen2_moe", "qwen3_moe", "olmoe"):
        r["normalize"] = bool(norm)
    elif mt == "gpt_oss":
        r.update(normalize=True, logit_bias=True)
    elif mt == "switch_transformers":
        r.update(capacity_mode="absolute", expert_capacity=_get(cfg, "expert_capacity", 64),
                 dropped="passthrough")
    elif mt == "deepseek_v2":
        r.update(scale=float(_get(cfg, "routed_scaling_factor", 1.0)), norm_eps=1e-20,
                 normalize=bool(norm) and L.k > 1, scale_only_unnormalized=True)
        if _get(cfg, "topk_method", "greedy") == "group_limited_greedy":
            r.update(selection="group_limited", group_score="max",
                     n_group=cfg["n_group"], topk_group=cfg["topk_group"])
    elif mt == "deepseek_v3":
        r.update(score="sigmoid", selection="group_limited", group_score="top2_sum",
                 n_group=_get(cfg, "n_group", 8), topk_group=_get(cfg, "topk_group", 4),
                 selection_bias=True, normalize=bool(_get(cfg, "norm_topk_prob", True)),
                 norm_eps=1e-20, scale=float(_get(cfg, "routed_scaling_factor", 2.5)))
    if "switch_dropped" in cfg:
        r["dropped"] = cfg["switch_dropped"]
    for key, v in cfg.get("router", {}).items():
        assert key in ROUTER_DEFAULTS, "unknown RouterConfig field " + key
        r[key] = v
    L.router = r
    L.k = r["top_k"]
    # HF-style router functions are used for a plain HF model type; overrides -> generic.
    L.hf_router = mt != "custom" and "router" not in cfg

    # shared expert
    L.shared = None
    n_shared = {"deepseek_v2": 2, "deepseek_v3": 1}.get(mt, 0)   # n_shared_experts; null: none
    n_shared = (cfg["n_shared_experts"] or 0) if "n_shared_experts" in cfg else n_shared
    if mt == "qwen2_moe" and _get(cfg, "shared_expert_intermediate_size", 5632) > 0:
        L.shared = dict(I=_get(cfg, "shared_expert_intermediate_size", 5632), gated=True)
    elif mt in ("deepseek_v2", "deepseek_v3") and n_shared > 0:
        L.shared = dict(I=n_shared * L.I, gated=False)
    elif mt == "custom" and _get(cfg, "shared_intermediate_size", 0) > 0:
        L.shared = dict(I=cfg["shared_intermediate_size"], gated=bool(cfg.get("shared_gate", False)))
    L.shared_act = cfg.get("shared_act") or "swiglu"     # any model type; default SwiGLU
    assert L.shared_act in EXPERT_ACTS and L.shared_act != "gpt_oss_swiglu", L.shared_act
    return L


# --------------------------------------------------------------------------------------
# tensor names (docs/layer-format.md)
# --------------------------------------------------------------------------------------

def router_weight_names(L):
    mt = L.model_type
    if mt == "switch_transformers":
        return {"weight": "router.classifier.weight"}
    if mt == "gpt_oss":
        return {"weight": "router.weight", "bias": "router.bias"}
    if mt == "custom":
        d = {"weight": "router.weight"}
        if L.router["logit_bias"]:
            d["bias"] = "router.bias"
        if L.router["noise"] == "shazeer":
            d["noise_weight"] = "router.noise_weight"
        if L.router["selection_bias"]:
            d["selection_bias"] = "router.selection_bias"
        return d
    d = {"weight": "gate.weight"}
    if L.router["selection_bias"]:
        d["selection_bias"] = "gate.e_score_correction_bias"
    return d


def weight_specs(L, fused=False):
    """[(name, shape, trainable)] for every tensor the weights file must hold."""
    H, E, I = L.H, L.E, L.I
    gated = L.act in GATED_ACTS
    specs = []
    if L.soft is not None:
        p = L.soft["slots_per_expert"]
        specs += [("soft.phi", (H, E * p), True), ("soft.scale", (), True)]
    else:
        rn = router_weight_names(L)
        specs.append((rn["weight"], (E, H), True))
        if "bias" in rn:
            specs.append((rn["bias"], (E,), True))
        if "noise_weight" in rn:
            specs.append((rn["noise_weight"], (E, H), True))
        if "selection_bias" in rn:
            specs.append((rn["selection_bias"], (E,), False))
    mt = L.model_type
    if mt == "gpt_oss":
        specs += [("experts.gate_up_proj", (E, H, 2 * I), True),
                  ("experts.gate_up_proj_bias", (E, 2 * I), True),
                  ("experts.down_proj", (E, I, H), True),
                  ("experts.down_proj_bias", (E, H), True)]
    elif mt == "custom":
        if gated:
            specs.append(("experts.gate", (E, I, H), True))
        specs += [("experts.up", (E, I, H), True), ("experts.down", (E, H, I), True)]
        if L.expert_bias:
            if gated:
                specs.append(("experts.gate_bias", (E, I), True))
            specs += [("experts.up_bias", (E, I), True), ("experts.down_bias", (E, H), True)]
    elif mt == "switch_transformers":
        for e in range(E):
            specs += [("experts.expert_%d.wi.weight" % e, (I, H), True),
                      ("experts.expert_%d.wo.weight" % e, (H, I), True)]
    elif fused:
        specs += [("experts.gate_up_proj", (E, 2 * I, H), True),
                  ("experts.down_proj", (E, H, I), True)]
    else:
        g, u, d = ("w1", "w3", "w2") if mt == "mixtral" else ("gate_proj", "up_proj", "down_proj")
        for e in range(E):
            specs += [("experts.%d.%s.weight" % (e, g), (I, H), True),
                      ("experts.%d.%s.weight" % (e, u), (I, H), True),
                      ("experts.%d.%s.weight" % (e, d), (H, I), True)]
    if L.shared is not None:
        Is = L.shared["I"]
        if mt == "custom":
            if L.shared_act in GATED_ACTS:
                specs.append(("shared.gate", (Is, H), True))
            specs += [("shared.up", (Is, H), True), ("shared.down", (H, Is), True)]
            if L.shared["gated"]:
                specs.append(("shared.gate_weight", (1, H), True))
        else:
            pre = "shared_expert." if mt == "qwen2_moe" else "shared_experts."
            if L.shared_act in GATED_ACTS:
                specs.append((pre + "gate_proj.weight", (Is, H), True))
            specs += [(pre + "up_proj.weight", (Is, H), True),
                      (pre + "down_proj.weight", (H, Is), True)]
            if mt == "qwen2_moe":
                specs.append(("shared_expert_gate.weight", (1, H), True))
    return specs


def expert_params(L, W, e):
    """Canonical per-expert tensors (differentiable views into W): gate/up [I,H], down [H,I]."""
    mt, I = L.model_type, L.I
    P = dict(gate=None, up=None, down=None, gate_b=None, up_b=None, down_b=None)
    if mt == "gpt_oss":
        gu = W["experts.gate_up_proj"][e]                  # [H, 2I], columns interleaved
        P.update(gate=gu[:, 0::2].t(), up=gu[:, 1::2].t(), down=W["experts.down_proj"][e].t())
        b = W["experts.gate_up_proj_bias"][e]
        P.update(gate_b=b[0::2], up_b=b[1::2], down_b=W["experts.down_proj_bias"][e])
    elif mt == "custom":
        P.update(gate=W["experts.gate"][e] if "experts.gate" in W else None,
                 up=W["experts.up"][e], down=W["experts.down"][e])
        if L.expert_bias:
            P.update(gate_b=W["experts.gate_bias"][e] if "experts.gate_bias" in W else None,
                     up_b=W["experts.up_bias"][e], down_b=W["experts.down_bias"][e])
    elif mt == "switch_transformers":
        P.update(up=W["experts.expert_%d.wi.weight" % e], down=W["experts.expert_%d.wo.weight" % e])
    elif "experts.gate_up_proj" in W:                     # v5 fused, gate rows first
        gu = W["experts.gate_up_proj"][e]
        P.update(gate=gu[:I], up=gu[I:], down=W["experts.down_proj"][e])
    else:
        g, u, d = ("w1", "w3", "w2") if mt == "mixtral" else ("gate_proj", "up_proj", "down_proj")
        P.update(gate=W["experts.%d.%s.weight" % (e, g)], up=W["experts.%d.%s.weight" % (e, u)],
                 down=W["experts.%d.%s.weight" % (e, d)])
    return P


def shared_forward(L, W, x):
    if L.model_type == "custom":
        P = dict(gate=W.get("shared.gate"), up=W["shared.up"], down=W["shared.down"],
                 gate_b=None, up_b=None, down_b=None)
        gate_w = W.get("shared.gate_weight")
    else:
        pre = "shared_expert." if L.model_type == "qwen2_moe" else "shared_experts."
        P = dict(gate=W.get(pre + "gate_proj.weight"), up=W[pre + "up_proj.weight"],
                 down=W[pre + "down_proj.weight"], gate_b=None, up_b=None, down_b=None)
        gate_w = W.get("shared_expert_gate.weight")
    out = expert_forward(L, P, x, act=L.shared_act)
    if L.shared["gated"]:
        out = torch.sigmoid(F.linear(x, gate_w)) * out     # Qwen2-MoE: sigmoid(x·w_gᵀ) per token
    return out


# --------------------------------------------------------------------------------------
# the layer
# --------------------------------------------------------------------------------------

def layer_forward(L, W, inp, training):
    """W: {name: tensor}; inp: {name: tensor} (x requires grad). Returns {output name: tensor}."""
    x = inp["x"]
    H, E = L.H, L.E
    if x.dim() == 3:
        B, S = x.shape[0], x.shape[1]
    else:
        B, S = 1, x.shape[0]
    T = B * S
    xf = x.reshape(T, H)
    if training and L.jitter:
        xf = xf * inp["jitter"]            # Mixtral/Switch jitter: router AND experts see it
    out = {}
    if L.soft is not None:
        y, disp, comb, slot_logits = soft_moe(L, W, xf, B, S, expert_params,
                                              noise=inp.get("noise") if training else None)
        out.update({"soft.dispatch": disp, "soft.combine": comb, "soft.logits": slot_logits})
        aux = {}
    else:
        rn = router_weight_names(L)
        logits = F.linear(xf, W[rn["weight"]])
        if "bias" in rn:
            logits = logits + W[rn["bias"]]
        out["router_logits"] = logits
        r = L.router
        eff = logits
        if training and r["noise"] == "shazeer":
            noise_logits = F.linear(xf, W[rn["noise_weight"]])
            eff = logits + inp["noise"] * F.softplus(noise_logits)
        elif training and r["noise"] == "vmoe":
            eff = logits + (r["noise_std"] / E) * inp["noise"]
        if r["bf16_logits"]:                 # as a bf16 model: rounded logits, straight-through grad
            eff = eff + (bf16(eff) - eff).detach()
        sel_bias = W[rn["selection_bias"]] if "selection_bias" in rn else None
        if r["selection"] == "expert_choice":
            C = capacity_of(r, S, 1)
            tokens, weights, scores = expert_choice_router(r, eff, B, S, C)
            y = torch.zeros(T, H)
            for e in range(E):
                tok = tokens[e]
                y = y.index_add(0, tok, expert_forward(L, expert_params(L, W, e), xf[tok])
                                * weights[e][:, None])
            shp = (E, C) if x.dim() == 2 else (B, E, C)      # [E,B·C] -> [B,E,C] (global ids)
            out.update({"ec_tokens": tokens.view(E, B, C).transpose(0, 1).reshape(shp),
                        "ec_weights": weights.view(E, B, C).transpose(0, 1).reshape(shp)})
            ids = kept = None
        else:
            if L.hf_router:
                ids, w, kept, scores = hf_route(L, eff, sel_bias, B, S)
            else:
                ids, w, scores = generic_token_choice(r, eff, sel_bias)
                kept = apply_capacity(r, ids, w, B, S)
            y = combine_token_choice(L, W, xf, ids, w, kept, r["dropped"], expert_params)
            out.update({"expert_ids": ids, "expert_weights": w, "expert_kept": kept})
        mask = inp.get("attention_mask")
        aux = compute_losses(L, logits, eff, ids, kept, B, S, mask,
                             ec=(r["selection"] == "expert_choice"))
        out["stats"] = routing_stats(L, ids, kept, out.get("ec_tokens"), eff.detach(), T)
    if L.shared is not None:
        y = y + shared_forward(L, W, xf)
    out["y"] = y.reshape(x.shape)
    total = torch.zeros(())
    for name, coef in active_losses(L, training).items():
        out["loss." + name] = aux[name]
        total = total + coef * aux[name]
    if L.losses:
        out["loss.aux_total"] = total
    return out


def active_losses(L, training):
    """The losses computed in this mode: DeepSeek's MoEGate adds its aux loss only
    `if self.training and self.alpha > 0` (remote modeling_deepseek.py)."""
    return {n: c for n, c in L.losses.items() if training or n not in TRAINING_ONLY_LOSSES}


def hf_route(L, eff, sel_bias, B, S):
    """Model-type router written like the HF code it comes from."""
    r, k, mt = L.router, L.k, L.model_type
    if mt == "mixtral":
        ids, w, scores = mixtral_router(eff, k)
    elif mt in ("qwen2_moe", "qwen3_moe", "olmoe"):
        ids, w, scores = qwen_router(eff, k, r["normalize"])
    elif mt == "gpt_oss":
        ids, w, scores = gpt_oss_router(eff, k)      # eff already includes router.bias
    elif mt == "deepseek_v3":
        ids, w, scores = deepseek_v3_router(eff, sel_bias, k, r["n_group"], r["topk_group"],
                                            r["normalize"], r["scale"])
    elif mt == "deepseek_v2":
        ids, w, scores = deepseek_v2_router(eff, k, r["selection"] == "group_limited",
                                            r["n_group"], r["topk_group"], r["normalize"], r["scale"])
    elif mt == "switch_transformers":
        ids, w, kept, scores = switch_router(eff, B, S, r["expert_capacity"])
        return ids, w, kept, scores
    else:
        raise AssertionError(mt)
    kept = torch.ones_like(ids, dtype=torch.bool)
    return ids, w, kept, scores


def run_reference(cfg, weights, inputs, training):
    """weights/inputs: {name: np.ndarray}. Returns {name: np.ndarray} like the outputs file
    (float64; ids/kept/stats int64), plus 'grad.*' when inputs has `dy`."""
    L = resolve(cfg)
    trainable = {n for n in weights if n not in NOT_TRAINABLE}
    W = {}
    for n, a in weights.items():
        W[n] = torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=n in trainable)
    inp = {n: torch.tensor(np.asarray(a, dtype=np.float64)) for n, a in inputs.items()}
    inp["x"].requires_grad_(True)
    out = layer_forward(L, W, inp, training)
    res = {}
    for n, v in out.items():
        if n == "stats":
            res.update(v)
        elif n == "soft.logits":
            res["router_logits"] = v.detach().numpy()
        elif v.dtype in (torch.int64, torch.bool):
            res[n] = v.numpy().astype(np.int64)
        else:
            res[n] = v.detach().numpy()
    if "dy" in inputs:
        obj = (out["y"] * inp["dy"]).sum()
        if "loss.aux_total" in out:
            obj = obj + out["loss.aux_total"]
        names = ["x"] + sorted(n for n in W if W[n].requires_grad)
        leaves = [inp["x"]] + [W[n] for n in names[1:]]
        grads = torch.autograd.grad(obj, leaves, allow_unused=True)
        for n, leaf, g in zip(names, leaves, grads):
            res["grad." + n] = (torch.zeros_like(leaf) if g is None else g).numpy()
    return res, L
