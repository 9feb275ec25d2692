"""Write, read and validate Feature Tracer model bundles (docs/BUNDLE.md).

The checks follow the app's reader (common/contract/bundle.ts's schema, main/bundle/schema.ts and
main/bundle/load.ts) rule for rule, so a bundle this module writes or accepts is one the app opens, and
one it refuses the app refuses too: the config's fields and enums, n_heads·d_head = d_model, every
tensor present with the dtype bundle.json names and its shape, no NaN or infinity, the SAE's hook point
and width, a tokenizer no larger than d_vocab, the BOS id inside the vocabulary, tokens int32
[n_seq, seq_len] with seq_len ≤ n_ctx and every id in [0, d_vocab), and each file's sha256 equal to
the one provenance records.
"""
from __future__ import annotations

import hashlib
import json
import math
import os

import numpy as np

from . import safetensors_io

FORMAT = "feature-tracer-bundle"
VERSION = 1
MODEL_KEYS = ("n_layers", "d_model", "n_heads", "d_head", "d_mlp", "d_vocab", "n_ctx", "act_fn",
              "normalization_type", "eps", "positional_embedding_type")
ACT_FNS = ("gelu", "gelu_new", "gelu_fast", "relu")
NORMALIZATION_TYPES = ("LN", "LNPre")
POSITIONAL = ("standard", "rotary")
# Optional model fields, written only where a model has them (other bundles keep their identity).
OPTIONAL_MODEL_KEYS = ("attn_scales", "rotary_dim", "rotary_base", "parallel_attn_mlp")
DTYPES = {"float16": ("F16", np.float16), "float32": ("F32", np.float32)}
SAE_KINDS = ("relu", "jumprelu", "topk")
SAE_TENSORS = ("W_enc", "b_enc", "W_dec", "b_dec")
FILES = ("model.safetensors", "sae.safetensors", "tokenizer.json", "tokens.safetensors")
NO_PROCESSING = {"fold_ln": False, "center_writing_weights": False, "center_unembed": False, "fold_value_biases": False}


class BundleError(ValueError):
    """A bundle or its inputs do not fit together; the message says what to fix."""


def _is_dim(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


def _is_positive(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0


def check_config(meta: dict) -> None:
    """bundle.json's content against the app's schema (bundleConfigSchema), one message for every problem."""
    problems: list[str] = []
    if meta.get("format") != FORMAT:
        problems.append(f"format: must be {FORMAT!r}")
    if meta.get("version") != VERSION:
        problems.append(f"version: must be {VERSION}")
    m = meta.get("model")
    if not isinstance(m, dict):
        problems.append("model: required")
        m = {}
    for k in ("n_layers", "d_model", "n_heads", "d_head", "d_mlp", "d_vocab", "n_ctx"):
        if not _is_dim(m.get(k)):
            problems.append(f"model.{k}: must be a positive integer")
    if m.get("act_fn") not in ACT_FNS:
        problems.append(f"model.act_fn: must be one of {', '.join(ACT_FNS)}")
    if m.get("normalization_type") not in NORMALIZATION_TYPES:
        problems.append(f"model.normalization_type: must be one of {', '.join(NORMALIZATION_TYPES)}")
    eps = m.get("eps")
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps > 0:
        problems.append("model.eps: must be a positive number")
    if m.get("positional_embedding_type") not in POSITIONAL:
        problems.append("model.positional_embedding_type: must be 'standard' or 'rotary'")
    if "rotary_dim" in m and not _is_dim(m["rotary_dim"]):
        problems.append("model.rotary_dim: must be a positive integer")
    if "rotary_base" in m and not _is_positive(m["rotary_base"]):
        problems.append("model.rotary_base: must be a positive number")
    if "parallel_attn_mlp" in m and not isinstance(m["parallel_attn_mlp"], bool):
        problems.append("model.parallel_attn_mlp: must be a boolean")
    if m.get("dtype") not in DTYPES:
        problems.append(f"model.dtype: must be one of {', '.join(DTYPES)}")
    scales = m.get("attn_scales")
    if scales is not None and not (isinstance(scales, list) and all(_is_positive(x) for x in scales)):
        problems.append("model.attn_scales: must be a list of positive numbers (each layer's attention-score divisor)")
    proc = m.get("processing")
    if proc is not None and not (isinstance(proc, dict) and all(isinstance(v, bool) for v in proc.values())):
        problems.append("model.processing: must map names to booleans")
    s = meta.get("sae")
    if not isinstance(s, dict):
        problems.append("sae: required")
        s = {}
    if not isinstance(s.get("hook_point"), str):
        problems.append("sae.hook_point: must be a string")
    for k in ("d_in", "d_sae"):
        if not _is_dim(s.get(k)):
            problems.append(f"sae.{k}: must be a positive integer")
    if s.get("kind") not in SAE_KINDS:
        problems.append(f"sae.kind: must be {' or '.join(repr(k) for k in SAE_KINDS)}")
    if s.get("kind") == "topk" and not _is_dim(s.get("k")):
        problems.append("sae.k: must be a positive integer (a TopK SAE's features per token)")
    if "apply_b_dec_to_input" in s and not isinstance(s["apply_b_dec_to_input"], bool):
        problems.append("sae.apply_b_dec_to_input: must be a boolean")
    if s.get("dtype") not in DTYPES:
        problems.append(f"sae.dtype: must be one of {', '.join(DTYPES)}")
    d = meta.get("dataset")
    if not isinstance(d, dict):
        problems.append("dataset: required")
        d = {}
    for k in ("n_seq", "seq_len"):
        if not _is_dim(d.get(k)):
            problems.append(f"dataset.{k}: must be a positive integer")
    if "prepend_bos" in d and not isinstance(d["prepend_bos"], bool):
        problems.append("dataset.prepend_bos: must be a boolean")
    bos = d.get("bos_token_id")
    if bos is not None and (isinstance(bos, bool) or not isinstance(bos, int) or bos < 0):
        problems.append("dataset.bos_token_id: must be a non-negative integer or null")
    q = meta.get("quality", {})
    if not isinstance(q, dict) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in q.values()):
        problems.append("quality: must map names to numbers")
    if problems:
        raise BundleError(f"bundle.json does not follow the bundle format: {'; '.join(problems)}")
    if m["n_heads"] * m["d_head"] != m["d_model"]:
        raise BundleError(f"n_heads·d_head = {m['n_heads'] * m['d_head']} but d_model = {m['d_model']}")
    problem = rotary_config_problem(m)
    if problem:
        raise BundleError(problem)
    if scales is not None and len(scales) != m["n_layers"]:
        raise BundleError(f"model.attn_scales has {len(scales)} entries but the model has {m['n_layers']} layers")
    if s["kind"] == "topk" and s["k"] > s["d_sae"]:
        raise BundleError(f"the TopK SAE keeps k = {s['k']} features per token but has d_sae = {s['d_sae']}")


def rotary_config_problem(m: dict) -> str | None:
    """Rotary fields where and only where positions are rotary: an even rotary_dim ≤ d_head and a rotary_base."""
    if m["positional_embedding_type"] != "rotary":
        if "rotary_dim" in m or "rotary_base" in m:
            return "model.rotary_dim and model.rotary_base belong to rotary positional embeddings only"
        return None
    if "rotary_dim" not in m or "rotary_base" not in m:
        return "rotary positional embeddings need model.rotary_dim and model.rotary_base"
    if m["rotary_dim"] % 2 or m["rotary_dim"] > m["d_head"]:
        return f"model.rotary_dim = {m['rotary_dim']} must be even and at most d_head = {m['d_head']}"
    return None


def expected_model_shapes(cfg: dict) -> dict[str, tuple[int, ...]]:
    d, h, dh, dm, v, n = cfg["d_model"], cfg["n_heads"], cfg["d_head"], cfg["d_mlp"], cfg["d_vocab"], cfg["n_ctx"]
    shapes: dict[str, tuple[int, ...]] = {"embed.W_E": (v, d)}
    if cfg.get("positional_embedding_type", "standard") == "standard":  # rotary models have no learned positions
        shapes["pos_embed.W_pos"] = (n, d)
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


def expected_sae_shapes(sae_cfg: dict) -> dict[str, tuple[int, ...]]:
    d_in, d_sae = sae_cfg["d_in"], sae_cfg["d_sae"]
    shapes = {"W_enc": (d_in, d_sae), "b_enc": (d_sae,), "W_dec": (d_sae, d_in), "b_dec": (d_in,)}
    if sae_cfg.get("kind", "relu") == "jumprelu":
        shapes["threshold"] = (d_sae,)
    return shapes


def sae_config_entry(sae_cfg: dict, dtype: str) -> dict:
    """bundle.json's `sae` from an SAE config: kind (default relu), k for topk, apply_b_dec_to_input only
    when false (absent means true, so a relu bundle reads as bundles always have)."""
    kind = sae_cfg.get("kind", "relu")
    entry = {"hook_point": sae_cfg["hook_point"], "d_in": int(sae_cfg["d_in"]), "d_sae": int(sae_cfg["d_sae"]), "kind": kind}
    if kind == "topk":
        entry["k"] = sae_cfg.get("k")
    entry["dtype"] = dtype
    if sae_cfg.get("apply_b_dec_to_input", True) is False:
        entry["apply_b_dec_to_input"] = False
    return entry


def sae_pre_acts(sae_cfg: dict, sae: dict, x):
    """The SAE's pre-activations of hook values x [..., d_in] (numpy or torch alike)."""
    centred = x - sae["b_dec"] if sae_cfg.get("apply_b_dec_to_input", True) is not False else x
    return centred @ sae["W_enc"] + sae["b_enc"]


# The hooks an SAE may sit on (relative to blocks.L.), with their widths: main/bundle/schema.ts's HOOK_WIDTH.
# attn.hook_z is every head's z concatenated, [n_heads·d_head] = d_model wide (as SAELens's hook_z SAEs read it).
HOOK_WIDTHS = {"mlp.hook_post": "d_mlp", "mlp.hook_pre": "d_mlp", "hook_resid_pre": "d_model", "hook_resid_mid": "d_model",
               "hook_resid_post": "d_model", "hook_mlp_out": "d_model", "hook_attn_out": "d_model", "attn.hook_z": "d_model"}


def parse_hook_point(hook_point: str) -> tuple[int, str]:
    parts = hook_point.split(".")
    if len(parts) < 3 or parts[0] != "blocks" or not parts[1].isdigit():
        raise BundleError(f"hook point {hook_point!r} is not of the form blocks.L.<hook>")
    return int(parts[1]), ".".join(parts[2:])


def hook_width(cfg: dict, hook_point: str) -> int:
    layer, rest = parse_hook_point(hook_point)
    if layer >= cfg["n_layers"]:
        raise BundleError(f"hook point {hook_point!r} names layer {layer}, but the model has {cfg['n_layers']} layers")
    if rest not in HOOK_WIDTHS:
        raise BundleError(f"hook point {hook_point!r} is not supported (supported: {', '.join(sorted(HOOK_WIDTHS))})")
    if rest == "hook_resid_mid" and cfg.get("parallel_attn_mlp"):
        raise BundleError(f"hook point {hook_point!r} does not exist in a model with parallel attention and MLP (both read resid_pre)")
    return cfg[HOOK_WIDTHS[rest]]


def _check_finite(arr: np.ndarray, file: str, name: str) -> None:
    bad = ~np.isfinite(arr)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        x = arr[idx]
        what = "NaN" if np.isnan(x) else ("Infinity" if x > 0 else "-Infinity")
        raise BundleError(f"{file}: tensor {name} holds {what} at index {list(idx)}; the weights are damaged "
                          "(or come from a diverged run)")


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
        _check_finite(params[name], "model.safetensors", name)


def check_sae(sae_cfg: dict, sae: dict[str, np.ndarray], model_cfg: dict) -> None:
    width = hook_width(model_cfg, sae_cfg["hook_point"])
    d_in = sae_cfg["d_in"]
    if d_in != width:
        raise BundleError(f"SAE d_in is {d_in} but {sae_cfg['hook_point']} has width {width}: this SAE was trained on another hook or model")
    for name, shape in expected_sae_shapes(sae_cfg).items():
        if name not in sae:
            raise BundleError(f"SAE lacks {name} (expected shape {list(shape)})")
        if tuple(sae[name].shape) != shape:
            raise BundleError(f"SAE tensor {name} has shape {list(sae[name].shape)}, expected {list(shape)}")
        _check_finite(sae[name], "sae.safetensors", name)


def tokenizer_vocab_size(tokenizer: dict) -> int:
    """The highest id of the vocabulary or the added tokens, plus one (main/bundle/tokenizer.ts's rule)."""
    vocab = (tokenizer.get("model") or {}).get("vocab")
    top = -1
    if isinstance(vocab, list):  # Unigram: [token, score] pairs, id = index
        top = len(vocab) - 1
    elif isinstance(vocab, dict):
        top = max((i for i in vocab.values() if isinstance(i, int)), default=-1)
    for t in tokenizer.get("added_tokens") or []:
        top = max(top, t["id"])
    return top + 1


def check_tokenizer(tokenizer: dict, d_vocab: int) -> None:
    if not isinstance(tokenizer, dict) or not isinstance(tokenizer.get("model"), dict):
        raise BundleError("tokenizer.json is not a Hugging Face tokenizers file (no 'model' section)")
    vocab = tokenizer_vocab_size(tokenizer)
    if vocab <= 0:
        raise BundleError("tokenizer.json has an empty vocabulary")
    if vocab > d_vocab:
        raise BundleError(f"the tokenizer has {vocab} tokens but the model's d_vocab is {d_vocab}: they belong to different models")


def check_tokens(tokens: np.ndarray, model_cfg: dict) -> None:
    if tokens.ndim != 2 or tokens.shape[0] == 0 or tokens.shape[1] == 0 or tokens.shape[1] > model_cfg["n_ctx"]:
        raise BundleError(f"tokens must be [n_seq, seq_len ≤ n_ctx={model_cfg['n_ctx']}], got {list(tokens.shape)}")
    lo, hi = int(tokens.min()), int(tokens.max())
    if lo < 0 or hi >= model_cfg["d_vocab"]:
        raise BundleError(f"token ids must lie in [0, {model_cfg['d_vocab']}) (d_vocab), got [{lo}, {hi}]")


def check_dataset(dataset: dict, model_cfg: dict) -> None:
    bos = dataset.get("bos_token_id")
    if dataset.get("prepend_bos") and bos is not None and bos >= model_cfg["d_vocab"]:
        raise BundleError(f"dataset.bos_token_id {bos} lies outside [0, {model_cfg['d_vocab']}) (d_vocab)")


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _as_np(v) -> np.ndarray:
    if hasattr(v, "detach"):
        v = v.detach().cpu()
        if str(v.dtype) == "torch.bfloat16":
            v = v.float()
        v = v.numpy()
    return np.asarray(v)


def write_bundle(out_dir: str, *, model_cfg: dict, params: dict, sae_cfg: dict, sae: dict, tokenizer: dict,
                 tokens: np.ndarray, dataset: dict, dtype: str = "float16", sae_dtype: str | None = None,
                 quality: dict | None = None, sources: dict | None = None, name: str = "",
                 extra_provenance: dict | None = None) -> dict:
    """Validate everything, then write the bundle folder. Returns bundle.json's content.

    Nothing is written unless every check passes. `dtype` is the model's storage dtype, `sae_dtype`
    the SAE's (default: the same).
    """
    sae_dtype = sae_dtype or dtype
    for what, dt in (("dtype", dtype), ("sae_dtype", sae_dtype)):
        if dt not in DTYPES:
            raise BundleError(f"{what} must be one of {', '.join(DTYPES)}, got {dt!r}")
    params = {k: np.asarray(_as_np(v), dtype=np.float64) for k, v in params.items()}
    sae = {k: np.asarray(_as_np(v), dtype=np.float64) for k, v in sae.items()}
    sae_entry = sae_config_entry(sae_cfg, sae_dtype)
    check_model(model_cfg, params)
    check_sae(sae_entry, sae, model_cfg)
    check_tokenizer(tokenizer, model_cfg["d_vocab"])
    tokens = np.asarray(tokens)
    if tokens.dtype.kind not in "iu":
        raise BundleError(f"tokens must be integers, got {tokens.dtype}")
    check_tokens(tokens, model_cfg)
    tokens = tokens.astype(np.int32)
    check_dataset(dataset, model_cfg)
    expected = expected_model_shapes(model_cfg)
    stored_model = {k: params[k].astype(DTYPES[dtype][1]) for k in expected}
    stored_sae = {k: sae[k].astype(DTYPES[sae_dtype][1]) for k in expected_sae_shapes(sae_entry)}
    for file, stored in (("model.safetensors", stored_model), ("sae.safetensors", stored_sae)):
        for k, v in stored.items():
            _check_finite(v, file, f"{k} (as {dtype if file.startswith('model') else sae_dtype})")
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "name": name,
        "model": {**{k: model_cfg[k] for k in MODEL_KEYS}, "dtype": dtype,
                  # Only where some layer divides by other than sqrt(d_head): other bundles keep their identity.
                  **{k: model_cfg[k] for k in OPTIONAL_MODEL_KEYS if model_cfg.get(k) is not None},
                  "processing": dict(model_cfg.get("processing") or NO_PROCESSING)},
        "sae": sae_entry,
        "dataset": {"n_seq": int(tokens.shape[0]), "seq_len": int(tokens.shape[1]),
                    **{k: v for k, v in dataset.items() if k not in ("n_seq", "seq_len")}},
        "quality": quality or {},
        "provenance": {"files": {}},
    }
    meta["model"]["eps"] = float(meta["model"]["eps"])
    check_config(meta)
    os.makedirs(out_dir, exist_ok=True)
    safetensors_io.save(os.path.join(out_dir, "model.safetensors"), stored_model)
    safetensors_io.save(os.path.join(out_dir, "sae.safetensors"), stored_sae)
    safetensors_io.save(os.path.join(out_dir, "tokens.safetensors"), {"tokens": tokens})
    with open(os.path.join(out_dir, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tokenizer, f, ensure_ascii=False)
    for fname in FILES:
        meta["provenance"]["files"][fname] = {"sha256": sha256(os.path.join(out_dir, fname)), "source": (sources or {}).get(fname, "")}
    if extra_provenance:
        meta["provenance"].update(extra_provenance)
    with open(os.path.join(out_dir, "bundle.json"), "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=2, ensure_ascii=False)
        f.write("\n")
    return meta


def _check_stored(path: str, file: str, expected: dict[str, tuple[int, ...]], dtype: str) -> None:
    header = safetensors_io.read_header(os.path.join(path, file))
    code = DTYPES[dtype][0]
    for name, shape in expected.items():
        info = header.get(name)
        if info is None:
            raise BundleError(f"{file}: lacks tensor {name} (expected shape {list(shape)})")
        if info["dtype"] != code:
            raise BundleError(f"{file}: tensor {name} is {info['dtype']} but bundle.json says {dtype} ({code})")
        if tuple(info["shape"]) != shape:
            raise BundleError(f"{file}: tensor {name} has shape {info['shape']}, expected {list(shape)}")


def read_bundle(path: str) -> tuple[dict, dict, dict, dict, np.ndarray]:
    """(bundle.json, model params fp64, sae params fp64, tokenizer.json, tokens) of a bundle folder,
    after every check the app makes when it opens one."""
    with open(os.path.join(path, "bundle.json"), encoding="utf-8-sig") as f:
        meta = json.load(f)
    check_config(meta)
    cfg = meta["model"]
    _check_stored(path, "model.safetensors", expected_model_shapes(cfg), cfg["dtype"])
    _check_stored(path, "sae.safetensors", expected_sae_shapes(meta["sae"]), meta["sae"]["dtype"])
    params = {k: v.astype(np.float64) for k, v in safetensors_io.load(os.path.join(path, "model.safetensors")).items()}
    sae = {k: v.astype(np.float64) for k, v in safetensors_io.load(os.path.join(path, "sae.safetensors")).items()}
    with open(os.path.join(path, "tokenizer.json"), encoding="utf-8") as f:
        tok = json.load(f)
    header = safetensors_io.read_header(os.path.join(path, "tokens.safetensors"))
    if "tokens" not in header:
        raise BundleError("tokens.safetensors lacks tensor tokens")
    if header["tokens"]["dtype"] != "I32":
        raise BundleError(f"tokens.safetensors: tensor tokens is {header['tokens']['dtype']}, expected I32")
    tokens = safetensors_io.load(os.path.join(path, "tokens.safetensors"))["tokens"]
    ds = meta["dataset"]
    if list(tokens.shape) != [ds["n_seq"], ds["seq_len"]]:
        raise BundleError(f"tokens.safetensors: tensor tokens has shape {list(tokens.shape)}, expected [{ds['n_seq']}, {ds['seq_len']}] (dataset.n_seq, dataset.seq_len)")
    check_model(cfg, params)
    check_sae(meta["sae"], sae, cfg)
    check_dataset(ds, cfg)
    check_tokenizer(tok, cfg["d_vocab"])
    check_tokens(tokens, cfg)
    for fname, info in (meta.get("provenance") or {}).get("files", {}).items():
        known = (info or {}).get("sha256")
        if fname in FILES and known and known.lower() != sha256(os.path.join(path, fname)):
            raise BundleError(f"{fname} has changed since the bundle was made (its sha256 is not the one bundle.json records)")
    if not math.isfinite(cfg["eps"]):
        raise BundleError("model.eps must be finite")
    return meta, params, sae, tok, tokens
