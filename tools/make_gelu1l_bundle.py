#!/usr/bin/python3
"""A random bundle with gelu-1l's shapes (1 layer, d_model 512, 8 heads of 64, d_mlp 2048, vocab 48262,
n_ctx 1024, LNPre, exact GELU) and an SAE of 16384 features on blocks.0.mlp.hook_post, stored as float32:
481 MB of weights, for measuring memory at a real model's size (test/bench/memory.ts). Deterministic
(seeded); the corpus is random tokens, 256 sequences of 128 by default. The SAE's threshold (b_enc) is set
from the model's own activations so that about 40 features fire per token, as in a trained SAE (a random
encoder with a small bias fires thousands, and its cache would be gigabytes).

Usage: /usr/bin/python3 tools/make_gelu1l_bundle.py [OUT_DIR=.cache/gelu1l] [--n-seq 256]
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ftlib import bpe, bundle, model  # noqa: E402

CFG = {"n_layers": 1, "d_model": 512, "n_heads": 8, "d_head": 64, "d_mlp": 2048, "d_vocab": 48262, "n_ctx": 1024,
       "act_fn": "gelu", "normalization_type": "LNPre", "eps": 1e-5, "positional_embedding_type": "standard"}
D_SAE = 16384
L0 = 40


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", nargs="?", default=os.path.join(".cache", "gelu1l"))
    ap.add_argument("--n-seq", type=int, default=256)
    ap.add_argument("--seq-len", type=int, default=128)
    args = ap.parse_args()
    g = torch.Generator().manual_seed(0)
    p = model.init_params({**CFG, "init_std": 0.1}, seed=3, ln_weights=False)
    vocab = {bpe.EOT: 0}
    for b in range(256):
        vocab[bpe.BYTE_TO_CHAR[b]] = len(vocab)
    while len(vocab) < CFG["d_vocab"]:
        vocab[f"<fake{len(vocab)}>"] = len(vocab)
    tokens = torch.randint(1, CFG["d_vocab"], (args.n_seq, args.seq_len), generator=g).numpy().astype(np.int32)
    tokens[:, 0] = 0
    W_dec = torch.randn(D_SAE, CFG["d_mlp"], generator=g)
    W_dec = W_dec / W_dec.norm(dim=1, keepdim=True)
    W_enc = W_dec.T.clone()
    with torch.no_grad():
        post = model.forward(p, CFG, torch.from_numpy(tokens[:8]).long(), stop_at_layer_mlp=0).reshape(-1, CFG["d_mlp"])
        pre = post @ W_enc
        threshold = torch.quantile(pre.flatten()[::7], 1 - L0 / D_SAE).item()
    sae = {"W_enc": W_enc, "b_enc": torch.full((D_SAE,), -threshold), "W_dec": W_dec, "b_dec": torch.zeros(CFG["d_mlp"])}
    bundle.write_bundle(args.out, model_cfg=CFG, params=p, sae_cfg={"hook_point": "blocks.0.mlp.hook_post", "d_in": CFG["d_mlp"], "d_sae": D_SAE},
                        sae=sae, tokenizer=bpe.tokenizer_json(vocab, []), tokens=tokens,
                        dataset={"name": "random tokens", "prepend_bos": True, "bos_token_id": 0}, dtype="float32",
                        name="gelu-1l shapes (random weights)")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
