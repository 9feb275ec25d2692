#!/usr/bin/python3
"""A random bundle with the demo's shapes (1 layer, d_model 256, 8 heads, d_mlp 1024, vocab 8192, n_ctx 128,
8192 features, LNPre, exact GELU, fp16), for timing traces while the real demo trains.

Usage: /usr/bin/python3 tools/make_fake_demo.py [OUT_DIR=.cache/fakedemo] [--n-seq 256]
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tools"))
from ftlib import bpe, bundle, model  # noqa: E402

CFG = {"n_layers": 1, "d_model": 256, "n_heads": 8, "d_head": 32, "d_mlp": 1024, "d_vocab": 8192, "n_ctx": 128,
       "act_fn": "gelu", "normalization_type": "LNPre", "eps": 1e-5, "positional_embedding_type": "standard"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", nargs="?", default=os.path.join(".cache", "fakedemo"))
    ap.add_argument("--n-seq", type=int, default=256)
    args = ap.parse_args()
    g = torch.Generator().manual_seed(0)
    p = model.init_params({**CFG, "init_std": 0.1}, seed=3, ln_weights=False)
    vocab = {bpe.EOT: 0}
    for b in range(256):
        vocab[bpe.BYTE_TO_CHAR[b]] = len(vocab)
    while len(vocab) < CFG["d_vocab"]:
        vocab[f"<fake{len(vocab)}>"] = len(vocab)
    tokens = torch.randint(1, CFG["d_vocab"], (args.n_seq, CFG["n_ctx"]), generator=g).numpy().astype(np.int32)
    tokens[:, 0] = 0
    d_sae = 8192
    W_dec = torch.randn(d_sae, CFG["d_mlp"], generator=g)
    W_dec = W_dec / W_dec.norm(dim=1, keepdim=True)
    sae = {"W_enc": W_dec.T.clone(), "b_enc": torch.full((d_sae,), -0.05), "W_dec": W_dec, "b_dec": torch.zeros(CFG["d_mlp"])}
    bundle.write_bundle(args.out, model_cfg=CFG, params=p, sae_cfg={"hook_point": "blocks.0.mlp.hook_post", "d_in": CFG["d_mlp"], "d_sae": d_sae},
                        sae=sae, tokenizer=bpe.tokenizer_json(vocab, []), tokens=tokens,
                        dataset={"name": "random tokens", "prepend_bos": True, "bos_token_id": 0}, dtype="float16",
                        name="fake demo (random weights, demo shapes)")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
