#!/usr/bin/python3
"""Assemble the embedded demo bundle (resources/demo) and measure its quality figures.

Folds and centres the trained model as HookedTransformer.from_pretrained does (LNPre), writes fp16
weights, the held-out corpus as tokens.safetensors, then measures on the written (fp16) bundle:
held-out loss; the SAE's mean L0, dead fraction (never firing on the whole held-out corpus), fraction of
variance unexplained and CE loss recovered (reconstruction spliced into hook_post, against zero
ablation). The figures go into bundle.json's "quality".

Usage: /usr/bin/python3 tools/demo/make_bundle.py WORK_DIR [OUT_DIR]
"""
from __future__ import annotations

import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from demo.train_model import encode_split, load_final_model, sequences  # noqa: E402
from ftlib import bundle, model  # noqa: E402

N_SEQ = 8192
HOOK = "blocks.0.mlp.hook_post"


def ce(logits: torch.Tensor, toks: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), toks[:, 1:].reshape(-1), reduction="sum")


@torch.no_grad()
def measure(path: str, n_eval: int = 512) -> dict:
    meta, params, sae, _, tokens = bundle.read_bundle(path)
    cfg = meta["model"]
    P = {k: torch.tensor(v, dtype=torch.float32) for k, v in params.items()}
    S = {k: torch.tensor(v, dtype=torch.float32) for k, v in sae.items()}
    toks_all = torch.from_numpy(tokens.astype(np.int64))
    clean = zero = spliced = 0.0
    n_pred = 0
    l0_sum, err_sum, n_tok = 0.0, 0.0, 0
    sq_sum, x_sum = 0.0, torch.zeros(cfg["d_mlp"], dtype=torch.float64)
    fired = torch.zeros(meta["sae"]["d_sae"], dtype=torch.bool)

    def encode(x):
        return torch.relu((x - S["b_dec"]) @ S["W_enc"] + S["b_enc"])

    for i in range(0, len(toks_all), 64):
        toks = toks_all[i : i + 64]
        post = model.forward(P, cfg, toks, stop_at_layer_mlp=0)
        acts = encode(post)
        fired |= (acts > 0).flatten(0, 1).any(0)
        if i >= n_eval:
            continue
        recon = acts @ S["W_dec"] + S["b_dec"]
        x = post.flatten(0, 1).double()
        l0_sum += float((acts > 0).sum())
        err_sum += float(((recon.flatten(0, 1).double() - x) ** 2).sum())
        sq_sum += float((x**2).sum())
        x_sum += x.sum(0)
        n_tok += x.shape[0]

        def run_with(post_value):
            # Splice a replacement for hook_post: rerun the MLP's output and the unembed by hand.
            cache: dict = {}
            model.forward(P, cfg, toks, cache=cache)
            resid = cache["blocks.0.hook_resid_mid"] + post_value @ P["blocks.0.mlp.W_out"] + P["blocks.0.mlp.b_out"]
            return model.layer_norm(resid, None, None, cfg["eps"]) @ P["unembed.W_U"] + P["unembed.b_U"]

        clean += float(ce(model.forward(P, cfg, toks), toks))
        zero += float(ce(run_with(torch.zeros_like(post)), toks))
        spliced += float(ce(run_with(recon), toks))
        n_pred += toks[:, 1:].numel()
    total_var = sq_sum - float((x_sum**2).sum()) / n_tok
    return {
        "heldout_loss": round(clean / n_pred, 4),
        "zero_ablation_loss": round(zero / n_pred, 4),
        "spliced_loss": round(spliced / n_pred, 4),
        "sae_l0": round(l0_sum / n_tok, 2),
        "sae_dead_fraction": round(1 - float(fired.float().mean()), 4),
        "sae_fvu": round(err_sum / total_var, 4),
        "sae_ce_recovered": round((zero - spliced) / (zero - clean), 4),
        "eval_tokens": n_tok,
        "dead_scan_tokens": int(toks_all.numel()),
    }


def main(work: str, out: str) -> None:
    torch.set_num_threads(2)
    mk = load_final_model(work)
    sk = torch.load(os.path.join(work, "sae_final.pt"))
    cfg = dict(mk["cfg"])
    folded = model.fold_and_center({k: v.double() for k, v in mk["params"].items()}, cfg)
    cfg.update({"normalization_type": "LNPre", "processing": {"fold_ln": True, "center_writing_weights": True,
                                                              "center_unembed": True, "fold_value_biases": True}})
    held = sequences(encode_split(work, "heldout"), cfg["n_ctx"])[:N_SEQ]
    if len(held) < N_SEQ:
        sys.exit(f"only {len(held)} held-out sequences; need {N_SEQ}")
    with open(os.path.join(work, "tokenizer.json"), encoding="utf-8") as f:
        tok = json.load(f)
    sources = {
        "model.safetensors": f"tools/demo/train_model.py: {mk['train_tokens'] / 1e6:.1f}M tokens of the training split, folded and centred",
        "sae.safetensors": f"tools/demo/train_sae.py: {sk['train_tokens'] / 1e6:.1f}M activations, final L1 coefficient {sk['l1_coeff']:.3g}"
                           + (f", decoder refit {sk['refit_steps']} steps" if sk.get("refit_steps") else ""),
        "tokenizer.json": "tools/demo/train_tokenizer.py: byte-level BPE, vocab 8192, on the training split",
        "tokens.safetensors": "tools/demo/build_corpus.py held-out split (22% of documents), first 8192 × 128 (BOS + 127)",
    }
    dataset = {"name": "Python 3.11 stdlib + docs sources (PSF licence), held-out split", "prepend_bos": True,
               "bos_token_id": 0, "train_tokens": int(mk["train_tokens"])}
    sae_cfg = {"hook_point": HOOK, "d_in": cfg["d_mlp"], "d_sae": sk["d_sae"]}
    args = dict(model_cfg=cfg, params=folded, sae_cfg=sae_cfg, sae=sk["sae"], tokenizer=tok, tokens=held,
                dataset=dataset, dtype="float16", sources=sources, name="demo-1l: gelu-1l architecture, small, on Python sources")
    bundle.write_bundle(out, **args)
    quality = measure(out)
    bundle.write_bundle(out, **args, quality=quality)
    print(json.dumps(quality, indent=1))


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else os.path.join(here, "..", "..", "resources", "demo"))
