"""Write, read and validate Feature Tracer model bundles (docs/BUNDLE.md)."""
from __future__ import annotations

import hashlib
import json
import os

import numpy as np

from . import safetensors_io

FORMAT = "feature-tracer-bundle"
VERSION = 1
MODEL_KEYS = ("n_layers", "d_model", "n_heads", "d_head", "d_mlp", "d_vocab", "n_ctx", "act_fn",
              "normalization_type", "eps", "positional_embedding_type")


class BundleError(ValueError):
    """A bundle or its inputs do not fit together; the message says what to fix."""


def expected_model_shapes(cfg: dict) -> dict[str, tuple[int, ...]]:
    d, h, dh, dm, v, n = cfg["d_model"], cfg["n_heads"], cfg["d_head"], cfg["d_mlp"], cfg["d_vocab"], cfg["n_ctx"]
    shapes: dict[str, tuple[int, ...]] = {"embed.W_E": (v, d), "pos_embed.W_pos": (n, d)}
    ln = cfg["normalization_type"] == "LN"
    for l in range(cfg["n_layers"]):
        pre = f"blocks.{l}."
        if ln:
            for name in ("ln1.w", "ln1.b", "ln2.w", "ln2.b"):
                shapes[pre + name] = (d,)
        for m in "QKV":
            shapes[pre + f"attn.W_{m}"] = (h, d, dh)
            shapes[pre + f"attn.b_{m}"] = (h, dh)
        shapes[pre + "attn.W_O"] = (h, dh, d)
        shapes[pre + "attn.b_O"] = (d,)
        shapes[pre + "mlp.W_in"] = (d, dm)
        shapes[pre + "mlp.b_in"] = (dm,)
        shapes[pre + "mlp.W_out"] = (dm, d)
        shapes[pre + "mlp.b_out"] = (d,)
    if ln:
        shapes["ln_final.w"] = (d,)
        shapes["ln_final.b"] = (d,)
    shapes["unembed.W_U"] = (d, v)
    shapes["unembed.b_U"] = (v,)
    return shapes


def hook_width(cfg: dict, hook_point: str) -> int:
    parts = hook_point.split(".")
    if len(parts) < 3 or parts[0] != "blocks" or not parts[1].isdigit():
        raise BundleError(f"hook point {hook_point!r} is not of the form blocks.L.<hook>")
    layer = int(parts[1])
    if layer >= cfg["n_layers"]:
        raise BundleError(f"hook point {hook_point!r} names layer {layer}, but the model has {cfg['n_layers']} layers")
    rest = ".".join(parts[2:])
    widths = {"mlp.hook_post": cfg["d_mlp"], "mlp.hook_pre": cfg["d_mlp"], "hook_resid_pre": cfg["d_model"],
              "hook_resid_mid": cfg["d_model"], "hook_resid_post": cfg["d_model"], "hook_mlp_out": cfg["d_model"],
              "hook_attn_out": cfg["d_model"]}
    if rest not in widths:
        raise BundleError(f"hook point {hook_point!r} is not supported (supported: {', '.join(sorted(widths))})")
    return widths[rest]


def check_model(cfg: dict, params: dict[str, np.ndarray]) -> None:
    missing = [k for k in MODEL_KEYS if k not in cfg]
    if missing:
        raise BundleError(f"model config lacks {', '.join(missing)}")
    if cfg["n_heads"] * cfg["d_head"] != cfg["d_model"]:
        raise BundleError(f"n_heads·d_head = {cfg['n_heads'] * cfg['d_head']} but d_model = {cfg['d_model']}")
    expected = expected_model_shapes(cfg)
    for name, shape in expected.items():
        if name not in params:
            raise BundleError(f"model state dict lacks {name} (expected shape {list(shape)})")
        if tuple(params[name].shape) != shape:
            raise BundleError(f"model tensor {name} has shape {list(params[name].shape)}, expected {list(shape)}")


def check_sae(sae_cfg: dict, sae: dict[str, np.ndarray], model_cfg: dict) -> None:
    width = hook_width(model_cfg, sae_cfg["hook_point"])
    d_in, d_sae = sae_cfg["d_in"], sae_cfg["d_sae"]
    if d_in != width:
        raise BundleError(f"SAE d_in is {d_in} but {sae_cfg['hook_point']} has width {width}: this SAE was trained on another hook or model")
    expected = {"W_enc": (d_in, d_sae), "b_enc": (d_sae,), "W_dec": (d_sae, d_in), "b_dec": (d_in,)}
    for name, shape in expected.items():
        if name not in sae:
            raise BundleError(f"SAE lacks {name} (expected shape {list(shape)})")
        if tuple(sae[name].shape) != shape:
            raise BundleError(f"SAE tensor {name} has shape {list(sae[name].shape)}, expected {list(shape)}")


def tokenizer_vocab_size(tokenizer: dict) -> int:
    ids = list(tokenizer["model"]["vocab"].values()) + [t["id"] for t in tokenizer.get("added_tokens", [])]
    return max(ids) + 1


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_bundle(out_dir: str, *, model_cfg: dict, params: dict, sae_cfg: dict, sae: dict, tokenizer: dict,
                 tokens: np.ndarray, dataset: dict, dtype: str = "float16", quality: dict | None = None,
                 sources: dict | None = None, name: str = "") -> dict:
    """Validate everything, then write the bundle folder. Returns bundle.json's content."""
    params = {k: np.asarray(v.detach().cpu().numpy() if hasattr(v, "detach") else v, dtype=np.float64) for k, v in params.items()}
    sae = {k: np.asarray(v.detach().cpu().numpy() if hasattr(v, "detach") else v, dtype=np.float64) for k, v in sae.items()}
    check_model(model_cfg, params)
    check_sae(sae_cfg, sae, model_cfg)
    vocab = tokenizer_vocab_size(tokenizer)
    if vocab != model_cfg["d_vocab"]:
        raise BundleError(f"the tokenizer has {vocab} tokens but the model's d_vocab is {model_cfg['d_vocab']}: they belong to different models")
    tokens = np.asarray(tokens, dtype=np.int32)
    if tokens.ndim != 2 or tokens.shape[1] > model_cfg["n_ctx"]:
        raise BundleError(f"tokens must be [n_seq, seq_len ≤ n_ctx={model_cfg['n_ctx']}], got {list(tokens.shape)}")
    if tokens.min() < 0 or tokens.max() >= model_cfg["d_vocab"]:
        raise BundleError(f"token ids must lie in [0, {model_cfg['d_vocab']}), got [{tokens.min()}, {tokens.max()}]")
    np_dtype = {"float16": np.float16, "float32": np.float32}[dtype]
    os.makedirs(out_dir, exist_ok=True)
    expected = expected_model_shapes(model_cfg)
    safetensors_io.save(os.path.join(out_dir, "model.safetensors"), {k: params[k].astype(np_dtype) for k in expected})
    safetensors_io.save(os.path.join(out_dir, "sae.safetensors"), {k: sae[k].astype(np_dtype) for k in ("W_enc", "b_enc", "W_dec", "b_dec")})
    safetensors_io.save(os.path.join(out_dir, "tokens.safetensors"), {"tokens": tokens})
    with open(os.path.join(out_dir, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tokenizer, f, ensure_ascii=False)
    files = {}
    for fname in ("model.safetensors", "sae.safetensors", "tokenizer.json", "tokens.safetensors"):
        files[fname] = {"sha256": sha256(os.path.join(out_dir, fname)), "source": (sources or {}).get(fname, "")}
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "name": name,
        "model": {**{k: model_cfg[k] for k in MODEL_KEYS}, "dtype": dtype,
                  "processing": model_cfg.get("processing", {"fold_ln": False, "center_writing_weights": False,
                                                              "center_unembed": False, "fold_value_biases": False})},
        "sae": {"hook_point": sae_cfg["hook_point"], "d_in": sae_cfg["d_in"], "d_sae": sae_cfg["d_sae"], "kind": "relu", "dtype": dtype},
        "dataset": {"n_seq": int(tokens.shape[0]), "seq_len": int(tokens.shape[1]), **dataset},
        "quality": quality or {},
        "provenance": {"files": files},
    }
    with open(os.path.join(out_dir, "bundle.json"), "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=2, ensure_ascii=False)
        f.write("\n")
    return meta


def read_bundle(path: str) -> tuple[dict, dict, dict, dict, np.ndarray]:
    """(bundle.json, model params fp64, sae params fp64, tokenizer.json, tokens) of a bundle folder."""
    with open(os.path.join(path, "bundle.json"), encoding="utf-8") as f:
        meta = json.load(f)
    params = {k: v.astype(np.float64) for k, v in safetensors_io.load(os.path.join(path, "model.safetensors")).items()}
    sae = {k: v.astype(np.float64) for k, v in safetensors_io.load(os.path.join(path, "sae.safetensors")).items()}
    with open(os.path.join(path, "tokenizer.json"), encoding="utf-8") as f:
        tok = json.load(f)
    tokens = safetensors_io.load(os.path.join(path, "tokens.safetensors"))["tokens"]
    check_model(meta["model"], params)
    check_sae(meta["sae"], sae, meta["model"])
    return meta, params, sae, tok, tokens

