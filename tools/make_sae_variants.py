#!/usr/bin/python3
"""Write the tiny bundle's SAE-kind variants (test/fixtures/tiny-jumprelu, test/fixtures/tiny-topk).

Each keeps test/fixtures/tiny's model, tokenizer and tokens and gets a random SAE of another kind on the
same hook (blocks.1.mlp.hook_post, 64 features), made so that its gate matters:
- jumprelu: ReLU(pre)·[pre > threshold]; pre-activations positive on ~30% of tokens and thresholds that
  shut about half of those; feature 1's threshold is negative (its ReLU still gates), feature 63 is dead.
- topk: k = 5, apply_b_dec_to_input false; pre-activations positive on ~40% of tokens, so each token has
  far more than k positive ones and the top-k selection decides.
Usage: /usr/bin/python3 tools/make_sae_variants.py [TINY_DIR [OUT_ROOT]]
"""
from __future__ import annotations

import os
import shutil
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from ftlib import bundle, model  # noqa: E402

D_SAE = 64
K = 5


def main(tiny: str, out_root: str) -> None:
    meta, params, _, tok, tokens = bundle.read_bundle(tiny)
    cfg = meta["model"]
    hook = meta["sae"]["hook_point"]
    P = {k: torch.tensor(v) for k, v in params.items()}
    with torch.no_grad():
        post = model.forward(P, cfg, torch.from_numpy(tokens.astype(np.int64)), stop_at_layer_mlp=1).reshape(-1, cfg["d_mlp"])
    d_in = cfg["d_mlp"]
    for kind, seed in (("jumprelu", 3), ("topk", 4)):
        g = torch.Generator().manual_seed(seed)
        W_dec = torch.randn(D_SAE, d_in, generator=g, dtype=torch.float64)
        W_dec = W_dec / W_dec.norm(dim=1, keepdim=True)
        W_enc = W_dec.T.clone() + 0.3 * torch.randn(d_in, D_SAE, generator=g, dtype=torch.float64)
        b_dec = post.mean(0) + 0.05 * torch.randn(d_in, generator=g, dtype=torch.float64)
        sae_cfg = {"hook_point": hook, "d_in": d_in, "d_sae": D_SAE, "kind": kind}
        if kind == "jumprelu":
            raw = (post - b_dec) @ W_enc
            b_enc = -torch.stack([torch.quantile(raw[:, i], 0.7) for i in range(D_SAE)])
            pre = raw + b_enc
            threshold = torch.stack([torch.quantile(pre[:, i], 0.85) for i in range(D_SAE)])
            threshold[1] = -0.5
            b_enc[D_SAE - 1] -= pre[:, D_SAE - 1].max() + 10.0
            sae = {"W_enc": W_enc, "b_enc": b_enc, "W_dec": W_dec, "b_dec": b_dec, "threshold": threshold}
        else:
            sae_cfg.update(k=K, apply_b_dec_to_input=False)
            raw = post @ W_enc
            b_enc = -torch.stack([torch.quantile(raw[:, i], 0.6) for i in range(D_SAE)])
            sae = {"W_enc": W_enc, "b_enc": b_enc, "W_dec": W_dec, "b_dec": b_dec}
        out = os.path.join(out_root, f"tiny-{kind}")
        bundle.write_bundle(
            out, model_cfg=cfg, params=params, sae_cfg=sae_cfg, sae=sae, tokenizer=tok, tokens=tokens,
            dataset={k: v for k, v in meta["dataset"].items() if k not in ("n_seq", "seq_len")},
            dtype="float32",
            sources={"model.safetensors": "test/fixtures/tiny's", "sae.safetensors": f"random {kind} SAE (tools/make_sae_variants.py, seed {seed})",
                     "tokenizer.json": "test/fixtures/tiny's", "tokens.safetensors": "test/fixtures/tiny's"},
            name=f"tiny-2l with a {kind} SAE (random weights, for tests)",
        )
        print(f"wrote {out}")


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    fixtures = os.path.join(here, "..", "test", "fixtures")
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(fixtures, "tiny"), sys.argv[2] if len(sys.argv) > 2 else fixtures)
