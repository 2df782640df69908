"""--self-test: checks the torch side alone (no C++ needed)."""

import copy
import os
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

import safetensors_io as st
from moe_cases import CASES, build, dsv3_negative_bias, dsv3
from moe_invariants import check_invariants
from moe_torch import layer_forward, resolve, run_reference
from moe_torch_parts import (apply_capacity, apply_capacity_cumsum, capacity_of, deepseek_v3_router,
                             gpt_oss_router, load_balancing_loss_func, mixtral_router,
                             stable_topk)

_results = []


def check(cond, what):
    _results.append((bool(cond), what))
    print(("ok   " if cond else "FAIL ") + what)


def t_safetensors():
    d = tempfile.mkdtemp()
    p = os.path.join(d, "t.safetensors")
    a = {"a": np.arange(6, dtype=np.float64).reshape(2, 3) / 7, "b": np.array(3.5),
         "c": np.array([1, -2], dtype=np.int64), "d": np.array([1.0, 1.00390625, 1.01171875, -3.3])}
    st.save(p, a, {"d": "BF16"})
    b, codes = st.load(p)
    check(codes == {"a": "F64", "b": "F64", "c": "I64", "d": "BF16"}
          and np.array_equal(a["a"], b["a"]) and b["b"].shape == () and np.array_equal(a["c"], b["c"]),
          "safetensors round trip (F64, scalar, I64, BF16)")
    # 1.00390625 is halfway between bf16 1.0 and 1.0078125 -> even (1.0); 1.01171875 -> 1.015625
    check(list(b["d"][:3]) == [1.0, 1.0, 1.015625], "BF16 round-to-nearest-even")
    os.remove(p)
    os.rmdir(d)


def t_stable_topk():
    v = torch.tensor([[0.5, 0.9, 0.9, 0.1, 0.9]])
    check(stable_topk(v, 3).tolist() == [[1, 2, 4]], "stable_topk: ties to the lowest index")


def t_cases():
    """Every case: reference runs, its own invariants hold, and the crafted features happen."""
    for case in CASES:
        cfg, L, W, X = build(case)
        ref, L = run_reference(cfg, W, X, bool(case.get("training")))
        msgs = check_invariants(case, L, ref, X)
        check(not msgs, "%s: reference invariants %s" % (case["name"], "; ".join(msgs)))
        finite = all(np.all(np.isfinite(np.asarray(v, dtype=np.float64))) for v in ref.values())
        check(finite, case["name"] + ": all reference outputs finite")
        S = case["shape"][-1]
        if L.router["capacity_mode"] != "none" and S * L.k > L.E * capacity_of(L.router, S, L.k):
            check(ref["stats.dropped_slots"] > 0, case["name"] + ": capacity drops some slots")
        if case.get("precision") == "f32" and "expert_ids" in ref:
            check(selection_margin(L, ref) > 1e-4, case["name"] + ": f32 selection margin > 1e-4")
        name = case["name"]
        if name.startswith("mixtral_ties"):
            z, ids = ref["router_logits"], ref["expert_ids"].tolist()
            ok = np.array_equal(z[:, 1], z[:, 2]) and np.array_equal(z[:, 0], z[:, 3])
            for row in ids:
                for lo, hi in ((1, 2), (0, 3)):
                    if hi in row:
                        ok &= lo in row and row.index(lo) < row.index(hi)
            check(ok, name + ": a tied expert is only chosen after its lower-index twin")
        if name.startswith("switch_ties"):
            check(np.all(ref["expert_ids"] == 0) and ref["expert_kept"].sum() == 2,
                  name + ": equal logits -> expert 0, first two tokens kept")
        if cfg.get("router", {}).get("bf16_logits"):
            c2 = copy.deepcopy(cfg)
            c2["router"]["bf16_logits"] = False
            ref2, _ = run_reference(c2, W, X, False)
            check(not np.array_equal(ref2["expert_ids"], ref["expert_ids"]),
                  name + ": bf16 rounding changes the selection (ties -> lowest index)")
        if name.startswith("deepseek_v3_group_ties"):
            check(np.all(ref["expert_ids"] < 4), name + ": tied groups -> group 0")
        if "expert_choice_ties" in name:
            ok = True
            for row in ref["ec_tokens"].tolist():
                for lo, hi in ((1, 4), (2, 8), (0, 9)):
                    if hi in row:
                        ok &= lo in row and row.index(lo) < row.index(hi)
            check(ok, name + ": a duplicated token is only taken after its lower-index twin")


def selection_margin(L, ref):
    """Smallest gap between a chosen and an unchosen softmax score (f32 cases)."""
    z = torch.tensor(ref["router_logits"])
    s = torch.sigmoid(z) if L.router["score"] == "sigmoid" else F.softmax(z, -1)
    srt = torch.sort(s, -1, descending=True).values
    k = L.k
    return float((srt[:, k - 1] - srt[:, k]).min()) if k < L.E else 1.0


def t_hf_vs_generic():
    """The HF-style router of each model type equals the generic RouterConfig router."""
    for case in CASES:
        cfg, L, W, X = build(case)
        if not L.hf_router:
            continue
        ref, _ = run_reference(cfg, W, X, bool(case.get("training")))
        c2 = dict(cfg, router={})                      # an (empty) override -> generic path
        alt, L2 = run_reference(c2, W, X, bool(case.get("training")))
        ok = not L2.hf_router and set(ref) == set(alt)
        worst = 0.0
        for n in ref:
            a, b = np.asarray(ref[n], dtype=np.float64), np.asarray(alt[n], dtype=np.float64)
            worst = max(worst, float(np.max(np.abs(a - b))) / max(1e-3, float(np.max(np.abs(a)))))
        check(ok and worst < 1e-12, "%s: HF-style == generic router (%.2g)" % (case["name"], worst))


def t_capacity():
    g = torch.Generator().manual_seed(0)
    ok = True
    for prio in ("position", "batch"):
        for k in (1, 2, 3):
            for cf in (0.25, 0.5, 1.0):
                r = dict(n_experts=5, top_k=k, capacity_mode="factor", capacity_factor=cf,
                         capacity_multiple_of=1, priority=prio)
                logits = torch.randn(3 * 11, 5, generator=g)
                p = logits.softmax(-1)
                ids = stable_topk(p, k)
                w = p.gather(1, ids)
                a = apply_capacity(r, ids, w, 3, 11)
                b = apply_capacity_cumsum(r, ids, w, 3, 11)
                ok &= torch.equal(a, b)
    check(ok, "capacity: loop == vmoe cumsum form (K-major, BPR)")
    # K-major: all first choices beat any second choice
    r = dict(n_experts=2, top_k=2, capacity_mode="absolute", expert_capacity=2, priority="position")
    ids = torch.tensor([[0, 1], [0, 1], [1, 0]])
    w = torch.tensor([[0.6, 0.4], [0.7, 0.3], [0.8, 0.2]])
    kept = apply_capacity(r, ids, w, 1, 3)
    check(kept.tolist() == [[True, True], [True, False], [True, False]],
          "capacity: K-major priority (top-1 choices first)")
    r["priority"] = "batch"
    kept = apply_capacity(r, ids, w, 1, 3)
    check(kept.tolist() == [[True, False], [True, True], [True, False]],
          "capacity: BPR orders tokens by top-1 weight")


def t_equivalences():
    z = torch.randn(17, 6, generator=torch.Generator().manual_seed(1))
    i1, w1, _ = mixtral_router(z, 3)
    i2, w2, _ = gpt_oss_router(z, 3)
    check(torch.equal(i1, i2) and torch.allclose(w1, w2, rtol=0, atol=1e-15),
          "softmax->top-k->renormalise == top-k logits->softmax (§1.3)")
    check(torch.allclose(w1.sum(1), torch.ones(17), atol=1e-15), "renormalised weights sum to 1")


def t_dsv3_fill():
    case = dict(name="fill", cfg=dsv3(4, 2, 2, 1), shape=(13,), seed=17, tweak=dsv3_negative_bias)
    cfg, L, W, X = build(case)
    z = torch.tensor(X["x"]) @ torch.tensor(W["gate.weight"]).t()
    b = torch.tensor(W["gate.e_score_correction_bias"])
    i_inf, _, _ = deepseek_v3_router(z, b, 2, 2, 1, True, 2.5)
    i_zero, _, _ = deepseek_v3_router(z, b, 2, 2, 1, True, 2.5, fill=0.0)
    differs = (torch.sort(i_inf, 1).values != torch.sort(i_zero, 1).values).any(1)
    check(bool(differs.any()) and bool((i_inf < 2).all()),
          "DeepSeek-V3: -inf fill keeps the selection inside the chosen group; 0.0 fill "
          "differs on %d/13 tokens" % int(differs.sum()))


def t_aux_uniform():
    E, k, T = 6, 2, 12
    z = torch.full((T, E), 0.0)
    check(abs(float(load_balancing_loss_func((z,), E, k)) - k) < 1e-12,
          "HF aux loss = k for uniform probabilities")
    # rotational routing: token t prefers experts t, t+1 (mod E); P uniform by symmetry
    z = torch.zeros(T, E)
    for t in range(T):
        z[t, t % E], z[t, (t + 1) % E] = 2.0, 1.0
    check(abs(float(load_balancing_loss_func((z,), E, k)) - k) < 1e-12,
          "HF aux loss = k for perfectly balanced routing")
    mask = torch.tensor([[1.0] * 6 + [0.0] * 6, [1.0] * 6 + [0.0] * 6])
    z2 = torch.cat([z[:6], 5 * torch.randn(6, E), z[:6], 5 * torch.randn(6, E)])
    check(abs(float(load_balancing_loss_func((z2,), E, k, mask)) - k) < 1e-12,
          "HF aux loss with attention_mask ignores padded tokens")


def t_soft_and_ec():
    for case in CASES:
        cfg, L, W, X = build(case)
        if L.soft is None and L.router["selection"] != "expert_choice":
            continue
        ref, _ = run_reference(cfg, W, X, False)
        if L.soft is not None:
            check(np.allclose(ref["soft.combine"].sum(1), 1, atol=1e-14)
                  and np.allclose(ref["soft.dispatch"].reshape(-1, case["shape"][-1], ref[
                      "soft.dispatch"].shape[1]).sum(1), 1, atol=1e-14),
                  case["name"] + ": dispatch columns / combine rows sum to 1")
        else:
            B = case["shape"][0] if len(case["shape"]) == 2 else 1
            C = ref["ec_tokens"].shape[-1]
            check(np.all(ref["stats.tokens_per_expert"] == B * C),
                  case["name"] + ": expert-choice loads equal the capacity")


def t_gradcheck():
    """autograd vs finite differences of L(x) for a few cases (routing fixed near x)."""
    for name in ("mixtral_swiglu_T13", "custom_soft_moe_swiglu", "custom_expert_choice_gelu",
                 "gpt_oss_T13", "deepseek_v3_groups", "custom_vmoe_noise_bpr"):
        case = next(c for c in CASES if c["name"].startswith(name))
        cfg, L, W, X = build(case)
        Wt = {n: torch.tensor(a) for n, a in W.items()}
        inp = {n: torch.tensor(a) for n, a in X.items()}

        def f(x):
            o = layer_forward(L, Wt, dict(inp, x=x), bool(case.get("training")))
            return (o["y"] * inp["dy"]).sum() + o.get("loss.aux_total", 0.0)
        x = inp["x"].clone().requires_grad_(True)
        ok = torch.autograd.gradcheck(f, (x,), eps=1e-6, atol=1e-5, rtol=1e-4, raise_exception=False)
        check(ok, case["name"] + ": gradcheck d/dx")


def self_test(only=None):
    _results.clear()
    t_safetensors()
    t_stable_topk()
    t_equivalences()
    t_capacity()
    t_dsv3_fill()
    t_aux_uniform()
    t_soft_and_ec()
    t_hf_vs_generic()
    t_cases()
    t_gradcheck()
    bad = sum(1 for ok, _ in _results if not ok)
    print("self-test: %d passed, %d failed" % (len(_results) - bad, bad))
    return bad == 0
