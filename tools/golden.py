#!/usr/bin/python3
"""PyTorch golden references for a bundle (test/fixtures/golden/<name>/).

Independent of the app's code: plain torch in float64 on the bundle's weights, forward hooks through
ftlib.model.forward's cache, autograd for the linearized directions (the seed's
get_tangent_plane_at_point). Writes golden.json (points, scalars, small vectors) and golden.safetensors
(per-sequence arrays).

Usage: /usr/bin/python3 tools/golden.py BUNDLE_DIR OUT_DIR [--points N] [--full-seq]
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from ftlib import bundle, model, safetensors_io  # noqa: E402

BATCH = 128  # the seed's BATCH_SIZE: activation scores cover the 128-sequence batch holding the point


def load(path: str):
    meta, params, sae, tok, tokens = bundle.read_bundle(path)
    P = {k: torch.tensor(v, dtype=torch.float64) for k, v in params.items()}
    S = {k: torch.tensor(v, dtype=torch.float64) for k, v in sae.items()}
    return meta, P, S, tok, torch.tensor(tokens.astype(np.int64))


def hook_layer(meta: dict) -> int:
    return int(meta["sae"]["hook_point"].split(".")[1])


def sae_pre(meta: dict, S: dict, x: torch.Tensor) -> torch.Tensor:
    """(x − b_dec)·W_enc + b_enc, without − b_dec where apply_b_dec_to_input is false."""
    return bundle.sae_pre_acts(meta["sae"], S, x)


def ranked(pre: torch.Tensor) -> torch.Tensor:
    """Feature ids of each token by pre-activation, descending; equal values lower id first (a stable sort)."""
    return torch.sort(pre, dim=-1, descending=True, stable=True).indices


def sae_gate(meta: dict, S: dict, pre: torch.Tensor) -> torch.Tensor:
    """The SAE's activations from its pre-activations, by kind (docs/BUNDLE.md), written from the definitions:
    relu ReLU(pre); jumprelu ReLU(pre)·[pre > threshold] (SAELens: activation_fn(pre) * (pre > threshold));
    topk ReLU of each token's k largest pre-activations, 0 elsewhere (SAELens: topk, then ReLU, scattered)."""
    kind = meta["sae"]["kind"]
    if kind == "relu":
        return torch.relu(pre)
    if kind == "jumprelu":
        return torch.relu(pre) * (pre > S["threshold"]).to(pre.dtype)
    keep = torch.zeros_like(pre).scatter_(-1, ranked(pre)[..., : meta["sae"]["k"]], 1.0)
    return torch.relu(pre) * keep


def sae_acts(meta: dict, S: dict, x: torch.Tensor) -> torch.Tensor:
    return sae_gate(meta, S, sae_pre(meta, S, x))


def predicted_acts(meta: dict, S: dict, f: int, lin: torch.Tensor, pre_all: torch.Tensor) -> torch.Tensor:
    """The gate applied to predicted pre-activations `lin` of feature f, everything else as it truly is:
    JumpReLU's threshold; for TopK the other features' true pre-activations at each token (f fires iff it
    ranks among the k largest with its predicted value in place of its true one)."""
    kind = meta["sae"]["kind"]
    if kind == "relu":
        return lin.clamp_min(0)
    if kind == "jumprelu":
        return torch.relu(lin) * (lin > S["threshold"][f]).to(lin.dtype)
    swapped = pre_all.clone()
    swapped[..., f] = lin
    return sae_gate(meta, S, swapped)[..., f]


def run(P, cfg, meta, S, toks: torch.Tensor):
    cache: dict = {}
    with torch.no_grad():
        model.forward(P, cfg, toks, cache=cache)
    acts = sae_acts(meta, S, cache[meta["sae"]["hook_point"]])
    return cache, acts


def feature_fn(P, cfg, L: int, S, f: int, frozen_scale: torch.Tensor | None):
    """x (resid_mid of layer L) -> W_enc[:,f] · GELU(LN2(x) W_in + b_in); LN2's scale frozen when given."""
    pre = f"blocks.{L}."

    def fn(x: torch.Tensor) -> torch.Tensor:
        xc = x - x.mean(-1, keepdim=True)
        scale = frozen_scale if frozen_scale is not None else (xc.pow(2).mean(-1, keepdim=True) + cfg["eps"]).sqrt()
        h = xc / scale
        if pre + "ln2.w" in P:
            h = h * P[pre + "ln2.w"] + P[pre + "ln2.b"]
        return model.gelu(h @ P[pre + "mlp.W_in"] + P[pre + "mlp.b_in"], cfg["act_fn"]) @ S["W_enc"][:, f]

    return fn


def grad_at(fn, x0: torch.Tensor) -> torch.Tensor:
    x = x0.clone().requires_grad_(True)
    fn(x).backward()
    return x.grad.detach()


def decomposition(P, cfg, L: int, cache: dict, toks: torch.Tensor, t: int, vec: torch.Tensor) -> dict:
    """Terms of vec·resid_mid(t) of layer L: embed, pos, earlier layers' attn/mlp outputs, per-head × source, b_O."""
    pre = f"blocks.{L}."
    out: dict = {
        "embed": float(P["embed.W_E"][toks[0, t]] @ vec),
        "pos": float(P["pos_embed.W_pos"][t] @ vec),
        "b_O": float(P[pre + "attn.b_O"] @ vec),
        "earlier_attn_out": [float(cache[f"blocks.{l}.hook_attn_out"][0, t] @ vec) for l in range(L)],
        "earlier_mlp_out": [float(cache[f"blocks.{l}.hook_mlp_out"][0, t] @ vec) for l in range(L)],
    }
    v_src = cache[pre + "attn.hook_v"][0, : t + 1]  # [s, h, d_head], b_V included
    ov = torch.einsum("she,hed,d->hs", v_src, P[pre + "attn.W_O"], vec)
    pattern = cache[pre + "attn.hook_pattern"][0, :, t, : t + 1]  # [h, s]
    out["heads_ov"] = ov.tolist()
    out["heads"] = (pattern * ov).tolist()
    out["total"] = float(cache[pre + "hook_resid_mid"][0, t] @ vec)
    out["sum_of_terms"] = out["embed"] + out["pos"] + out["b_O"] + sum(out["earlier_attn_out"]) + sum(out["earlier_mlp_out"]) + float((pattern * ov).sum())
    return out


def ln1_of(P, cfg, L: int, x: torch.Tensor) -> torch.Tensor:
    return model.layer_norm(x, P.get(f"blocks.{L}.ln1.w"), P.get(f"blocks.{L}.ln1.b"), cfg["eps"])


def circuits(P, cfg, L: int, cache: dict, toks: torch.Tensor, t: int, vec: torch.Tensor, src: int, heads: list[int]) -> dict:
    """The tracing issue's per-head circuit tables along vec, for source position src.

    ov_tokens:  W_E · (W_V[h] · W_O[h] · vec)                       (raw, no LayerNorm: the seed's OV table)
    ln_ov:      LN1(W_E[x] + W_pos[src]) · W_V[h] · W_O[h] · vec + b_V[h] · W_O[h] · vec   for every token x
    qk:         (LN1(resid_pre[t]) W_Q[h] + b_Q[h]) · (LN1(W_E[x] + W_pos[src]) W_K[h] + b_K[h]) / attn_scale(L)
                (layer L's divisor: sqrt(d_head), or the bundle's attn_scales[L])
    qk_seed:    W_E · W_Q[h] · W_K[h]ᵀ · vec                         (the seed's definition, kept for comparison)
    """
    pre = f"blocks.{L}.attn."
    W_E, W_pos = P["embed.W_E"], P["pos_embed.W_pos"]
    keys_in = ln1_of(P, cfg, L, W_E + W_pos[src])  # [vocab, d_model]
    q = ln1_of(P, cfg, L, cache[f"blocks.{L}.hook_resid_pre"][0, t]) @ P[pre + "W_Q"] + P[pre + "b_Q"]  # [h, d_head]
    out = {}
    for h in heads:
        ov = P[pre + "W_V"][h] @ (P[pre + "W_O"][h] @ vec)  # [d_model]
        k = keys_in @ P[pre + "W_K"][h] + P[pre + "b_K"][h]  # [vocab, d_head]
        out[h] = {
            "ov_tokens": W_E @ ov,
            "ln_ov": keys_in @ ov + P[pre + "b_V"][h] @ (P[pre + "W_O"][h] @ vec),
            "qk": k @ q[h] / model.attn_scale(cfg, L),
            "qk_seed": W_E @ (P[pre + "W_Q"][h] @ (P[pre + "W_K"][h].T @ vec)),
        }
    return out


def qk_pair(P, cfg, L: int, h: int, q_tok: int, q_pos: int, k_tok: int, k_pos: int) -> float:
    """The seed's do_single_token_qk, with LN1, W_pos and biases: one query token/pos against one key token/pos."""
    pre = f"blocks.{L}.attn."
    xq = ln1_of(P, cfg, L, P["embed.W_E"][q_tok] + P["pos_embed.W_pos"][q_pos])
    xk = ln1_of(P, cfg, L, P["embed.W_E"][k_tok] + P["pos_embed.W_pos"][k_pos])
    q = xq @ P[pre + "W_Q"][h] + P[pre + "b_Q"][h]
    k = xk @ P[pre + "W_K"][h] + P[pre + "b_K"][h]
    return float(q @ k / model.attn_scale(cfg, L))


def pick_points(acts_all: torch.Tensor, n: int, seed: int = 0, pre_all: torch.Tensor | None = None) -> list[tuple[int, int, int]]:
    """(feature, sample, pos): for the n most frequently firing features, the argmax and one random firing;
    with `pre_all` (a gated kind), also a point whose pre-activation is positive but whose gate is shut."""
    gated = []
    if pre_all is not None:
        shut = torch.nonzero((pre_all > 0) & (acts_all == 0))
        if len(shut):
            s, t, f = (int(x) for x in shut[len(shut) // 2])
            gated = [(f, s, t)]
    firing = (acts_all > 0).float().mean((0, 1))
    features = [int(i) for i in torch.argsort(firing, descending=True)[: max(1, n // 2)]]
    g = torch.Generator().manual_seed(seed)
    pts = []
    for f in features:
        a = acts_all[:, :, f]
        s, t = divmod(int(a.argmax()), a.shape[1])
        pts.append((f, s, t))
        nz = torch.nonzero(a > 0)
        k = int(torch.randint(len(nz), (1,), generator=g))
        pts.append((f, int(nz[k, 0]), int(nz[k, 1])))
    return pts[: n - len(gated)] + gated


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("bundle")
    ap.add_argument("out")
    ap.add_argument("--points", type=int, default=4)
    ap.add_argument("--full-seq", action="store_true", help="store whole-sequence hook arrays (small bundles)")
    ap.add_argument("--scan", type=int, default=256, help="sequences scanned when picking points")
    args = ap.parse_args()
    torch.set_num_threads(2)
    meta, P, S, _, tokens = load(args.bundle)
    cfg = meta["model"]
    L = hook_layer(meta)
    hook = meta["sae"]["hook_point"]
    scan = tokens[: args.scan]
    with torch.no_grad():
        post = model.forward(P, cfg, scan, stop_at_layer_mlp=L)
    pre_scan = sae_pre(meta, S, post)
    acts_scan = sae_gate(meta, S, pre_scan)
    points = pick_points(acts_scan, args.points, pre_all=None if meta["sae"]["kind"] == "relu" else pre_scan)

    arrays: dict[str, np.ndarray] = {}
    out_points = []
    for i, (f, s, t) in enumerate(points):
        toks = tokens[s : s + 1]
        cache, acts = run(P, cfg, meta, S, toks)
        x0 = cache[f"blocks.{L}.hook_resid_mid"][0, t]
        v = grad_at(feature_fn(P, cfg, L, S, f, None), x0)
        xc = x0 - x0.mean()
        scale0 = (xc.pow(2).mean() + cfg["eps"]).sqrt()
        u = grad_at(feature_fn(P, cfg, L, S, f, scale0.detach()), x0)
        pre_act = float(sae_pre(meta, S, cache[hook][0, t])[f])
        b0 = (s // BATCH) * BATCH
        batch = tokens[b0 : b0 + BATCH]
        with torch.no_grad():
            bc: dict = {}
            model.forward(P, cfg, batch, cache=bc)
            resid_mid_batch = bc[f"blocks.{L}.hook_resid_mid"]
            pre_all_batch = sae_pre(meta, S, bc[hook])
            acts_batch = sae_gate(meta, S, pre_all_batch)[:, :, f]
            pre_batch = pre_all_batch[:, :, f]
        we_v = P["embed.W_E"] @ v
        order = torch.argsort(we_v, descending=True)
        key = f"p{i}"
        arrays[f"{key}.v"] = v.numpy()
        arrays[f"{key}.u"] = u.numpy()
        arrays[f"{key}.scores_v"] = (resid_mid_batch @ v).numpy()
        arrays[f"{key}.scores_u"] = (resid_mid_batch @ u).numpy()
        arrays[f"{key}.acts_batch"] = acts_batch.numpy()
        arrays[f"{key}.pre_batch"] = pre_batch.numpy()
        arrays[f"{key}.W_E_v"] = we_v.numpy()
        # Sparse SAE activations of the point's sequence: every non-zero (pos, feature, value).
        nz = torch.nonzero(acts[0] > 0)
        arrays[f"{key}.seq_acts_idx"] = nz.numpy().astype(np.int32)
        arrays[f"{key}.seq_acts_val"] = acts[0][nz[:, 0], nz[:, 1]].numpy()
        positions = list(range(toks.shape[1])) if args.full_seq else sorted({0, t // 2, t, toks.shape[1] - 1})
        pos_idx = torch.tensor(positions)
        for l in range(cfg["n_layers"]):
            arrays[f"{key}.blocks.{l}.hook_resid_pre"] = cache[f"blocks.{l}.hook_resid_pre"][0, pos_idx].numpy()
            arrays[f"{key}.blocks.{l}.hook_resid_mid"] = cache[f"blocks.{l}.hook_resid_mid"][0, pos_idx].numpy()
            arrays[f"{key}.blocks.{l}.mlp.hook_post"] = cache[f"blocks.{l}.mlp.hook_post"][0, pos_idx].numpy()
            arrays[f"{key}.blocks.{l}.attn.hook_pattern"] = cache[f"blocks.{l}.attn.hook_pattern"][0][:, pos_idx].numpy()
        with torch.no_grad():
            logits = model.forward(P, cfg, toks)
        arrays[f"{key}.logits"] = logits[0, pos_idx].numpy()
        dec_v = decomposition(P, cfg, L, cache, toks, t, v)
        heads_v = torch.tensor(dec_v["heads"])  # [h, s]
        src = int(heads_v.abs().sum(0).argmax())
        best_head = int(heads_v.abs().sum(1).argmax())
        heads = list(range(cfg["n_heads"])) if args.full_seq else sorted({best_head, 0})
        for name, vec in (("v", v), ("u", u)):
            for h, tables in circuits(P, cfg, L, cache, toks, t, vec, src, heads).items():
                for tname, arr in tables.items():
                    arrays[f"{key}.{tname}_{name}.h{h}"] = arr.numpy()
        logit_effect = S["W_dec"][f] @ P[f"blocks.{L}.mlp.W_out"] @ P["unembed.W_U"]
        arrays[f"{key}.logit_effect"] = logit_effect.numpy()
        lin = pre_act + (resid_mid_batch - x0) @ v
        flat_lin, flat_true = lin.flatten(), pre_batch.flatten()
        pearson = float(torch.corrcoef(torch.stack([flat_lin, flat_true]))[0, 1])
        pred_acts = predicted_acts(meta, S, f, lin, pre_all_batch)
        arrays[f"{key}.predicted_acts_v"] = pred_acts.numpy()
        pearson_relu = float(torch.corrcoef(torch.stack([pred_acts.flatten(), acts_batch.flatten()]))[0, 1])
        rel = list(range(1, 6))
        grid_tokens = [int(x) for x in toks[0, max(0, t - 5) : t].tolist()] or [int(toks[0, t])]
        qk_grid = [[qk_pair(P, cfg, L, best_head, int(toks[0, t]), t, x, t - r) if t - r >= 0 else None for r in rel] for x in grid_tokens]
        pairs = [(int(toks[0, t]), t, int(toks[0, s_]), s_, qk_pair(P, cfg, L, best_head, int(toks[0, t]), t, int(toks[0, s_]), s_))
                 for s_ in sorted({0, t // 2, t})]
        out_points.append({
            "circuit_source_pos": src, "circuit_heads": heads, "best_head": best_head,
            "fidelity_pearson": pearson, "fidelity_pearson_relu": pearson_relu,
            "qk_grid": {"head": best_head, "tokens": grid_tokens, "relative_positions": [-r for r in rel], "scores": qk_grid},
            "qk_pairs": [{"head": best_head, "query_token": a, "query_pos": b, "key_token": c, "key_pos": d, "score": e} for a, b, c, d, e in pairs],
            "key": key, "feature": f, "sample": s, "pos": t, "token": int(toks[0, t]),
            "positions": positions, "batch_start": b0, "batch_size": int(batch.shape[0]),
            "activation": float(acts[0, t, f]), "pre_activation": pre_act,
            "v_dot_resid_mid": float(v @ x0), "u_dot_resid_mid": float(u @ x0),
            "v_dot_ones": float(v.sum()),
            "W_E_v_top": [[int(j), float(we_v[j])] for j in order[:20]],
            "W_E_v_bottom": [[int(j), float(we_v[j])] for j in order.flip(0)[:20]],
            "decomposition_v": dec_v,
            "decomposition_u": decomposition(P, cfg, L, cache, toks, t, u),
        })
    os.makedirs(args.out, exist_ok=True)
    safetensors_io.save(os.path.join(args.out, "golden.safetensors"), {k: np.asarray(v, dtype=np.float32) if v.dtype != np.int32 else v for k, v in arrays.items()})
    with open(os.path.join(args.out, "golden.json"), "w") as f:
        json.dump({"bundle": os.path.basename(os.path.normpath(args.bundle)), "hook_point": hook, "layer": L,
                   "note": "float64 torch on the bundle's weights; arrays stored as float32", "points": out_points}, f, indent=1)
    print(f"wrote {len(out_points)} points to {args.out}")


if __name__ == "__main__":
    main()
