#!/usr/bin/python3
"""Write a tiny random GPT-NeoX-style bundle (test/fixtures/tiny-neox): rotary positions, parallel attention
and MLP, LayerNorm with weights and biases, untied unembedding, no W_pos, as TransformerLens loads Pythia.

test/fixtures/tiny's sizes (2 layers, d_model 32, 4 heads of 8, d_mlp 128), tokenizer and tokens; rotary_dim 4
(half of each head's dims rotated, the rest passing through; Pythia rotates a quarter), rotary_base 10000,
gelu (Pythia's). The SAE (32 features) sits on blocks.1.mlp.hook_post, its biases set on the model's own hook
values so its features fire on ~20–30% of tokens, away from the ReLU's edge.
Its goldens: /usr/bin/python3 tools/golden_neox.py test/fixtures/tiny-neox test/fixtures/golden/tiny-neox
Usage: /usr/bin/python3 tools/make_neox_bundle.py [TINY_DIR [OUT_DIR]]
"""
from __future__ import annotations

import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from ftlib import bundle  # noqa: E402
from golden_neox import neox_forward  # noqa: E402
from make_attn_scale_variants import threshold_near  # noqa: E402

HOOK = "blocks.1.mlp.hook_post"
D_SAE = 32


def neox_params(cfg: dict, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    d, h, dh, dm, v = cfg["d_model"], cfg["n_heads"], cfg["d_head"], cfg["d_mlp"], cfg["d_vocab"]

    def r(*shape, s=0.3):
        return torch.randn(*shape, generator=g, dtype=torch.float64) * s

    p = {"embed.W_E": r(v, d, s=1.0)}
    for l in range(cfg["n_layers"]):
        pre = f"blocks.{l}."
        for n in ("ln1", "ln2"):
            p[pre + n + ".w"] = 1 + r(d)
            p[pre + n + ".b"] = r(d, s=0.2)
        for m in "QKV":
            p[pre + f"attn.W_{m}"] = r(h, d, dh)
            p[pre + f"attn.b_{m}"] = r(h, dh)
        p[pre + "attn.W_O"] = r(h, dh, d, s=0.2)
        p[pre + "attn.b_O"] = r(d, s=0.1)
        p[pre + "mlp.W_in"] = r(d, dm)
        p[pre + "mlp.b_in"] = r(dm, s=0.2)
        p[pre + "mlp.W_out"] = r(dm, d, s=0.1)
        p[pre + "mlp.b_out"] = r(d, s=0.1)
    p["ln_final.w"] = 1 + r(d)
    p["ln_final.b"] = r(d, s=0.2)
    p["unembed.W_U"] = r(d, v)
    p["unembed.b_U"] = r(v, s=0.2)
    # Stored as float32: the goldens compute in float64 from the stored values.
    return {k: t.float().double() for k, t in p.items()}


def main(tiny: str, out: str) -> None:
    meta, _, _, tok, tokens = bundle.read_bundle(tiny)
    cfg = {k: meta["model"][k] for k in bundle.MODEL_KEYS}
    cfg.update({"positional_embedding_type": "rotary", "rotary_dim": 4, "rotary_base": 10000.0, "parallel_attn_mlp": True, "act_fn": "gelu",
                "processing": dict(bundle.NO_PROCESSING)})
    P = neox_params(cfg)
    with torch.no_grad():
        x = neox_forward(P, cfg, torch.from_numpy(tokens.astype(np.int64)))[HOOK]
    rows = x[:, 1:].reshape(-1, cfg["d_mlp"])  # not BOS: its value repeats in every row
    g = torch.Generator().manual_seed(30)
    W_dec = torch.randn(D_SAE, cfg["d_mlp"], generator=g, dtype=torch.float64)
    W_dec = W_dec / W_dec.norm(dim=1, keepdim=True)
    W_enc = W_dec.T.clone() + 0.3 * torch.randn(cfg["d_mlp"], D_SAE, generator=g, dtype=torch.float64)
    b_dec = rows.mean(0) + 0.05 * torch.randn(cfg["d_mlp"], generator=g, dtype=torch.float64)
    raw = (rows - b_dec) @ W_enc
    b_enc = -torch.stack([threshold_near(raw[:, j], float(q)) for j, q in enumerate(np.linspace(0.7, 0.8, D_SAE))])
    pre = (x - b_dec) @ W_enc + b_enc
    print(f"smallest |pre-activation| {float(pre.abs().min()):.2e}, firing {float((pre > 0).double().mean()):.2f}")
    sae = {"W_enc": W_enc, "b_enc": b_enc, "W_dec": W_dec, "b_dec": b_dec}
    bundle.write_bundle(
        out, model_cfg=cfg, params={k: v.numpy() for k, v in P.items()},
        sae_cfg={"hook_point": HOOK, "d_in": cfg["d_mlp"], "d_sae": D_SAE, "kind": "relu"}, sae={k: v.float().numpy() for k, v in sae.items()},
        tokenizer=tok, tokens=tokens, dataset={k: v for k, v in meta["dataset"].items() if k not in ("n_seq", "seq_len")}, dtype="float32",
        sources={"model.safetensors": "random GPT-NeoX-style weights (tools/make_neox_bundle.py, seed 0)",
                 "sae.safetensors": f"random SAE on {HOOK} (tools/make_neox_bundle.py, seed 30)",
                 "tokenizer.json": "test/fixtures/tiny's", "tokens.safetensors": "test/fixtures/tiny's"},
        name="tiny-neox: 2 layers, rotary, parallel attention and MLP (random weights, for tests)",
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    fixtures = os.path.join(here, "..", "test", "fixtures")
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(fixtures, "tiny"), sys.argv[2] if len(sys.argv) > 2 else os.path.join(fixtures, "tiny-neox"))
