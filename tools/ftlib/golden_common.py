"""The torch helpers the hook-point goldens share (tools/golden_hooks.py, golden_atlas.py, golden_ablation.py).

Independent of the app's code: float64 torch on a bundle's weights and ftlib.model.forward's cache. What an
SAE's hook point reads from the residual point R a trace linearizes at (docs/BUNDLE.md, "What a trace
linearizes"), the directions v and u by autograd, and the decomposition of vec·R over the components before R.
"""
from __future__ import annotations

from typing import Callable

import torch

from . import model
from .neox import neox_forward

RESID = {"hook_resid_pre": "hook_resid_pre", "hook_resid_mid": "hook_resid_mid", "hook_resid_post": "hook_resid_post",
         "hook_mlp_out": "hook_resid_mid", "mlp.hook_pre": "hook_resid_mid", "mlp.hook_post": "hook_resid_mid",
         "attn.hook_z": "hook_resid_pre", "hook_attn_out": "hook_resid_pre"}
ATTN_HOOKS = ("attn.hook_z", "hook_attn_out")
MLP_HOOKS = ("mlp.hook_pre", "mlp.hook_post", "hook_mlp_out")


def resid_of(cfg: dict, hook: str) -> str:
    """R's hook for an SAE on `hook`: resid_mid for MLP hooks, resid_pre where attention and MLP run in parallel."""
    return "hook_resid_pre" if cfg.get("parallel_attn_mlp") and hook in MLP_HOOKS else RESID[hook]


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
    x0 = cache[pre + resid_of(cfg, hook)][0, t]
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


def resid_direction(P, cfg, L: int, hook: str, cache: dict, t: int, pre_of: Callable[[torch.Tensor], torch.Tensor], frozen: bool) -> torch.Tensor:
    """∂pre/∂R at position t (R: the hook's residual point), pre_of reading the SAE's input; frozen: u, else v."""
    to_hook = hook_of_resid(P, cfg, L, hook, cache, t, frozen)
    return grad_at(lambda x: pre_of(to_hook(x)), cache[f"blocks.{L}.{resid_of(cfg, hook)}"][0, t])


def hook_point_of(meta: dict) -> tuple[str, int, str, str]:
    """The bundle's SAE hook point: its name, layer L, hook (e.g. mlp.hook_post) and residual point R's hook."""
    hook_point = meta["sae"]["hook_point"]
    hook = hook_point.split(".", 2)[2]
    return hook_point, int(hook_point.split(".")[1]), hook, resid_of(meta["model"], hook)


def forward_cache(P, cfg, tokens: torch.Tensor) -> dict:
    """ftlib.model.forward's cache of every hook over tokens, without autograd (ftlib.neox's for GPT-NeoX-style models)."""
    cache: dict = {}
    with torch.no_grad():
        if cfg["positional_embedding_type"] == "rotary" or cfg.get("parallel_attn_mlp"):
            return neox_forward(P, cfg, tokens)
        model.forward(P, cfg, tokens, cache=cache)
    return cache


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
    # A rotary model has no positional term (its positions act inside attention): null, as the app reports it.
    pos = float(P["pos_embed.W_pos"][t] @ vec) if "pos_embed.W_pos" in P else None
    out = {"embed": float(P["embed.W_E"][toks[0, t]] @ vec), "pos": pos, "attn": attn,
           "mlp_out": [float(cache[f"blocks.{l}.hook_mlp_out"][0, t] @ vec) for l in range(n_mlp)],
           "total": float(cache[f"blocks.{L}.{resid}"][0, t] @ vec)}
    out["sum_of_terms"] = out["embed"] + (pos or 0.0) + sum(float(torch.tensor(a["heads"], dtype=torch.float64).sum()) + a["b_O"] for a in attn) + sum(out["mlp_out"])
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
