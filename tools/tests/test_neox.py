"""tools/ftlib/neox.py, the reference for GPT-NeoX-style bundles, against TransformerLens's own formulation of
its rotary embedding (rotary_adjacent_pairs False), written here a second way: sin/cos tables whose
frequencies base^(i/(R/2)) repeat as "(2 d)", and x_rot·cos + rotate_half(x_rot)·sin with rotate_half(x) =
[−x[R/2:], x[:R/2]]; dims beyond R pass through. And the property the trace's QK tables rest on."""
import math

import torch

from ftlib.neox import neox_forward, rotate


def tl_style_rotary(x: torch.Tensor, rotary_dim: int, base: float) -> torch.Tensor:
    n = x.shape[1]
    dim = torch.arange(rotary_dim // 2, dtype=torch.float64)
    freq = base ** (dim / (rotary_dim / 2))
    freq = torch.cat([freq, freq])  # einops "d -> (2 d)"
    angles = torch.arange(n, dtype=torch.float64)[:, None] / freq[None, :]
    sin, cos = torch.sin(angles)[None, :, None, :], torch.cos(angles)[None, :, None, :]
    x_rot, x_pass = x[..., :rotary_dim], x[..., rotary_dim:]
    half = rotary_dim // 2
    flipped = torch.cat([-x_rot[..., half:], x_rot[..., :half]], dim=-1)
    return torch.cat([x_rot * cos + flipped * sin, x_pass], dim=-1)


def test_rotation_is_transformer_lens_neox_rotary():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 40, 3, 16, generator=g, dtype=torch.float64)
    for rotary_dim, base in ((4, 10000.0), (16, 10000.0), (8, 500.0)):
        assert torch.allclose(rotate(x, rotary_dim, base), tl_style_rotary(x, rotary_dim, base), atol=1e-12)
    # GPT-J's layout (rotary_adjacent_pairs True: pairs (2i, 2i+1), frequencies repeated "(d 2)") is another
    # rotation of the same vector, which is why the exporter refuses it rather than read it as NeoX's.
    R = 4
    freq = torch.repeat_interleave(10000.0 ** (torch.arange(R // 2, dtype=torch.float64) / (R / 2)), 2)
    angles = torch.arange(x.shape[1], dtype=torch.float64)[:, None] / freq[None, :]
    flipped = torch.empty_like(x[..., :R])
    flipped[..., ::2], flipped[..., 1::2] = -x[..., 1:R:2], x[..., 0:R:2]
    gptj = torch.cat([x[..., :R] * torch.cos(angles)[None, :, None] + flipped * torch.sin(angles)[None, :, None], x[..., R:]], dim=-1)
    assert not torch.allclose(gptj, rotate(x, R, 10000.0), atol=1e-3)


def test_scores_depend_on_the_position_offset_only():
    """(R_t q)·(R_s k) = (R_{t−s} q)·k: the identity behind the trace's QK tables at two positions."""
    g = torch.Generator().manual_seed(1)
    q, k = torch.randn(1, 1, 1, 8, generator=g, dtype=torch.float64), torch.randn(1, 1, 1, 8, generator=g, dtype=torch.float64)

    def at(x, p):
        return rotate(x, 8, 10000.0, torch.full((1, 1, 1), float(p), dtype=torch.float64))

    for t, s in ((5, 2), (31, 0), (7, 7)):
        assert math.isclose(float((at(q, t) * at(k, s)).sum()), float((at(q, t - s) * k).sum()), rel_tol=1e-12, abs_tol=1e-12)


def test_parallel_block_adds_both_to_resid_pre():
    g = torch.Generator().manual_seed(2)
    d, h, dh, dm, v = 8, 2, 4, 16, 11
    cfg = {"n_layers": 1, "n_heads": h, "d_head": dh, "eps": 1e-5, "act_fn": "gelu", "positional_embedding_type": "rotary",
           "rotary_dim": 2, "rotary_base": 10000.0, "parallel_attn_mlp": True}
    P = {"embed.W_E": torch.randn(v, d, generator=g, dtype=torch.float64), "unembed.W_U": torch.randn(d, v, generator=g, dtype=torch.float64),
         "unembed.b_U": torch.zeros(v, dtype=torch.float64)}
    for m in "QKV":
        P[f"blocks.0.attn.W_{m}"] = torch.randn(h, d, dh, generator=g, dtype=torch.float64)
        P[f"blocks.0.attn.b_{m}"] = torch.randn(h, dh, generator=g, dtype=torch.float64)
    P.update({"blocks.0.attn.W_O": torch.randn(h, dh, d, generator=g, dtype=torch.float64), "blocks.0.attn.b_O": torch.zeros(d, dtype=torch.float64),
              "blocks.0.mlp.W_in": torch.randn(d, dm, generator=g, dtype=torch.float64), "blocks.0.mlp.b_in": torch.zeros(dm, dtype=torch.float64),
              "blocks.0.mlp.W_out": torch.randn(dm, d, generator=g, dtype=torch.float64), "blocks.0.mlp.b_out": torch.zeros(d, dtype=torch.float64)})
    c = neox_forward(P, cfg, torch.tensor([[1, 4, 2, 9]]))
    assert torch.allclose(c["blocks.0.hook_resid_post"], c["blocks.0.hook_resid_pre"] + c["blocks.0.hook_attn_out"] + c["blocks.0.hook_mlp_out"])
    assert "blocks.0.hook_resid_mid" not in c
    assert torch.equal(c["blocks.0.hook_resid_pre"], P["embed.W_E"][torch.tensor([[1, 4, 2, 9]])])  # no W_pos
