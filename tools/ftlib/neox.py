"""GPT-NeoX-style models (rotary positions, parallel attention and MLP) in plain float64 torch, written from the
definitions TransformerLens uses for GPT-NeoX/Pythia (positional_embedding_type "rotary" with
rotary_adjacent_pairs False, parallel_attn_mlp True), independently of ftlib.model and of the app:
- no learned positions: resid_pre of block 0 is W_E[token];
- rotary: for i < R/2 (R = rotary_dim) each head's query and key pair (x_i, x_{i+R/2}) is rotated by the angle
  p·θ_i, θ_i = rotary_base^(−i/(R/2)), p the position: x_i' = x_i cos − x_{i+R/2} sin, x_{i+R/2}' = x_{i+R/2} cos +
  x_i sin; dims R… of each head pass through; values are not rotated;
- scores q'·k' / attn_scale (sqrt(d_head) unless bundle.json's attn_scales), causal softmax;
- parallel block: attn_out = Attn(LN1(resid_pre)), mlp_out = MLP(LN2(resid_pre)), resid_post = resid_pre +
  attn_out + mlp_out; there is no resid_mid.
"""
from __future__ import annotations

import math

import torch


def layer_norm(x: torch.Tensor, P: dict, name: str, eps: float) -> torch.Tensor:
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    y = (x - mu) / torch.sqrt(var + eps)
    return y * P[name + ".w"] + P[name + ".b"] if name + ".w" in P else y


def rotate(x: torch.Tensor, rotary_dim: int, base: float, pos: torch.Tensor | None = None) -> torch.Tensor:
    """x [batch, pos, head, d_head] with each pair (i, i + R/2), i < R/2, turned by p·θ_i, p its position (or `pos`,
    broadcast against x[..., 0])."""
    half = rotary_dim // 2
    if pos is None:
        pos = torch.arange(x.shape[1], dtype=torch.float64)[None, :, None]
    out = x.clone()
    for i in range(half):
        angle = pos * base ** (-i / half)
        a, b = x[..., i], x[..., i + half]
        out[..., i] = a * torch.cos(angle) - b * torch.sin(angle)
        out[..., i + half] = b * torch.cos(angle) + a * torch.sin(angle)
    return out


def gelu(x: torch.Tensor, act_fn: str) -> torch.Tensor:
    if act_fn == "gelu":
        return 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))
    if act_fn in ("gelu_new", "gelu_fast"):
        return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    return torch.relu(x)


def neox_forward(P: dict, cfg: dict, tokens: torch.Tensor, edit_at: str | None = None, edit=None) -> dict:
    """Every hook by its TransformerLens name (hook_z flattened head-major, as an SAE reads it), and logits;
    with `edit_at` (a hook_resid_pre or hook_resid_post), the residual stream there is replaced by edit(x)."""
    assert cfg["positional_embedding_type"] == "rotary" and cfg.get("parallel_attn_mlp"), "a GPT-NeoX-style bundle"
    H, dh, eps, T = cfg["n_heads"], cfg["d_head"], cfg["eps"], tokens.shape[1]
    cache: dict = {}
    x = P["embed.W_E"][tokens]
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    for l in range(cfg["n_layers"]):
        pre = f"blocks.{l}."
        if edit_at == pre + "hook_resid_pre":
            x = edit(x)
        cache[pre + "hook_resid_pre"] = x
        a_in = layer_norm(x, P, pre + "ln1", eps)
        q, k, v = (torch.einsum("bpd,hde->bphe", a_in, P[pre + f"attn.W_{m}"]) + P[pre + f"attn.b_{m}"] for m in "QKV")
        q, k = rotate(q, cfg["rotary_dim"], cfg["rotary_base"]), rotate(k, cfg["rotary_dim"], cfg["rotary_base"])
        scale = cfg["attn_scales"][l] if cfg.get("attn_scales") else math.sqrt(dh)
        scores = torch.einsum("bqhe,bkhe->bhqk", q, k) / scale
        pattern = torch.softmax(scores.masked_fill(~causal, float("-inf")), -1)
        z = torch.einsum("bhqk,bkhe->bqhe", pattern, v)
        attn_out = torch.einsum("bqhe,hed->bqd", z, P[pre + "attn.W_O"]) + P[pre + "attn.b_O"]
        h = layer_norm(x, P, pre + "ln2", eps) @ P[pre + "mlp.W_in"] + P[pre + "mlp.b_in"]
        post = gelu(h, cfg["act_fn"])
        mlp_out = post @ P[pre + "mlp.W_out"] + P[pre + "mlp.b_out"]
        cache.update({pre + "attn.hook_v": v, pre + "attn.hook_pattern": pattern, pre + "attn.hook_z": z.reshape(*z.shape[:2], H * dh),
                      pre + "hook_attn_out": attn_out, pre + "mlp.hook_pre": h, pre + "mlp.hook_post": post, pre + "hook_mlp_out": mlp_out})
        x = x + attn_out + mlp_out
        if edit_at == pre + "hook_resid_post":
            x = edit(x)
        cache[pre + "hook_resid_post"] = x
    cache["logits"] = layer_norm(x, P, "ln_final", eps) @ P["unembed.W_U"] + P["unembed.b_U"]
    return cache
