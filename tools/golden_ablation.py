#!/usr/bin/python3
"""PyTorch goldens of a trace's causal checks (issue 15 §2; test/fixtures/golden/ablation-*/golden.json).

Independent of the app's code: float64 torch on the bundle's weights and a forward pass with a hook that
edits the residual stream. For each point (feature f, sample, pos t) of the bundle's existing golden.json
(the first two) and every attention layer before the trace's residual point R (docs/BUNDLE.md):
- term(l, h, s) = pattern_l[h,t,s]·hook_v_l[s,h]·W_O_l[h], and each whole head (the sum over s ≤ t);
- predicted = u·term, u = ∂pre_f/∂R by autograd with the LayerNorm on the path frozen at the point;
- actual = pre_f − pre_f with the forward pass re-run from R, a hook subtracting term at position t;
- mean-ablation: the term replaced by its mean over corpus sequences 0…M−1 (the same t and s), M = 32 or
  fewer: mean_predicted = u·(term − mean), mean_actual = pre_f − pre_f(R − term + mean).
Every term is listed (the test picks the app's by layer, head, source). Attention hooks are not covered:
their terms are removed from the hook's own value, where the encoder is linear.
Usage: /usr/bin/python3 tools/golden_ablation.py BUNDLE_DIR GOLDEN_JSON OUT_DIR
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from ftlib import model  # noqa: E402
from ftlib.neox import neox_forward  # noqa: E402
from ftlib.golden_common import ATTN_HOOKS, resid_direction, flat, forward_cache, hook_point_of  # noqa: E402
from golden import load, sae_pre  # noqa: E402

MEAN_SEQUENCES = 32


def forward_with_hook(P, cfg, tokens: torch.Tensor, name: str, edit) -> dict:
    """ftlib.model.forward's blocks (ftlib.neox's for GPT-NeoX-style models), with `edit(x)` applied to the
    residual stream at hook `name`; returns the cache."""
    if cfg["positional_embedding_type"] == "rotary" or cfg.get("parallel_attn_mlp"):
        return neox_forward(P, cfg, tokens, name, edit)
    cache: dict = {}
    T = tokens.shape[1]
    x = P["embed.W_E"][tokens] + P["pos_embed.W_pos"][:T]
    for l in range(cfg["n_layers"]):
        pre = f"blocks.{l}."
        if name == pre + "hook_resid_pre":
            x = edit(x)
        cache[pre + "hook_resid_pre"] = x
        x = x + model.attention(P, l, model._ln(P, pre + "ln1", x, cfg), cfg, cache)
        if name == pre + "hook_resid_mid":
            x = edit(x)
        cache[pre + "hook_resid_mid"] = x
        h = model._ln(P, pre + "ln2", x, cfg) @ P[pre + "mlp.W_in"] + P[pre + "mlp.b_in"]
        post = model.gelu(h, cfg["act_fn"])
        cache[pre + "mlp.hook_pre"] = h
        cache[pre + "mlp.hook_post"] = post
        cache[pre + "hook_mlp_out"] = post @ P[pre + "mlp.W_out"] + P[pre + "mlp.b_out"]
        x = x + cache[pre + "hook_mlp_out"]
        if name == pre + "hook_resid_post":
            x = edit(x)
        cache[pre + "hook_resid_post"] = x
    return cache


def head_terms(P, l: int, cache: dict, t: int) -> torch.Tensor:
    """[batch, head, source s ≤ t, d_model]: pattern[h,t,s]·hook_v[s,h]·W_O[h]."""
    pattern = cache[f"blocks.{l}.attn.hook_pattern"][:, :, t, : t + 1]  # [b, h, s]
    values = cache[f"blocks.{l}.attn.hook_v"][:, : t + 1]  # [b, s, h, e]
    return torch.einsum("bhs,bshe,hed->bhsd", pattern, values, P[f"blocks.{l}.attn.W_O"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("bundle")
    ap.add_argument("golden")
    ap.add_argument("out")
    ap.add_argument("--points", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(2)
    meta, P, S, _, tokens = load(args.bundle)
    cfg = meta["model"]
    hook_point, L, hook, resid = hook_point_of(meta)
    if hook in ATTN_HOOKS:
        raise SystemExit("attention hooks: the terms are removed from the hook's own value (linear); nothing to check here")
    R = f"blocks.{L}.{resid}"
    n_attn = L if resid == "hook_resid_pre" else L + 1
    M = min(MEAN_SEQUENCES, tokens.shape[0])
    sample = forward_cache(P, cfg, tokens[:M])
    with open(args.golden) as fh:
        points = json.load(fh)["points"][: args.points]

    out_points = []
    for p in points:
        f, s, t = p["feature"], p["sample"], p["pos"]
        toks = tokens[s : s + 1]
        cache = forward_cache(P, cfg, toks)
        u = resid_direction(P, cfg, L, hook, cache, t, lambda h: sae_pre(meta, S, h)[f], True)
        checks = []  # (layer, head, source or None, term, mean)
        for l in range(n_attn):
            terms = head_terms(P, l, cache, t)[0]  # [h, s, d]
            means = head_terms(P, l, sample, t).mean(0)
            for h in range(terms.shape[0]):
                for src in range(t + 1):
                    checks.append((l, h, src, terms[h, src], means[h, src]))
                checks.append((l, h, None, terms[h].sum(0), means[h].sum(0)))
        # One forward pass: the point unchanged, then R − term and R − term + mean at t for every check.
        deltas = [torch.zeros_like(u)] + [d for _, _, _, term, mean in checks for d in (-term, mean - term)]
        delta = torch.stack(deltas)
        batch = toks.repeat(len(deltas), 1)

        def edit(x):
            x = x.clone()
            x[:, t] = x[:, t] + delta
            return x

        with torch.no_grad():
            edited = forward_with_hook(P, cfg, batch, R, edit)
        pre = sae_pre(meta, S, flat(edited[hook_point])[:, t])[:, f]
        rows = []
        for i, (l, h, src, term, mean) in enumerate(checks):
            rows.append({"layer": l, "head": h, "source": src, "predicted": float(u @ term), "actual": float(pre[0] - pre[1 + 2 * i]),
                         "mean_predicted": float(u @ (term - mean)), "mean_actual": float(pre[0] - pre[2 + 2 * i])})
        out_points.append({"feature": f, "sample": s, "pos": t, "pre_activation": float(pre[0]), "checks": rows})
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "golden.json"), "w") as fh:
        json.dump({"bundle": os.path.basename(os.path.normpath(args.bundle)), "hook_point": hook_point, "resid": R,
                   "mean_sequences": M, "note": "float64 torch on the bundle's weights, a hooked forward pass per check",
                   "points": out_points}, fh, indent=1)
    print(f"wrote {len(out_points)} points to {args.out}")


if __name__ == "__main__":
    main()
