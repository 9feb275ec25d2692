#!/usr/bin/python3
"""Write the tiny bundle's hook-point variants (test/fixtures/tiny-hook-*), for traces at every hook.

Each keeps test/fixtures/tiny's model (2 layers, LN with weights, gelu_new), tokenizer and tokens and gets
a random 16-feature SAE on another hook point, with biases set so its features fire on ~20–30% of tokens:
  tiny-hook-resid-pre    blocks.1.hook_resid_pre    relu
  tiny-hook-resid-mid0   blocks.0.hook_resid_mid    relu  (the first layer: one attention layer before it)
  tiny-hook-resid-post   blocks.1.hook_resid_post   topk, k = 4, apply_b_dec_to_input false
  tiny-hook-mlp-out      blocks.1.hook_mlp_out      relu
  tiny-hook-z            blocks.1.attn.hook_z       relu  (every head's z concatenated, head-major)
  tiny-hook-attn-out     blocks.1.hook_attn_out     relu
Usage: /usr/bin/python3 tools/make_hook_variants.py [TINY_DIR [OUT_ROOT]]
"""
from __future__ import annotations

import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from ftlib import bundle, model  # noqa: E402

D_SAE = 16
VARIANTS = [
    ("resid-pre", "blocks.1.hook_resid_pre", {}),
    ("resid-mid0", "blocks.0.hook_resid_mid", {}),
    ("resid-post", "blocks.1.hook_resid_post", {"kind": "topk", "k": 4, "apply_b_dec_to_input": False}),
    ("mlp-out", "blocks.1.hook_mlp_out", {}),
    ("z", "blocks.1.attn.hook_z", {}),
    ("attn-out", "blocks.1.hook_attn_out", {}),
]


def hook_values(cache: dict, hook: str) -> torch.Tensor:
    """The SAE's input at `hook`, one row per token ([n_tokens, d_in]; hook_z's heads concatenated)."""
    x = cache[hook]
    return x.reshape(x.shape[0] * x.shape[1], -1)


def main(tiny: str, out_root: str) -> None:
    meta, params, _, tok, tokens = bundle.read_bundle(tiny)
    cfg = meta["model"]
    P = {k: torch.tensor(v, dtype=torch.float64) for k, v in params.items()}
    cache: dict = {}
    with torch.no_grad():
        model.forward(P, cfg, torch.from_numpy(tokens.astype(np.int64)), cache=cache)
    for i, (name, hook, extra) in enumerate(VARIANTS):
        x = hook_values(cache, hook)
        d_in = x.shape[1]
        g = torch.Generator().manual_seed(10 + i)
        W_dec = torch.randn(D_SAE, d_in, generator=g, dtype=torch.float64)
        W_dec = W_dec / W_dec.norm(dim=1, keepdim=True)
        W_enc = W_dec.T.clone() + 0.3 * torch.randn(d_in, D_SAE, generator=g, dtype=torch.float64)
        b_dec = x.mean(0) + 0.05 * torch.randn(d_in, generator=g, dtype=torch.float64)
        sae_cfg = {"hook_point": hook, "d_in": d_in, "d_sae": D_SAE, "kind": "relu", **extra}
        raw = x @ W_enc if extra.get("apply_b_dec_to_input", True) is False else (x - b_dec) @ W_enc
        q = torch.linspace(0.7, 0.8, D_SAE, dtype=torch.float64)
        b_enc = -torch.stack([torch.quantile(raw[:, j], q[j]) for j in range(D_SAE)])
        sae = {"W_enc": W_enc, "b_enc": b_enc, "W_dec": W_dec, "b_dec": b_dec}
        out = os.path.join(out_root, f"tiny-hook-{name}")
        bundle.write_bundle(
            out, model_cfg=cfg, params=params, sae_cfg=sae_cfg, sae={k: v.float().numpy() for k, v in sae.items()}, tokenizer=tok,
            tokens=tokens, dataset={k: v for k, v in meta["dataset"].items() if k not in ("n_seq", "seq_len")}, dtype="float32",
            sources={"model.safetensors": "test/fixtures/tiny's", "sae.safetensors": f"random SAE on {hook} (tools/make_hook_variants.py, seed {10 + i})",
                     "tokenizer.json": "test/fixtures/tiny's", "tokens.safetensors": "test/fixtures/tiny's"},
            name=f"tiny-2l with an SAE on {hook} (random weights, for tests)",
        )
        print(f"wrote {out}")


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    fixtures = os.path.join(here, "..", "test", "fixtures")
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(fixtures, "tiny"), sys.argv[2] if len(sys.argv) > 2 else fixtures)
