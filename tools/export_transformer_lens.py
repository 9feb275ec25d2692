#!/usr/bin/python3
"""Export a TransformerLens model + an SAE + a Hugging Face dataset into a Feature Tracer bundle.

The reference case (gelu-1l with Neel Nanda's run1 SAE, 16384 features, over c4-code-20k):

    python3 tools/export_transformer_lens.py --model gelu-1l --sae neel:25 \\
        --dataset NeelNanda/c4-code-20k --n-seq 8192 --seq-len 128 --out bundles/gelu-1l

It needs transformer_lens, datasets and huggingface_hub (pip) and network access, which our machines
lack; the core — `export_bundle`, from a state dict in TransformerLens names and a config — needs only
torch and numpy and is what tools/tests/test_export.py checks.

SAE sources:
  neel:RUN             NeelNanda/sparse_autoencoder RUN.pt + RUN_cfg.json (run1 is 25, run2 is 47)
  saelens:DIR          a SAELens folder with sae_weights.safetensors + cfg.json
  FILE.pt [--sae-cfg]  a Neel-style AutoEncoder state dict (W_enc [d_in, d_sae], b_enc, W_dec, b_dec)
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ftlib import bundle, safetensors_io  # noqa: E402
from ftlib.bundle import BundleError  # noqa: E402

# What HookedTransformer.from_pretrained does to the weights by default.
FROM_PRETRAINED_PROCESSING = {"fold_ln": True, "center_writing_weights": True, "center_unembed": True, "fold_value_biases": True}


def config_from_transformer_lens(cfg: dict, processing: dict | None = None) -> dict:
    """Our model config from a HookedTransformerConfig.to_dict() (or any dict with its names)."""
    missing = [k for k in ("n_layers", "d_model", "n_heads", "d_head", "d_mlp", "d_vocab", "n_ctx", "act_fn") if cfg.get(k) is None]
    if missing:
        raise BundleError(f"the model config lacks {', '.join(missing)}")
    norm = cfg.get("normalization_type") or "LN"
    if norm not in ("LN", "LNPre"):
        raise BundleError(f"normalization_type {norm!r} is not supported (LN or LNPre)")
    if cfg.get("positional_embedding_type", "standard") != "standard":
        raise BundleError(f"positional_embedding_type {cfg['positional_embedding_type']!r} is not supported (standard only)")
    if cfg.get("attn_only"):
        raise BundleError("attention-only models have no MLP hook_post for an SAE")
    if cfg["act_fn"] not in ("gelu", "gelu_new", "gelu_fast", "relu"):
        raise BundleError(f"act_fn {cfg['act_fn']!r} is not supported (gelu, gelu_new, relu)")
    out = {k: cfg[k] for k in ("n_layers", "d_model", "n_heads", "d_head", "d_mlp", "d_vocab", "n_ctx", "act_fn")}
    out.update({"normalization_type": norm, "eps": float(cfg.get("eps", 1e-5)), "positional_embedding_type": "standard",
                "processing": processing or {k: False for k in FROM_PRETRAINED_PROCESSING}})
    if out["act_fn"] == "gelu_fast":
        out["act_fn"] = "gelu_new"  # the same tanh approximation up to rounding
    return out


def sae_from_state_dict(sd: dict, hook_point: str) -> tuple[dict, dict]:
    sd = {k: _np(v) for k, v in sd.items()}
    for k in ("W_enc", "b_enc", "W_dec", "b_dec"):
        if k not in sd:
            raise BundleError(f"the SAE state dict lacks {k} (has {', '.join(sorted(sd))})")
    d_in, d_sae = sd["W_enc"].shape
    return {"hook_point": hook_point, "d_in": int(d_in), "d_sae": int(d_sae)}, {k: sd[k] for k in ("W_enc", "b_enc", "W_dec", "b_dec")}


def sae_from_saelens(folder: str) -> tuple[dict, dict]:
    with open(os.path.join(folder, "cfg.json")) as f:
        cfg = json.load(f)
    sd = safetensors_io.load(os.path.join(folder, "sae_weights.safetensors"))
    if cfg.get("architecture", "standard") != "standard" or cfg.get("activation_fn_str", "relu") != "relu":
        raise BundleError(f"only standard ReLU SAEs are supported, this one is {cfg.get('architecture')}/{cfg.get('activation_fn_str')}")
    if cfg.get("normalize_activations", "none") not in (None, "none"):
        raise BundleError(f"SAE normalize_activations={cfg['normalize_activations']!r} is not supported: export it with 'none'")
    sae_cfg, sae = sae_from_state_dict(sd, cfg["hook_name"])
    if not cfg.get("apply_b_dec_to_input", True):
        # ReLU(x·W_enc + b_enc) = ReLU((x − b_dec)·W_enc + (b_enc + b_dec·W_enc))
        sae["b_enc"] = sae["b_enc"] + sae["b_dec"] @ sae["W_enc"]
    return sae_cfg, sae


def _np(v) -> np.ndarray:
    if hasattr(v, "detach"):
        v = v.detach().cpu().float().numpy()
    return np.asarray(v)


def export_bundle(out_dir: str, *, state_dict: dict, tl_cfg: dict, sae_cfg: dict, sae: dict, tokenizer: dict,
                  tokens: np.ndarray, dataset: dict, processing: dict | None = None, dtype: str = "float32",
                  sources: dict | None = None, name: str = "") -> dict:
    """The exporter's core: TransformerLens state dict + config + SAE + tokenizer + tokens → bundle folder.

    Every shape is checked first; a mismatch raises BundleError naming the tensor, and nothing is written.
    """
    model_cfg = config_from_transformer_lens(tl_cfg, processing)
    expected = bundle.expected_model_shapes(model_cfg)
    params = {k: _np(state_dict[k]) for k in expected if k in state_dict}
    return bundle.write_bundle(out_dir, model_cfg=model_cfg, params=params, sae_cfg=sae_cfg, sae=sae, tokenizer=tokenizer,
                               tokens=tokens, dataset=dataset, dtype=dtype, sources=sources, name=name)


def main() -> None:  # pragma: no cover - needs the network and TransformerLens
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="gelu-1l")
    ap.add_argument("--sae", default="neel:25")
    ap.add_argument("--hook-point", default="blocks.0.mlp.hook_post")
    ap.add_argument("--dataset", default="NeelNanda/c4-code-20k")
    ap.add_argument("--n-seq", type=int, default=8192)
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--dtype", default="float32", choices=["float32", "float16"])
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    import torch
    from datasets import load_dataset
    from transformer_lens import HookedTransformer, utils

    model = HookedTransformer.from_pretrained(args.model, device="cpu")  # folds and centres, as the seed's load_all
    if args.sae.startswith("neel:"):
        from huggingface_hub import hf_hub_download

        run = args.sae.split(":", 1)[1]
        sd = torch.load(hf_hub_download("NeelNanda/sparse_autoencoder", f"{run}.pt"), map_location="cpu")
        sae_cfg, sae = sae_from_state_dict(sd, args.hook_point)
        sae_source = f"huggingface NeelNanda/sparse_autoencoder {run}.pt"
    elif args.sae.startswith("saelens:"):
        sae_cfg, sae = sae_from_saelens(args.sae.split(":", 1)[1])
        sae_source = args.sae
    else:
        sae_cfg, sae = sae_from_state_dict(torch.load(args.sae, map_location="cpu"), args.hook_point)
        sae_source = args.sae
    data = load_dataset(args.dataset, split="train")
    tokens = utils.tokenize_and_concatenate(data, model.tokenizer, max_length=args.seq_len)["tokens"][: args.n_seq]
    tokenizer = json.loads(model.tokenizer.backend_tokenizer.to_str())
    meta = export_bundle(
        args.out, state_dict=model.state_dict(), tl_cfg=model.cfg.to_dict(), sae_cfg=sae_cfg, sae=sae,
        tokenizer=tokenizer, tokens=tokens.numpy().astype(np.int32),
        dataset={"name": args.dataset, "prepend_bos": True, "bos_token_id": int(model.tokenizer.bos_token_id)},
        processing=FROM_PRETRAINED_PROCESSING, dtype=args.dtype, name=f"{args.model} + {args.sae} over {args.dataset}",
        sources={"model.safetensors": f"transformer_lens HookedTransformer.from_pretrained({args.model!r})",
                 "sae.safetensors": sae_source, "tokenizer.json": f"{args.model} tokenizer",
                 "tokens.safetensors": f"{args.dataset} first {args.n_seq} × {args.seq_len} (tokenize_and_concatenate)"})
    print(json.dumps(meta["model"], indent=1))


if __name__ == "__main__":
    try:
        main()
    except BundleError as e:
        sys.exit(f"error: {e}")
