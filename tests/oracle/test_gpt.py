#!/usr/bin/python3
"""PyTorch oracle for the MoE-GPT (include/moe/gpt.h) through tests/gpt_oracle_tool.cpp.

Usage:
    /usr/bin/python3 tests/oracle/test_gpt.py --tool PATH/TO/gpt_oracle_tool [--workdir DIR] [--only NAME]

For every case: writes config.json (the format of gpt_config_to_json), weights.safetensors
(float64, GPT tensor names, seeded numpy) and inputs.safetensors (tokens, targets I32 [B, S];
targets < 0 are ignored); the tool runs forward + backward in float64 and float32; the float64
PyTorch model of gpt_torch.py (autograd) gives the reference logits, losses, every gradient and
the expert loads. Tolerances relative to max|ref| (floor 1e-3): 1e-9 for f64, 2e-4 for f32;
loads exactly. For ADAMW_CASES the tool also trains 5 steps in float32 as the trainer does
(clip_grad_norm, AdamW with matrices decayed and rank-1 tensors not, the aux-loss-free bias
update), against torch.optim.AdamW with two parameter groups in float64: every final weight
within 2e-5 of max|ref|; a run with a 10% larger lr in one step must fail. Exit 1 on any failure.
"""

import argparse
import json
import os
import subprocess
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gpt_torch  # noqa: E402
import safetensors_io  # noqa: E402

TOL = {"f64": 1e-9, "f32": 2e-4}


def base(**kw):
    cfg = dict(vocab_size=19, context=8, d_model=16, n_layers=2, n_heads=4, n_kv_heads=4, pos="rope",
               rope_theta=10000.0, norm="rmsnorm", norm_eps=1e-5, tied_head=True, attn_bias=False, causal=True,
               head_dim=0, qkv_bias=False, qk_norm="none", dense_layers=[],
               dense=dict(act="swiglu", hidden=12), moe=None, first_dense_layers=0, moe_every=1)
    cfg.update(kw)
    return cfg


def moe(E=4, k=2, I=8, **kw):
    m = dict(model_type="custom", hidden_size=16, num_experts=E, num_experts_per_tok=k, intermediate_size=I)
    m.update(kw)
    return m


CASES = {
    "dense": base(),
    "dense_gelu_learned_layernorm_untied": base(
        pos="learned", norm="layernorm", tied_head=False, attn_bias=True,
        dense=dict(act="gelu", hidden=12, bias=True)),
    "mixtral_softmax_top2": base(moe=moe(router=dict(normalize=True),
                                         losses={"load_balancing": 0.02, "z_loss": 0.001})),
    "switch_top1_capacity": base(moe=moe(k=1, expert_act="relu",
                                         router=dict(top_k=1, capacity_mode="absolute", expert_capacity=2,
                                                     dropped="passthrough"),
                                         losses={"switch": 0.01, "z_loss": 0.001})),
    "deepseek_v3_sigmoid_bias_shared": base(
        n_layers=3, first_dense_layers=1,
        moe=moe(E=6, k=2, shared_intermediate_size=8,
                router=dict(score="sigmoid", selection="group_limited", n_group=3, topk_group=2,
                            group_score="top2_sum", selection_bias=True, normalize=True, norm_eps=1e-20,
                            scale=2.5),
                losses={"deepseek_v3_seq": 0.001})),
    "qwen2_shared_gate_every_2nd": base(
        n_layers=3, moe_every=2,
        moe=moe(shared_intermediate_size=10, shared_gate=True, losses={"load_balancing": 0.01})),
    "gqa_moe": base(n_kv_heads=2, moe=moe(router=dict(normalize=True))),
    "gqa_dense_4q_1kv": base(n_kv_heads=1, pos="learned"),
    "encoder_expert_choice": base(
        causal=False, moe=moe(router=dict(selection="expert_choice", capacity_factor=1.0))),
    "encoder_soft_moe": base(causal=False, moe=moe(soft_moe=dict(slots_per_expert=2))),
    "qwen3_head_dim_qk_norm_head": base(n_heads=4, n_kv_heads=2, head_dim=6, qk_norm="head",
                                        moe=moe(router=dict(normalize=True))),
    "olmoe_qk_norm_full": base(n_kv_heads=2, qk_norm="full", moe=moe()),
    "qwen2_qkv_bias_shared_gate": base(qkv_bias=True, moe=moe(shared_intermediate_size=10, shared_gate=True)),
    # Qwen3-MoE's layout: decoder_sparse_step 2 (layers 1, 3) and mlp_only_layers [3]
    "qwen3_sparse_step_mlp_only": base(n_layers=4, first_dense_layers=1, moe_every=2, dense_layers=[3], qk_norm="head",
                                       moe=moe(router=dict(normalize=True))),
}


def make_weights(rng, cfg_names_shapes):
    W = {}
    for name, shape in cfg_names_shapes:
        if name.endswith("norm1.weight") or name.endswith("norm2.weight") or name == "normf.weight" or name.endswith("_norm"):
            a = 1 + 0.1 * rng.standard_normal(shape)
        elif "bias" in name or name.endswith("attn.bo"):
            a = 0.1 * rng.standard_normal(shape)
        elif name.endswith("soft.scale"):
            a = np.array(1.5)
        else:
            a = 0.3 * rng.standard_normal(shape)
        W[name] = np.asarray(a, dtype=np.float64)
    return W


def weight_shapes(cfg):
    """[(name, shape)] of the GPT tensors (the C++ naming); the MoE part from moe_torch."""
    import moe_torch
    d, V, H = cfg["d_model"], cfg["vocab_size"], cfg["n_heads"]
    Hkv, hd = cfg["n_kv_heads"], gpt_torch.head_dim(cfg)
    ln = cfg["norm"] == "layernorm"
    out = [("wte", (V, d))]
    if cfg["pos"] == "learned":
        out.append(("wpe", (cfg["context"], d)))
    for layer in range(cfg["n_layers"]):
        p = "blocks.%d." % layer
        out += [(p + "norm1.weight", (d,))] + ([(p + "norm1.bias", (d,))] if ln else [])
        out += [(p + "attn.wq", (H * hd, d)), (p + "attn.wk", (Hkv * hd, d)), (p + "attn.wv", (Hkv * hd, d))]
        if cfg["qkv_bias"]:
            out += [(p + "attn.bq", (H * hd,)), (p + "attn.bk", (Hkv * hd,)), (p + "attn.bv", (Hkv * hd,))]
        if cfg["qk_norm"] != "none":
            full = cfg["qk_norm"] == "full"
            out += [(p + "attn.q_norm", (H * hd if full else hd,)), (p + "attn.k_norm", (Hkv * hd if full else hd,))]
        out += [(p + "attn.wo", (d, H * hd))]
        if cfg["attn_bias"]:
            out.append((p + "attn.bo", (d,)))
        out += [(p + "norm2.weight", (d,))] + ([(p + "norm2.bias", (d,))] if ln else [])
        if gpt_torch.is_moe_layer(cfg, layer):
            L = moe_torch.resolve(cfg["moe"])
            out += [(p + "moe." + n, tuple(s)) for n, s, _ in moe_torch.weight_specs(L)]
        else:
            dense = cfg["dense"]
            F_, gated = dense["hidden"], dense.get("act", "swiglu") in ("swiglu", "gpt_oss_swiglu")
            if gated:
                out.append((p + "ffn.gate", (F_, d)))
            out += [(p + "ffn.up", (F_, d)), (p + "ffn.down", (d, F_))]
            if dense.get("bias"):
                out += ([(p + "ffn.gate_bias", (F_,))] if gated else []) + [(p + "ffn.up_bias", (F_,)),
                                                                          (p + "ffn.down_bias", (d,))]
    out += [("normf.weight", (d,))] + ([("normf.bias", (d,))] if ln else [])
    if not cfg["tied_head"]:
        out.append(("head", (V, d)))
    return out


def reference(cfg, weights, tokens, targets):
    W = {n: torch.tensor(a, requires_grad=not n.endswith("router.selection_bias")) for n, a in weights.items()}
    out = gpt_torch.gpt_forward(cfg, W, torch.tensor(tokens, dtype=torch.long),
                                torch.tensor(targets, dtype=torch.long))
    names = sorted(n for n in W if W[n].requires_grad)
    grads = torch.autograd.grad(out["total"], [W[n] for n in names], allow_unused=True)
    ref = {"logits": out["logits"].detach().numpy(), "loss.ce": out["ce"].item(), "loss.aux": out["aux"].item(),
           "loss.total": out["total"].item()}
    for n, g in zip(names, grads):
        ref["grad." + n] = np.zeros(W[n].shape) if g is None else g.numpy()
    for layer, counts in out["loads"].items():
        ref["load.%d" % layer] = counts.numpy()
    return ref


# 5 training steps (forward, backward, clip_grad_norm_, AdamW with two parameter groups, the
# aux-loss-free bias update) for these cases: the tool's float32 trainer path against torch float64.
ADAMW_CASES = ("dense", "mixtral_softmax_top2", "deepseek_v3_sigmoid_bias_shared", "switch_top1_capacity",
               "dense_gelu_learned_layernorm_untied")
ADAMW = dict(steps=5, lr=(1e-3, 2e-3, 3e-3, 2e-3, 1e-3), beta1=0.9, beta2=0.95, eps=1e-8, weight_decay=0.1, clip=1.0,
             bias_update_rate=1e-3)
ADAMW_TOL = 2e-5   # max |ours f32 - torch f64| / max |torch f64| per weight tensor, after the last step


def adamw_reference(cfg, weights, tokens, targets, lrs):
    """torch.optim.AdamW (float64) as the trainer: norms and biases (rank 1) not decayed."""
    W = {n: torch.tensor(a, requires_grad=gpt_torch_trainable(n)) for n, a in weights.items()}
    params = [W[n] for n in weights if W[n].requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": ADAMW["weight_decay"]},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=lrs[0], betas=(ADAMW["beta1"], ADAMW["beta2"]), eps=ADAMW["eps"])
    losses, norms = [], []
    for s, lr in enumerate(lrs):
        opt.zero_grad(set_to_none=False)
        out = gpt_torch.gpt_forward(cfg, W, torch.tensor(tokens[s], dtype=torch.long),
                                    torch.tensor(targets[s], dtype=torch.long))
        out["total"].backward()
        norms.append(float(torch.nn.utils.clip_grad_norm_(params, ADAMW["clip"])))
        for g in opt.param_groups:
            g["lr"] = lr
        opt.step()
        losses.append(out["total"].item())
        # DeepSeek-V3 aux-loss-free balancing (moe::aux_free_bias_update): b += γ·sign(mean(c) − c).
        with torch.no_grad():
            for layer, counts in out["loads"].items():
                name = "blocks.%d.moe.router.selection_bias" % layer
                if name in W and ADAMW["bias_update_rate"] > 0:
                    c = counts.to(torch.float64)
                    W[name] += ADAMW["bias_update_rate"] * torch.sign(c.mean() - c)
    ref = {"adamw.loss.total": np.array(losses), "adamw.grad_norm": np.array(norms)}
    ref.update({"adamw.w." + n: W[n].detach().numpy() for n in weights})
    return ref


def gpt_torch_trainable(name):
    return not name.endswith("router.selection_bias")


def compare_adamw(ref, got, lr_scale=1.0):
    """(failures, max rel err over the weights). lr_scale: the self-check's deliberately wrong lr."""
    fails, worst = [], 0.0
    for name, want in ref.items():
        if name not in got:
            fails.append("%s missing from the tool's output" % name)
            continue
        e = rel_err(got[name], want)
        if name.startswith("adamw.w."):
            worst = max(worst, e)
        tol = ADAMW_TOL if name.startswith("adamw.w.") else TOL["f32"]
        if not e <= tol:
            fails.append("%s: relative error %.3g > %.0e" % (name, e, tol))
    return fails, worst


def run_adamw_case(name, cfg, tool, d, weights, rng):
    """Runs the tool's --adamw mode twice (the second with a 10% larger lr in one step, which must be caught)."""
    B, S, V, N = 2, 6, cfg["vocab_size"], ADAMW["steps"]
    tokens = rng.integers(0, V, size=(N, B, S)).astype(np.int32)
    targets = rng.integers(0, V, size=(N, B, S)).astype(np.int32)
    targets[rng.random((N, B, S)) < 0.25] = -1
    lrs = np.array(ADAMW["lr"][:N], dtype=np.float64)
    hyper = np.array([ADAMW[k] for k in ("beta1", "beta2", "eps", "weight_decay", "clip", "bias_update_rate")])
    ref = adamw_reference(cfg, weights, tokens, targets, lrs)
    results = []
    for variant, lr_used in (("ok", lrs), ("wrong_lr", lrs * np.array([1, 1, 1.1, 1, 1]))):
        train_path = os.path.join(d, "train_%s.safetensors" % variant)
        out_path = os.path.join(d, "adamw_%s.safetensors" % variant)
        safetensors_io.save(train_path, {"tokens": tokens, "targets": targets, "lr": lr_used, "hyper": hyper})
        proc = subprocess.run([tool, os.path.join(d, "config.json"), os.path.join(d, "weights.safetensors"),
                               os.path.join(d, "inputs.safetensors"), out_path, "--adamw", train_path],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            return ["adamw tool failed (%d): %s" % (proc.returncode, proc.stderr.strip())], 0.0
        got, _ = safetensors_io.load(out_path)
        results.append(compare_adamw(ref, {k: v for k, v in got.items() if k.startswith("adamw.")}))
    fails, worst = results[0]
    if not results[1][0]:
        fails.append("self-check: a 10%% larger lr in step 3 was not detected (max rel err %.2g)" % results[1][1])
    return fails, worst


def rel_err(got, want):
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        return float("inf")
    scale = max(float(np.max(np.abs(want))) if want.size else 0.0, 1e-3)
    return float(np.max(np.abs(got - want))) / scale if want.size else 0.0


def compare(ref, got, prec):
    """Returns (list of failure strings, max rel err over floats, number of values compared)."""
    fails, worst, count = [], 0.0, 0
    for name, want in ref.items():
        key = prec + "." + name
        if key not in got:
            fails.append("%s missing from the tool's output" % key)
            continue
        if name.startswith("load."):
            if not np.array_equal(np.asarray(got[key]).astype(np.int64), np.asarray(want).astype(np.int64)):
                fails.append("%s: %s != reference %s" % (key, got[key].tolist(), np.asarray(want).tolist()))
            continue
        e = rel_err(got[key], want)
        worst = max(worst, e)
        count += 1
        if not e <= TOL[prec]:
            fails.append("%s: relative error %.3g > %.0e" % (key, e, TOL[prec]))
    extra = [k for k in got if k.startswith(prec + ".") and k[len(prec) + 1:] not in ref]
    fails += ["%s: not in the reference" % k for k in extra]
    return fails, worst, count


def run_case(name, cfg, tool, workdir, seed):
    rng = np.random.default_rng(seed)
    d = os.path.join(workdir, name)
    os.makedirs(d, exist_ok=True)
    weights = make_weights(rng, weight_shapes(cfg))
    B, S, V = 2, 6, cfg["vocab_size"]
    tokens = rng.integers(0, V, size=(B, S)).astype(np.int32)
    targets = rng.integers(0, V, size=(B, S)).astype(np.int32)
    targets[rng.random((B, S)) < 0.25] = -1
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    safetensors_io.save(os.path.join(d, "weights.safetensors"), weights)
    safetensors_io.save(os.path.join(d, "inputs.safetensors"), {"tokens": tokens, "targets": targets})
    out_path = os.path.join(d, "out.safetensors")
    proc = subprocess.run([tool, os.path.join(d, "config.json"), os.path.join(d, "weights.safetensors"),
                           os.path.join(d, "inputs.safetensors"), out_path], capture_output=True, text=True)
    if proc.returncode != 0:
        return ["tool failed (%d): %s" % (proc.returncode, proc.stderr.strip())], {}
    got, _ = safetensors_io.load(out_path)
    got = {k: (v.reshape(()) if k.split(".", 1)[1].startswith("loss.") else v) for k, v in got.items()}
    ref = reference(cfg, weights, tokens, targets)
    fails, stats = [], {}
    for prec in ("f64", "f32"):
        f, worst, count = compare(ref, got, prec)
        fails += f
        stats[prec] = (worst, count)
    # The comparison must be able to fail: a 0.1% error in one gradient is caught in f64.
    gname = next(k for k in ref if k.startswith("grad."))
    bad = dict(got)
    bad["f64." + gname] = got["f64." + gname] * 1.001 + 1e-3
    if not compare(ref, bad, "f64")[0]:
        fails.append("self-check: a corrupted gradient was not detected")
    if name in ADAMW_CASES:
        f, stats["adamw"] = run_adamw_case(name, cfg, tool, d, weights, rng)
        fails += f
    return fails, stats


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tool", required=True)
    ap.add_argument("--workdir", default="gpt_oracle")
    ap.add_argument("--only")
    args = ap.parse_args()
    failed = 0
    names = [n for n in CASES if not args.only or n == args.only]
    for i, name in enumerate(names):
        fails, stats = run_case(name, CASES[name], args.tool, args.workdir, 1000 + i)
        if fails:
            failed += 1
            print("FAIL %-36s" % name)
            for f in fails[:20]:
                print("     " + f)
        else:
            adamw = ", %d AdamW steps %.1e" % (ADAMW["steps"], stats["adamw"]) if "adamw" in stats else ""
            print("PASS %-36s f64 max rel err %.1e, f32 %.1e over %d tensors%s" %
                  (name, stats["f64"][0], stats["f32"][0], stats["f64"][1], adamw))
    print("%d of %d GPT oracle cases passed (logits, CE/aux/total loss, every gradient, expert loads; "
          "float64 and float32 vs PyTorch autograd; %d AdamW steps of the float32 trainer path vs torch.optim.AdamW "
          "in float64 for %s)" % (len(names) - failed, len(names), ADAMW["steps"], ", ".join(ADAMW_CASES)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
