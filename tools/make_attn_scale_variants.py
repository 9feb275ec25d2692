#!/usr/bin/python3
"""Write the tiny bundle's attention-scaling variants (test/fixtures/tiny-attn-*), for models whose attention
scores are divided by other than sqrt(d_head) (bundle.json's model.attn_scales, docs/BUNDLE.md).

Each keeps test/fixtures/tiny's weights (2 layers, LN with weights, gelu_new), tokenizer and tokens, declares
other divisors, and gets a random 32-feature SAE on blocks.1.mlp.hook_post, with biases set on that model's own
hook values so its features fire on ~20–30% of tokens:
  tiny-attn-unscaled   attn_scales [1, 1]                          TransformerLens's use_attn_scale=False (GPT-Neo)
  tiny-attn-by-layer   attn_scales [sqrt(d_head), 2·sqrt(d_head)]  scale_attn_by_inverse_layer_idx=True
Their goldens: /usr/bin/python3 tools/golden.py test/fixtures/tiny-attn-NAME test/fixtures/golden/tiny-attn-NAME --points 4
Usage: /usr/bin/python3 tools/make_attn_scale_variants.py [TINY_DIR [OUT_ROOT]]
"""
from __future__ import annotations

import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from ftlib import bundle, model  # noqa: E402

D_SAE = 32
HOOK = "blocks.1.mlp.hook_post"


def variants(cfg: dict) -> list[tuple[str, list[float], str]]:
    dh = math.sqrt(cfg["d_head"])
    return [("unscaled", [1.0] * cfg["n_layers"], "use_attn_scale=False"),
            ("by-layer", [dh * (l + 1) for l in range(cfg["n_layers"])], "scale_attn_by_inverse_layer_idx=True")]


def threshold_near(values: torch.Tensor, q: float, window: int = 40) -> torch.Tensor:
    """A value near the q-quantile in the widest gap between neighbouring values, so that no token's
    pre-activation sits on the ReLU's edge, where float32 and float64 can disagree about firing."""
    v = torch.sort(values).values
    k = int(q * (len(v) - 1))
    lo, hi = max(1, k - window), min(len(v) - 1, k + window)
    gaps = v[lo:hi + 1] - v[lo - 1:hi]
    i = lo + int(gaps.argmax())
    return (v[i - 1] + v[i]) / 2


def main(tiny: str, out_root: str) -> None:
    meta, params, _, tok, tokens = bundle.read_bundle(tiny)
    P = {k: torch.tensor(v, dtype=torch.float64) for k, v in params.items()}
    for i, (name, scales, what) in enumerate(variants(meta["model"])):
        cfg = {**meta["model"], "attn_scales": scales}
        cache: dict = {}
        with torch.no_grad():
            model.forward(P, cfg, torch.from_numpy(tokens.astype(np.int64)), cache=cache)
        # Not BOS: its value repeats in every row, and a quantile landing on it would leave a feature at exactly
        # 0 there, on the ReLU's edge, where float32 and float64 disagree.
        x = cache[HOOK][:, 1:].reshape(-1, cfg["d_mlp"])
        g = torch.Generator().manual_seed(20 + i)
        W_dec = torch.randn(D_SAE, cfg["d_mlp"], generator=g, dtype=torch.float64)
        W_dec = W_dec / W_dec.norm(dim=1, keepdim=True)
        W_enc = W_dec.T.clone() + 0.3 * torch.randn(cfg["d_mlp"], D_SAE, generator=g, dtype=torch.float64)
        b_dec = x.mean(0) + 0.05 * torch.randn(cfg["d_mlp"], generator=g, dtype=torch.float64)
        raw = (x - b_dec) @ W_enc
        b_enc = -torch.stack([threshold_near(raw[:, j], float(q)) for j, q in enumerate(np.linspace(0.7, 0.8, D_SAE))])
        sae = {"W_enc": W_enc, "b_enc": b_enc, "W_dec": W_dec, "b_dec": b_dec}
        pre = (cache[HOOK] - b_dec) @ W_enc + b_enc
        print(f"{name}: smallest |pre-activation| {float(pre.abs().min()):.2e}, firing {float((pre > 0).double().mean()):.2f}")
        out = os.path.join(out_root, f"tiny-attn-{name}")
        bundle.write_bundle(
            out, model_cfg=cfg, params=params, sae_cfg={"hook_point": HOOK, "d_in": cfg["d_mlp"], "d_sae": D_SAE, "kind": "relu"},
            sae={k: v.float().numpy() for k, v in sae.items()}, tokenizer=tok, tokens=tokens,
            dataset={k: v for k, v in meta["dataset"].items() if k not in ("n_seq", "seq_len")}, dtype="float32",
            sources={"model.safetensors": f"test/fixtures/tiny's, attention scaled as {what}",
                     "sae.safetensors": f"random SAE on {HOOK} (tools/make_attn_scale_variants.py, seed {20 + i})",
                     "tokenizer.json": "test/fixtures/tiny's", "tokens.safetensors": "test/fixtures/tiny's"},
            name=f"tiny-2l with attention scaled as {what} (random weights, for tests)",
        )
        print(f"wrote {out}")


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    fixtures = os.path.join(here, "..", "test", "fixtures")
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(fixtures, "tiny"), sys.argv[2] if len(sys.argv) > 2 else fixtures)
