#!/usr/bin/python3
"""Random bundles at real models' sizes, for measuring memory and speed (test/bench/memory.ts, shapes.ts).
Deterministic (seeded), written under .cache/ and never committed. Weights are random, so the features mean
nothing; the corpus is random tokens, 256 sequences of 128 by default.

--shape gelu1l (default; .cache/gelu1l): gelu-1l's shapes (1 layer, d_model 512, 8 heads of 64, d_mlp 2048,
  vocab 48262, n_ctx 1024, LNPre, exact GELU) and a ReLU SAE of 16,384 features on blocks.0.mlp.hook_post:
  481 MB of weights in float32.
--shape gpt2small (.cache/gpt2small): GPT-2 small's (12 layers, d_model 768, 12 heads of 64, d_mlp 3072,
  vocab 50257, n_ctx 1024, LN with weights, gelu_new) and a JumpReLU SAE of 24,576 features on
  blocks.8.hook_resid_pre: 801 MB of weights in float32.

Either SAE's cut-off is set from the model's own activations so that about 40 features fire per token, as
in a trained SAE (a random encoder with a small bias fires thousands, and its cache would be gigabytes):
the ReLU SAE's as -b_enc, the JumpReLU SAE's as its threshold (b_enc 0).

Usage: /usr/bin/python3 tools/make_shaped_bundle.py [OUT_DIR] [--shape gelu1l|gpt2small] [--n-seq 256] [--seq-len 128]
"""
from __future__ import annotations

import argparse
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ftlib import bpe, bundle, model  # noqa: E402

SHAPES = {
    "gelu1l": {
        "cfg": {"n_layers": 1, "d_model": 512, "n_heads": 8, "d_head": 64, "d_mlp": 2048, "d_vocab": 48262, "n_ctx": 1024,
                "act_fn": "gelu", "normalization_type": "LNPre", "eps": 1e-5, "positional_embedding_type": "standard"},
        # A wider init than GPT-2's: with no LN weights the one layer's activations are then of a trained model's size.
        "init_std": 0.1, "ln_weights": False,
        "sae": {"hook_point": "blocks.0.mlp.hook_post", "d_sae": 16384, "kind": "relu"},
        "name": "gelu-1l shapes (random weights)",
    },
    "gpt2small": {
        "cfg": {"n_layers": 12, "d_model": 768, "n_heads": 12, "d_head": 64, "d_mlp": 3072, "d_vocab": 50257, "n_ctx": 1024,
                "act_fn": "gelu_new", "normalization_type": "LN", "eps": 1e-5, "positional_embedding_type": "standard"},
        # GPT-2's own init (std 0.02, writing weights scaled by 1/sqrt(2·n_layers)); LN keeps every layer's input at unit scale.
        "init_std": 0.02, "ln_weights": True,
        "sae": {"hook_point": "blocks.8.hook_resid_pre", "d_sae": 24576, "kind": "jumprelu"},
        "name": "GPT-2 small shapes (random weights)",
    },
}
L0 = 40


def hook_values(p: dict, cfg: dict, hook_point: str, tokens: torch.Tensor) -> torch.Tensor:
    layer, hook = bundle.parse_hook_point(hook_point)
    if hook == "mlp.hook_post":
        return model.forward(p, cfg, tokens, stop_at_layer_mlp=layer)
    if hook == "hook_resid_pre":
        return model.forward(p, cfg, tokens, stop_at_resid_pre=layer)
    raise ValueError(f"no shape here has an SAE on {hook_point}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", nargs="?")
    ap.add_argument("--shape", choices=sorted(SHAPES), default="gelu1l")
    ap.add_argument("--n-seq", type=int, default=256)
    ap.add_argument("--seq-len", type=int, default=128)
    args = ap.parse_args()
    shape = SHAPES[args.shape]
    cfg = shape["cfg"]
    out = args.out or os.path.join(".cache", args.shape)
    g = torch.Generator().manual_seed(0)
    p = model.init_params({**cfg, "init_std": shape["init_std"]}, seed=3, ln_weights=shape["ln_weights"])
    vocab = {bpe.EOT: 0}
    for b in range(256):
        vocab[bpe.BYTE_TO_CHAR[b]] = len(vocab)
    while len(vocab) < cfg["d_vocab"]:
        vocab[f"<fake{len(vocab)}>"] = len(vocab)
    tokens = torch.randint(1, cfg["d_vocab"], (args.n_seq, args.seq_len), generator=g).numpy().astype(np.int32)
    tokens[:, 0] = 0
    sae_spec = shape["sae"]
    d_in = bundle.hook_width(cfg, sae_spec["hook_point"])
    d_sae = sae_spec["d_sae"]
    W_dec = torch.randn(d_sae, d_in, generator=g)
    W_dec = W_dec / W_dec.norm(dim=1, keepdim=True)
    W_enc = W_dec.T.clone()
    with torch.no_grad():
        acts = hook_values(p, cfg, sae_spec["hook_point"], torch.from_numpy(tokens[:8]).long()).reshape(-1, d_in)
        pre = acts @ W_enc
        cut = torch.quantile(pre.flatten()[::7], 1 - L0 / d_sae).item()
        norms = acts.norm(dim=-1)
    if not math.isfinite(cut) or not torch.isfinite(norms).all():
        raise SystemExit(f"{sae_spec['hook_point']} is not finite on the random weights")
    print(f"{sae_spec['hook_point']}: norm per token {norms.median():.3f} (median), the SAE's cut-off {cut:.4f}")
    sae = {"W_enc": W_enc, "W_dec": W_dec, "b_dec": torch.zeros(d_in)}
    if sae_spec["kind"] == "jumprelu":
        sae |= {"b_enc": torch.zeros(d_sae), "threshold": torch.full((d_sae,), cut)}
    else:
        sae |= {"b_enc": torch.full((d_sae,), -cut)}
    bundle.write_bundle(out, model_cfg=cfg, params=p, sae_cfg={**sae_spec, "d_in": d_in},
                        sae=sae, tokenizer=bpe.tokenizer_json(vocab, []), tokens=tokens,
                        dataset={"name": "random tokens", "prepend_bos": True, "bos_token_id": 0}, dtype="float32",
                        name=shape["name"])
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
