#!/usr/bin/python3
"""Write tiny random GPT-NeoX-style bundles (test/fixtures/tiny-neox, tiny-neox-resid-post): rotary positions,
parallel attention and MLP, LayerNorm with weights and biases, untied unembedding, no W_pos, as TransformerLens
loads Pythia.

test/fixtures/tiny's sizes (2 layers, d_model 32, 4 heads of 8, d_mlp 128), tokenizer and tokens; rotary_dim 4
(half of each head's dims rotated, the rest passing through; Pythia rotates a quarter), rotary_base 10000,
gelu (Pythia's). The same model in both, with a random SAE whose biases are set on the model's own hook values
so its features fire on ~20–30% of tokens, away from the ReLU's edge:
  tiny-neox              blocks.1.mlp.hook_post   32 features (its MLP reads resid_pre 1)
  tiny-neox-resid-post   blocks.1.hook_resid_post 16 features
Goldens: /usr/bin/python3 tools/golden_neox.py test/fixtures/tiny-neox test/fixtures/golden/tiny-neox (the
engine's hooks) and /usr/bin/python3 tools/golden_hooks.py test/fixtures/tiny-neox[-resid-post]
test/fixtures/golden/trace-tiny-neox[-resid-post] --qk (traces).
Usage: /usr/bin/python3 tools/make_neox_bundle.py [TINY_DIR [OUT_ROOT]]
"""
from __future__ import annotations

import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from ftlib import bundle  # noqa: E402
from ftlib.neox import neox_forward  # noqa: E402
from make_attn_scale_variants import threshold_near  # noqa: E402

VARIANTS = [("tiny-neox", "blocks.1.mlp.hook_post", 32, 30), ("tiny-neox-resid-post", "blocks.1.hook_resid_post", 16, 31)]


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


def main(tiny: str, out_root: str) -> None:
    meta, _, _, tok, tokens = bundle.read_bundle(tiny)
    cfg = {k: meta["model"][k] for k in bundle.MODEL_KEYS}
    cfg.update({"positional_embedding_type": "rotary", "rotary_dim": 4, "rotary_base": 10000.0, "parallel_attn_mlp": True, "act_fn": "gelu",
                "processing": dict(bundle.NO_PROCESSING)})
    P = neox_params(cfg)
    with torch.no_grad():
        cache = neox_forward(P, cfg, torch.from_numpy(tokens.astype(np.int64)))
    for name, hook, d_sae, seed in VARIANTS:
        write_variant(os.path.join(out_root, name), cfg, P, cache[hook], hook, d_sae, seed, meta, tok, tokens)


def write_variant(out: str, cfg: dict, P: dict, x: torch.Tensor, hook: str, d_sae: int, seed: int, meta: dict, tok: dict, tokens) -> None:
    d_in = x.shape[-1]
    rows = x[:, 1:].reshape(-1, d_in)  # not BOS: its value repeats in every row
    g = torch.Generator().manual_seed(seed)
    W_dec = torch.randn(d_sae, d_in, generator=g, dtype=torch.float64)
    W_dec = W_dec / W_dec.norm(dim=1, keepdim=True)
    W_enc = W_dec.T.clone() + 0.3 * torch.randn(d_in, d_sae, generator=g, dtype=torch.float64)
    b_dec = rows.mean(0) + 0.05 * torch.randn(d_in, generator=g, dtype=torch.float64)
    raw = (rows - b_dec) @ W_enc
    b_enc = -torch.stack([threshold_near(raw[:, j], float(q)) for j, q in enumerate(np.linspace(0.7, 0.8, d_sae))])
    pre = (x - b_dec) @ W_enc + b_enc
    print(f"smallest |pre-activation| {float(pre.abs().min()):.2e}, firing {float((pre > 0).double().mean()):.2f}")
    sae = {"W_enc": W_enc, "b_enc": b_enc, "W_dec": W_dec, "b_dec": b_dec}
    bundle.write_bundle(
        out, model_cfg=cfg, params={k: v.numpy() for k, v in P.items()},
        sae_cfg={"hook_point": hook, "d_in": d_in, "d_sae": d_sae, "kind": "relu"}, sae={k: v.float().numpy() for k, v in sae.items()},
        tokenizer=tok, tokens=tokens, dataset={k: v for k, v in meta["dataset"].items() if k not in ("n_seq", "seq_len")}, dtype="float32",
        sources={"model.safetensors": "random GPT-NeoX-style weights (tools/make_neox_bundle.py, seed 0)",
                 "sae.safetensors": f"random SAE on {hook} (tools/make_neox_bundle.py, seed {seed})",
                 "tokenizer.json": "test/fixtures/tiny's", "tokens.safetensors": "test/fixtures/tiny's"},
        name=f"{os.path.basename(out)}: 2 layers, rotary, parallel attention and MLP (random weights, for tests)",
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    fixtures = os.path.join(here, "..", "test", "fixtures")
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(fixtures, "tiny"), sys.argv[2] if len(sys.argv) > 2 else fixtures)
