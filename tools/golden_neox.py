#!/usr/bin/python3
"""PyTorch goldens of a GPT-NeoX-style bundle (rotary positions, parallel attention and MLP), for the engine's
graphs (test/fixtures/golden/tiny-neox, checked by test/unit/neox.test.ts).

Independent of the app's code and of tools/ftlib/model.py: tools/ftlib/neox.py's float64 forward pass, written
from the definitions TransformerLens uses for GPT-NeoX/Pythia (positional_embedding_type "rotary" with
rotary_adjacent_pairs False, parallel_attn_mlp True):
- no learned positions: resid_pre of block 0 is W_E[token];
- rotary: for i < R/2 (R = rotary_dim) each head's query and key pair (x_i, x_{i+R/2}) is rotated by the angle
  p·θ_i, θ_i = rotary_base^(−i/(R/2)), p the position: x_i' = x_i cos − x_{i+R/2} sin, x_{i+R/2}' = x_{i+R/2} cos +
  x_i sin; dims R… of each head pass through; values are not rotated;
- scores q'·k' / attn_scale (sqrt(d_head) unless bundle.json's attn_scales), causal softmax;
- parallel block: attn_out = Attn(LN1(resid_pre)), mlp_out = MLP(LN2(resid_pre)), resid_post = resid_pre +
  attn_out + mlp_out; there is no resid_mid.
Stores, for a few corpus sequences, every hook of every layer, the logits and the SAE's pre-activations and
activations on its hook.
Usage: /usr/bin/python3 tools/golden_neox.py BUNDLE_DIR OUT_DIR [--samples N]
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from ftlib import bundle, safetensors_io  # noqa: E402
from ftlib.neox import neox_forward  # noqa: E402


def sae_acts(meta: dict, S: dict, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(pre-activations, activations) of a relu SAE on hook values x."""
    assert meta["sae"]["kind"] == "relu"
    pre = (x - S["b_dec"]) @ S["W_enc"] + S["b_enc"]
    return pre, torch.relu(pre)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("bundle")
    ap.add_argument("out")
    ap.add_argument("--samples", type=int, default=4)
    args = ap.parse_args()
    meta, params, sae, _, tokens = bundle.read_bundle(args.bundle)
    cfg = meta["model"]
    P = {k: torch.from_numpy(v) for k, v in params.items()}
    S = {k: torch.from_numpy(v) for k, v in sae.items()}
    samples = [int(s) for s in np.linspace(0, tokens.shape[0] - 1, args.samples).round()]
    toks = torch.from_numpy(tokens[samples].astype(np.int64))
    cache = neox_forward(P, cfg, toks)
    pre, acts = sae_acts(meta, S, cache[meta["sae"]["hook_point"]])
    arrays = {name: value.numpy() for name, value in cache.items()}
    arrays["sae.pre"] = pre.numpy()
    arrays["sae.acts"] = acts.numpy()
    os.makedirs(args.out, exist_ok=True)
    safetensors_io.save(os.path.join(args.out, "golden.safetensors"), {k: np.asarray(a, dtype=np.float32) for k, a in arrays.items()})
    with open(os.path.join(args.out, "golden.json"), "w") as fh:
        json.dump({"bundle": os.path.basename(os.path.normpath(args.bundle)), "hook_point": meta["sae"]["hook_point"], "samples": samples,
                   "note": "float64 torch (this file's own GPT-NeoX forward pass) on the bundle's weights; arrays stored as float32, "
                           "each [samples, ...]"}, fh, indent=1)
    print(f"wrote {len(arrays)} arrays for samples {samples} to {args.out}")


if __name__ == "__main__":
    main()
