"""Independent PyTorch (float64, autograd) reference of the MoE-GPT of include/moe/gpt.h.

Written in the style of the Hugging Face Llama / GPT-2 modeling code from the header's
description; the MoE FFN is the layer oracle of moe_torch.py (layer_forward), the dense FFN its
expert_forward. Config: the JSON of gpt_config_to_json; weights: {GPT tensor name: tensor}.

  x0 = wte[tok] (+ wpe[pos]); per block: x += o_proj(attn(norm1(x))); x += ffn(norm2(x))
  logits = normf(x) @ head.T (head = wte when tied); loss = mean CE over targets >= 0 + aux
RoPE: HF rotate_half (pairs i, i + hd/2), inv_freq = theta^(-2i/hd), angles in float64.
GQA: kv head j serves query heads j·g .. j·g+g-1 (HF repeat_kv).
"""

import math

import torch
import torch.nn.functional as F

import moe_torch
from moe_torch_parts import expert_forward

torch.set_default_dtype(torch.float64)


def is_moe_layer(cfg, layer):
    moe = cfg.get("moe")
    if not moe:
        return False
    n_experts = moe.get("router", {}).get("n_experts", moe.get("num_experts", 0))
    first, every = cfg.get("first_dense_layers", 0), cfg.get("moe_every", 1)
    return (n_experts > 0 and layer >= first and (layer - first) % every == 0
            and layer not in cfg.get("dense_layers", []))


def rms_norm(x, w, eps):
    # LlamaRMSNorm
    variance = x.pow(2).mean(-1, keepdim=True)
    return w * (x * torch.rsqrt(variance + eps))


def norm(cfg, W, name, x):
    eps = cfg.get("norm_eps", 1e-5)
    if cfg.get("norm", "rmsnorm") == "rmsnorm":
        return rms_norm(x, W[name + ".weight"], eps)
    return F.layer_norm(x, (x.shape[-1],), W[name + ".weight"], W[name + ".bias"], eps)


def head_dim(cfg):
    return cfg.get("head_dim") or cfg["d_model"] // cfg["n_heads"]


def rotate_half(x):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def rope_cos_sin(S, hd, theta):
    inv_freq = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    freqs = torch.outer(torch.arange(S, dtype=torch.float64), inv_freq)   # [S, hd/2]
    emb = torch.cat((freqs, freqs), dim=-1)                                # [S, hd]
    dt = torch.get_default_dtype()  # angles in float64, tables in the model's dtype (bench: float32)
    return emb.cos().to(dt), emb.sin().to(dt)


def attention(cfg, W, p, h, cos, sin):
    B, S, d = h.shape
    H, Hkv = cfg["n_heads"], cfg.get("n_kv_heads", cfg["n_heads"])
    hd = head_dim(cfg)
    eps, qk_norm = float(cfg.get("norm_eps", 1e-5)), cfg.get("qk_norm", "none")
    q = F.linear(h, W[p + "attn.wq"], W.get(p + "attn.bq"))                  # [B, S, H·hd] (Qwen2: with bias)
    k = F.linear(h, W[p + "attn.wk"], W.get(p + "attn.bk"))
    v = F.linear(h, W[p + "attn.wv"], W.get(p + "attn.bv"))
    if qk_norm == "full":  # OLMoE: RMSNorm over the whole projection, before the head split
        q, k = rms_norm(q, W[p + "attn.q_norm"], eps), rms_norm(k, W[p + "attn.k_norm"], eps)
    q = q.view(B, S, H, hd)
    k = k.view(B, S, Hkv, hd)
    if qk_norm == "head":  # Qwen3: RMSNorm of each head's hd values
        q, k = rms_norm(q, W[p + "attn.q_norm"], eps), rms_norm(k, W[p + "attn.k_norm"], eps)
    q = q.transpose(1, 2)                                                    # [B, H, S, hd]
    k = k.transpose(1, 2)                                                    # [B, Hkv, S, hd]
    v = v.view(B, S, Hkv, hd).transpose(1, 2)
    if cos is not None:
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
    k = k.repeat_interleave(H // Hkv, dim=1)
    v = v.repeat_interleave(H // Hkv, dim=1)
    scores = q @ k.transpose(-1, -2) / math.sqrt(hd)                        # [B, H, S, S]
    if cfg.get("causal", True):
        mask = torch.triu(torch.ones(S, S, dtype=torch.bool), diagonal=1)
        scores = scores.masked_fill(mask, float("-inf"))
    probs = F.softmax(scores, dim=-1)
    att = (probs @ v).transpose(1, 2).reshape(B, S, H * hd)
    return F.linear(att, W[p + "attn.wo"], W.get(p + "attn.bo"))


class Dense:
    """What expert_forward reads from its layer argument (gpt_oss_swiglu constants)."""

    def __init__(self, dense):
        self.act = dense.get("act", "swiglu")
        self.swiglu_alpha = float(dense.get("alpha", 1.702))
        self.swiglu_limit = float(dense.get("limit", 7.0))


def dense_ffn(cfg, W, p, x):
    dense = Dense(cfg.get("dense", {}))
    P = dict(gate=W.get(p + "ffn.gate"), up=W[p + "ffn.up"], down=W[p + "ffn.down"],
             gate_b=W.get(p + "ffn.gate_bias"), up_b=W.get(p + "ffn.up_bias"),
             down_b=W.get(p + "ffn.down_bias"))
    return expert_forward(dense, P, x)


def gpt_forward(cfg, W, tokens, targets, training=False):
    """tokens, targets: long [B, S] (targets < 0 ignored). Returns dict with logits, ce, aux,
    total, loads {layer: long [E]}."""
    B, S = tokens.shape
    hd = head_dim(cfg)
    x = W["wte"][tokens]
    if cfg.get("pos", "rope") == "learned":
        x = x + W["wpe"][:S]
        cos = sin = None
    else:
        cos, sin = rope_cos_sin(S, hd, float(cfg.get("rope_theta", 10000.0)))
    aux = torch.zeros(())
    loads = {}
    moe_layer = moe_torch.resolve(cfg["moe"]) if cfg.get("moe") else None
    for layer in range(cfg["n_layers"]):
        p = "blocks.%d." % layer
        x = x + attention(cfg, W, p, norm(cfg, W, p + "norm1", x), cos, sin)
        h = norm(cfg, W, p + "norm2", x)
        if is_moe_layer(cfg, layer):
            Wm = {n[len(p) + 4:]: t for n, t in W.items() if n.startswith(p + "moe.")}
            out = moe_torch.layer_forward(moe_layer, Wm, {"x": h}, training)
            y = out["y"]
            if "loss.aux_total" in out:
                aux = aux + out["loss.aux_total"]
            if "expert_ids" in out:
                ids, kept = out["expert_ids"], out["expert_kept"]
                loads[layer] = torch.bincount(ids[kept].reshape(-1), minlength=moe_layer.E)
            elif "ec_tokens" in out:
                loads[layer] = torch.full((moe_layer.E,), out["ec_tokens"].numel() // moe_layer.E)
        else:
            y = dense_ffn(cfg, W, p, h)
        x = x + y
    x = norm(cfg, W, "normf", x)
    head = W["wte"] if cfg.get("tied_head", True) else W["head"]
    logits = F.linear(x, head)                                               # [B, S, V]
    tgt = targets.reshape(-1)
    if (tgt >= 0).any():
        ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.clamp(min=-100).masked_fill(tgt < 0, -100),
                             ignore_index=-100)
    else:
        ce = torch.zeros(())
    return dict(logits=logits, ce=ce, aux=aux, total=ce + aux, loads=loads)
