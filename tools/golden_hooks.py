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
- with --qk: the exact QK table of the circuit layer (the last attention layer the decomposition lists) for the
  head and source position with the largest Σ|term| of v's decomposition, (R_t q_h)·(R_src k_h(x)) / attn_scale
  over the vocabulary, q_h = LN1(resid_pre(t)) W_Q[h] + b_Q[h], k_h(x) = LN1(W_E[x] + W_pos[src]) W_K[h] + b_K[h],
  R_p the rotary rotation at position p (ftlib.neox.rotate; the identity for learned positions, which have
  W_pos), and the pair scores of the point's token at t against the sequence's tokens at 0, t//2 and t.
Usage: /usr/bin/python3 tools/golden_hooks.py BUNDLE_DIR OUT_DIR [--qk]
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
from ftlib.neox import rotate  # noqa: E402
from ftlib.golden_common import ATTN_HOOKS, attn_hook_decomposition, resid_direction, flat, forward_cache, hook_point_of, resid_decomposition  # noqa: E402
from golden import load, predicted_acts, sae_gate, sae_pre  # noqa: E402

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


def at_position(cfg: dict, x: torch.Tensor, p: int) -> torch.Tensor:
    """Rows x [n, d_head] of queries or keys at position p: rotated there in a rotary model, else as they are."""
    if cfg["positional_embedding_type"] != "rotary":
        return x
    pos = torch.full((1, 1, 1), float(p), dtype=torch.float64)
    return rotate(x[:, None, None, :], cfg["rotary_dim"], cfg["rotary_base"], pos)[:, 0, 0, :]


def embedding_in(P, cfg: dict, l: int, tok, p: int) -> torch.Tensor:
    """LN1 of layer l on W_E[tok] (+ W_pos[p] where the model has learned positions)."""
    x = P["embed.W_E"][tok] + (P["pos_embed.W_pos"][p] if "pos_embed.W_pos" in P else 0)
    return model.layer_norm(x, P.get(f"blocks.{l}.ln1.w"), P.get(f"blocks.{l}.ln1.b"), cfg["eps"])


def qk_golden(P, cfg: dict, l: int, cache: dict, toks: torch.Tensor, t: int, h: int, src: int) -> tuple[dict, np.ndarray]:
    pre = f"blocks.{l}.attn."
    scale = model.attn_scale(cfg, l)
    x_t = model.layer_norm(cache[f"blocks.{l}.hook_resid_pre"][0, t], P.get(f"blocks.{l}.ln1.w"), P.get(f"blocks.{l}.ln1.b"), cfg["eps"])
    q = at_position(cfg, (x_t @ P[pre + "W_Q"][h] + P[pre + "b_Q"][h])[None], t)[0]
    keys = at_position(cfg, embedding_in(P, cfg, l, slice(None), src) @ P[pre + "W_K"][h] + P[pre + "b_K"][h], src)
    table = keys @ q / scale

    def pair(qt: int, qp: int, kt: int, kp: int) -> float:
        qq = at_position(cfg, (embedding_in(P, cfg, l, qt, qp) @ P[pre + "W_Q"][h] + P[pre + "b_Q"][h])[None], qp)[0]
        kk = at_position(cfg, (embedding_in(P, cfg, l, kt, kp) @ P[pre + "W_K"][h] + P[pre + "b_K"][h])[None], kp)[0]
        return float(qq @ kk / scale)

    tok = int(toks[0, t])
    pairs = [{"key_pos": s, "key_token": int(toks[0, s]), "score": pair(tok, t, int(toks[0, s]), s)} for s in sorted({0, t // 2, t})]
    return {"layer": l, "head": h, "source_pos": src, "pairs": pairs}, table.numpy()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("bundle")
    ap.add_argument("out")
    ap.add_argument("--qk", action="store_true", help="also the QK table and pairs of the circuit layer (see above)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    meta, P, S, _, tokens = load(args.bundle)
    cfg = meta["model"]
    hook_point, L, hook, resid = hook_point_of(meta)
    batch = forward_cache(P, cfg, tokens)
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
        cache = forward_cache(P, cfg, toks)
        e = S["W_enc"][:, f]

        def pre_of(h: torch.Tensor) -> torch.Tensor:
            return sae_pre(meta, S, h)[f]

        x0 = cache[f"blocks.{L}.{resid}"][0, t]
        v = resid_direction(P, cfg, L, hook, cache, t, pre_of, False)
        u = resid_direction(P, cfg, L, hook, cache, t, pre_of, True)
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
        if args.qk and decs["decomposition_v"]["attn"]:
            last = decs["decomposition_v"]["attn"][-1]
            heads = torch.tensor(last["heads"]).abs()  # [h, s]
            qk, arrays[f"{key}.qk"] = qk_golden(P, cfg, last["layer"], cache, toks, t, int(heads.sum(1).argmax()), int(heads.sum(0).argmax()))
            decs["qk"] = qk
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
