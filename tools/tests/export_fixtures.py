"""Small generated inputs for the exporter's tests, in the formats researchers bring, and the reference
computation they are checked against.

Models: random TransformerLens state dicts (LN with non-trivial weights and biases, buffers included)
with their config dicts, GPT-2 style (gelu_new) and Neel Nanda's gelu-Nl style (gelu). SAEs: Neel's
AutoEncoder checkpoint (.pt + _cfg.json) and SAELens folders in three config layouts and three dtypes.
Tokens: .npy, .safetensors, .pt. The reference is independent of the exporter: the raw model's hook value
(tools/ftlib/model.py on the unprocessed weights; centred over d_model where the SAE's model had
center_writing_weights, which is exactly what centring the writing weights does to the residual stream)
encoded with the source's own formula and tensors.
"""
from __future__ import annotations

import json
import math
import os

import numpy as np
import torch

from conftest import ROOT
from ftlib import model as ftmodel
from ftlib import safetensors_io
from ftlib.neox import neox_forward

TINY = os.path.join(ROOT, "test", "fixtures", "tiny")
D_MODEL, N_HEADS, D_HEAD, D_MLP, D_VOCAB, N_CTX = 32, 4, 8, 64, 300, 16
RESIDUAL_WRITES = ("hook_resid_pre", "hook_resid_mid", "hook_resid_post", "hook_attn_out", "hook_mlp_out")


def tl_cfg(kind: str = "gpt2", n_layers: int = 2, **over) -> dict:
    """A HookedTransformerConfig.to_dict() as JSON would hold it (dtype as a string, every flag present)."""
    cfg = {
        "model_name": f"{kind}-{n_layers}l-test", "n_layers": n_layers, "d_model": D_MODEL, "n_heads": N_HEADS, "d_head": D_HEAD,
        "d_mlp": D_MLP, "d_vocab": D_VOCAB, "d_vocab_out": D_VOCAB, "n_ctx": N_CTX, "eps": 1e-5,
        "act_fn": "gelu_new" if kind == "gpt2" else "gelu", "normalization_type": "LN", "positional_embedding_type": "standard",
        "original_architecture": "GPT2LMHeadModel" if kind == "gpt2" else "neel", "use_attn_scale": True, "attn_scale": math.sqrt(D_HEAD),
        "scale_attn_by_inverse_layer_idx": False, "parallel_attn_mlp": False, "attn_only": False, "gated_mlp": False,
        "final_rms": False, "use_local_attn": False, "attn_types": None, "n_key_value_heads": None, "rotary_dim": None,
        "num_experts": None, "post_embedding_ln": False, "attention_dir": "causal", "default_prepend_bos": True,
        "tokenizer_prepends_bos": False, "dtype": "torch.float32", "device": "cpu", "init_mode": "gpt2", "seed": None,
        "output_logits_soft_cap": -1.0, "attn_scores_soft_cap": -1.0, "use_hook_mlp_in": False, "use_split_qkv_input": False,
    }
    if kind == "neox":  # TransformerLens's GPT-NeoX/Pythia config: rotary on part of each head, parallel blocks
        cfg.update({"act_fn": "gelu", "original_architecture": "GPTNeoXForCausalLM", "positional_embedding_type": "rotary",
                    "rotary_dim": D_HEAD // 2, "rotary_base": 10000, "rotary_adjacent_pairs": False, "parallel_attn_mlp": True,
                    "use_NTK_by_parts_rope": False})
    cfg.update(over)
    return cfg


def tl_state_dict(cfg: dict, seed: int = 0) -> dict:
    """Random float32 weights under TransformerLens names, with LayerNorm weights ≠ 1, biases ≠ 0, writing
    weights with a mean over d_model (so every kind of processing changes something), and the buffers a
    HookedTransformer's state_dict() carries."""
    p = ftmodel.init_params({**cfg, "init_std": 0.3}, seed=seed)
    g = torch.Generator().manual_seed(seed + 100)
    d = cfg["d_model"]
    for l in range(cfg["n_layers"]):
        pre = f"blocks.{l}."
        for n in ("ln1", "ln2"):
            p[pre + n + ".w"] = 1 + 0.3 * torch.randn(d, generator=g)
            p[pre + n + ".b"] = 0.2 * torch.randn(d, generator=g)
        for n in ("attn.b_Q", "attn.b_K", "attn.b_V"):
            p[pre + n] = 0.3 * torch.randn(cfg["n_heads"], cfg["d_head"], generator=g)
        for n, width in (("attn.b_O", d), ("mlp.b_in", cfg["d_mlp"]), ("mlp.b_out", d)):
            p[pre + n] = 0.2 * torch.randn(width, generator=g)
        p[pre + "attn.W_O"] = p[pre + "attn.W_O"] + 0.1
        p[pre + "mlp.W_out"] = p[pre + "mlp.W_out"] - 0.05
        p[pre + "attn.mask"] = torch.ones(cfg["n_ctx"], cfg["n_ctx"], dtype=torch.bool).tril()
        p[pre + "attn.IGNORE"] = torch.tensor(-1e5)
    p["embed.W_E"] = p["embed.W_E"] + 0.2 * torch.randn(cfg["d_vocab"], 1, generator=g)
    p["pos_embed.W_pos"] = p["pos_embed.W_pos"] - 0.1
    p["ln_final.w"] = 1 + 0.3 * torch.randn(d, generator=g)
    p["ln_final.b"] = 0.2 * torch.randn(d, generator=g)
    p["unembed.b_U"] = 0.2 * torch.randn(cfg["d_vocab"], generator=g)
    if cfg.get("positional_embedding_type") == "rotary":  # no W_pos; TransformerLens keeps its rotary tables as buffers
        del p["pos_embed.W_pos"]
        for l in range(cfg["n_layers"]):
            p[f"blocks.{l}.attn.rotary_sin"] = torch.zeros(cfg["n_ctx"], cfg["rotary_dim"])
            p[f"blocks.{l}.attn.rotary_cos"] = torch.ones(cfg["n_ctx"], cfg["rotary_dim"])
    return {k: v.float() if v.is_floating_point() else v for k, v in p.items()}


def write_model(tmp, cfg: dict, sd: dict, name: str = "model") -> tuple[str, str]:
    pt, js = os.path.join(tmp, f"{name}.pt"), os.path.join(tmp, f"{name}_cfg.json")
    torch.save(sd, pt)
    with open(js, "w") as f:
        json.dump(cfg, f)
    return pt, js


def tokenizer_path() -> str:
    return os.path.join(TINY, "tokenizer.json")


def tokens(n_seq: int = 6, seq_len: int = N_CTX, seed: int = 0, bos: int | None = 0) -> np.ndarray:
    t = np.random.default_rng(seed).integers(1, D_VOCAB, size=(n_seq, seq_len)).astype(np.int32)
    if bos is not None:
        t[:, 0] = bos
    return t


def write_tokens(tmp, toks: np.ndarray, fmt: str) -> str:
    path = os.path.join(tmp, f"tokens.{fmt}")
    if fmt == "npy":
        np.save(path, toks)
    elif fmt == "safetensors":
        safetensors_io.save(path, {"tokens": toks})
    elif fmt == "pt":
        torch.save(torch.from_numpy(toks.astype(np.int64)), path)
    return path


def sae_tensors(d_in: int, d_sae: int = 48, seed: int = 0, dtype=torch.float32) -> dict:
    """Random SAE tensors in `dtype`; b_enc set so that features fire on some tokens and not others."""
    g = torch.Generator().manual_seed(seed)
    W_enc = torch.randn(d_in, d_sae, generator=g) / math.sqrt(d_in)
    return {"W_enc": W_enc.to(dtype), "b_enc": (0.3 * torch.randn(d_sae, generator=g) - 0.1).to(dtype),
            "W_dec": torch.randn(d_sae, d_in, generator=g).to(dtype), "b_dec": (0.2 * torch.randn(d_in, generator=g)).to(dtype)}


def write_neel(tmp, w: dict, cfg: dict, name: str = "25") -> str:
    pt = os.path.join(tmp, f"{name}.pt")
    torch.save(w, pt)
    with open(os.path.join(tmp, f"{name}_cfg.json"), "w") as f:
        json.dump(cfg, f)
    return pt


NEEL_1L_CFG = {"seed": 52, "batch_size": 4096, "buffer_mult": 384, "lr": 1e-4, "num_tokens": 2_000_000_000, "l1_coeff": 3e-4,
               "beta1": 0.9, "beta2": 0.99, "dict_mult": 2, "seq_len": 128, "d_mlp": D_MLP, "enc_dtype": "fp32",
               "remove_rare_dir": False, "model_batch_size": 512, "buffer_size": 1572864, "buffer_batches": 12288}


def _st_value(t: torch.Tensor):
    if t.dtype == torch.bfloat16:
        return safetensors_io.BF16(t.view(torch.int16).numpy().view(np.uint16))
    return t.numpy()


def write_saelens(tmp, name: str, w: dict, cfg: dict) -> str:
    folder = os.path.join(tmp, name)
    os.makedirs(folder, exist_ok=True)
    safetensors_io.save(os.path.join(folder, "sae_weights.safetensors"), {k: _st_value(v) for k, v in w.items()})
    with open(os.path.join(folder, "cfg.json"), "w") as f:
        json.dump(cfg, f)
    return folder


def saelens_cfg(layout: str, hook: str, d_in: int, d_sae: int, dtype: str = "float32", kwargs: dict | None = None,
                model_name: str = "gpt2-2l-test", **over) -> dict:
    """cfg.json as SAELens writes it: 'current' (≥ 6, metadata), 'v5' (1–5, top-level hook_name), 'old' (pre-1, hook_point)."""
    if layout == "current":
        cfg = {"architecture": "standard", "d_in": d_in, "d_sae": d_sae, "dtype": dtype, "device": "cpu",
               "apply_b_dec_to_input": True, "normalize_activations": "none", "reshape_activations": "none",
               "metadata": {"sae_lens_version": "6.12.0", "sae_lens_training_version": "6.12.0", "model_name": model_name,
                            "hook_name": hook, "hook_head_index": None, "prepend_bos": True, "context_size": N_CTX,
                            "dataset_path": "fake/dataset", "model_class_name": "HookedTransformer",
                            "model_from_pretrained_kwargs": kwargs if kwargs is not None else {"center_writing_weights": False}}}
    elif layout == "v5":
        cfg = {"architecture": "standard", "d_in": d_in, "d_sae": d_sae, "dtype": dtype, "device": "cpu", "model_name": model_name,
               "hook_name": hook, "hook_layer": int(hook.split(".")[1]), "hook_head_index": None, "activation_fn_str": "relu",
               "activation_fn_kwargs": {}, "apply_b_dec_to_input": True, "finetuning_scaling_factor": False,
               "sae_lens_training_version": "3.13.0", "prepend_bos": True, "dataset_path": "fake/dataset", "context_size": N_CTX,
               "normalize_activations": "none", "model_from_pretrained_kwargs": kwargs or {}}
    elif layout == "old":
        cfg = {"model_name": model_name, "hook_point": hook, "hook_point_layer": int(hook.split(".")[1]), "hook_point_head_index": None,
               "d_in": d_in, "d_sae": d_sae, "dtype": f"torch.{dtype}", "device": "cuda", "expansion_factor": d_sae // d_in,
               "activation_fn_str": "relu", "apply_b_dec_to_input": True, "normalize_activations": False, "prepend_bos": True,
               "context_size": N_CTX, "dataset_path": "fake/dataset"}
        if kwargs is not None:
            cfg["model_from_pretrained_kwargs"] = kwargs
    else:
        raise ValueError(layout)
    cfg.update(over)
    return cfg


def tl_attn_divisor(cfg: dict, layer: int) -> float:
    """What TransformerLens's attention layer `layer` divides its scores by, as its AbstractAttention.__init__
    sets self.attn_scale: cfg.attn_scale (the config's __post_init__ fills in sqrt(d_head) for -1) when
    use_attn_scale, else 1.0; then multiplied by layer_id + 1 when scale_attn_by_inverse_layer_idx."""
    if cfg.get("use_attn_scale", True):
        scale = cfg.get("attn_scale", -1.0)
        scale = math.sqrt(cfg["d_head"]) if scale in (None, -1.0) else scale
    else:
        scale = 1.0
    if cfg.get("scale_attn_by_inverse_layer_idx", False):
        scale *= layer + 1
    return scale


def forward_cache(p: dict, cfg: dict, toks: np.ndarray) -> dict:
    """Every hook value of a float64 forward pass: ftlib.model's, or for GPT-NeoX-style configs (rotary,
    parallel blocks) tools/golden_neox.py's own, whose hook_z is already flattened head-major."""
    t = torch.from_numpy(toks.astype(np.int64))
    with torch.no_grad():
        if cfg.get("positional_embedding_type") == "rotary" or cfg.get("parallel_attn_mlp"):
            return neox_forward(p, cfg, t)
        cache: dict = {}
        ftmodel.forward(p, cfg, t, cache=cache)
        return cache


def reference_hook(sd: dict, cfg: dict, toks: np.ndarray, hook_point: str, centred: bool) -> torch.Tensor:
    """The hook value the SAE was trained on, from the raw (unprocessed) weights, with TransformerLens's
    attention divisors for the config's scaling flags."""
    from ftlib.bundle import expected_model_shapes

    c = {**cfg, "normalization_type": "LN", "attn_scales": [tl_attn_divisor(cfg, l) for l in range(cfg["n_layers"])]}
    p = {k: sd[k].double() for k in expected_model_shapes(c)}
    x = forward_cache(p, c, toks)[hook_point]
    if centred and hook_point.split(".", 2)[-1] in RESIDUAL_WRITES:
        x = x - x.mean(-1, keepdim=True)
    return x


def reference_acts(x: torch.Tensor, w: dict, apply_b_dec_to_input: bool = True, norm_scale: float = 1.0,
                   kind: str = "relu", k: int | None = None) -> torch.Tensor:
    """The source's own encoder on its own tensors, as SAELens defines each kind, with
    pre = (x·s − b_dec·[apply]) W_enc + b_enc: standard ReLU(pre); jumprelu ReLU(pre)·(pre > threshold);
    topk: the k largest pre-activations of each token (torch.topk), ReLU'd, scattered into zeros."""
    W = {key: v.double() for key, v in w.items()}
    sae_in = x * norm_scale - (W["b_dec"] if apply_b_dec_to_input else 0)
    pre = sae_in @ W["W_enc"] + W["b_enc"]
    if kind == "jumprelu":
        return torch.relu(pre) * (pre > W["threshold"]).double()
    if kind == "topk":
        top = torch.topk(pre, k=k, dim=-1)
        return torch.zeros_like(pre).scatter_(-1, top.indices, torch.relu(top.values))
    return torch.relu(pre)


def bundle_acts(out: str) -> tuple[dict, torch.Tensor, dict]:
    """(bundle.json, the SAE acts the bundle defines on its own tokens, its SAE tensors), read as the app reads it."""
    from ftlib import bundle

    meta, params, sae, _, toks = bundle.read_bundle(out)
    P = {k: torch.from_numpy(v) for k, v in params.items()}
    x = forward_cache(P, meta["model"], toks)[meta["sae"]["hook_point"]]
    if x.dim() == 4:  # docs/BUNDLE.md: hook_z's heads concatenated, index h·d_head + i
        x = x.reshape(*x.shape[:-2], x.shape[-2] * x.shape[-1])
    S = {k: torch.from_numpy(v) for k, v in sae.items()}
    s = meta["sae"]
    pre = bundle.sae_pre_acts(s, S, x)
    if s["kind"] == "jumprelu":
        acts = torch.relu(pre) * (pre > S["threshold"]).double()
    elif s["kind"] == "topk":  # docs/BUNDLE.md: each token's k largest, equal values lower feature id first
        keep = torch.sort(pre, dim=-1, descending=True, stable=True).indices[..., : s["k"]]
        acts = torch.relu(pre) * torch.zeros_like(pre).scatter_(-1, keep, 1.0)
    else:
        acts = torch.relu(pre)
    return meta, acts, sae
