"""Invariants of `moe layer` outputs, checked on the C++ outputs and on the torch reference.

check_invariants(case, L, out, X) -> list of failure messages. `out` maps output names to
numpy arrays (outputs.safetensors, or run_reference's result).
"""

import numpy as np
import torch

from moe_torch_parts import apply_capacity, capacity_of


def _groups(X, L):
    x = X["x"]
    return (x.shape[0], x.shape[1]) if x.ndim == 3 else (1, x.shape[0])


def check_invariants(case, L, out, X):
    msgs = []
    tol = 1e-5 if case.get("precision") == "f32" else 1e-12
    B, S = _groups(X, L)
    T, E, r = B * S, L.E, L.router

    def near(a, b, what):
        a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        err = np.max(np.abs(a - b)) if a.size else 0.0
        if err > tol * max(1.0, float(np.max(np.abs(b))) if b.size else 1.0):
            msgs.append("%s (max deviation %.3g)" % (what, err))

    if "expert_ids" in out:
        ids = np.asarray(out["expert_ids"]).astype(np.int64)
        w = np.asarray(out["expert_weights"], dtype=np.float64)
        kept = np.asarray(out["expert_kept"]).astype(np.int64) != 0
        k = ids.shape[1]
        if ids.min() < 0 or ids.max() >= E:
            msgs.append("expert_ids outside [0, E)")
            return msgs
        if any(len(set(row)) != k for row in ids.tolist()):
            msgs.append("a token chose the same expert twice")
        if np.any(w < 0):
            msgs.append("negative combine weight")
        if r["normalize"]:
            target = 1.0 if r["scale_only_unnormalized"] else r["scale"]
            near(w.sum(1), np.full(T, target), "normalised weights do not sum to %g" % target)
        if r["capacity_mode"] == "none":
            if not kept.all():
                msgs.append("a slot was dropped without capacity")
        else:
            want = apply_capacity(r, torch.tensor(ids), torch.tensor(w), B, S).numpy()
            if not np.array_equal(want, kept):
                t = np.argwhere(want != kept)[0]
                msgs.append("kept slots are not those within capacity in priority order "
                            "(first difference token %d slot %d)" % (t[0], t[1]))
            C = capacity_of(r, S, k)
            for b in range(B):
                cnt = np.bincount(ids[b * S:(b + 1) * S][kept[b * S:(b + 1) * S]], minlength=E)
                if cnt.max(initial=0) > C:
                    msgs.append("group %d: an expert holds %d > C=%d slots" % (b, cnt.max(), C))
        if r["selection"] == "group_limited":
            eg = E // r["n_group"]
            if max(len(set((ids[t] // eg).tolist())) for t in range(T)) > r["topk_group"]:
                msgs.append("a token uses more than topk_group groups")
        if "stats.tokens_per_expert" in out:
            tpe = np.bincount(ids[kept], minlength=E)
            if not np.array_equal(np.asarray(out["stats.tokens_per_expert"]).astype(np.int64), tpe):
                msgs.append("stats.tokens_per_expert disagrees with expert_ids/expert_kept")
            if int(np.asarray(out.get("stats.dropped_slots", -1))) != int((~kept).sum()):
                msgs.append("stats.dropped_slots disagrees with expert_kept")
            if int(np.asarray(out.get("stats.dropped_tokens", -1))) != int((kept.sum(1) == 0).sum()):
                msgs.append("stats.dropped_tokens disagrees with expert_kept")

    if "ec_tokens" in out:
        tok = np.asarray(out["ec_tokens"]).astype(np.int64)
        wts = np.asarray(out["ec_weights"], dtype=np.float64)
        C = capacity_of(r, S, 1)
        want = (E, C) if X["x"].ndim == 2 else (B, E, C)
        if tok.shape != want or wts.shape != want:
            msgs.append("ec_tokens shape %s, want %s" % (list(tok.shape), list(want)))
            return msgs
        tok, wts = tok.reshape(B, E, C), wts.reshape(B, E, C)
        for b in range(B):
            blk = tok[b]
            if blk.min() < b * S or blk.max() >= (b + 1) * S:
                msgs.append("group %d: expert-choice token outside its group" % b)
            if any(len(set(row)) != C for row in blk.tolist()):
                msgs.append("group %d: an expert took a token twice" % b)
            if np.any(np.diff(wts[b], axis=1) > 0):
                msgs.append("group %d: expert-choice tokens not best first" % b)
        if "stats.tokens_per_expert" in out and not np.all(
                np.asarray(out["stats.tokens_per_expert"]) == B * C):
            msgs.append("expert-choice load differs from the capacity")
        if "router_logits" in out and r["score"] == "softmax" and not (
                case.get("training") and r["noise"] != "none"):
            z = np.asarray(out["router_logits"], dtype=np.float64)
            p = np.exp(z - z.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            near(wts, p[tok, np.arange(E)[None, :, None]], "ec_weights are not the softmax probabilities")

    if "soft.dispatch" in out:
        D = np.asarray(out["soft.dispatch"], dtype=np.float64)
        Cw = np.asarray(out["soft.combine"], dtype=np.float64)
        for b in range(B):
            near(D[b * S:(b + 1) * S].sum(0), np.ones(D.shape[1]),
                 "group %d: dispatch columns do not sum to 1" % b)
        near(Cw.sum(1), np.ones(T), "combine rows do not sum to 1")

    if L.losses:
        if "loss.aux_total" not in out:
            msgs.append("missing loss.aux_total")
        else:
            total = sum(c * float(np.asarray(out.get("loss." + n, np.nan)))
                        for n, c in L.losses.items())
            near(out["loss.aux_total"], total, "loss.aux_total != Σ coef·loss")
    return msgs
