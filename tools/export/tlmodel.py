"""The model side of the exporter: which TransformerLens models the app computes exactly, and the weight
processing an SAE expects.

The app computes one family of architectures (docs/BUNDLE.md): learned absolute positional embeddings or
GPT-NeoX's rotary embedding of queries and keys, LayerNorm (`LN`, or `LNPre` once folded) before attention
and before the MLP, causal softmax attention with each layer's scores divided by its own constant (the
bundle's `attn_scales`: TransformerLens's attn_scale or 1 without use_attn_scale, times layer+1 with
scale_attn_by_inverse_layer_idx), a dense MLP with GELU or ReLU, attention and MLP one after the other or
in parallel (GPT-NeoX/Pythia). A config that asks for anything else is refused by name: accepting it would
compute another model.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ftlib import model as ftmodel
from ftlib.bundle import BundleError

PROCESSING_FLAGS = ftmodel.PROCESSING_FLAGS
# What HookedTransformer.from_pretrained does by default (the model Neel Nanda's SAEs were trained on).
FROM_PRETRAINED = {k: True for k in PROCESSING_FLAGS}
# HookedTransformer.from_pretrained_no_processing (what SAELens loads, before model_from_pretrained_kwargs).
NO_PROCESSING = {k: False for k in PROCESSING_FLAGS}

# Hooks whose values center_writing_weights changes (it removes their mean over d_model).
RESIDUAL_WRITES = ("hook_resid_pre", "hook_resid_mid", "hook_resid_post", "hook_attn_out", "hook_mlp_out")

ACT_FNS = {"gelu": "gelu", "gelu_new": "gelu_new", "gelu_fast": "gelu_new", "gelu_pytorch_tanh": "gelu_new", "relu": "relu"}

# Config keys whose non-default values the app cannot compute: (key, is-it-standard test, why).
_NONSTANDARD = [
    ("attn_only", lambda v: not v, "attention-only models have no MLP; the app's blocks are attention then MLP"),
    ("use_local_attn", lambda v: not v, "local (windowed) attention layers: the app's attention is global causal"),
    ("attn_types", lambda v: not v or all(t == "global" for t in v), "local (windowed) attention layers: the app's attention is global causal"),
    ("attention_dir", lambda v: v in (None, "causal"), "bidirectional attention: the app's attention is causal"),
    ("gated_mlp", lambda v: not v, "gated MLPs (SwiGLU/GeGLU): the app's MLP is W_in, activation, W_out"),
    ("final_rms", lambda v: not v, "RMSNorm before the unembedding: the app's norm is LayerNorm"),
    ("post_embedding_ln", lambda v: not v, "a LayerNorm after the embedding (BLOOM): the app has none"),
    ("use_normalization_before_and_after", lambda v: not v, "norms after attention and MLP as well (Gemma 2): the app has them before only"),
    ("use_qk_norm", lambda v: not v, "norms on queries and keys: the app has none"),
    ("n_key_value_heads", None, "grouped-query attention (n_key_value_heads ≠ n_heads): the app has one key and value per head"),
    ("num_experts", lambda v: not v, "mixture-of-experts MLPs: the app's MLP is dense"),
    ("attn_scores_soft_cap", lambda v: v is None or v <= 0, "soft-capped attention scores: the app does not cap them"),
    ("output_logits_soft_cap", lambda v: v is None or v <= 0, "soft-capped logits: the app does not cap them"),
    ("relative_attention_num_buckets", lambda v: v is None, "relative attention biases (T5): the app has absolute positions only"),
    ("load_in_4bit", lambda v: not v, "4-bit quantized weights: the app reads float weights"),
]


def _get(cfg: dict, key: str, default=None):
    v = cfg.get(key, default)
    return default if v is None else v


def config_from_transformer_lens(cfg: dict) -> dict:
    """The bundle's model config from a HookedTransformerConfig.to_dict() (or any dict with its names);
    refuses, by name, every setting the app would compute differently."""
    d_model, d_head = cfg.get("d_model"), cfg.get("d_head")
    n_heads = cfg.get("n_heads")
    if (n_heads is None or n_heads == -1) and d_model and d_head:
        n_heads = d_model // d_head  # HookedTransformerConfig's own default
    cfg = {**cfg, "n_heads": n_heads}
    if cfg.get("attn_only"):
        raise BundleError("not supported: attention-only models have no MLP; the app's blocks are attention then MLP (attn_only=True)")
    missing = [k for k in ("n_layers", "d_model", "n_heads", "d_head", "d_mlp", "d_vocab", "n_ctx", "act_fn") if cfg.get(k) in (None, -1)]
    if missing:
        raise BundleError(f"the model config lacks {', '.join(missing)}")
    pos = _get(cfg, "positional_embedding_type", "standard")
    if pos not in ("standard", "rotary"):
        why = {"shortformer": "shortformer positions (added to queries and keys only)",
               "alibi": "ALiBi attention biases", "relative_positional_bias": "relative attention biases (T5)"}.get(pos, pos)
        raise BundleError(f"not supported: positional_embedding_type={pos!r}: {why}; the app computes learned absolute positional "
                          "embeddings and GPT-NeoX's rotary embeddings only")
    norm = cfg.get("normalization_type", "LN")
    if norm not in ("LN", "LNPre"):
        why = "RMSNorm" if norm in ("RMS", "RMSPre") else ("no normalization at all" if norm is None else norm)
        raise BundleError(f"not supported: normalization_type={norm!r} ({why}); the app computes LayerNorm (LN, or LNPre once folded)")
    for key, ok, why in _NONSTANDARD:
        if key not in cfg:
            continue
        v = cfg[key]
        if key == "n_key_value_heads":
            if v is not None and v != n_heads:
                raise BundleError(f"not supported: n_key_value_heads={v}: {why}")
            continue
        if not ok(v):
            raise BundleError(f"not supported: {key}={v!r}: {why}")
    d_vocab_out = cfg.get("d_vocab_out")
    if d_vocab_out not in (None, -1, cfg["d_vocab"]):
        raise BundleError(f"not supported: d_vocab_out={d_vocab_out} differs from d_vocab={cfg['d_vocab']}; the app unembeds to the input vocabulary")
    act = cfg["act_fn"]
    if act not in ACT_FNS:
        why = " (SoLU has a LayerNorm inside the MLP)" if str(act).startswith("solu") else ""
        raise BundleError(f"not supported: act_fn={act!r}{why}; the app computes gelu (erf), gelu_new/gelu_fast (tanh) and relu")
    if cfg["n_heads"] * cfg["d_head"] != cfg["d_model"]:
        raise BundleError(f"not supported: n_heads·d_head = {cfg['n_heads'] * cfg['d_head']} differs from d_model = {cfg['d_model']}")
    out = {k: int(cfg[k]) for k in ("n_layers", "d_model", "n_heads", "d_head", "d_mlp", "d_vocab", "n_ctx")}
    out.update({"act_fn": ACT_FNS[act], "normalization_type": norm, "eps": float(_get(cfg, "eps", 1e-5)),
                "positional_embedding_type": pos})
    if pos == "rotary":
        out.update(rotary_config(cfg))
    if cfg.get("parallel_attn_mlp"):
        out["parallel_attn_mlp"] = True
    scales = attn_scales(cfg)
    if any(x != math.sqrt(out["d_head"]) for x in scales):
        out["attn_scales"] = scales
    return out


def rotary_config(cfg: dict) -> dict:
    """rotary_dim and rotary_base of a rotary config, refusing what the app's rotary (GPT-NeoX's) is not."""
    if cfg.get("rotary_adjacent_pairs"):
        raise BundleError("not supported: rotary_adjacent_pairs=True (GPT-J's layout, rotating adjacent pairs); the app rotates "
                          "GPT-NeoX's halves (pair i with i + rotary_dim/2)")
    for key, ok, why in (("use_NTK_by_parts_rope", lambda v: not v, "LLaMA 3.1's rescaled rotary frequencies"),
                         ("rotary_scale", lambda v: v in (None, 1), "rotary dims repeated (rotary_scale)")):
        if key in cfg and not ok(cfg[key]):
            raise BundleError(f"not supported: {key}={cfg[key]!r}: {why}; the app computes GPT-NeoX's rotary embeddings")
    dim = cfg.get("rotary_dim")
    if not isinstance(dim, int) or isinstance(dim, bool) or dim <= 0 or dim % 2 or dim > cfg["d_head"]:
        raise BundleError(f"not supported: rotary_dim={dim!r}: a rotary model needs an even rotary_dim ≤ d_head = {cfg['d_head']}")
    base = _get(cfg, "rotary_base", 10000)
    if isinstance(base, bool) or not isinstance(base, (int, float)) or not math.isfinite(base) or base <= 0:
        raise BundleError(f"not supported: rotary_base={base!r}: the rotary frequencies need a positive base")
    return {"rotary_dim": dim, "rotary_base": float(base)}


def attn_scales(cfg: dict) -> list[float]:
    """Each layer's attention-score divisor as TransformerLens's attention computes it: cfg.attn_scale (its
    config fills in sqrt(d_head) when unset, -1 in to_dict()) with use_attn_scale, else 1; then times layer+1
    with scale_attn_by_inverse_layer_idx (GPT-2's option of that name)."""
    use = cfg.get("use_attn_scale")
    given = cfg.get("attn_scale")
    if use is None or bool(use):
        if given is None or given == -1:
            base = math.sqrt(cfg["d_head"])
        elif isinstance(given, bool) or not isinstance(given, (int, float)) or not math.isfinite(given) or given <= 0:
            raise BundleError(f"not supported: attn_scale={given!r}: attention scores must be divided by a positive number")
        else:
            base = float(given)
    else:
        base = 1.0
    by_layer = bool(cfg.get("scale_attn_by_inverse_layer_idx"))
    return [base * (l + 1) if by_layer else base for l in range(int(cfg["n_layers"]))]


def processing_from_kwargs(kwargs: dict | None) -> tuple[dict, list[str]]:
    """The weight processing a SAELens SAE's model saw: from_pretrained_no_processing(**model_from_pretrained_kwargs).
    Returns (flags, notes); refuses kwargs the exporter cannot reproduce."""
    kwargs = dict(kwargs or {})
    flags = dict(NO_PROCESSING)
    notes: list[str] = []
    for k in PROCESSING_FLAGS:
        if k in kwargs:
            flags[k] = bool(kwargs.pop(k))
    if kwargs.pop("refactor_factored_attn_matrices", False):
        notes.append("model_from_pretrained_kwargs asks for refactor_factored_attn_matrices: it changes W_Q, W_K, W_V, W_O "
                     "but no product of them, so no hook the SAE can sit on; the bundle keeps the unrefactored weights")
    # Loading options: where and in what precision the model ran, which checkpoint, how prompts are tokenized.
    loading = {"device", "n_devices", "move_to_device", "dtype", "torch_dtype", "default_prepend_bos", "default_padding_side",
               "trust_remote_code", "checkpoint_index", "checkpoint_value", "checkpoint_label", "first_n_layers", "n_ctx"}
    for k in sorted(set(kwargs) & loading):
        v = kwargs.pop(k)
        if k in ("dtype", "torch_dtype") and str(v) not in ("float32", "torch.float32"):
            notes.append(f"the SAE's model ran in {v}; the bundle computes in float32, so its hook values differ from the "
                         "SAE's training activations by that precision's rounding")
        elif k.startswith("checkpoint_"):
            notes.append(f"model_from_pretrained_kwargs selects a training checkpoint ({k}={v!r}): offline, the state dict must be that checkpoint")
    if kwargs:
        raise BundleError(f"not supported: model_from_pretrained_kwargs has {', '.join(sorted(kwargs))}, which the exporter "
                          "does not know how to reproduce (it knows fold_ln, center_writing_weights, center_unembed, "
                          "fold_value_biases, refactor_factored_attn_matrices and loading options such as dtype)")
    return flags, notes


def _np(v) -> np.ndarray:
    if hasattr(v, "detach"):
        v = v.detach().cpu()
        if v.dtype == torch.bfloat16:
            v = v.float()
        return v.numpy()
    return np.asarray(v)


def looks_centred(params: dict, n_layers: int) -> bool:
    """Whether every weight writing to the residual stream already has zero mean over d_model."""
    names = [n for n in ("embed.W_E", "pos_embed.W_pos") if n in params] + [f"blocks.{l}.{n}" for l in range(n_layers) for n in ("attn.W_O", "mlp.W_out")]
    for n in names:
        w = params[n]
        rms = float(np.sqrt(np.mean(w * w))) or 1.0
        # 1e-3 of the RMS: far above the rounding of weights centred and then stored in bfloat16, far below
        # the row means of weights that were not centred.
        if float(np.abs(w.mean(-1)).max()) > 1e-3 * rms:
            return False
    return True


def prepare_model(state_dict: dict, tl_cfg: dict, *, processed: dict | None = None, wanted: dict | None = None,
                  hook_point: str | None = None) -> tuple[dict, dict, list[str]]:
    """(params float64 numpy, the bundle's model config with `processing`, notes).

    `processed`: the processing the state dict already has; `wanted`: the processing the SAE's model had.
    What is wanted is applied (in float64, TransformerLens's formulas, tools/ftlib/model.py); processing
    already done that the SAE's model did not have is harmless unless it changes the SAE's hook (centred
    writing weights under a residual-stream SAE), which is refused.
    """
    cfg = config_from_transformer_lens(tl_cfg)
    notes: list[str] = []
    done = {k: bool((processed or {}).get(k, False)) for k in PROCESSING_FLAGS}
    want = {k: bool((wanted or {}).get(k, False)) for k in PROCESSING_FLAGS}
    if cfg["normalization_type"] == "LNPre":
        done["fold_ln"] = True  # TransformerLens makes a model LNPre by folding its LayerNorms
    from ftlib.bundle import expected_model_shapes

    shapes = expected_model_shapes(cfg)
    missing = [k for k in shapes if k not in state_dict]
    if missing:
        raise BundleError(f"the model state dict lacks {missing[0]} (expected shape {list(shapes[missing[0]])})"
                          + (f" and {len(missing) - 1} more" if len(missing) > 1 else ""))
    params = {k: _np(state_dict[k]).astype(np.float64) for k in shapes}
    for k, shape in shapes.items():
        if tuple(params[k].shape) != shape:
            raise BundleError(f"model tensor {k} has shape {list(params[k].shape)}, expected {list(shape)}")
    hook = hook_point.split(".", 2)[-1] if hook_point else ""
    centred = looks_centred(params, cfg["n_layers"])
    if done["center_writing_weights"] and not centred:
        raise BundleError("the state dict is declared processed with center_writing_weights, but its writing weights "
                          "(W_E, W_pos, W_O, W_out) do not have zero mean over d_model")
    if centred and not want["center_writing_weights"] and hook in RESIDUAL_WRITES:
        raise BundleError(f"the state dict's writing weights are already centred (center_writing_weights: declared, or their "
                          f"mean over d_model is zero), but this SAE was "
                          f"trained on a model loaded without it, and {hook_point} differs between the two (it loses its mean "
                          "over d_model): export from the unprocessed state dict")
    done["center_writing_weights"] = centred
    if hook == "attn.hook_z" and done["fold_value_biases"] and not want["fold_value_biases"]:
        raise BundleError(f"the state dict is declared processed with fold_value_biases, but this SAE was trained on a "
                          f"model loaded without it, and {hook_point} differs between the two (each head's z loses its "
                          "value bias b_V, which the folded weights no longer hold): export from the unprocessed state dict")
    if hook == "attn.hook_z" and not done["fold_value_biases"] and not want["fold_value_biases"]:
        b_v = [params[f"blocks.{l}.attn.b_V"] for l in range(cfg["n_layers"])]
        if all(not np.any(b) for b in b_v):
            notes.append(f"every b_V in the state dict is zero, as after fold_value_biases, which this SAE's model did "
                         f"not have; if the state dict was processed with it, {hook_point} lacks the value biases the "
                         "SAE saw (export from the unprocessed state dict)")
    for k in PROCESSING_FLAGS:
        if done[k] and not want[k]:
            notes.append(f"the state dict already has {k}, which the SAE's model did not; it leaves {hook_point or 'the hook'} unchanged")
    apply = {k: want[k] and not done[k] for k in PROCESSING_FLAGS}
    if apply["fold_ln"] and cfg["normalization_type"] != "LN":
        apply["fold_ln"] = False
    if any(apply.values()):
        t = {k: torch.from_numpy(v) for k, v in params.items()}
        t, norm = ftmodel.process_weights(t, cfg, **apply)
        cfg["normalization_type"] = norm
        params = {k: v.numpy() for k, v in t.items()}
    cfg["processing"] = {k: done[k] or apply[k] for k in PROCESSING_FLAGS}
    return params, cfg, notes
