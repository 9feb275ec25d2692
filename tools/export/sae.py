"""The SAE side of the exporter: Neel Nanda's AutoEncoder checkpoints and SAELens folders, read into the
bundle's SAE kinds (docs/BUNDLE.md), with pre = (x − b_dec·[apply_b_dec_to_input]) · W_enc + b_enc and x
the raw hook value:

    relu      acts = ReLU(pre)
    jumprelu  acts = ReLU(pre)·[pre > threshold]          (SAELens JumpReLU, activation_fn relu)
    topk      acts = ReLU(pre) on each token's k largest pre-activations, 0 elsewhere   (SAELens TopK)

reconstruction = acts · W_dec + b_dec. apply_b_dec_to_input is stored as it is; a finetuning scaling
factor and a known normalization constant are folded into the tensors exactly. Anything else a source's
config asks for is refused with a message that says what and why.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import numpy as np

from ftlib import safetensors_io
from ftlib.bundle import BundleError

from .tlmodel import FROM_PRETRAINED, processing_from_kwargs

APP_SCHEMA = "the bundle format's SAE kinds are relu, jumprelu and topk (common/contract/bundle.ts saeConfigSchema)"


@dataclass
class Sae:
    """An SAE in the bundle's form, with what its training saw."""

    hook_point: str
    weights: dict  # W_enc [d_in, d_sae], b_enc, W_dec [d_sae, d_in], b_dec as float64 numpy
    processing: dict  # the weight processing of the model it was trained on
    source: str
    kind: str = "relu"
    k: int | None = None  # topk only
    apply_b_dec_to_input: bool = True
    model_name: str | None = None
    model_kwargs: dict = field(default_factory=dict)  # SAELens model_from_pretrained_kwargs (online loading)
    prepend_bos: bool | None = None
    context_size: int | None = None
    dataset_path: str | None = None
    origin: str = "neel"  # neel | saelens
    notes: list = field(default_factory=list)

    @property
    def d_in(self) -> int:
        return int(self.weights["W_enc"].shape[0])

    @property
    def d_sae(self) -> int:
        return int(self.weights["W_enc"].shape[1])

    def cfg(self) -> dict:
        c = {"hook_point": self.hook_point, "d_in": self.d_in, "d_sae": self.d_sae, "kind": self.kind,
             "apply_b_dec_to_input": self.apply_b_dec_to_input}
        if self.kind == "topk":
            c["k"] = self.k
        return c


def _f64(v) -> np.ndarray:
    if hasattr(v, "detach"):
        v = v.detach().cpu()
        if str(v.dtype) == "torch.bfloat16":
            v = v.float()  # exact
        v = v.numpy()
    return np.asarray(v, dtype=np.float64)


def _check_tensors(sd: dict, where: str) -> dict:
    missing = [k for k in ("W_enc", "b_enc", "W_dec", "b_dec") if k not in sd]
    if missing:
        raise BundleError(f"{where} lacks {', '.join(missing)} (it has {', '.join(sorted(sd)) or 'nothing'})")
    w = {k: _f64(sd[k]) for k in ("W_enc", "b_enc", "W_dec", "b_dec")}
    if w["W_enc"].ndim != 2:
        raise BundleError(f"{where}: W_enc has shape {list(w['W_enc'].shape)}, expected [d_in, d_sae]")
    d_in, d_sae = w["W_enc"].shape
    expected = {"b_enc": (d_sae,), "W_dec": (d_sae, d_in), "b_dec": (d_in,)}
    for k, shape in expected.items():
        if w[k].shape != shape:
            raise BundleError(f"{where}: {k} has shape {list(w[k].shape)}, expected {list(shape)} (from W_enc {[d_in, d_sae]})")
    return w


# --- Neel Nanda's AutoEncoder (1L-Sparse-Autoencoder; NeelNanda/sparse_autoencoder on the hub) -------------

NEEL_RUNS = {"run1": "25", "run2": "47"}


def neel_cfg_path(pt_path: str) -> str:
    """25.pt → 25_cfg.json beside it, as the 1L-Sparse-Autoencoder repo saves them."""
    base = pt_path[:-3] if pt_path.endswith(".pt") else pt_path
    return base + "_cfg.json"


def load_neel(pt_path: str, cfg_path: str | None = None, hook_point: str | None = None, source: str | None = None) -> Sae:
    """A Neel-style AutoEncoder: a state dict (W_enc [d_in, d_sae], b_enc, W_dec, b_dec) saved with torch.save,
    and its cfg json. Its forward is ReLU((x − b_dec)·W_enc + b_enc), as the bundle's. It was trained on the
    model as HookedTransformer.from_pretrained gives it (fold_ln, center_writing_weights, center_unembed,
    fold_value_biases)."""
    import torch

    cfg_path = cfg_path or neel_cfg_path(pt_path)
    cfg: dict = {}
    if os.path.exists(cfg_path):
        with open(cfg_path) as f:
            cfg = json.load(f)
    try:
        sd = torch.load(pt_path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling problem means "not a state dict"
        raise BundleError(f"{pt_path} is not a torch state dict of tensors ({type(e).__name__}: {e})") from e
    if not isinstance(sd, dict):
        raise BundleError(f"{pt_path} holds a {type(sd).__name__}, not a state dict (W_enc, b_enc, W_dec, b_dec)")
    w = _check_tensors(sd, pt_path)
    cfg_hook = cfg.get("act_name") or cfg.get("hook_point") or cfg.get("hook_name")
    if cfg_hook and hook_point and cfg_hook != hook_point:
        raise BundleError(f"{cfg_path} says the SAE reads {cfg_hook}, but --hook-point says {hook_point}")
    hook = cfg_hook or hook_point
    notes = []
    if hook is None:
        if "d_mlp" in cfg and "dict_mult" in cfg:
            # The 1L-Sparse-Autoencoder config (the notebook's): its code reads utils.get_act_name("post", 0).
            hook = "blocks.0.mlp.hook_post"
            notes.append(f"{os.path.basename(cfg_path)} names no hook; its format (d_mlp, dict_mult) is the 1L-Sparse-Autoencoder's, "
                         "which trains on blocks.0.mlp.hook_post")
        else:
            raise BundleError(f"{pt_path}: its config names no hook point (act_name): pass --hook-point blocks.L.<hook>")
    d_in, d_sae = w["W_enc"].shape
    if "d_mlp" in cfg and "dict_mult" in cfg and (cfg["d_mlp"], cfg["d_mlp"] * cfg["dict_mult"]) != (d_in, d_sae):
        raise BundleError(f"{cfg_path} describes a {cfg['d_mlp']}→{cfg['d_mlp'] * cfg['dict_mult']} SAE, but {pt_path} holds {d_in}→{d_sae}")
    source = source or f"Neel-style AutoEncoder {os.path.basename(pt_path)}" + (f" + {os.path.basename(cfg_path)}" if cfg else "")
    return Sae(hook_point=hook, weights=w, processing=dict(FROM_PRETRAINED), source=source, origin="neel",
               model_name=cfg.get("model_name"), prepend_bos=True, context_size=cfg.get("seq_len"), notes=notes)


# --- SAELens folders: cfg.json + sae_weights.safetensors ---------------------------------------------------

_NOT_RELU = {
    "jumprelu": "JumpReLU SAEs (a per-feature threshold: acts = pre·[pre > threshold])",
    "topk": "TopK SAEs (each token keeps its k largest pre-activations)",
    "batchtopk": "BatchTopK SAEs (a top-k over the batch in training, a threshold at inference)",
    "matryoshka_batchtopk": "Matryoshka BatchTopK SAEs",
    "gated": "gated SAEs (a gate path with its own bias decides which features fire, a magnitude path how much)",
    "transcoder": "transcoders (they read one hook and write another; the bundle holds one SAE on one hook)",
    "skip_transcoder": "skip transcoders (they read one hook and write another)",
    "jumprelu_transcoder": "JumpReLU transcoders (they read one hook and write another)",
}


def saelens_config(raw: dict) -> dict:
    """One view of a SAELens cfg.json, whichever layout it has: current (≥ 6: hook_name, model_name,
    model_from_pretrained_kwargs, prepend_bos, context_size under `metadata`), 1–5 (hook_name,
    activation_fn_str at the top) or pre-1 (hook_point, hook_point_layer, hook_point_head_index). Keys at
    the top win over `metadata` (SAELens's config overrides are applied at the top)."""
    meta = raw.get("metadata") if isinstance(raw.get("metadata"), dict) else {}

    def pick(*keys, default=None):
        for k in keys:
            if raw.get(k) is not None:
                return raw[k]
            if meta.get(k) is not None:
                return meta[k]
        return default

    hook = pick("hook_name", "hook_point")
    if not hook:
        raise BundleError("the SAELens cfg.json names no hook (hook_name, metadata.hook_name or hook_point)")
    norm = raw.get("normalize_activations")
    if norm in (None, False):
        norm = "none"
    elif norm is True:
        norm = "expected_average_only_in"  # what SAELens reads a boolean True as
    activation = pick("activation_fn", "activation_fn_str", default="relu")
    architecture = raw.get("architecture") or "standard"
    if architecture == "standard" and activation == "topk":
        architecture = "topk"
    return {
        "hook_name": hook,
        "hook_head_index": pick("hook_head_index", "hook_point_head_index"),
        "hook_name_out": pick("hook_name_out"),
        "architecture": architecture,
        "activation_fn": activation,
        "activation_fn_kwargs": pick("activation_fn_kwargs", default={}),
        "k": raw.get("k"),
        "apply_b_dec_to_input": bool(raw.get("apply_b_dec_to_input", True)),
        "normalize_activations": norm,
        "reshape_activations": raw.get("reshape_activations") or "none",
        "finetuning_scaling_factor": bool(raw.get("finetuning_scaling_factor", False)),
        "d_in": raw.get("d_in"),
        "d_sae": raw.get("d_sae"),
        "model_name": pick("model_name"),
        "model_class_name": pick("model_class_name", default="HookedTransformer"),
        "model_from_pretrained_kwargs": pick("model_from_pretrained_kwargs", default={}) or {},
        "prepend_bos": pick("prepend_bos", default=True),
        "context_size": pick("context_size"),
        "dataset_path": pick("dataset_path"),
        "sae_lens_version": pick("sae_lens_version", "sae_lens_training_version"),
    }


SUPPORTED_ARCHITECTURES = ("standard", "jumprelu", "topk")


def topk_k(c: dict) -> int | None:
    """A TopK SAE's k: cfg.json's `k` (SAELens ≥ 6) or activation_fn_kwargs.k (activation_fn 'topk', earlier)."""
    k = c.get("k") or (c["activation_fn_kwargs"] or {}).get("k")
    return int(k) if k is not None else None


def refuse_unsupported(c: dict, weights: dict) -> None:
    """Refuses, with what and why, every SAELens SAE whose activations none of the bundle's kinds reproduces."""
    arch, act = c["architecture"], c["activation_fn"]
    if arch not in SUPPORTED_ARCHITECTURES:
        what = _NOT_RELU.get(arch, f"SAEs with architecture {arch!r}")
        raise BundleError(f"not yet supported by the app: {what}; {APP_SCHEMA}")
    if arch == "topk":
        if topk_k(c) is None:
            raise BundleError("the TopK SAE's cfg.json gives no k (k, or activation_fn_kwargs.k)")
    elif act != "relu":
        raise BundleError(f"not yet supported by the app: SAEs with activation_fn {act!r} (the app's encoders apply ReLU); {APP_SCHEMA}")
    if arch == "jumprelu" and not ("threshold" in weights or "log_threshold" in weights):
        raise BundleError("the JumpReLU SAE's weights hold no threshold (nor log_threshold)")
    foreign = ("b_gate", "r_mag", "b_mag") + (() if arch == "jumprelu" else ("threshold", "log_threshold"))
    for k in foreign:
        if k in weights:
            raise BundleError(f"not yet supported by the app: this SAE's weights hold {k} (a JumpReLU or gated SAE) although its "
                              f"cfg.json says architecture {arch!r}; {APP_SCHEMA}")
    if c["hook_name_out"]:
        raise BundleError(f"not yet supported by the app: {_NOT_RELU['transcoder']}")
    if c["hook_head_index"] is not None:
        raise BundleError(f"not yet supported by the app: an SAE on one attention head's output (hook_head_index="
                          f"{c['hook_head_index']} of {c['hook_name']}); the bundle's SAE reads a whole hook")
    # attn.hook_z: SAELens reads TransformerLens's z [.., n_heads, d_head] flattened row-major, head index
    # outermost (its SAE's reshape '... n_heads d_head -> ... (n_heads d_head)', its activation store's
    # .view(batch, pos, -1)): index h·d_head + i, the bundle's own layout, so the tensors export unchanged.
    reshape = c["reshape_activations"]
    if reshape not in ("none", "hook_z"):
        raise BundleError(f"not yet supported by the app: reshape_activations={reshape!r} (the SAE's input reshaped "
                          "before encoding); the exporter knows 'none' and 'hook_z'")
    if reshape == "hook_z" and not c["hook_name"].endswith("attn.hook_z"):
        raise BundleError(f"cfg.json says reshape_activations='hook_z', but the SAE reads {c['hook_name']}, not a "
                          "blocks.L.attn.hook_z (SAELens refuses this SAE too)")
    if c["model_class_name"] not in (None, "HookedTransformer"):
        raise BundleError(f"not supported: the SAE was trained on a {c['model_class_name']}, not a TransformerLens HookedTransformer")


def load_saelens(folder: str, *, overrides: dict | None = None, model_kwargs: dict | None = None,
                 norm_scaling_factor: float | None = None, source: str | None = None) -> Sae:
    """A SAELens folder (cfg.json + sae_weights.safetensors, any dtype including bfloat16), as SAELens's
    SAE.load_from_disk/from_pretrained computes it: encode(x) = act((x·norm − b_dec·[apply_b_dec_to_input])·W_enc + b_enc).

    `overrides`: config keys set on top of cfg.json (SAELens's per-release config_overrides);
    `model_kwargs`: model_from_pretrained_kwargs entries to set (for a folder whose cfg.json lacks what its
    release overrides, e.g. gpt2-small-res-jb's center_writing_weights=True);
    `norm_scaling_factor`: the constant of normalize_activations='expected_average_only_in' (SAELens's
    pretrained_saes.yaml has it for some releases), folded in as SAELens does.
    """
    cfg_path = os.path.join(folder, "cfg.json")
    weights_path = os.path.join(folder, "sae_weights.safetensors")
    for p in (cfg_path, weights_path):
        if not os.path.exists(p):
            raise BundleError(f"{folder} is not a SAELens folder: it has no {os.path.basename(p)}")
    with open(cfg_path) as f:
        raw = json.load(f)
    raw.update(overrides or {})
    c = saelens_config(raw)
    sd = safetensors_io.load(weights_path)
    refuse_unsupported(c, sd)
    w = _check_tensors(sd, weights_path)
    notes: list[str] = []
    for k, v in (("d_in", w["W_enc"].shape[0]), ("d_sae", w["W_enc"].shape[1])):
        if c[k] is not None and int(c[k]) != v:
            raise BundleError(f"{cfg_path} says {k}={c[k]}, but W_enc in {weights_path} has {k}={v}")
    norm = c["normalize_activations"]
    if norm == "expected_average_only_in" and norm_scaling_factor is not None:
        # SAE.fold_activation_norm_scaling_factor: the SAE read x·s; fold s so that it reads x.
        s = float(norm_scaling_factor)
        w["W_enc"] = w["W_enc"] * s
        w["W_dec"] = w["W_dec"] / s
        w["b_dec"] = w["b_dec"] / s
        notes.append(f"normalize_activations=expected_average_only_in with scaling factor {s:g} folded into W_enc, W_dec and b_dec")
        norm = "none"
    if norm != "none":
        why = {"expected_average_only_in": "inputs multiplied by a constant measured on the training data, which this folder "
                                           "does not record (SAELens folds it for releases that list it: use --sae saelens-release:…)",
               "constant_norm_rescale": "each input rescaled to norm sqrt(d_in) at run time, and the output scaled back",
               "layer_norm": "each input layer-normalized at run time, and the output un-normalized"}.get(norm, norm)
        raise BundleError(f"not yet supported by the app: normalize_activations={norm!r}: {why}; the app's SAE reads the raw hook value")
    if "scaling_factor" in sd:
        s = _f64(sd["scaling_factor"])
        if not np.all(s == 1.0):
            if not c["finetuning_scaling_factor"]:
                raise BundleError(f"{weights_path} holds a scaling_factor that is not all ones, but cfg.json has no "
                                  "finetuning_scaling_factor (SAELens refuses this SAE too)")
            # decode(acts) = (acts·s)·W_dec + b_dec: the scale belongs to the decoder rows; acts are unchanged.
            w["W_dec"] = w["W_dec"] * s[:, None]
            notes.append("the finetuning scaling factor is folded into W_dec's rows (the activations are unchanged)")
    kind = {"standard": "relu"}.get(c["architecture"], c["architecture"])
    if kind == "jumprelu":
        if "threshold" in sd:
            w["threshold"] = _f64(sd["threshold"])
        else:  # a training checkpoint: SAELens's threshold is exp(log_threshold)
            w["threshold"] = np.exp(_f64(sd["log_threshold"]))
            notes.append("threshold = exp(log_threshold), as SAELens computes it")
        if w["threshold"].shape != (w["W_enc"].shape[1],):
            raise BundleError(f"{weights_path}: threshold has shape {list(w['threshold'].shape)}, expected [{w['W_enc'].shape[1]}] (d_sae)")
    k = topk_k(c) if kind == "topk" else None
    if k is not None and not 1 <= k <= w["W_enc"].shape[1]:
        raise BundleError(f"{cfg_path}: the TopK SAE keeps k={k} features per token but has d_sae={w['W_enc'].shape[1]}")
    kwargs = dict(c["model_from_pretrained_kwargs"])
    kwargs.update(model_kwargs or {})
    processing, kw_notes = processing_from_kwargs(kwargs)
    notes += kw_notes
    source = source or f"SAELens folder {os.path.basename(os.path.normpath(folder))} (sae_lens {c['sae_lens_version'] or 'version unrecorded'})"
    return Sae(hook_point=c["hook_name"], weights=w, processing=processing, source=source, origin="saelens",
               kind=kind, k=k, apply_b_dec_to_input=c["apply_b_dec_to_input"],
               model_name=c["model_name"], model_kwargs=kwargs, prepend_bos=bool(c["prepend_bos"]) if c["prepend_bos"] is not None else None,
               context_size=c["context_size"], dataset_path=c["dataset_path"], notes=notes)


def load_sae_spec(spec: str, *, hook_point: str | None = None, sae_cfg: str | None = None, model_kwargs: dict | None = None) -> Sae:
    """An SAE from a local spec: `neel:FILE.pt`, `FILE.pt`, `saelens:DIR` or `DIR` (hub specs: online.py)."""
    kind, _, rest = spec.partition(":")
    if kind == "neel" and rest and not rest.isdigit() and rest not in NEEL_RUNS:
        return load_neel(rest, sae_cfg, hook_point)
    if kind == "saelens" and rest:
        if hook_point:
            raise BundleError("--hook-point is for Neel-style checkpoints; a SAELens folder's cfg.json names its hook")
        return load_saelens(rest, model_kwargs=model_kwargs)
    if os.path.isdir(spec):
        return load_saelens(spec, model_kwargs=model_kwargs)
    if spec.endswith(".pt") and os.path.exists(spec):
        return load_neel(spec, sae_cfg, hook_point)
    raise BundleError(f"--sae {spec!r} is neither a local SAE (neel:FILE.pt, FILE.pt, saelens:DIR, DIR) nor, online, "
                      "neel:RUN or saelens-release:RELEASE:SAE_ID")
