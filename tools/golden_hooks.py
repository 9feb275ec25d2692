#!/usr/bin/python3
"""PyTorch goldens of traces at every hook point (test/fixtures/golden/tiny-hook-*), for the bundles of
tools/make_hook_variants.py.

Independent of the app's code: float64 torch on the bundle's weights, ftlib.model.forward's cache, and
autograd for the linearized directions. For each point (feature f, sample, pos t):
- the residual point R the trace linearizes at (docs/BUNDLE.md, "What a trace linearizes"), and v = ∂pre_f/∂R
  at t with the rest of the sequence held at its values (u: the same with the LayerNorm on the path frozen
  at its scale; for residual hooks there is none and u = v). attn.hook_z / hook_attn_out: R = resid_pre L at
  t with the attention pattern held at its values (z_t = Σ_s pattern[h,t,s]·hook_v[s,h], hook_v[t] through LN1).
- the decomposition of vec·R(t) over every component before R: embeddings, per attention layer head ×
  source (pattern·hook_v·W_O·vec) and b_O, each MLP's hook_mlp_out; or, for attn.hook_z / hook_attn_out,
  of the hook value·W_enc[:,f] over heads × sources (pattern·hook_v·e_h, e_h the head's slice of W_enc[:,f],
  or W_O[h]·W_enc[:,f] for hook_attn_out) and b_O.
- the batch's scores R·v, R·u, its true pre-activations and activations, Pearson r of the linear prediction,
  W_E·v and the logit effect.
Usage: /usr/bin/python3 tools/golden_hooks.py BUNDLE_DIR OUT_DIR
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from ftlib import model, safetensors_io  # noqa: E402
from golden import load, predicted_acts, sae_gate, sae_pre  # noqa: E402

RESID = {"hook_resid_pre": "hook_resid_pre", "hook_resid_mid": "hook_resid_mid", "hook_resid_post": "hook_resid_post",
         "hook_mlp_out": "hook_resid_mid", "mlp.hook_pre": "hook_resid_mid", "mlp.hook_post": "hook_resid_mid",
         "attn.hook_z": "hook_resid_pre", "hook_attn_out": "hook_resid_pre"}
ATTN_HOOKS = ("attn.hook_z", "hook_attn_out")


def flat(x: torch.Tensor) -> torch.Tensor:
    """A hook value as the SAE reads it: hook_z's [.., head, d_head] concatenated to [.., head·d_head]."""
    return x.reshape(*x.shape[:2], -1) if x.dim() == 4 else x


def frozen_ln(x: torch.Tensor, w, b, eps: float, scale: torch.Tensor | None) -> torch.Tensor:
    xc = x - x.mean(-1, keepdim=True)
    s = scale if scale is not None else (xc.pow(2).mean(-1, keepdim=True) + eps).sqrt()
    h = xc / s
    return h * w + b if w is not None else h


def hook_of_resid(P, cfg, L: int, hook: str, cache: dict, t: int, frozen: bool):
    """x (R at position t) -> the SAE's input at t, the rest of the sequence held at its cached values."""
    pre = f"blocks.{L}."
    if hook.startswith("hook_resid"):
        return lambda x: x
    if hook in ATTN_HOOKS:
        x0 = cache[pre + "hook_resid_pre"][0, t]
        scale = (x0 - x0.mean()).pow(2).mean().add(cfg["eps"]).sqrt().detach() if frozen else None
        pattern = cache[pre + "attn.hook_pattern"][0, :, t, : t + 1]  # [h, s]
        values = cache[pre + "attn.hook_v"][0, : t + 1]  # [s, h, e]

        def attn(x):
            v_t = torch.einsum("d,hde->he", frozen_ln(x, P.get(pre + "ln1.w"), P.get(pre + "ln1.b"), cfg["eps"], scale), P[pre + "attn.W_V"]) + P[pre + "attn.b_V"]
            vals = torch.cat([values[:t], v_t[None]], 0)
            z = torch.einsum("hs,she->he", pattern, vals)
            return z.reshape(-1) if hook == "attn.hook_z" else torch.einsum("he,hed->d", z, P[pre + "attn.W_O"]) + P[pre + "attn.b_O"]

        return attn
    x0 = cache[pre + "hook_resid_mid"][0, t]
    scale = (x0 - x0.mean()).pow(2).mean().add(cfg["eps"]).sqrt().detach() if frozen else None

    def mlp(x):
        h = frozen_ln(x, P.get(pre + "ln2.w"), P.get(pre + "ln2.b"), cfg["eps"], scale) @ P[pre + "mlp.W_in"] + P[pre + "mlp.b_in"]
        if hook == "mlp.hook_pre":
            return h
        post = model.gelu(h, cfg["act_fn"])
        return post if hook == "mlp.hook_post" else post @ P[pre + "mlp.W_out"] + P[pre + "mlp.b_out"]

    return mlp


def grad_at(fn, x0: torch.Tensor) -> torch.Tensor:
    x = x0.clone().requires_grad_(True)
    fn(x).backward()
    return x.grad.detach()


def attention_terms(P, l: int, cache: dict, t: int, read: torch.Tensor) -> dict:
    """Layer l's heads × sources along read directions [h, d_head]: pattern·(hook_v·read[h]), and without the pattern."""
    ov = torch.einsum("she,he->hs", cache[f"blocks.{l}.attn.hook_v"][0, : t + 1], read)
    pattern = cache[f"blocks.{l}.attn.hook_pattern"][0, :, t, : t + 1]
    return {"layer": l, "heads": (pattern * ov).tolist(), "heads_ov": ov.tolist()}


def resid_decomposition(P, cfg, L: int, resid: str, cache: dict, toks, t: int, vec: torch.Tensor) -> dict:
    """vec·R(t) term by term: embeddings, every attention layer before R (heads × sources, b_O), every MLP."""
    n_attn = L if resid == "hook_resid_pre" else L + 1
    n_mlp = L + 1 if resid == "hook_resid_post" else L
    attn = []
    for l in range(n_attn):
        read = torch.einsum("hed,d->he", P[f"blocks.{l}.attn.W_O"], vec)
        attn.append({**attention_terms(P, l, cache, t, read), "b_O": float(P[f"blocks.{l}.attn.b_O"] @ vec)})
    out = {"embed": float(P["embed.W_E"][toks[0, t]] @ vec), "pos": float(P["pos_embed.W_pos"][t] @ vec), "attn": attn,
           "mlp_out": [float(cache[f"blocks.{l}.hook_mlp_out"][0, t] @ vec) for l in range(n_mlp)],
           "total": float(cache[f"blocks.{L}.{resid}"][0, t] @ vec)}
    out["sum_of_terms"] = out["embed"] + out["pos"] + sum(float(torch.tensor(a["heads"], dtype=torch.float64).sum()) + a["b_O"] for a in attn) + sum(out["mlp_out"])
    return out


def attn_hook_decomposition(P, L: int, hook: str, cache: dict, t: int, e: torch.Tensor) -> dict:
    """hook value(t)·e over heads × sources (and b_O·e for hook_attn_out)."""
    W_O = P[f"blocks.{L}.attn.W_O"]
    read = e.reshape(W_O.shape[0], W_O.shape[1]) if hook == "attn.hook_z" else torch.einsum("hed,d->he", W_O, e)
    terms = attention_terms(P, L, cache, t, read)
    b_O = float(P[f"blocks.{L}.attn.b_O"] @ e) if hook == "hook_attn_out" else 0.0
    total = float(flat(cache[f"blocks.{L}.{hook}"])[0, t] @ e)
    return {"embed": None, "pos": None, "attn": [{**terms, "b_O": b_O}], "mlp_out": [], "total": total,
            "sum_of_terms": float(torch.tensor(terms["heads"], dtype=torch.float64).sum()) + b_O}


def none_if_nan(x: float) -> float | None:
    return None if x != x else x


def logit_direction(P, L: int, hook: str, dec: torch.Tensor) -> torch.Tensor | None:
    if hook == "mlp.hook_pre":
        return None
    if hook == "mlp.hook_post":
        return dec @ P[f"blocks.{L}.mlp.W_out"]
    if hook == "attn.hook_z":
        W_O = P[f"blocks.{L}.attn.W_O"]
        return dec @ W_O.reshape(-1, W_O.shape[-1])
    return dec


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("bundle")
    ap.add_argument("out")
    args = ap.parse_args()
    torch.set_num_threads(2)
    meta, P, S, _, tokens = load(args.bundle)
    cfg = meta["model"]
    hook_point = meta["sae"]["hook_point"]
    L = int(hook_point.split(".")[1])
    hook = hook_point.split(".", 2)[2]
    resid = RESID[hook]
    batch: dict = {}
    with torch.no_grad():
        model.forward(P, cfg, tokens, cache=batch)
    pre_all = sae_pre(meta, S, flat(batch[hook_point]))
    acts_all = sae_gate(meta, S, pre_all)
    # Points: the most often firing feature at its argmax and at a random firing token; the next feature where it is off.
    order = torch.argsort((acts_all > 0).double().mean((0, 1)), descending=True)
    f0, f1 = int(order[0]), int(order[1])
    g = torch.Generator().manual_seed(0)
    s, t = divmod(int(acts_all[:, :, f0].argmax()), tokens.shape[1])
    nz = torch.nonzero(acts_all[:, :, f0] > 0)
    k = int(torch.randint(len(nz), (1,), generator=g))
    off = torch.nonzero((acts_all[:, :, f1] == 0)[:, 1:])  # not at BOS
    points = [(f0, s, t), (f0, int(nz[k, 0]), int(nz[k, 1])), (f1, int(off[len(off) // 2, 0]), int(off[len(off) // 2, 1]) + 1)]

    arrays: dict[str, np.ndarray] = {}
    out_points = []
    for i, (f, s, t) in enumerate(points):
        key = f"p{i}"
        toks = tokens[s : s + 1]
        cache: dict = {}
        with torch.no_grad():
            model.forward(P, cfg, toks, cache=cache)
        e = S["W_enc"][:, f]

        def pre_fn(frozen: bool):
            to_hook = hook_of_resid(P, cfg, L, hook, cache, t, frozen)
            return lambda x: sae_pre(meta, S, to_hook(x))[f]

        x0 = cache[f"blocks.{L}.{resid}"][0, t]
        v = grad_at(pre_fn(False), x0)
        u = grad_at(pre_fn(True), x0)
        pre_act = float(pre_all[s, t, f])
        R = batch[f"blocks.{L}.{resid}"]
        arrays[f"{key}.v"] = v.numpy()
        arrays[f"{key}.u"] = u.numpy()
        arrays[f"{key}.resid"] = x0.numpy()
        arrays[f"{key}.scores_v"] = (R @ v).numpy()
        arrays[f"{key}.scores_u"] = (R @ u).numpy()
        arrays[f"{key}.pre_batch"] = pre_all[:, :, f].numpy()
        arrays[f"{key}.acts_batch"] = acts_all[:, :, f].numpy()
        arrays[f"{key}.W_E_v"] = (P["embed.W_E"] @ v).numpy()
        direction = logit_direction(P, L, hook, S["W_dec"][f])
        if direction is not None:
            arrays[f"{key}.logit_effect"] = (direction @ P["unembed.W_U"]).numpy()
        lin = pre_act + (R - x0) @ v
        pearson = float(torch.corrcoef(torch.stack([lin.flatten(), pre_all[:, :, f].flatten()]))[0, 1])
        pred = predicted_acts(meta, S, f, lin, pre_all)
        pearson_gated = float(torch.corrcoef(torch.stack([pred.flatten(), acts_all[:, :, f].flatten()]))[0, 1])
        if hook in ATTN_HOOKS:
            dec = attn_hook_decomposition(P, L, hook, cache, t, e)
            decs = {"decomposition_v": dec, "decomposition_u": dec}
        else:
            decs = {f"decomposition_{n}": resid_decomposition(P, cfg, L, resid, cache, toks, t, vec) for n, vec in (("v", v), ("u", u))}
        out_points.append({
            "key": key, "feature": f, "sample": s, "pos": t, "token": int(toks[0, t]), "positions": [t],
            "activation": float(acts_all[s, t, f]), "pre_activation": pre_act,
            "v_dot_resid": float(v @ x0), "u_dot_resid": float(u @ x0),
            # null where a series is constant (e.g. a gated prediction that never fires): Pearson r is undefined.
            "fidelity_pearson": none_if_nan(pearson), "fidelity_pearson_relu": none_if_nan(pearson_gated), **decs,
        })
    os.makedirs(args.out, exist_ok=True)
    safetensors_io.save(os.path.join(args.out, "golden.safetensors"), {k: np.asarray(a, dtype=np.float32) for k, a in arrays.items()})
    with open(os.path.join(args.out, "golden.json"), "w") as fh:
        json.dump({"bundle": os.path.basename(os.path.normpath(args.bundle)), "hook_point": hook_point, "layer": L,
                   "resid": f"blocks.{L}.{resid}", "note": "float64 torch on the bundle's weights; arrays stored as float32",
                   "points": out_points}, fh, indent=1)
    print(f"wrote {len(out_points)} points to {args.out}")


if __name__ == "__main__":
    main()
