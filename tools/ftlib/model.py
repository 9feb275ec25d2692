"""A functional TransformerLens-architecture transformer in plain torch.

The parameters are a dict keyed by TransformerLens state-dict names, so the same
code trains the demo model, folds it, and computes the golden references from a
bundle. Hook values are returned by name (hook_resid_pre, hook_pattern, ...).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def gelu(x: torch.Tensor, act_fn: str) -> torch.Tensor:
    if act_fn == "gelu":
        return F.gelu(x)
    if act_fn in ("gelu_new", "gelu_fast"):
        return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))
    if act_fn == "relu":
        return F.relu(x)
    raise ValueError(f"unsupported act_fn {act_fn}")


def layer_norm(x: torch.Tensor, w: torch.Tensor | None, b: torch.Tensor | None, eps: float) -> torch.Tensor:
    x = x - x.mean(-1, keepdim=True)
    scale = (x.pow(2).mean(-1, keepdim=True) + eps).sqrt()
    x = x / scale
    if w is not None:
        x = x * w + b
    return x


def init_params(cfg: dict, seed: int = 0, ln_weights: bool = True) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    d, h, dh, dm, v, n = cfg["d_model"], cfg["n_heads"], cfg["d_head"], cfg["d_mlp"], cfg["d_vocab"], cfg["n_ctx"]
    std = cfg.get("init_std", 0.02)

    def r(*shape, s=std):
        return torch.randn(*shape, generator=g) * s

    p = {"embed.W_E": r(v, d), "pos_embed.W_pos": r(n, d)}
    for l in range(cfg["n_layers"]):
        pre = f"blocks.{l}."
        if ln_weights:
            p[pre + "ln1.w"] = torch.ones(d)
            p[pre + "ln1.b"] = torch.zeros(d)
            p[pre + "ln2.w"] = torch.ones(d)
            p[pre + "ln2.b"] = torch.zeros(d)
        for m in "QKV":
            p[pre + f"attn.W_{m}"] = r(h, d, dh)
            p[pre + f"attn.b_{m}"] = torch.zeros(h, dh)
        p[pre + "attn.W_O"] = r(h, dh, d, s=std / math.sqrt(2 * cfg["n_layers"]))
        p[pre + "attn.b_O"] = torch.zeros(d)
        p[pre + "mlp.W_in"] = r(d, dm)
        p[pre + "mlp.b_in"] = torch.zeros(dm)
        p[pre + "mlp.W_out"] = r(dm, d, s=std / math.sqrt(2 * cfg["n_layers"]))
        p[pre + "mlp.b_out"] = torch.zeros(d)
    if ln_weights:
        p["ln_final.w"] = torch.ones(d)
        p["ln_final.b"] = torch.zeros(d)
    p["unembed.W_U"] = r(d, v)
    p["unembed.b_U"] = torch.zeros(v)
    return p


def _ln(p: dict, name: str, x: torch.Tensor, cfg: dict) -> torch.Tensor:
    return layer_norm(x, p.get(name + ".w"), p.get(name + ".b"), cfg["eps"])


def attn_scale(cfg: dict, l: int) -> float:
    """What layer l divides its attention scores by: the bundle's `attn_scales[l]` (docs/BUNDLE.md), or
    sqrt(d_head) where the bundle has none (every bundle made before the field)."""
    scales = cfg.get("attn_scales")
    return float(scales[l]) if scales is not None else math.sqrt(cfg["d_head"])


def attention(p: dict, l: int, x_norm: torch.Tensor, cfg: dict, cache: dict | None):
    pre = f"blocks.{l}.attn."
    q = torch.einsum("bpd,hde->bphe", x_norm, p[pre + "W_Q"]) + p[pre + "b_Q"]
    k = torch.einsum("bpd,hde->bphe", x_norm, p[pre + "W_K"]) + p[pre + "b_K"]
    v = torch.einsum("bpd,hde->bphe", x_norm, p[pre + "W_V"]) + p[pre + "b_V"]
    scores = torch.einsum("bqhe,bkhe->bhqk", q, k) / attn_scale(cfg, l)
    T = x_norm.shape[1]
    mask = torch.ones(T, T, dtype=torch.bool, device=x_norm.device).tril()
    scores = scores.masked_fill(~mask, float("-inf"))
    pattern = scores.softmax(-1)
    z = torch.einsum("bhqk,bkhe->bqhe", pattern, v)
    out = torch.einsum("bqhe,hed->bqd", z, p[pre + "W_O"]) + p[pre + "b_O"]
    if cache is not None:
        cache[f"blocks.{l}.attn.hook_q"] = q
        cache[f"blocks.{l}.attn.hook_k"] = k
        cache[f"blocks.{l}.attn.hook_v"] = v
        cache[f"blocks.{l}.attn.hook_attn_scores"] = scores
        cache[f"blocks.{l}.attn.hook_pattern"] = pattern
        cache[f"blocks.{l}.attn.hook_z"] = z  # [batch, pos, head, d_head]; an SAE reads it flattened to head·d_head
    return out


def forward(p: dict, cfg: dict, tokens: torch.Tensor, cache: dict | None = None, stop_at_layer_mlp: int | None = None,
            stop_at_resid_pre: int | None = None):
    """Returns logits [batch, pos, vocab]; fills `cache` with hook values when given.

    With stop_at_layer_mlp=L it returns blocks.L.mlp.hook_post instead of logits, with stop_at_resid_pre=L
    blocks.L.hook_resid_pre, computing no layer after it.
    """
    if cfg.get("positional_embedding_type", "standard") != "standard" or cfg.get("parallel_attn_mlp"):
        # GPT-NeoX-style bundles have their own reference, tools/golden_neox.py; computing them here would be another model.
        raise NotImplementedError("ftlib.model computes learned positions and sequential blocks only; see tools/golden_neox.py")
    T = tokens.shape[1]
    x = p["embed.W_E"][tokens] + p["pos_embed.W_pos"][:T]
    for l in range(cfg["n_layers"]):
        pre = f"blocks.{l}."
        if stop_at_resid_pre == l:
            return x
        if cache is not None:
            cache[pre + "hook_resid_pre"] = x
        attn_out = attention(p, l, _ln(p, pre + "ln1", x, cfg), cfg, cache)
        x = x + attn_out
        if cache is not None:
            cache[pre + "hook_attn_out"] = attn_out
            cache[pre + "hook_resid_mid"] = x
        h = _ln(p, pre + "ln2", x, cfg) @ p[pre + "mlp.W_in"] + p[pre + "mlp.b_in"]
        post = gelu(h, cfg["act_fn"])
        if cache is not None:
            cache[pre + "mlp.hook_pre"] = h
            cache[pre + "mlp.hook_post"] = post
        if stop_at_layer_mlp == l:
            return post
        mlp_out = post @ p[pre + "mlp.W_out"] + p[pre + "mlp.b_out"]
        x = x + mlp_out
        if cache is not None:
            cache[pre + "hook_mlp_out"] = mlp_out
            cache[pre + "hook_resid_post"] = x
    return _ln(p, "ln_final", x, cfg) @ p["unembed.W_U"] + p["unembed.b_U"]


PROCESSING_FLAGS = ("fold_ln", "center_writing_weights", "center_unembed", "fold_value_biases")


def process_weights(p: dict, cfg: dict, *, fold_ln: bool = False, center_writing_weights: bool = False,
                    center_unembed: bool = False, fold_value_biases: bool = False) -> tuple[dict, str]:
    """TransformerLens's weight processing (HookedTransformer.load_and_process_state_dict), flag by flag,
    in its order: fold_ln, center_writing_weights, center_unembed, fold_value_biases (and then b_O centred
    again when writing weights are centred). Returns (new params, normalization_type after it).

    fold_ln needs LN weights (an `LN` model); on an `LNPre` model there is nothing to fold, as in
    TransformerLens. None of these changes hook_post, hook_pre, the attention pattern or the
    log-probabilities; center_writing_weights subtracts its mean over d_model from everything written to
    the residual stream, so hook_resid_*, hook_attn_out and hook_mlp_out lose their mean; fold_value_biases
    changes hook_v and hook_z; center_unembed shifts the logits by a constant per position.
    """
    p = {k: v.detach().clone() for k, v in p.items()}
    norm = cfg["normalization_type"]
    n_layers = cfg["n_layers"]
    if fold_ln and norm == "LN":
        for l in range(n_layers):
            pre = f"blocks.{l}."
            w, b = p.pop(pre + "ln1.w"), p.pop(pre + "ln1.b")
            for m in "QKV":
                W = p[pre + f"attn.W_{m}"]
                p[pre + f"attn.b_{m}"] = p[pre + f"attn.b_{m}"] + torch.einsum("d,hde->he", b, W)
                W = W * w[None, :, None]
                p[pre + f"attn.W_{m}"] = W - W.mean(1, keepdim=True)
            w, b = p.pop(pre + "ln2.w"), p.pop(pre + "ln2.b")
            W = p[pre + "mlp.W_in"]
            p[pre + "mlp.b_in"] = p[pre + "mlp.b_in"] + b @ W
            W = W * w[:, None]
            p[pre + "mlp.W_in"] = W - W.mean(0, keepdim=True)
        w, b = p.pop("ln_final.w"), p.pop("ln_final.b")
        W = p["unembed.W_U"]
        p["unembed.b_U"] = p["unembed.b_U"] + b @ W
        W = W * w[:, None]
        p["unembed.W_U"] = W - W.mean(0, keepdim=True)
        norm = "LNPre"
    if center_writing_weights:
        p["embed.W_E"] = p["embed.W_E"] - p["embed.W_E"].mean(-1, keepdim=True)
        if "pos_embed.W_pos" in p:  # rotary models have none (TransformerLens skips it for them)
            p["pos_embed.W_pos"] = p["pos_embed.W_pos"] - p["pos_embed.W_pos"].mean(-1, keepdim=True)
        for l in range(n_layers):
            pre = f"blocks.{l}."
            for name in ("attn.W_O", "attn.b_O", "mlp.W_out", "mlp.b_out"):
                p[pre + name] = p[pre + name] - p[pre + name].mean(-1, keepdim=True)
    if center_unembed:
        p["unembed.W_U"] = p["unembed.W_U"] - p["unembed.W_U"].mean(-1, keepdim=True)
        p["unembed.b_U"] = p["unembed.b_U"] - p["unembed.b_U"].mean()
    if fold_value_biases:
        for l in range(n_layers):
            pre = f"blocks.{l}.attn."
            p[pre + "b_O"] = p[pre + "b_O"] + torch.einsum("he,hed->d", p[pre + "b_V"], p[pre + "W_O"])
            p[pre + "b_V"] = torch.zeros_like(p[pre + "b_V"])
            if center_writing_weights:
                p[pre + "b_O"] = p[pre + "b_O"] - p[pre + "b_O"].mean()
    return p, norm


def fold_and_center(p: dict, cfg: dict) -> dict:
    """What HookedTransformer.from_pretrained does by default: fold_ln, center_writing_weights,
    center_unembed, fold_value_biases. Returns a new dict; normalization becomes LNPre."""
    return process_weights(p, cfg, **{k: True for k in PROCESSING_FLAGS})[0]
