#!/usr/bin/python3
"""Independent parameter-count oracle for `moe estimate --config CONFIG --json`.

For every Hugging Face `config.json` given, this script builds the parameter
skeleton of the whole model with real `torch.nn` modules on the *meta* device
(shapes only, no memory, so DeepSeek-V3 671B costs nothing), mirroring module
by module what the Hugging Face `transformers` modeling code (and, for
DeepSeek, the checkpoints' own remote code) creates.  Module and parameter
names are the checkpoint names on the Hub, so `--dump` doubles as a list of
checkpoint tensor names and shapes.

Every parameter is then assigned to one of the parts of the C++ JSON contract
*from its name alone* (see `classify`), summed, and compared exactly with

    moe estimate --config CONFIG --json

Usage:
    /usr/bin/python3 tests/oracle/hf_param_oracle.py --moe PATH/TO/moe CONFIG.json [...]
    /usr/bin/python3 tests/oracle/hf_param_oracle.py --self-test
    /usr/bin/python3 tests/oracle/hf_param_oracle.py --print CONFIG.json [...]   # no binary: show counts
    /usr/bin/python3 tests/oracle/hf_param_oracle.py --dump CONFIG.json          # names + shapes
    /usr/bin/python3 tests/oracle/hf_param_oracle.py --tensors --moe PATH/TO/moe CONFIG.json [...]

--tensors compares, name by name and shape by shape, the skeleton's named_parameters() with
the registry's checkpoint list, `moe estimate --config CONFIG --tensors --json`.

Exit status: 0 if everything matches, 1 on any mismatch or error.

Needs only PyTorch (Debian's 1.13 at /usr/bin/python3 is enough); `transformers`
is NOT used: the skeletons below are written from reading the HF sources
(transformers `src/transformers/models/<type>/modeling_<type>.py` and
`configuration_<type>.py`).  The HF facts that are easy to get wrong are noted
next to the code that relies on them.
"""

import argparse
import json
import re
import subprocess
import sys
from collections import OrderedDict

import torch
from torch import nn

META = torch.device("meta")

PARTS = ("embeddings", "attention", "norms", "router",
         "routed_experts", "shared_experts", "dense_ffn", "lm_head")


# --------------------------------------------------------------------------
# tiny building blocks (meta device)
# --------------------------------------------------------------------------

def linear(n_in, n_out, bias=False):
    return nn.Linear(n_in, n_out, bias=bias, device=META)


def param(*shape):
    return nn.Parameter(torch.empty(*shape, device=META))


def embedding(n, d):
    return nn.Embedding(n, d, device=META)


class RMSNorm(nn.Module):
    """RMSNorm / T5LayerNorm: a single `weight`, no bias (every model here)."""

    def __init__(self, n):
        super().__init__()
        self.weight = param(n)


class Container(nn.Module):
    """Plain module used to give the tree its HF names."""


class SwiGLU(nn.Module):
    """gate_proj / up_proj / down_proj (Llama, Qwen, OLMoE, DeepSeek)."""

    def __init__(self, h, i, bias=False):
        super().__init__()
        self.gate_proj = linear(h, i, bias)
        self.up_proj = linear(h, i, bias)
        self.down_proj = linear(i, h, bias)


class MixtralExpert(nn.Module):
    """Mixtral Hub names: w1 = gate, w3 = up, w2 = down; no bias."""

    def __init__(self, h, i):
        super().__init__()
        self.w1 = linear(h, i)
        self.w2 = linear(i, h)
        self.w3 = linear(h, i)


class T5DenseActDense(nn.Module):
    """Switch/T5 `wi`, `wo`, no bias, ReLU (dense_act_fn 'relu')."""

    def __init__(self, d_model, d_ff):
        super().__init__()
        self.wi = linear(d_model, d_ff)
        self.wo = linear(d_ff, d_model)


def expert_list(n, make):
    return nn.ModuleList([make() for _ in range(n)])


class CausalLM(nn.Module):
    """`model.*` + `lm_head`, optionally tied to `model.embed_tokens`."""

    def __init__(self, cfg, d_model, vocab, tied):
        super().__init__()
        self.model = Container()
        self.model.embed_tokens = embedding(vocab, d_model)
        self.model.layers = nn.ModuleList()
        self.model.norm = RMSNorm(d_model)
        self.lm_head = linear(d_model, vocab)
        if tied:
            # PreTrainedModel.tie_weights(): lm_head.weight IS embed_tokens.weight
            self.lm_head.weight = self.model.embed_tokens.weight


# --------------------------------------------------------------------------
# config helpers
# --------------------------------------------------------------------------

def get(cfg, key, default):
    """cfg[key] if present and not None, else the HF config-class default."""
    v = cfg.get(key)
    return default if v is None else v


def head_dim_of(cfg, hidden, heads):
    hd = cfg.get("head_dim")
    return hd if hd is not None else hidden // heads


class Spec:
    """Result of building a skeleton: the module + MoE facts for 'active'."""

    def __init__(self, model, top_k, moe_layers):
        self.model = model
        self.top_k = top_k          # experts used per token in each MoE layer
        self.moe_layers = moe_layers  # for information only


# --------------------------------------------------------------------------
# skeletons, one per model_type
# --------------------------------------------------------------------------

def build_llama(cfg):
    # configuration_llama.py: vocab 32000, hidden 4096, intermediate 11008,
    # layers 32, heads 32, kv None->heads, attention_bias False, mlp_bias False,
    # head_dim None -> hidden//heads, tie_word_embeddings False.
    H = get(cfg, "hidden_size", 4096)
    nh = get(cfg, "num_attention_heads", 32)
    nkv = get(cfg, "num_key_value_heads", nh)
    hd = head_dim_of(cfg, H, nh)
    ab = bool(get(cfg, "attention_bias", False))
    mb = bool(get(cfg, "mlp_bias", False))
    I = get(cfg, "intermediate_size", 11008)
    m = CausalLM(cfg, H, get(cfg, "vocab_size", 32000), bool(get(cfg, "tie_word_embeddings", False)))
    for _ in range(get(cfg, "num_hidden_layers", 32)):
        L = Container()
        L.self_attn = Container()
        L.self_attn.q_proj = linear(H, nh * hd, ab)
        L.self_attn.k_proj = linear(H, nkv * hd, ab)
        L.self_attn.v_proj = linear(H, nkv * hd, ab)
        L.self_attn.o_proj = linear(nh * hd, H, ab)       # o_proj bias also = attention_bias
        L.mlp = SwiGLU(H, I, mb)
        L.input_layernorm = RMSNorm(H)
        L.post_attention_layernorm = RMSNorm(H)
        m.model.layers.append(L)
    return Spec(m, 0, 0)


def build_mixtral(cfg):
    # modeling_mixtral.py (v4 / Hub names): MixtralAttention q/k/v/o bias=False;
    # block_sparse_moe.gate = Linear(H, E, bias=False); experts.{e}.w1/w2/w3 no bias.
    # configuration_mixtral.py: num_local_experts 8, num_experts_per_tok 2,
    # kv heads 8, intermediate 14336, head_dim None -> hidden//heads.
    H = get(cfg, "hidden_size", 4096)
    nh = get(cfg, "num_attention_heads", 32)
    nkv = get(cfg, "num_key_value_heads", 8)
    hd = head_dim_of(cfg, H, nh)
    I = get(cfg, "intermediate_size", 14336)
    E = get(cfg, "num_local_experts", 8)
    k = get(cfg, "num_experts_per_tok", 2)
    m = CausalLM(cfg, H, get(cfg, "vocab_size", 32000), bool(get(cfg, "tie_word_embeddings", False)))
    n = get(cfg, "num_hidden_layers", 32)
    for _ in range(n):
        L = Container()
        L.self_attn = Container()
        L.self_attn.q_proj = linear(H, nh * hd)
        L.self_attn.k_proj = linear(H, nkv * hd)
        L.self_attn.v_proj = linear(H, nkv * hd)
        L.self_attn.o_proj = linear(nh * hd, H)
        L.block_sparse_moe = Container()
        L.block_sparse_moe.gate = linear(H, E)
        L.block_sparse_moe.experts = expert_list(E, lambda: MixtralExpert(H, I))
        L.input_layernorm = RMSNorm(H)
        L.post_attention_layernorm = RMSNorm(H)
        m.model.layers.append(L)
    return Spec(m, k, n)


def _qwen_is_moe(cfg, i, E):
    # Qwen2MoeDecoderLayer / Qwen3MoeDecoderLayer:
    #   (i not in mlp_only_layers) and (num_experts > 0 and (i + 1) % decoder_sparse_step == 0)
    mlp_only = cfg.get("mlp_only_layers") or []
    step = get(cfg, "decoder_sparse_step", 1)
    return (i not in mlp_only) and (E > 0 and (i + 1) % step == 0)


def build_qwen2_moe(cfg):
    # modeling_qwen2_moe.py: q/k/v bias = config.qkv_bias (default True; older
    # versions hard-code bias=True), o_proj bias=False; head_dim = hidden//heads.
    # Qwen2MoeSparseMoeBlock: gate Linear(H,E,no bias), experts (moe_intermediate_size),
    # shared_expert = MLP(shared_expert_intermediate_size), shared_expert_gate = Linear(H,1,no bias).
    # Dense layers use Qwen2MoeMLP(intermediate_size).
    # configuration_qwen2_moe.py defaults: vocab 151936, hidden 2048, intermediate 5632,
    # layers 24, heads 16, kv 16, moe_intermediate 1408, shared 5632, E 60, k 4.
    H = get(cfg, "hidden_size", 2048)
    nh = get(cfg, "num_attention_heads", 16)
    nkv = get(cfg, "num_key_value_heads", 16)
    hd = head_dim_of(cfg, H, nh)
    qkvb = bool(get(cfg, "qkv_bias", True))
    I = get(cfg, "intermediate_size", 5632)
    Im = get(cfg, "moe_intermediate_size", 1408)
    Is = get(cfg, "shared_expert_intermediate_size", 5632)
    E = get(cfg, "num_experts", 60)
    k = get(cfg, "num_experts_per_tok", 4)
    m = CausalLM(cfg, H, get(cfg, "vocab_size", 151936), bool(get(cfg, "tie_word_embeddings", False)))
    n_moe = 0
    for i in range(get(cfg, "num_hidden_layers", 24)):
        L = Container()
        L.self_attn = Container()
        L.self_attn.q_proj = linear(H, nh * hd, qkvb)
        L.self_attn.k_proj = linear(H, nkv * hd, qkvb)
        L.self_attn.v_proj = linear(H, nkv * hd, qkvb)
        L.self_attn.o_proj = linear(nh * hd, H, False)
        if _qwen_is_moe(cfg, i, E):
            n_moe += 1
            L.mlp = Container()
            L.mlp.gate = linear(H, E)
            L.mlp.experts = expert_list(E, lambda: SwiGLU(H, Im))
            L.mlp.shared_expert = SwiGLU(H, Is)
            L.mlp.shared_expert_gate = linear(H, 1)
        else:
            L.mlp = SwiGLU(H, I)
        L.input_layernorm = RMSNorm(H)
        L.post_attention_layernorm = RMSNorm(H)
        m.model.layers.append(L)
    return Spec(m, k, n_moe)


def build_qwen3_moe(cfg):
    # modeling_qwen3_moe.py: q/k/v/o bias = attention_bias (default False, o_proj too);
    # head_dim = config.head_dim (Hub configs give 128, != hidden/heads for 30B-A3B);
    # q_norm / k_norm = RMSNorm(head_dim)  (PER HEAD, unlike OLMoE);
    # Qwen3MoeSparseMoeBlock: gate Linear(H,E,no bias) + experts, NO shared expert.
    # configuration_qwen3_moe.py defaults: hidden 2048, intermediate 6144, layers 24,
    # heads 32, kv 4, moe_intermediate 768, E 128, k 8.
    H = get(cfg, "hidden_size", 2048)
    nh = get(cfg, "num_attention_heads", 32)
    nkv = get(cfg, "num_key_value_heads", 4)
    hd = head_dim_of(cfg, H, nh)
    ab = bool(get(cfg, "attention_bias", False))
    I = get(cfg, "intermediate_size", 6144)
    Im = get(cfg, "moe_intermediate_size", 768)
    E = get(cfg, "num_experts", 128)
    k = get(cfg, "num_experts_per_tok", 8)
    m = CausalLM(cfg, H, get(cfg, "vocab_size", 151936), bool(get(cfg, "tie_word_embeddings", False)))
    n_moe = 0
    for i in range(get(cfg, "num_hidden_layers", 24)):
        L = Container()
        L.self_attn = Container()
        L.self_attn.q_proj = linear(H, nh * hd, ab)
        L.self_attn.k_proj = linear(H, nkv * hd, ab)
        L.self_attn.v_proj = linear(H, nkv * hd, ab)
        L.self_attn.o_proj = linear(nh * hd, H, ab)
        L.self_attn.q_norm = RMSNorm(hd)
        L.self_attn.k_norm = RMSNorm(hd)
        if _qwen_is_moe(cfg, i, E):
            n_moe += 1
            L.mlp = Container()
            L.mlp.gate = linear(H, E)
            L.mlp.experts = expert_list(E, lambda: SwiGLU(H, Im))
        else:
            L.mlp = SwiGLU(H, I)
        L.input_layernorm = RMSNorm(H)
        L.post_attention_layernorm = RMSNorm(H)
        m.model.layers.append(L)
    return Spec(m, k, n_moe)


def build_olmoe(cfg):
    # modeling_olmoe.py: head_dim = hidden // heads; q/k/v/o bias = attention_bias;
    # q_norm = RMSNorm(hidden_size)  (FULL projected q width, not per head),
    # k_norm = RMSNorm((hidden//heads) * num_key_value_heads);
    # every layer is MoE; experts use config.intermediate_size (no moe_intermediate_size);
    # no shared expert. configuration_olmoe.py: vocab 50304, hidden 2048,
    # intermediate 2048, layers 16, heads 16, kv None->heads, E 64, k 8.
    H = get(cfg, "hidden_size", 2048)
    nh = get(cfg, "num_attention_heads", 16)
    nkv = get(cfg, "num_key_value_heads", nh)
    hd = H // nh
    ab = bool(get(cfg, "attention_bias", False))
    I = get(cfg, "intermediate_size", 2048)
    E = get(cfg, "num_experts", 64)
    k = get(cfg, "num_experts_per_tok", 8)
    m = CausalLM(cfg, H, get(cfg, "vocab_size", 50304), bool(get(cfg, "tie_word_embeddings", False)))
    n = get(cfg, "num_hidden_layers", 16)
    for _ in range(n):
        L = Container()
        L.self_attn = Container()
        L.self_attn.q_proj = linear(H, nh * hd, ab)
        L.self_attn.k_proj = linear(H, nkv * hd, ab)
        L.self_attn.v_proj = linear(H, nkv * hd, ab)
        L.self_attn.o_proj = linear(H, H, ab)
        L.self_attn.q_norm = RMSNorm(H)
        L.self_attn.k_norm = RMSNorm(hd * nkv)
        L.mlp = Container()
        L.mlp.gate = linear(H, E)
        L.mlp.experts = expert_list(E, lambda: SwiGLU(H, I))
        L.input_layernorm = RMSNorm(H)
        L.post_attention_layernorm = RMSNorm(H)
        m.model.layers.append(L)
    return Spec(m, k, n)


def _mla(cfg, H):
    """DeepSeek MLA attention (modeling_deepseek_v2/v3.py, same in remote code).

    q_lora_rank None -> q_proj(H, nh*qk_head_dim, bias=False)
    else            -> q_a_proj(H, q_lora_rank, bias=attention_bias), q_a_layernorm(q_lora_rank),
                       q_b_proj(q_lora_rank, nh*qk_head_dim, bias=False)
    kv_a_proj_with_mqa(H, kv_lora_rank + qk_rope_head_dim, bias=attention_bias)
    kv_a_layernorm(kv_lora_rank)
    kv_b_proj(kv_lora_rank, nh*(qk_nope_head_dim + v_head_dim), bias=False)
    o_proj(nh*v_head_dim, H, bias=attention_bias)
    num_key_value_heads plays no role in the shapes.
    """
    nh = get(cfg, "num_attention_heads", 128)
    qlr = cfg.get("q_lora_rank", 1536)  # explicit null means "no q LoRA"
    kvlr = get(cfg, "kv_lora_rank", 512)
    rope = get(cfg, "qk_rope_head_dim", 64)
    nope = get(cfg, "qk_nope_head_dim", 128)
    vd = get(cfg, "v_head_dim", 128)
    ab = bool(get(cfg, "attention_bias", False))
    qk = nope + rope
    A = Container()
    if qlr is None:
        A.q_proj = linear(H, nh * qk)
    else:
        A.q_a_proj = linear(H, qlr, ab)
        A.q_a_layernorm = RMSNorm(qlr)
        A.q_b_proj = linear(qlr, nh * qk)
    A.kv_a_proj_with_mqa = linear(H, kvlr + rope, ab)
    A.kv_a_layernorm = RMSNorm(kvlr)
    A.kv_b_proj = linear(kvlr, nh * (nope + vd))
    A.o_proj = linear(nh * vd, H, ab)
    return A


def _build_deepseek(cfg, v3):
    # Dense/MoE placement: the checkpoints' remote code (modeling_deepseek.py) uses
    #   n_routed_experts is not None and i >= first_k_dense_replace and i % moe_layer_freq == 0
    # HF's in-library DeepseekV2/V3DecoderLayer only checks i >= first_k_dense_replace
    # (ignores moe_layer_freq); identical for every released config (moe_layer_freq 1).
    # Gate: remote MoEGate.weight [E, H] -> name `mlp.gate.weight` (HF V3: DeepseekV3TopkRouter.weight).
    # V3: e_score_correction_bias [E]: remote code nn.Parameter when topk_method == "noaux_tc";
    #     HF V3 registers it as a persistent *buffer* (in the state dict, not in .parameters()).
    #     Counted here (router part) for every deepseek_v3 config.
    # Shared experts: ONE MLP with intermediate = moe_intermediate_size * n_shared_experts.
    # Dense layers: MLP(intermediate_size).  mlp_bias (HF V2 only, default False).
    # Num MTP layers (num_nextn_predict_layers) are NOT part of the HF model.
    dflt_H, dflt_I, dflt_Im, dflt_E, dflt_S = (7168, 18432, 2048, 256, 1) if v3 else (4096, 11008, 1407, 64, 2)
    H = get(cfg, "hidden_size", dflt_H)
    I = get(cfg, "intermediate_size", dflt_I)
    Im = get(cfg, "moe_intermediate_size", dflt_Im)
    E = cfg.get("n_routed_experts", dflt_E)
    S = cfg.get("n_shared_experts", dflt_S)
    k = get(cfg, "num_experts_per_tok", 8 if v3 else 6)  # V2 HF default is None; all V2 configs set it
    fk = get(cfg, "first_k_dense_replace", 3 if v3 else 0)
    freq = get(cfg, "moe_layer_freq", 1)
    mb = (not v3) and bool(get(cfg, "mlp_bias", False))
    vocab = get(cfg, "vocab_size", 129280 if v3 else 32000)
    m = CausalLM(cfg, H, vocab, bool(get(cfg, "tie_word_embeddings", False)))
    n_moe = 0
    for i in range(get(cfg, "num_hidden_layers", 61 if v3 else 32)):
        L = Container()
        L.self_attn = _mla(cfg, H)
        if E is not None and E > 0 and i >= fk and i % freq == 0:
            n_moe += 1
            L.mlp = Container()
            L.mlp.experts = expert_list(E, lambda: SwiGLU(H, Im))
            L.mlp.gate = Container()
            L.mlp.gate.weight = param(E, H)
            if v3:
                L.mlp.gate.e_score_correction_bias = param(E)
            if S:
                L.mlp.shared_experts = SwiGLU(H, Im * S, mb)
        else:
            L.mlp = SwiGLU(H, I, mb)
        L.input_layernorm = RMSNorm(H)
        L.post_attention_layernorm = RMSNorm(H)
        m.model.layers.append(L)
    return Spec(m, k, n_moe)


def build_deepseek_v2(cfg):
    return _build_deepseek(cfg, v3=False)


def build_deepseek_v3(cfg):
    return _build_deepseek(cfg, v3=True)


def build_gpt_oss(cfg):
    # modeling_gpt_oss.py: head_dim = config.head_dim (64); q/k/v/o bias = attention_bias
    # (default True); self_attn.sinks = Parameter[num_attention_heads];
    # mlp.router: weight [E, H] + bias [E]; mlp.experts (fused, transposed):
    #   gate_up_proj [E, H, 2I], gate_up_proj_bias [E, 2I], down_proj [E, I, H], down_proj_bias [E, H]
    # (Hub stores the two matrices MXFP4 as *_blocks/*_scales; the logical count is the same).
    # Every layer MoE. configuration_gpt_oss.py: layers 36, E 128, vocab 201088,
    # hidden 2880, intermediate 2880, heads 64, kv 8, k 4, tie False.
    H = get(cfg, "hidden_size", 2880)
    nh = get(cfg, "num_attention_heads", 64)
    nkv = get(cfg, "num_key_value_heads", 8)
    hd = get(cfg, "head_dim", 64)
    ab = bool(get(cfg, "attention_bias", True))
    I = get(cfg, "intermediate_size", 2880)
    E = get(cfg, "num_local_experts", get(cfg, "num_experts", 128))
    k = get(cfg, "num_experts_per_tok", get(cfg, "experts_per_token", 4))
    m = CausalLM(cfg, H, get(cfg, "vocab_size", 201088), bool(get(cfg, "tie_word_embeddings", False)))
    n = get(cfg, "num_hidden_layers", 36)
    for _ in range(n):
        L = Container()
        L.self_attn = Container()
        L.self_attn.q_proj = linear(H, nh * hd, ab)
        L.self_attn.k_proj = linear(H, nkv * hd, ab)
        L.self_attn.v_proj = linear(H, nkv * hd, ab)
        L.self_attn.o_proj = linear(nh * hd, H, ab)
        L.self_attn.sinks = param(nh)
        L.mlp = Container()
        L.mlp.router = Container()
        L.mlp.router.weight = param(E, H)
        L.mlp.router.bias = param(E)
        L.mlp.experts = Container()
        L.mlp.experts.gate_up_proj = param(E, H, 2 * I)
        L.mlp.experts.gate_up_proj_bias = param(E, 2 * I)
        L.mlp.experts.down_proj = param(E, I, H)
        L.mlp.experts.down_proj_bias = param(E, H)
        L.input_layernorm = RMSNorm(H)
        L.post_attention_layernorm = RMSNorm(H)
        m.model.layers.append(L)
    return Spec(m, k, n)


def build_switch_transformers(cfg):
    # modeling_switch_transformers.py / configuration_switch_transformers.py
    # (defaults: vocab 32128, d_model 768, d_kv 64, d_ff 2048, num_layers 12,
    #  num_decoder_layers 12 (None -> num_layers), num_sparse_{encoder,decoder}_layers 3,
    #  num_heads 12, num_experts 8, router_bias False, relative_attention_num_buckets 32,
    #  tie_word_embeddings True).
    # * shared = Embedding(vocab, d_model); encoder/decoder embed_tokens are the same tensor.
    # * attention q,k,v: Linear(d_model, heads*d_kv, no bias); o: Linear(heads*d_kv, d_model).
    # * relative_attention_bias = Embedding(num_buckets, heads) only in block 0 of each stack.
    # * encoder block: layer.0 self-attn (+layer_norm), layer.1 FF (+layer_norm)
    #   decoder block: layer.0 self-attn, layer.1 EncDecAttention (cross), layer.2 FF.
    # * sparse_step = num_layers // num_sparse_layers (0 if none);
    #   is_sparse(i) = (i % step == 1 or step == 1) if step > 0 else False.
    # * sparse FF: mlp.router.classifier Linear(d_model, E, bias=router_bias),
    #   mlp.experts.expert_{e}.{wi,wo}; dense FF: mlp.{wi,wo}.  Top-1 routing.
    # * final_layer_norm per stack; T5 norms have no bias.
    # * lm_head = Linear(d_model, vocab, no bias), tied to `shared` if tie_word_embeddings.
    D = get(cfg, "d_model", 768)
    dkv = get(cfg, "d_kv", 64)
    nh = get(cfg, "num_heads", 12)
    dff = get(cfg, "d_ff", 2048)
    E = get(cfg, "num_experts", 8)
    nb = get(cfg, "relative_attention_num_buckets", 32)
    rb = bool(get(cfg, "router_bias", False))
    vocab = get(cfg, "vocab_size", 32128)
    n_enc = get(cfg, "num_layers", 12)
    n_dec = get(cfg, "num_decoder_layers", n_enc)
    s_enc = get(cfg, "num_sparse_encoder_layers", 3)
    s_dec = get(cfg, "num_sparse_decoder_layers", 3)
    tied = bool(get(cfg, "tie_word_embeddings", True))
    inner = nh * dkv

    def attn(rel):
        a = Container()
        a.q = linear(D, inner)
        a.k = linear(D, inner)
        a.v = linear(D, inner)
        a.o = linear(inner, D)
        if rel:
            a.relative_attention_bias = embedding(nb, nh)
        return a

    def ff(sparse):
        f = Container()
        if sparse:
            f.mlp = Container()
            f.mlp.router = Container()
            f.mlp.router.classifier = linear(D, E, rb)
            f.mlp.experts = nn.ModuleDict(
                OrderedDict((f"expert_{e}", T5DenseActDense(D, dff)) for e in range(E)))
        else:
            f.mlp = T5DenseActDense(D, dff)
        f.layer_norm = RMSNorm(D)
        return f

    m = Container()
    m.shared = embedding(vocab, D)
    n_moe = 0
    for stack_name, n_layers, n_sparse, is_dec in (("encoder", n_enc, s_enc, False),
                                                    ("decoder", n_dec, s_dec, True)):
        step = n_layers // n_sparse if n_sparse > 0 else 0
        st = Container()
        st.embed_tokens = embedding(vocab, D)
        st.embed_tokens.weight = m.shared.weight          # shared input embedding
        st.block = nn.ModuleList()
        for i in range(n_layers):
            sparse = (i % step == 1 or step == 1) if step > 0 else False
            n_moe += int(sparse)
            b = Container()
            b.layer = nn.ModuleList()
            sa = Container()
            sa.SelfAttention = attn(i == 0)
            sa.layer_norm = RMSNorm(D)
            b.layer.append(sa)
            if is_dec:
                ca = Container()
                ca.EncDecAttention = attn(False)
                ca.layer_norm = RMSNorm(D)
                b.layer.append(ca)
            b.layer.append(ff(sparse))
            st.block.append(b)
        st.final_layer_norm = RMSNorm(D)
        setattr(m, stack_name, st)
    m.lm_head = linear(D, vocab)
    if tied:
        m.lm_head.weight = m.shared.weight
    return Spec(m, 1, n_moe)


BUILDERS = {
    "llama": build_llama,
    "mixtral": build_mixtral,
    "qwen2_moe": build_qwen2_moe,
    "qwen3_moe": build_qwen3_moe,
    "olmoe": build_olmoe,
    "deepseek_v2": build_deepseek_v2,
    "deepseek_v3": build_deepseek_v3,
    "gpt_oss": build_gpt_oss,
    "switch_transformers": build_switch_transformers,
}


# --------------------------------------------------------------------------
# classification by parameter name
# --------------------------------------------------------------------------

_RULES = [
    # order matters
    ("lm_head",        re.compile(r"^lm_head\.")),
    ("embeddings",     re.compile(r"(^|\.)embed_tokens\.|^shared\.")),
    ("attention",      re.compile(r"\.(self_attn|SelfAttention|EncDecAttention)\.")),
    ("shared_experts", re.compile(r"\.(shared_expert|shared_experts|shared_expert_gate)\.")),
    ("routed_experts", re.compile(r"\.experts\.")),
    ("router",         re.compile(r"\.(mlp|block_sparse_moe)\.(gate|router)\.")),
    ("norms",          re.compile(r"(layernorm|layer_norm|norm)\.weight$")),
    ("dense_ffn",      re.compile(r"\.mlp\.(gate_proj|up_proj|down_proj|wi|wo)\.")),
]


def classify(name):
    for part, rx in _RULES:
        if rx.search(name):
            return part
    raise ValueError(f"unclassified parameter {name!r}")


def moe_layer_key(name):
    """Prefix identifying the MoE block of a routed-expert parameter."""
    return name.split(".experts.")[0]


def count(spec, cfg):
    """Per-part totals and actives (ints) from the meta skeleton."""
    parts = {p: {"total": 0, "active": 0} for p in PARTS}
    experts_by_layer = {}
    # named_parameters() de-duplicates shared tensors (tied lm_head, Switch shared embedding)
    for name, p in spec.model.named_parameters():
        part = classify(name)
        n = p.numel()
        parts[part]["total"] += n
        if part == "routed_experts":
            experts_by_layer[moe_layer_key(name)] = experts_by_layer.get(moe_layer_key(name), 0) + n
        else:
            parts[part]["active"] += n
    # active routed experts: top_k of E equal experts in each MoE layer
    E = n_experts(cfg)
    for _, n in experts_by_layer.items():
        assert (n * spec.top_k) % E == 0
        parts["routed_experts"]["active"] += n * spec.top_k // E
    total = sum(v["total"] for v in parts.values())
    active = sum(v["active"] for v in parts.values())
    return {"total": total, "active": active, "parts": parts}


def n_experts(cfg):
    t = cfg["model_type"]
    if t == "mixtral":
        return get(cfg, "num_local_experts", 8)
    if t in ("deepseek_v2", "deepseek_v3"):
        return cfg.get("n_routed_experts") or 1
    if t == "gpt_oss":
        return get(cfg, "num_local_experts", get(cfg, "num_experts", 128))
    if t == "qwen2_moe":
        return get(cfg, "num_experts", 60)
    if t == "qwen3_moe":
        return get(cfg, "num_experts", 128)
    if t == "olmoe":
        return get(cfg, "num_experts", 64)
    if t == "switch_transformers":
        return get(cfg, "num_experts", 8)
    return 1


def oracle(cfg):
    t = cfg.get("model_type")
    if t not in BUILDERS:
        raise ValueError(f"unsupported model_type {t!r}")
    spec = BUILDERS[t](cfg)
    return count(spec, cfg), spec


def load(path):
    with open(path) as f:
        return json.load(f)


# --------------------------------------------------------------------------
# comparison with the C++ tool
# --------------------------------------------------------------------------

def fmt(n):
    return f"{n:,}"


def run_moe(moe, path):
    r = subprocess.run([moe, "estimate", "--config", path, "--json"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    if r.returncode != 0:
        raise RuntimeError(f"`{moe} estimate --config {path} --json` exited {r.returncode}: {r.stderr.strip()}")
    return json.loads(r.stdout)


def compare(path, moe):
    cfg = load(path)
    want, _ = oracle(cfg)
    got = run_moe(moe, path)
    diffs = []
    gp = got.get("parameters", {})
    for key in ("total", "active"):
        if gp.get(key) != want[key]:
            diffs.append(f"  parameters.{key}: moe={gp.get(key)!r} oracle={fmt(want[key])}")
    gparts = gp.get("parts", {})
    for part in PARTS:
        for key in ("total", "active"):
            w = want["parts"][part][key]
            g = gparts.get(part, {}).get(key)
            if g != w:
                d = f" (moe-oracle = {g - w:+,})" if isinstance(g, int) else ""
                diffs.append(f"  parts.{part}.{key}: moe={g!r} oracle={fmt(w)}{d}")
    if got.get("model_type") not in (None, cfg["model_type"]):
        diffs.append(f"  model_type: moe={got.get('model_type')!r} oracle={cfg['model_type']!r}")
    name = path.rsplit("/", 1)[-1]
    if diffs:
        print(f"MISMATCH {name}")
        print("\n".join(diffs))
        return False
    print(f"ok {name} total={fmt(want['total'])} active={fmt(want['active'])}")
    return True


def tensor_diffs(want, listed):
    """want: {name: shape} of the skeleton; listed: [{name, shape}] from the C++ tool."""
    got = OrderedDict((t["name"], list(t["shape"])) for t in listed)
    diffs = []
    if len(got) != len(listed):
        diffs.append(f"  {len(listed) - len(got)} names listed twice")
    diffs += [f"  missing {n} {want[n]}" for n in want if n not in got]
    diffs += [f"  extra {n} {got[n]}" for n in got if n not in want]
    diffs += [f"  {n}: shape {got[n]}, oracle {want[n]}" for n in want if n in got and got[n] != want[n]]
    return diffs


def skeleton_tensors(cfg):
    spec = BUILDERS[cfg["model_type"]](cfg)
    return OrderedDict((n, list(p.shape)) for n, p in spec.model.named_parameters())


def compare_tensors(path, moe):
    """Every checkpoint tensor of the skeleton, by name and shape, against the C++ list."""
    r = subprocess.run([moe, "estimate", "--config", path, "--tensors", "--json"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    if r.returncode != 0:
        raise RuntimeError(f"`{moe} estimate --config {path} --tensors --json` exited {r.returncode}: "
                           f"{r.stderr.strip()}")
    want = skeleton_tensors(load(path))
    diffs = tensor_diffs(want, json.loads(r.stdout)["tensors"])
    name = path.rsplit("/", 1)[-1]
    if diffs:
        print(f"MISMATCH {name} ({len(diffs)} differences)")
        print("\n".join(diffs[:20]))
        return False
    print(f"ok {name} {len(want)} tensors")
    return True


def print_counts(path):
    cfg = load(path)
    res, spec = oracle(cfg)
    print(f"{path.rsplit('/', 1)[-1]} ({cfg['model_type']}, {spec.moe_layers} MoE layers, top_k={spec.top_k}):"
          f" total={fmt(res['total'])} active={fmt(res['active'])}")
    for p in PARTS:
        v = res["parts"][p]
        print(f"    {p:15s} total={fmt(v['total']):>20s} active={fmt(v['active']):>20s}")


def dump(path):
    cfg = load(path)
    spec = BUILDERS[cfg["model_type"]](cfg)
    for name, p in spec.model.named_parameters():
        print(f"{classify(name):15s} {name} {list(p.shape)}")


# --------------------------------------------------------------------------
# self-test (no C++ binary needed)
# --------------------------------------------------------------------------

def self_test():
    ok = True

    def check(label, got, want):
        nonlocal ok
        if got != want:
            ok = False
            print(f"FAIL {label}: got {fmt(got)} want {fmt(want)}")
        else:
            print(f"ok   {label} = {fmt(got)}")

    # Qwen3-30B-A3B: Qwen's published exact count.
    q3 = {"model_type": "qwen3_moe", "vocab_size": 151936, "hidden_size": 2048, "intermediate_size": 6144,
          "num_hidden_layers": 48, "num_attention_heads": 32, "num_key_value_heads": 4, "head_dim": 128,
          "moe_intermediate_size": 768, "num_experts": 128, "num_experts_per_tok": 8,
          "decoder_sparse_step": 1, "mlp_only_layers": [], "tie_word_embeddings": False}
    r, _ = oracle(q3)
    check("qwen3-30b-a3b total", r["total"], 30_532_122_624)
    check("qwen3-30b-a3b embeddings (151936*2048)", r["parts"]["embeddings"]["total"], 311_164_928)
    check("qwen3-30b-a3b q_norm/k_norm per layer is 2*head_dim",
          r["parts"]["attention"]["total"] // 48 - (2048 * 4096 + 2 * 2048 * 512 + 4096 * 2048), 256)

    # Mixtral 8x7B
    mx = {"model_type": "mixtral", "vocab_size": 32000, "hidden_size": 4096, "intermediate_size": 14336,
          "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
          "num_local_experts": 8, "num_experts_per_tok": 2, "tie_word_embeddings": False}
    r, _ = oracle(mx)
    check("mixtral-8x7b total", r["total"], 46_702_792_704)
    check("mixtral-8x7b routed experts", r["parts"]["routed_experts"]["total"], 45_097_156_608)
    check("mixtral-8x7b embeddings", r["parts"]["embeddings"]["total"], 131_072_000)
    check("mixtral-8x7b attention per layer", r["parts"]["attention"]["total"] // 32, 41_943_040)
    check("mixtral-8x7b active experts = 2/8", r["parts"]["routed_experts"]["active"], 45_097_156_608 // 4)

    # Llama-2-7B (dense): the well-known 6,738,415,616.
    ll = {"model_type": "llama", "vocab_size": 32000, "hidden_size": 4096, "intermediate_size": 11008,
          "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 32}
    r, _ = oracle(ll)
    check("llama-2-7b total", r["total"], 6_738_415_616)
    check("llama-2-7b active == total", r["active"], r["total"])

    # tying: lm_head counted 0, total drops by vocab*hidden
    r2, _ = oracle(dict(ll, tie_word_embeddings=True))
    check("tied lm_head", r2["parts"]["lm_head"]["total"], 0)
    check("tied total", r2["total"], 6_738_415_616 - 32000 * 4096)

    # Switch placement rule (HF): step 2 -> blocks 1,3,5,...; step 1 -> all; 0 sparse -> none
    sw = {"model_type": "switch_transformers", "num_layers": 12, "num_sparse_encoder_layers": 6,
          "num_decoder_layers": 12, "num_sparse_decoder_layers": 6}
    _, spec = oracle(sw)
    enc = [i for i, b in enumerate(spec.model.encoder.block) if hasattr(b.layer[1].mlp, "router")]
    check("switch step-2 sparse encoder blocks == [1,3,5,7,9,11]", int(enc == [1, 3, 5, 7, 9, 11]), 1)
    names = [n for n, _ in spec.model.named_parameters()]
    check("switch relative_attention_bias tensors (block 0 of each stack)",
          sum(".relative_attention_bias." in n for n in names), 2)
    check("switch shared embedding counted once", sum("embed_tokens" in n or n.startswith("shared.") for n in names), 1)

    # GPT-OSS per-layer pieces
    go = {"model_type": "gpt_oss", "num_hidden_layers": 1, "num_local_experts": 32, "vocab_size": 10,
          "hidden_size": 2880, "intermediate_size": 2880, "head_dim": 64, "num_attention_heads": 64,
          "num_key_value_heads": 8, "num_experts_per_tok": 4}
    r, _ = oracle(go)
    check("gpt-oss attention/layer (q,k,v,o + biases + sinks)", r["parts"]["attention"]["total"],
          2880 * 4096 + 4096 + 2 * (2880 * 512 + 512) + 4096 * 2880 + 2880 + 64)
    check("gpt-oss router/layer (weight + bias)", r["parts"]["router"]["total"], 32 * 2880 + 32)
    check("gpt-oss experts/layer (with biases)", r["parts"]["routed_experts"]["total"],
          32 * (2880 * 5760 + 5760 + 2880 * 2880 + 2880))

    # DeepSeek-V3: e_score_correction_bias present; MTP not counted; 3 dense layers.
    d3 = {"model_type": "deepseek_v3", "num_hidden_layers": 61, "first_k_dense_replace": 3,
          "num_nextn_predict_layers": 1}
    r, spec = oracle(d3)
    check("deepseek-v3 MoE layers", spec.moe_layers, 58)
    check("deepseek-v3 router (weight + e_score_correction_bias)", r["parts"]["router"]["total"],
          58 * (256 * 7168 + 256))
    check("deepseek-v3 total (HF defaults = V3 config)", r["total"], 671_026_419_200)

    # The tensor comparison can fail: a wrong shape, a missing, an extra or a repeated name.
    want = skeleton_tensors(mx)
    good = [{"name": n, "shape": v} for n, v in want.items()]
    check("tensor lists equal", len(tensor_diffs(want, good)), 0)
    bad = [dict(t) for t in good]
    bad[3]["shape"] = [1, 2]
    check("a wrong shape is caught", len(tensor_diffs(want, bad)), 1)
    check("a missing tensor is caught", len(tensor_diffs(want, good[1:])), 1)
    check("an extra tensor is caught", len(tensor_diffs(want, good + [{"name": "x", "shape": [1]}])), 1)
    check("a repeated name is caught", len(tensor_diffs(want, good + good[:1])), 1)

    print("self-test " + ("passed" if ok else "FAILED"))
    return ok


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--moe", help="path to the moe binary")
    ap.add_argument("--self-test", action="store_true", help="check known facts, no binary needed")
    ap.add_argument("--print", action="store_true", help="print the oracle's counts, no binary needed")
    ap.add_argument("--dump", action="store_true", help="print every parameter name, part and shape")
    ap.add_argument("--tensors", action="store_true",
                    help="compare the checkpoint tensor names and shapes instead of the counts")
    ap.add_argument("configs", nargs="*")
    a = ap.parse_args(argv)

    ok = True
    if a.self_test:
        ok &= self_test()
    if a.dump:
        for c in a.configs:
            dump(c)
        return 0 if ok else 1
    if a.print:
        for c in a.configs:
            print_counts(c)
        return 0 if ok else 1
    if a.configs:
        if not a.moe:
            ap.error("--moe PATH is required to compare configs (or use --print)")
        seen = {}  # a config equal to one already checked (shared/ holds copies) is not redone
        for c in a.configs:
            try:
                key = json.dumps(load(c), sort_keys=True)
                if key in seen:
                    print(f"ok {c.rsplit('/', 1)[-1]} (same config as {seen[key]})")
                    continue
                seen[key] = c.rsplit("/", 1)[-1]
                ok &= compare_tensors(c, a.moe) if a.tensors else compare(c, a.moe)
            except Exception as e:  # noqa: BLE001 - report and keep going
                ok = False
                print(f"ERROR {c}: {e}")
    elif not a.self_test:
        ap.error("nothing to do: give CONFIG.json files, --self-test or --print")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
