#!/usr/bin/python3
"""Write the tiny random bundle used by fast unit tests (test/fixtures/tiny).

2 layers, d_model 32, 4 heads, vocab 300, n_ctx 32, unfolded LayerNorm (LN with weights) and gelu_new, so
that the tests cover the code paths the demo bundle (1 layer, LNPre, exact GELU) does not. The SAE (64
features) sits on blocks.1.mlp.hook_post; its biases are set so features fire on roughly 10–20% of tokens,
and feature 63 never fires (a dead feature).
Usage: /usr/bin/python3 tools/make_tiny_bundle.py [OUT_DIR]
"""
from __future__ import annotations

import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from ftlib import bpe, bundle, model  # noqa: E402

CFG = {
    "n_layers": 2,
    "d_model": 32,
    "n_heads": 4,
    "d_head": 8,
    "d_mlp": 128,
    "d_vocab": 300,
    "n_ctx": 32,
    "act_fn": "gelu_new",
    "normalization_type": "LN",
    "eps": 1e-5,
    "positional_embedding_type": "standard",
}
HOOK = "blocks.1.mlp.hook_post"
D_SAE = 64
N_SEQ = 24

TEXT = """def tokenize(text):
    \"\"\"Split text into words and count them.\"\"\"
    counts = {}
    for word in text.split():
        counts[word] = counts.get(word, 0) + 1
    return counts

class Feature:
    def __init__(self, index, label=None):
        self.index = index
        self.label = label or f"feature {index}"

    def __repr__(self):
        return f"Feature({self.index!r}, {self.label!r})"

The sparse autoencoder reads the MLP's output and writes a few features per token.
Each feature is a direction; its activation is ReLU((x - b_dec) W_enc + b_enc).
Naïve café — ünïcödé and tabs\tand
newlines are all bytes to a byte-level tokenizer: 1234 + 5678 = 6912.
"""


def main(out_dir: str) -> None:
    torch.manual_seed(0)
    vocab, merges = bpe.train([TEXT], CFG["d_vocab"])
    tok_json = bpe.tokenizer_json(vocab, merges)
    enc = bpe.Encoder(vocab, merges)
    ids = enc.encode(TEXT * 8)
    body = CFG["n_ctx"] - 1
    tokens = np.array([[0] + ids[i * body : (i + 1) * body] for i in range(N_SEQ)], dtype=np.int32)

    p = model.init_params({**CFG, "init_std": 0.35}, seed=1)
    g = torch.Generator().manual_seed(2)
    for l in range(CFG["n_layers"]):
        for name in ("ln1", "ln2"):
            p[f"blocks.{l}.{name}.w"] = 1 + 0.2 * torch.randn(CFG["d_model"], generator=g)
            p[f"blocks.{l}.{name}.b"] = 0.1 * torch.randn(CFG["d_model"], generator=g)
        for name in ("attn.b_Q", "attn.b_K", "attn.b_V"):
            p[f"blocks.{l}.{name}"] = 0.1 * torch.randn(CFG["n_heads"], CFG["d_head"], generator=g)
        for name, n in (("attn.b_O", CFG["d_model"]), ("mlp.b_in", CFG["d_mlp"]), ("mlp.b_out", CFG["d_model"])):
            p[f"blocks.{l}.{name}"] = 0.1 * torch.randn(n, generator=g)
    p["ln_final.w"] = 1 + 0.2 * torch.randn(CFG["d_model"], generator=g)
    p["ln_final.b"] = 0.1 * torch.randn(CFG["d_model"], generator=g)
    p["unembed.b_U"] = 0.1 * torch.randn(CFG["d_vocab"], generator=g)
    p = {k: v.float() for k, v in p.items()}

    with torch.no_grad():
        post = model.forward(p, CFG, torch.from_numpy(tokens).long(), stop_at_layer_mlp=1).reshape(-1, CFG["d_mlp"])
    W_dec = torch.randn(D_SAE, CFG["d_mlp"], generator=g)
    W_dec = W_dec / W_dec.norm(dim=1, keepdim=True)
    W_enc = W_dec.T.clone() + 0.3 * torch.randn(CFG["d_mlp"], D_SAE, generator=g)
    b_dec = post.mean(0)
    pre = (post - b_dec) @ W_enc
    q = torch.linspace(0.8, 0.9, D_SAE)
    b_enc = -torch.stack([torch.quantile(pre[:, i], q[i]) for i in range(D_SAE)])
    b_enc[D_SAE - 1] = -(pre[:, D_SAE - 1].max() + 10.0)  # a dead feature
    sae = {"W_enc": W_enc, "b_enc": b_enc, "W_dec": W_dec, "b_dec": b_dec}

    meta = bundle.write_bundle(
        out_dir,
        model_cfg=CFG,
        params=p,
        sae_cfg={"hook_point": HOOK, "d_in": CFG["d_mlp"], "d_sae": D_SAE},
        sae=sae,
        tokenizer=tok_json,
        tokens=tokens,
        dataset={"name": "tiny: a repeated snippet", "prepend_bos": True, "bos_token_id": 0},
        dtype="float32",
        sources={"model.safetensors": "random (tools/make_tiny_bundle.py, seed 1)",
                 "sae.safetensors": "random (tools/make_tiny_bundle.py, seed 2)",
                 "tokenizer.json": "BPE trained on the snippet in tools/make_tiny_bundle.py",
                 "tokens.safetensors": "the snippet ×8, tokenized"},
        name="tiny-2l (random weights, for tests)",
    )
    print(f"wrote {out_dir}: {meta['dataset']['n_seq']}×{meta['dataset']['seq_len']} tokens")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "test", "fixtures", "tiny"))
