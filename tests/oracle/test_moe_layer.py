#!/usr/bin/python3
"""PyTorch oracle for `moe layer` (docs/layer-format.md, shared/spec/semantics.md).

Usage:
    /usr/bin/python3 tests/oracle/test_moe_layer.py --moe PATH/TO/moe [--only NAME] [--keep DIR]
    /usr/bin/python3 tests/oracle/test_moe_layer.py --self-test [--keep DIR [--only NAME]]
    /usr/bin/python3 tests/oracle/test_moe_layer.py --list

For every case of moe_cases.CASES: writes layer.json + weights/inputs .safetensors (seeded
numpy), runs `moe layer ... --precision f64|f32 [--training]`, reads outputs.safetensors and
compares with the float64 PyTorch reference (moe_torch.py): discrete outputs exactly, floats
to 1e-10 (f64) or 1e-5·sqrt(numel) (f32) of max|ref| (floor 1e-3), every gradient included.
Invariants are checked on the C++ outputs too. Exit 1 on any failure. --self-test checks
the torch side alone (moe_selftest.py); with --keep it also writes every case's files and
expected.safetensors (the reference outputs) for debugging the C++ without this script.

Assumptions about the format (docs/layer-format.md is silent or ambiguous on these):
 A1 `losses` lists exactly the losses computed; given, it replaces anything the model type
    implies (the cases always give it). `loss.<name>` is unscaled; `loss.aux_total` =
    Σ coef·loss is written whenever `losses` is non-empty; L = Σ y·dy + aux_total.
 A2 Loss inputs: load_balancing = HF load_balancing_loss_func on router_logits (raw + router
    bias, after jitter, without noise; top-k recomputed from softmax with the lowest-index tie
    rule, not the actual routing), masked by attention_mask; the only loss that reads the mask.
    switch = HF switch loss per sequence on softmax(router_logits), dropped slots counted as
    expert 0; top-1 token choice only (the C++ rejects k > 1). z_loss on router_logits.
    importance = vmoe CV² (population variance) of Σ_t softmax(router_logits) per sequence,
    averaged over sequences (clean logits even when noise is on). vmoe_load: only with
    router.noise = vmoe and --training; threshold = the k-th noisy logit, gathered so gradient
    flows through it (vmoe routing.py); σ = noise_std/E. deepseek_v2_seq: router scores
    (score fn of router_logits), counts of ALL chosen slots (capacity ignored), per sequence.
    deepseek_v3_seq: same with sigmoid scores L1-normalised per token (sigmoid routers only:
    the C++ rejects it on a softmax router).
 A3 Jitter (`router_jitter_noise` > 0, any model type, --training): x·jitter feeds the router,
    the experts, the shared expert and the passthrough; grad.x is w.r.t. the un-jittered x.
 A4 Noise (--training only; ignored otherwise): shazeer: logits + noise·softplus(x·noise_weightᵀ)
    (custom `router.noise_weight` [E,H], trainable); vmoe: logits + (noise_std/E)·noise. Selection
    and weights use the noisy logits; `router_logits` stays clean.
 A5 bf16_logits rounds the effective logits (raw + bias + noise; float64 -> float32 -> bf16,
    nearest-even, as torch) like a bf16 model: selection AND weights use the rounded logits,
    the gradient passes straight through the rounding. router_logits and the HF-style losses
    (load_balancing, switch, z_loss, importance) use the clean unrounded logits; the DeepSeek
    losses use the router scores of the rounded effective logits (the scores the selection
    used, as DeepSeek's gate reuses them), and vmoe_load's noisy threshold comes from the
    rounded noisy logits (src/moe/router.cpp, src/moe/layer_losses.cpp).
 A6 expert_weights hold the router weight of each slot even when it was dropped; expert_kept
    tells whether it was applied (dropped: 0, or w·x with dropped = passthrough). expert_ids /
    expert_kept / ec_tokens may be any integer dtype (or BOOL for kept).
 A7 Capacity is per group (sequence; [T,H] input = one group), C = ceil(S·k·cf/E) rounded up
    to capacity_multiple_of (expert choice: k = 1); BPR priority = the token's final top-1
    combine weight (expert_weights[:,0]), ties to the lower token index.
 A8 Expert choice: ec_tokens / ec_weights are [E, C] for x [T,H] and [B, E, C] for x [B,S,H]
    (as tools/cmd_layer.cpp writes them), best first, global token ids (b·S + s). C > S is an
    error (not tested).
 A9 Soft MoE: groups = sequences; soft.phi [H, E·p], slot s = e·p + j (expert e's j-th slot);
    `router_logits`, if written, is [T, E·p] (scale·Xn·Φn); no stats are compared.
 A10 Custom layers: keys hidden_size, num_experts, num_experts_per_tok, intermediate_size;
    non-gated acts (gelu, gelu_tanh, relu) use experts.up / experts.down only (no experts.gate);
    `expert_bias: true` requires the *_bias tensors; `shared_intermediate_size` > 0 adds
    shared.{gate,up,down} and `shared_gate: true` the Qwen2-style sigmoid gate
    shared.gate_weight (these two keys follow src/arch/custom.cpp). `shared_act` (any model
    type, default swiglu) is the shared expert's activation; a non-gated one has no
    shared.gate / *.gate_proj. Non-gated routed acts are not tested with HF names.
 A11 Fused v5 tensors are recognised by the presence of `experts.gate_up_proj` (any non-GPT-OSS
    type), gradients are reported under the fused names.
 A12 Selection-only biases (gate.e_score_correction_bias, router.selection_bias) get no
    gradient: grad.<name> may be absent, and must be all zero if present.
 A13 Model-type defaults (resolve() in moe_torch.py): deepseek_v2 normalize = norm_topk_prob &&
    k > 1 with scale_only_unnormalized and norm_eps 1e-20; deepseek_v3 normalize =
    norm_topk_prob WITHOUT a k > 1 condition (HF DeepseekV3TopkRouter/MoE and the official
    inference both normalise for any k; only the remote code tests k > 1), scale always;
    switch dropped defaults to passthrough (HF v4); `switch_dropped` and `router` override
    any model type. `swiglu_limit` / `swiglu_alpha` are read for gpt_oss_swiglu experts under
    any model type (custom included).
 A14 Files: f64 cases store weights/inputs as F64 (a few as F32/BF16: "converted on load");
    attention_mask is I64 (HF's dtype); scalar outputs (loss.*, stats.dropped_*, ...) have
    shape []; expert_ids [T,k]; grad.soft.scale has shape [].
 A15 stats.router_entropy = mean over tokens of the entropy of the router's softmax scores
    (effective logits: noise, bf16 rounding); compared only for softmax routers.
"""

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import safetensors_io as st                                            # noqa: E402
from moe_cases import CASES, build                                     # noqa: E402
from moe_torch import NOT_TRAINABLE, run_reference                     # noqa: E402
from moe_invariants import check_invariants                            # noqa: E402

INT_OUTPUTS = ("expert_ids", "expert_kept", "ec_tokens", "stats.tokens_per_expert",
               "stats.dropped_slots", "stats.dropped_tokens")


def write_case(case, d):
    cfg, L, W, X = build(case)
    with open(os.path.join(d, "layer.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    wd = case.get("wdtype", "F64")
    st.save(os.path.join(d, "weights.safetensors"), W, {n: wd for n in W})
    st.save(os.path.join(d, "inputs.safetensors"), X,
            {n: ("I64" if n == "attention_mask" else wd) for n in X})
    return cfg, L, W, X


def run_moe(moe, case, d, inputs="inputs.safetensors", out="outputs.safetensors", precision=None):
    cmd = [moe, "layer", "--config", os.path.join(d, "layer.json"),
           "--weights", os.path.join(d, "weights.safetensors"),
           "--inputs", os.path.join(d, inputs),
           "--out", os.path.join(d, out),
           "--precision", precision or case.get("precision", "f64")]
    if case.get("training"):
        cmd.append("--training")
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        raise RuntimeError("exit %d: %s" % (p.returncode, (p.stderr or p.stdout).strip()[-400:]))
    return st.load(os.path.join(d, out))[0]


def fast_path_check(moe, case, d, L, ref, X):
    """Forward only (no dy) in f32: `moe layer` then runs the fast grouped kernels. The
    forward outputs must match the reference to f32 tolerance; discrete choices exactly."""
    st.save(os.path.join(d, "inputs_fwd.safetensors"), {n: v for n, v in X.items() if n != "dy"},
            {n: ("I64" if n == "attention_mask" else "F32") for n in X if n != "dy"})
    got = run_moe(moe, case, d, "inputs_fwd.safetensors", "outputs_fwd.safetensors", "f32")
    fwd_ref = {n: v for n, v in ref.items() if not n.startswith("grad.")}
    fails, _ = compare(dict(case, precision="f32"), L, fwd_ref, got)
    return ["fast path (f32, forward only): " + m for m in fails]


def compare(case, L, ref, got):
    """Returns (list of failure messages, max relative error over float outputs)."""
    f32 = case.get("precision", "f64") == "f32"
    fails, maxerr = [], 0.0
    r = L.router
    for name, want in sorted(ref.items()):
        want = np.asarray(want)
        if name == "stats.router_entropy" and r["score"] != "softmax":
            continue
        if name == "router_logits" and L.soft is not None and name not in got:
            continue
        if name not in got:
            fails.append("missing output " + name)
            continue
        have = np.asarray(got[name])
        if have.shape != want.shape:
            fails.append("%s: shape %s, want %s" % (name, list(have.shape), list(want.shape)))
            continue
        if name in INT_OUTPUTS:
            if not np.array_equal(have.astype(np.int64), want.astype(np.int64)):
                bad = np.argwhere(have.astype(np.int64) != want.astype(np.int64))
                fails.append("%s differs at %s: got %s want %s" % (
                    name, bad[0].tolist(), have[tuple(bad[0])], want[tuple(bad[0])]))
            continue
        have = have.astype(np.float64)
        if not np.all(np.isfinite(have)):
            fails.append(name + ": non-finite values")
            continue
        scale = max(float(np.max(np.abs(want))) if want.size else 0.0, 1e-3)
        err = float(np.max(np.abs(have - want))) / scale if want.size else 0.0
        tol = 1e-5 * math.sqrt(max(want.size, 1)) if f32 else 1e-10
        maxerr = max(maxerr, err)
        if err > tol:
            fails.append("%s: relerr %.3g > %.1g" % (name, err, tol))
    for name in got:                     # no loss the reference does not compute
        if name.startswith("loss.") and name != "loss.aux_total" and name not in ref:
            fails.append("unexpected output " + name)
    for name in NOT_TRAINABLE:
        g = got.get("grad." + name)
        if g is not None and np.any(np.asarray(g) != 0):
            fails.append("grad.%s must be absent or zero (selection-only bias)" % name)
    return fails, maxerr


def select(only):
    cases = [c for c in CASES if not only or only in c["name"]]
    if not cases:
        sys.exit("no case matches --only %r" % only)
    return cases


def main_mode(args):
    if not os.access(args.moe, os.X_OK):
        sys.exit("not an executable: " + args.moe)
    n_ok = n_bad = 0
    root = args.keep or tempfile.mkdtemp(prefix="moe_layer_oracle_")
    try:
        for case in select(args.only):
            d = os.path.join(root, case["name"])
            os.makedirs(d, exist_ok=True)
            try:
                cfg, L, W, X = write_case(case, d)
                ref, L = run_reference(cfg, W, X, bool(case.get("training")))
                got = run_moe(args.moe, case, d)
                fails, maxerr = compare(case, L, ref, got)
                fails += ["invariant: " + m for m in check_invariants(case, L, got, X)]
                if not case.get("near_ties"):
                    fails += fast_path_check(args.moe, case, d, L, ref, X)
            except Exception as e:                                    # noqa: BLE001
                fails, maxerr = ["%s: %s" % (type(e).__name__, e)], float("nan")
            if fails:
                n_bad += 1
                print("FAIL %s maxerr=%.3g" % (case["name"], maxerr))
                for m in fails[:12]:
                    print("     " + m)
            else:
                n_ok += 1
                print("ok %s maxerr=%.3g" % (case["name"], maxerr))
            sys.stdout.flush()
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print("%d passed, %d failed" % (n_ok, n_bad))
    return n_bad == 0


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--moe", help="path to the moe binary")
    ap.add_argument("--only", help="run only cases whose name contains this")
    ap.add_argument("--keep", help="write the case files (and outputs) under this directory")
    ap.add_argument("--self-test", action="store_true", help="check the torch side alone")
    ap.add_argument("--list", action="store_true", help="list the cases")
    args = ap.parse_args(argv)
    if args.list:
        for c in CASES:
            print(c["name"], c.get("precision", "f64"), "training" if c.get("training") else "")
        return 0
    if args.self_test:
        from moe_selftest import self_test
        if args.keep:                          # also write the case files for the C++ side
            for case in select(args.only):
                d = os.path.join(args.keep, case["name"])
                os.makedirs(d, exist_ok=True)
                cfg, L, W, X = write_case(case, d)
                ref, _ = run_reference(cfg, W, X, bool(case.get("training")))
                st.save(os.path.join(d, "expected.safetensors"),
                        {n: np.asarray(v) for n, v in ref.items()})
        return 0 if self_test(args.only) else 1
    if not args.moe:
        ap.error("--moe PATH (or --self-test / --list) is required")
    return 0 if main_mode(args) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
