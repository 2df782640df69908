"""Routers, experts, capacity, Soft MoE and losses of the PyTorch oracle (see moe_torch.py).

All float64. Ties: lowest expert / token index first (stable sorts), spec §1.5.
"""

import math

import torch
import torch.nn.functional as F

EXPERT_ACTS = ("swiglu", "gelu", "gelu_tanh", "relu", "gpt_oss_swiglu")
GATED_ACTS = ("swiglu", "gpt_oss_swiglu")
NEG_INF = float("-inf")


# --------------------------------------------------------------------------------------
# selection helpers
# --------------------------------------------------------------------------------------

def stable_topk(v, k, dim=-1):
    """Indices of the k largest entries along dim, best first, ties -> lowest index."""
    order = torch.sort(-v.detach(), dim=dim, stable=True).indices
    return order.narrow(dim, 0, k)


def bf16(t):
    """Round to bf16 the way torch does it (float64 -> float32 -> bf16, nearest-even)."""
    return t.detach().to(torch.float32).to(torch.bfloat16).to(torch.float64)


def capacity_of(r, group_tokens, k):
    """vmoe compute_capacity: ceil(S·k·cf/E), rounded up to capacity_multiple_of."""
    if r["capacity_mode"] == "absolute":
        return int(r["expert_capacity"])
    c = math.ceil(group_tokens * k * r["capacity_factor"] / r["n_experts"])
    m = int(r["capacity_multiple_of"])
    c = ((c + m - 1) // m) * m
    if c < 1:
        raise ValueError("capacity < 1")
    return c


# --------------------------------------------------------------------------------------
# HF-style routers (eff: [T,E] logits incl. router bias / noise). Return ids [T,k] long,
# weights [T,k] (differentiable), scores [T,E].
# --------------------------------------------------------------------------------------

def mixtral_router(router_logits, top_k):
    routing_weights = F.softmax(router_logits, dim=1, dtype=torch.float64)
    selected_experts = stable_topk(routing_weights, top_k)
    w = routing_weights.gather(1, selected_experts)
    w = w / w.sum(dim=-1, keepdim=True)
    return selected_experts, w, routing_weights


def qwen_router(router_logits, top_k, norm_topk_prob):
    routing_weights = F.softmax(router_logits, dim=1, dtype=torch.float64)
    selected_experts = stable_topk(routing_weights, top_k)
    w = routing_weights.gather(1, selected_experts)
    if norm_topk_prob:
        w = w / w.sum(dim=-1, keepdim=True)
    return selected_experts, w, routing_weights


def gpt_oss_router(router_logits, top_k):
    """top-k on the (biased) logits, softmax over the k selected values only."""
    router_indices = stable_topk(router_logits, top_k)
    router_top_value = router_logits.gather(1, router_indices)
    w = F.softmax(router_top_value, dim=1)
    return router_indices, w, F.softmax(router_logits, dim=1)


def deepseek_v3_router(router_logits, e_score_correction_bias, top_k, n_group, topk_group,
                       norm_topk_prob, routed_scaling_factor, fill=NEG_INF):
    T, E = router_logits.shape
    scores = router_logits.sigmoid()
    scores_for_choice = scores.detach() + e_score_correction_bias.detach()
    per_group = scores_for_choice.view(T, n_group, E // n_group)
    top2 = torch.sort(per_group, dim=-1, descending=True, stable=True).values[..., :2]
    group_scores = top2.sum(dim=-1)
    group_idx = stable_topk(group_scores, topk_group)
    group_mask = torch.zeros_like(group_scores).scatter_(1, group_idx, 1)
    score_mask = group_mask.unsqueeze(-1).expand(T, n_group, E // n_group).reshape(T, E)
    tmp_scores = scores_for_choice.masked_fill(~score_mask.bool(), fill)
    topk_indices = stable_topk(tmp_scores, top_k)
    topk_weights = scores.gather(1, topk_indices)
    if norm_topk_prob:
        topk_weights = topk_weights / (topk_weights.sum(dim=-1, keepdim=True) + 1e-20)
    topk_weights = topk_weights * routed_scaling_factor
    return topk_indices, topk_weights, scores


def deepseek_v2_router(router_logits, top_k, group_limited, n_group, topk_group,
                       normalize, routed_scaling_factor):
    """Remote-code MoEGate. `normalize` is already `norm_topk_prob and top_k > 1`."""
    T, E = router_logits.shape
    scores = router_logits.softmax(dim=-1, dtype=torch.float64)
    if group_limited:
        group_scores = scores.detach().view(T, n_group, -1).max(dim=-1).values
        group_idx = stable_topk(group_scores, topk_group)
        group_mask = torch.zeros_like(group_scores).scatter_(1, group_idx, 1)
        score_mask = group_mask.unsqueeze(-1).expand(T, n_group, E // n_group).reshape(T, -1)
        tmp_scores = scores.detach().masked_fill(~score_mask.bool(), 0.0)
        topk_idx = stable_topk(tmp_scores, top_k)
    else:
        topk_idx = stable_topk(scores, top_k)
    topk_weight = scores.gather(1, topk_idx)
    if top_k > 1 and normalize:
        topk_weight = topk_weight / (topk_weight.sum(dim=-1, keepdim=True) + 1e-20)
    else:
        topk_weight = topk_weight * routed_scaling_factor
    return topk_idx, topk_weight, scores


def switch_router(router_logits, B, S, expert_capacity):
    """HF v4 SwitchTransformersTop1Router: argmax, positional capacity per sequence."""
    E = router_logits.shape[-1]
    router_probs = F.softmax(router_logits, dim=-1).view(B, S, E)
    expert_index = stable_topk(router_probs, 1).squeeze(-1)          # argmax, first max
    expert_index_oh = F.one_hot(expert_index, num_classes=E)
    token_priority = torch.cumsum(expert_index_oh, dim=-2)
    expert_capacity_mask = token_priority <= expert_capacity
    expert_index_oh = expert_index_oh * expert_capacity_mask
    kept = expert_index_oh.sum(-1) > 0
    p_max = router_probs.gather(-1, expert_index.unsqueeze(-1))      # not zeroed when dropped
    return (expert_index.reshape(B * S, 1), p_max.reshape(B * S, 1), kept.reshape(B * S, 1),
            router_probs.reshape(B * S, E))


# --------------------------------------------------------------------------------------
# generic token choice (RouterConfig) + capacity
# --------------------------------------------------------------------------------------

def generic_token_choice(r, eff, sel_bias):
    T, E = eff.shape
    k = r["top_k"]
    score = torch.sigmoid if r["score"] == "sigmoid" else (lambda z: F.softmax(z, dim=-1))
    s = score(eff)                       # (eff is already bf16-rounded when bf16_logits)
    key = s.detach()
    if sel_bias is not None:
        key = key + sel_bias.detach()
    if r["selection"] == "group_limited":
        G = r["n_group"]
        grouped = key.view(T, G, E // G)
        if r["group_score"] == "max":
            gs = grouped.max(dim=-1).values
        else:
            gs = torch.sort(grouped, dim=-1, descending=True, stable=True).values[..., :2].sum(-1)
        keep = torch.zeros(T, G, dtype=torch.bool)
        keep.scatter_(1, stable_topk(gs, r["topk_group"]), True)
        keep = keep.repeat_interleave(E // G, dim=1)
        key = key.masked_fill(~keep, NEG_INF)
    ids = stable_topk(key, k)
    w = s.gather(1, ids)
    if r["normalize"]:
        w = w / (w.sum(dim=-1, keepdim=True) + r["norm_eps"])
    if not (r["scale_only_unnormalized"] and r["normalize"]):
        w = w * r["scale"]
    return ids, w, s


def apply_capacity(r, ids, w, B, S):
    """kept [T,k] bool. K-major priority inside each group: every token's first choice (in
    token order, or by descending top-1 weight with BPR) before any second choice."""
    T, k = ids.shape
    kept = torch.ones(T, k, dtype=torch.bool)
    if r["capacity_mode"] == "none":
        return kept
    C = capacity_of(r, S, k)
    for b in range(B):
        toks = list(range(b * S, (b + 1) * S))
        if r["priority"] == "batch":
            order = torch.sort(-w[b * S:(b + 1) * S, 0].detach(), stable=True).indices
            toks = [b * S + int(i) for i in order]
        count = [0] * r["n_experts"]
        for j in range(k):
            for t in toks:
                e = int(ids[t, j])
                if count[e] < C:
                    count[e] += 1
                else:
                    kept[t, j] = False
    return kept


def apply_capacity_cumsum(r, ids, w, B, S):
    """The vmoe vectorised form of apply_capacity (cross-checked in --self-test)."""
    T, k = ids.shape
    E = r["n_experts"]
    C = capacity_of(r, S, k)
    kept = torch.ones(T, k, dtype=torch.bool)
    for b in range(B):
        e_idx = ids[b * S:(b + 1) * S]
        perm = torch.arange(S)
        if r["priority"] == "batch":
            perm = torch.sort(-w[b * S:(b + 1) * S, 0].detach(), stable=True).indices
        e_idx = e_idx[perm]
        flat = e_idx.t().reshape(-1)                             # K-major
        oh = F.one_hot(flat, E)
        pos = (torch.cumsum(oh, dim=0) * oh).sum(-1) - 1
        keep = (pos < C).reshape(k, S).t()
        unperm = torch.empty_like(keep)
        unperm[perm] = keep
        kept[b * S:(b + 1) * S] = unperm
    return kept


def expert_choice_router(r, eff, B, S, C):
    """Each expert takes its C best tokens of each group (ties: lower token index).
    Returns tokens [E, B·C] (global token ids), weights [E, B·C] (raw probs), probs [T,E]."""
    score = torch.sigmoid if r["score"] == "sigmoid" else (lambda z: F.softmax(z, dim=-1))
    probs = score(eff)
    if C > S:
        raise ValueError("expert-choice capacity %d > group tokens %d" % (C, S))
    toks = []
    for b in range(B):
        g = probs[b * S:(b + 1) * S].t()                        # [E, S]
        toks.append(stable_topk(g, C) + b * S)
    tokens = torch.cat(toks, dim=1)                              # [E, B·C]
    weights = probs.t().gather(1, tokens)
    return tokens, weights, probs


# --------------------------------------------------------------------------------------
# experts and combine
# --------------------------------------------------------------------------------------

def _lin(x, w, b):
    return F.linear(x, w, b)


def expert_forward(L, P, xs, act=None):
    act = act or L.act
    if act == "swiglu":
        h = F.silu(_lin(xs, P["gate"], P["gate_b"])) * _lin(xs, P["up"], P["up_b"])
    elif act == "gpt_oss_swiglu":
        gate = _lin(xs, P["gate"], P["gate_b"]).clamp(max=L.swiglu_limit)
        up = _lin(xs, P["up"], P["up_b"]).clamp(min=-L.swiglu_limit, max=L.swiglu_limit)
        h = (up + 1) * (gate * torch.sigmoid(gate * L.swiglu_alpha))
    elif act == "gelu":
        h = F.gelu(_lin(xs, P["up"], P["up_b"]))
    elif act == "gelu_tanh":
        h = F.gelu(_lin(xs, P["up"], P["up_b"]), approximate="tanh")
    elif act == "relu":
        h = F.relu(_lin(xs, P["up"], P["up_b"]))
    else:
        raise AssertionError(act)
    return _lin(h, P["down"], P["down_b"])


def combine_token_choice(L, W, xf, ids, w, kept, dropped, expert_params):
    """y[t] = Σ_kept w·expert(x[t]) (+ w·x[t] for dropped slots with passthrough),
    accumulated over experts in ascending index like the HF eager loop."""
    T, H = xf.shape
    y = torch.zeros(T, H)
    for e in range(L.E):
        tok, slot = torch.where((ids == e) & kept)
        if tok.numel() == 0:
            continue
        out = expert_forward(L, expert_params(L, W, e), xf[tok])
        y = y.index_add(0, tok, out * w[tok, slot, None])
    if dropped == "passthrough":
        tok, slot = torch.where(~kept)
        if tok.numel():
            y = y.index_add(0, tok, xf[tok] * w[tok, slot, None])
    return y


def soft_moe(L, W, xf, B, S, expert_params, noise=None):
    """vmoe SoftRouter per group (sequence). Returns y, dispatch, combine, logits (all [T, ·]).
    noise: [T, E·p] standard normal (training with noise_std > 0): add_noise's logits + σ·ε."""
    p = L.soft["slots_per_expert"]
    sigma = L.soft.get("noise_std", 0.0)
    phi, scale = W["soft.phi"], W["soft.scale"]
    ys, ds, cs, ls = [], [], [], []
    for b in range(B):
        X = xf[b * S:(b + 1) * S]
        Xn = X * torch.rsqrt((X * X).sum(-1, keepdim=True) + 1e-6)
        Pn = phi * torch.rsqrt((phi * phi).sum(0, keepdim=True) + 1e-6)
        if X.numel() < phi.numel():
            Xn = Xn * scale
        else:
            Pn = Pn * scale
        logits = Xn @ Pn                                        # [S, E·p]
        if noise is not None and sigma > 0:
            logits = logits + sigma * noise[b * S:(b + 1) * S]
        D = F.softmax(logits, dim=0)                            # over tokens, per slot
        C = F.softmax(logits, dim=1)                            # over all slots, per token
        Xs = D.t() @ X                                          # [E·p, H]
        Ys = torch.cat([expert_forward(L, expert_params(L, W, e), Xs[e * p:(e + 1) * p])
                        for e in range(L.E)])
        ys.append(C @ Ys)
        ds.append(D)
        cs.append(C)
        ls.append(logits)
    return torch.cat(ys), torch.cat(ds), torch.cat(cs), torch.cat(ls)


# --------------------------------------------------------------------------------------
# losses (unscaled). logits: router_logits [T,E] (raw + bias, after jitter, no noise).
# --------------------------------------------------------------------------------------

def load_balancing_loss_func(gate_logits, num_experts, top_k, attention_mask=None):
    """HF modeling_mixtral.load_balancing_loss_func, for a tuple of per-layer logits."""
    concatenated_gate_logits = torch.cat(list(gate_logits), dim=0)
    routing_weights = F.softmax(concatenated_gate_logits, dim=-1)
    selected_experts = stable_topk(routing_weights, top_k)
    expert_mask = F.one_hot(selected_experts, num_experts)           # [R,k,E]
    if attention_mask is None:
        tokens_per_expert = torch.mean(expert_mask.double(), dim=0)
        router_prob_per_expert = torch.mean(routing_weights, dim=0)
    else:
        batch_size, sequence_length = attention_mask.shape
        num_hidden_layers = concatenated_gate_logits.shape[0] // (batch_size * sequence_length)
        expert_attention_mask = (
            attention_mask[None, :, :, None, None]
            .expand((num_hidden_layers, batch_size, sequence_length, top_k, num_experts))
            .reshape(-1, top_k, num_experts))
        tokens_per_expert = torch.sum(expert_mask.double() * expert_attention_mask, dim=0) / \
            torch.sum(expert_attention_mask, dim=0)
        router_per_expert_attention_mask = (
            attention_mask[None, :, :, None]
            .expand((num_hidden_layers, batch_size, sequence_length, num_experts))
            .reshape(-1, num_experts))
        router_prob_per_expert = torch.sum(routing_weights * router_per_expert_attention_mask,
                                           dim=0) / torch.sum(router_per_expert_attention_mask, dim=0)
    overall_loss = torch.sum(tokens_per_expert * router_prob_per_expert.unsqueeze(0))
    return overall_loss * num_experts


def switch_load_balancing_loss(router_probs, expert_indices):
    """HF switch_transformers load_balancing_loss_func. probs [G,T',E], indices [G,T',k]."""
    num_experts = router_probs.shape[-1]
    expert_mask = F.one_hot(expert_indices, num_experts)
    expert_mask = torch.max(expert_mask, dim=-2).values
    tokens_per_group_and_expert = torch.mean(expert_mask.double(), dim=-2)
    router_prob_per_group_and_expert = torch.mean(router_probs, dim=-2)
    return torch.mean(tokens_per_group_and_expert * router_prob_per_group_and_expert) * num_experts ** 2


def router_z_loss_func(router_logits):
    num_groups, tokens_per_group, _ = router_logits.shape
    log_z = torch.logsumexp(router_logits, dim=-1)
    return torch.sum(log_z ** 2) / (num_groups * tokens_per_group)


def cv_squared(v):
    return v.var(unbiased=False) / v.mean() ** 2


def importance_loss(logits, B, S):
    gates = F.softmax(logits, dim=-1).view(B, S, -1)
    return torch.stack([cv_squared(gates[b].sum(0)) for b in range(B)]).mean()


def vmoe_load_loss(logits, logits_noisy, noise_std, k, B, S):
    """vmoe _load_auxiliary_loss: the threshold is the k-th noisy logit, gathered from
    logits_noisy, so gradient flows through it (only the index choice is discrete)."""
    losses = []
    normal = torch.distributions.Normal(0.0, 1.0)
    for b in range(B):
        lg, ln = logits[b * S:(b + 1) * S], logits_noisy[b * S:(b + 1) * S]
        kth = stable_topk(ln, k)[:, -1:]
        threshold = ln.gather(1, kth)
        p = 1.0 - normal.cdf((threshold - lg) / noise_std)
        losses.append(cv_squared(p.mean(0)))
    return torch.stack(losses).mean()


def deepseek_v2_seq_loss(scores, ids, E, k, B, S):
    """Remote MoEGate seq_aux: mean_b Σ_e ce[b,e]·P[b,e], ce = count/(S·k/E). (No alpha.)"""
    idx = ids.reshape(B, S * k)
    ce = torch.zeros(B, E).scatter_add_(1, idx, torch.ones(B, S * k)).div_(S * k / E)
    return (ce * scores.view(B, S, E).mean(dim=1)).sum(dim=1).mean()


def deepseek_v3_seq_loss(scores, ids, E, k, B, S):
    """DeepSeek-V3 §2.1.2: f = E/(k·S)·count (actual routing map), P = mean_t s/Σs; per
    sequence, averaged over sequences. (No alpha.)"""
    sn = scores / scores.sum(dim=-1, keepdim=True)
    idx = ids.reshape(B, S * k)
    f = torch.zeros(B, E).scatter_add_(1, idx, torch.ones(B, S * k)) * (E / (k * S))
    return (f * sn.view(B, S, E).mean(dim=1)).sum(dim=1).mean()


def compute_losses(L, logits, eff, ids, kept, B, S, mask, ec=False):
    r, E, k = L.router, L.E, L.k
    out = {}
    score = torch.sigmoid if r["score"] == "sigmoid" else (lambda z: F.softmax(z, dim=-1))
    for name in L.losses:
        if name == "load_balancing":
            out[name] = load_balancing_loss_func((logits,), E, k, mask)
        elif name == "switch":
            probs = F.softmax(logits, dim=-1).view(B, S, E)
            idx = torch.where(kept, ids, torch.zeros_like(ids))      # dropped -> expert 0
            out[name] = switch_load_balancing_loss(probs, idx.view(B, S, k))
        elif name == "z_loss":
            out[name] = router_z_loss_func(logits.view(B, S, E))
        elif name == "importance":
            out[name] = importance_loss(logits, B, S)
        elif name == "vmoe_load":
            assert r["noise"] == "vmoe", "vmoe_load needs router.noise = vmoe (and --training)"
            out[name] = vmoe_load_loss(logits, eff, r["noise_std"] / E, k, B, S)
        # DeepSeek's gates reuse the scores they routed with: those of the effective logits
        # (noise, bf16 rounding with a straight-through gradient), not of the clean ones.
        elif name == "deepseek_v2_seq":
            out[name] = deepseek_v2_seq_loss(score(eff), ids, E, k, B, S)
        elif name == "deepseek_v3_seq":
            out[name] = deepseek_v3_seq_loss(score(eff), ids, E, k, B, S)
    return out


def routing_stats(L, ids, kept, ec_tokens, logits, T):
    """stats.* outputs. router_entropy: mean over tokens of the entropy (nats) of the
    softmax of the effective logits (noise, bf16 rounding) -- compared for softmax routers."""
    E = L.E
    if ec_tokens is not None:
        tpe = torch.full((E,), ec_tokens.numel() // E, dtype=torch.int64)
        chosen = torch.zeros(T, dtype=torch.bool)
        chosen[ec_tokens.reshape(-1)] = True
        dropped_slots, dropped_tokens = 0, int((~chosen).sum())
    else:
        tpe = torch.zeros(E, dtype=torch.int64).scatter_add_(
            0, ids[kept], torch.ones(int(kept.sum()), dtype=torch.int64))
        dropped_slots = int((~kept).sum())
        dropped_tokens = int((kept.sum(1) == 0).sum())
    total = float(tpe.sum())
    mean = total / E
    frac = tpe.double() / total
    ent = -(frac[frac > 0] * frac[frac > 0].log()).sum()
    return {"stats.tokens_per_expert": tpe.numpy(),
            "stats.dropped_slots": dropped_slots, "stats.dropped_tokens": dropped_tokens,
            "stats.max_over_mean": float(tpe.max()) / mean, "stats.load_entropy": float(ent),
            "stats.router_entropy": float(-(F.softmax(logits, -1) * F.log_softmax(logits, -1))
                                          .sum(-1).mean())}
