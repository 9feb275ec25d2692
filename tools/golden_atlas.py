#!/usr/bin/python3
"""PyTorch goldens of a feature's mechanism atlas (issue 15 §1) on a small bundle (test/fixtures/golden/atlas-*).

Independent of the app's code: float64 torch on the bundle's weights, ftlib.model.forward's cache, autograd
for the directions (ftlib/golden_common.py's hook_of_resid: v the full gradient at R, u with the LayerNorm on the
path frozen at its scale). The points: the most often firing feature's 8 largest firings, then 4 firings
spread evenly over the rest of its firings sorted by activation. For them:
- v and u at each point, cos(u_i, u_j) and cos(v_i, v_j);
- average-linkage clustering on 1 − cos(u) written out naively (every cluster pair's mean point-to-point
  distance recomputed from the points at every step, not the app's Lance-Williams update), merges as
  scipy's linkage rows [a, b, height, size];
- the cross-fidelity: pre_i + u_i·(R_j − R_i) against the true pre-activation pre_j, its relative error and
  each direction's share of points within 10 %;
- the direct attribution of u·R at each point (resid_pre = W_E + W_pos, each attention layer, each MLP), from
  ftlib/golden_common.py's decomposition;
- W_E · mean(u) over all points (the tree's root).
Usage: /usr/bin/python3 tools/golden_atlas.py BUNDLE_DIR OUT_DIR
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from ftlib.golden_common import ATTN_HOOKS, attn_hook_decomposition, resid_direction, flat, forward_cache, hook_point_of, resid_decomposition  # noqa: E402
from golden import load, sae_gate, sae_pre  # noqa: E402


def naive_average_linkage(D: torch.Tensor) -> list[list[float]]:
    n = D.shape[0]
    clusters = {i: [i] for i in range(n)}
    rows = []
    for step in range(n - 1):
        best = None
        ids = sorted(clusters)
        for ai, a in enumerate(ids):
            for b in ids[ai + 1:]:
                d = float(D[clusters[a]][:, clusters[b]].mean())
                if best is None or d < best[0]:
                    best = (d, a, b)
        d, a, b = best
        merged = clusters.pop(a) + clusters.pop(b)
        clusters[n + step] = merged
        rows.append([a, b, d, len(merged)])
    return rows


def attribution(dec: dict) -> dict:
    out = {}
    if dec["embed"] is not None:
        if dec["pos"] is None:  # rotary models: no W_pos
            out["resid_pre (W_E)"] = dec["embed"]
        else:
            out["resid_pre (W_E + W_pos)"] = dec["embed"] + dec["pos"]
    for a in dec["attn"]:
        out[f"attn {a['layer']}"] = float(torch.tensor(a["heads"], dtype=torch.float64).sum()) + a["b_O"]
    for l, x in enumerate(dec["mlp_out"]):
        out[f"mlp {l}"] = x
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("bundle")
    ap.add_argument("out")
    args = ap.parse_args()
    torch.set_num_threads(2)
    meta, P, S, _, tokens = load(args.bundle)
    cfg = meta["model"]
    hook_point, L, hook, resid = hook_point_of(meta)
    batch = forward_cache(P, cfg, tokens)
    pre_all = sae_pre(meta, S, flat(batch[hook_point]))
    acts_all = sae_gate(meta, S, pre_all)
    f = int(torch.argsort((acts_all > 0).double().mean((0, 1)), descending=True)[0])
    seq_len = tokens.shape[1]
    acts = acts_all[:, :, f].flatten()
    firing = torch.nonzero(acts > 0).flatten()
    ranked = firing[torch.argsort(acts[firing], descending=True, stable=True)]
    rest = ranked[8:]
    picks = [int(i) for i in ranked[:8]] + [int(rest[int((j + 0.5) * len(rest) / 4)]) for j in range(4)]
    points = [(i // seq_len, i % seq_len) for i in picks]

    us, vs, xs, pres, out_points = [], [], [], [], []
    for s, t in points:
        toks = tokens[s : s + 1]
        cache = forward_cache(P, cfg, toks)

        def pre_of(h: torch.Tensor) -> torch.Tensor:
            return sae_pre(meta, S, h)[f]

        x0 = cache[f"blocks.{L}.{resid}"][0, t]
        v = resid_direction(P, cfg, L, hook, cache, t, pre_of, False)
        u = resid_direction(P, cfg, L, hook, cache, t, pre_of, True)
        dec = attn_hook_decomposition(P, L, hook, cache, t, S["W_enc"][:, f]) if hook in ATTN_HOOKS else resid_decomposition(P, cfg, L, resid, cache, toks, t, u)
        us.append(u)
        vs.append(v)
        xs.append(x0)
        pres.append(float(pre_all[s, t, f]))
        out_points.append({"sample": s, "pos": t, "activation": float(acts_all[s, t, f]), "pre_activation": pres[-1],
                           "u": u.tolist(), "v": v.tolist(), "attribution": attribution(dec)})
    U, V, X = torch.stack(us), torch.stack(vs), torch.stack(xs)
    pre = torch.tensor(pres, dtype=torch.float64)
    cos = lambda A: (A / A.norm(dim=1, keepdim=True)) @ (A / A.norm(dim=1, keepdim=True)).T  # noqa: E731
    cos_u, cos_v = cos(U), cos(V)
    pred = pre[:, None] + U @ X.T - (U * X).sum(1)[:, None]
    rel = (pred - pre[None, :]).abs() / pre.abs().clamp_min(1e-12)[None, :]
    share = (rel <= 0.1).double().mean(1)
    we_root = P["embed.W_E"] @ U.mean(0)
    out = {"bundle": os.path.basename(os.path.normpath(args.bundle)), "hook_point": hook_point, "feature": f,
           "resid": f"blocks.{L}.{resid}", "note": "float64 torch on the bundle's weights", "points": out_points,
           "cosine_u": cos_u.tolist(), "cosine_v": cos_v.tolist(),
           "linkage": naive_average_linkage((1 - cos_u).clamp_min(0)),
           "cross_predicted": pred.tolist(), "cross_rel_error": rel.tolist(), "explained_share": share.tolist(),
           "root_W_E_u": we_root.tolist()}
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "golden.json"), "w") as fh:
        json.dump(out, fh, indent=1)
    print(f"wrote the atlas of feature {f} at {len(points)} points to {args.out}")


if __name__ == "__main__":
    main()
