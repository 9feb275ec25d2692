"""The online half of the exporter: models through TransformerLens, SAEs and datasets from the Hugging Face
hub. Each library is imported only when its path runs, so the offline exporter (and its tests) need
torch and numpy alone.

APIs used (public, as of TransformerLens 2.x–3.x, SAELens 5–6, datasets 2–4):
  transformer_lens.HookedTransformer.from_pretrained(name, device=…)               Neel Nanda's SAEs' model
  transformer_lens.HookedTransformer.from_pretrained_no_processing(name, **kwargs) SAELens's (sae_lens/load_model.py)
  transformer_lens.utils.tokenize_and_concatenate(dataset, tokenizer, max_length=…, column_name=…, add_bos_token=…)
  transformer_lens.loading_from_pretrained.get_official_model_name(name)
  datasets.load_dataset(name, split=…), Dataset.shuffle(seed), Dataset.select(range(n))
  huggingface_hub.hf_hub_download(repo_id=…, filename=…)
  sae_lens.loading.pretrained_saes_directory: get_pretrained_saes_directory, get_repo_id_and_folder_name,
      get_config_overrides, get_norm_scaling_factor
"""
from __future__ import annotations

import importlib
import json
import os

import numpy as np

from ftlib.bundle import BundleError

from .sae import NEEL_RUNS, Sae, load_neel, load_saelens
from .tlmodel import FROM_PRETRAINED, PROCESSING_FLAGS

OFFLINE_HINT = ("offline, export from files instead: --model-state FILE --model-cfg FILE.json, --sae neel:FILE.pt or "
                "saelens:DIR, --tokens FILE --tokenizer tokenizer.json")


def need(module: str, package: str, what: str):
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise BundleError(f"{what} needs the Python package {package} (pip install {package}) and network access; {OFFLINE_HINT}") from e


def version(package: str) -> str:
    try:
        from importlib.metadata import version as v

        return v(package)
    except Exception:  # noqa: BLE001 - unknown version is not an error
        return "unknown version"


def hub_download(repo_id: str, filename: str) -> str:
    hub = need("huggingface_hub", "huggingface_hub", f"downloading {filename} from {repo_id}")
    return hub.hf_hub_download(repo_id=repo_id, filename=filename)


def neel_from_hub(run: str, hook_point: str | None = None) -> Sae:
    """NeelNanda/sparse_autoencoder RUN.pt + RUN_cfg.json (run1 is 25, run2 is 47), as AutoEncoder.load_from_hf."""
    run = NEEL_RUNS.get(run, run)
    pt = hub_download("NeelNanda/sparse_autoencoder", f"{run}.pt")
    cfg = hub_download("NeelNanda/sparse_autoencoder", f"{run}_cfg.json")
    return load_neel(pt, cfg, hook_point, source=f"huggingface NeelNanda/sparse_autoencoder {run}.pt ({run}_cfg.json)")


def saelens_release(release: str, sae_id: str, model_kwargs: dict | None = None) -> Sae:
    """A SAELens release's SAE, downloaded as SAE.from_pretrained(release, sae_id) does, with the release's
    config overrides and normalization constant; releases SAELens converts from other formats are refused."""
    d = need("sae_lens.loading.pretrained_saes_directory", "sae-lens", f"resolving the SAELens release {release}")
    info = d.get_pretrained_saes_directory().get(release)
    if info is not None and getattr(info, "conversion_func", None):
        raise BundleError(f"the SAELens release {release} is stored in another format (SAELens converts it with "
                          f"{info.conversion_func!r}); save it as a SAELens folder first — SAE.from_pretrained({release!r}, "
                          f"{sae_id!r}).save_model(DIR) — and pass --sae saelens:DIR")
    repo_id, folder = d.get_repo_id_and_folder_name(release, sae_id)
    overrides = d.get_config_overrides(release, sae_id) or {}
    factor = d.get_norm_scaling_factor(release, sae_id)
    prefix = f"{folder}/" if folder else ""
    cfg = hub_download(repo_id, f"{prefix}cfg.json")
    weights = hub_download(repo_id, f"{prefix}sae_weights.safetensors")
    if os.path.dirname(cfg) != os.path.dirname(weights):
        raise BundleError(f"{repo_id}: cfg.json and sae_weights.safetensors did not arrive in one folder")
    return load_saelens(os.path.dirname(cfg), overrides=overrides, model_kwargs=model_kwargs, norm_scaling_factor=factor,
                        source=f"SAELens release {release}, SAE {sae_id} (huggingface {repo_id}/{prefix})")


def official_name(name: str) -> str:
    try:
        loading = importlib.import_module("transformer_lens.loading_from_pretrained")
        return loading.get_official_model_name(name)
    except Exception:  # noqa: BLE001 - an unknown alias compares as itself
        return name


def load_model(name: str, sae: Sae, allow_mismatch: bool = False):
    """(state dict, config dict, tokenizer, processing applied, source text): the model as the SAE's training
    loaded it: from_pretrained for Neel Nanda's SAEs, from_pretrained_no_processing(**model_from_pretrained_kwargs)
    for SAELens's."""
    tl = need("transformer_lens", "transformer_lens", f"--model {name}")
    if sae.model_name and not allow_mismatch and official_name(sae.model_name) != official_name(name):
        raise BundleError(f"the SAE was trained on {sae.model_name}, but --model is {name} (pass --allow-model-mismatch if "
                          "they are the same weights under two names)")
    HookedTransformer = tl.HookedTransformer
    if sae.origin == "neel":
        model = HookedTransformer.from_pretrained(name, device="cpu")
        processed = dict(FROM_PRETRAINED)
        call = f"HookedTransformer.from_pretrained({name!r})"
    else:
        kwargs = {k: v for k, v in sae.model_kwargs.items() if k not in ("device", "n_devices", "move_to_device")}
        model = HookedTransformer.from_pretrained_no_processing(name, device="cpu", **kwargs)
        processed = {k: bool(kwargs.get(k, False)) for k in PROCESSING_FLAGS}
        call = f"HookedTransformer.from_pretrained_no_processing({name!r}" + "".join(f", {k}={v!r}" for k, v in kwargs.items()) + ")"
    source = f"transformer_lens {version('transformer_lens')}: {call}"
    return model.state_dict(), model.cfg.to_dict(), model.tokenizer, processed, source


def tokenizer_json(tokenizer) -> dict:
    """The tokenizer as tokenizer.json, taken before tokenize_and_concatenate adds a <PAD> token to it."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise BundleError("the model's tokenizer is not a fast (Rust) tokenizer, so it has no tokenizer.json: pass --tokenizer FILE")
    return json.loads(backend.to_str())


def dataset_tokens(name: str, tokenizer, *, seq_len: int, n_seq: int, prepend_bos: bool, split: str = "train",
                   column: str = "text", shuffle_seed: int | None = 42) -> tuple[np.ndarray, str, list[str]]:
    """The research notebook's corpus: load_dataset(name, split) → tokenize_and_concatenate(max_length=seq_len)
    → shuffle(42) → the first n_seq rows. Returns (tokens, how, notes).

    tokenize_and_concatenate's rows depend on TransformerLens's version: up to 3.0 it joins the documents
    with EOS and tokenizes 20 character chunks of each batch (what the notebook ran); from 3.1 it tokenizes
    each document on its own. The version is recorded, and a note says when it is not the notebook's."""
    datasets = need("datasets", "datasets", f"--dataset {name}")
    tl_utils = need("transformer_lens.utils", "transformer_lens", f"--dataset {name}")
    data = datasets.load_dataset(name, split=split)
    tokenized = tl_utils.tokenize_and_concatenate(data, tokenizer, max_length=seq_len, column_name=column, add_bos_token=prepend_bos)
    if shuffle_seed is not None:
        tokenized = tokenized.shuffle(shuffle_seed)
    n = min(n_seq, len(tokenized))
    toks = tokenized.select(range(n))["tokens"]
    if hasattr(toks, "numpy"):
        arr = toks.numpy()
    else:
        arr = np.array([np.asarray(row) for row in toks])
    how = (f"{name} split {split}: transformer_lens {version('transformer_lens')} tokenize_and_concatenate(max_length={seq_len}, "
           f"column_name={column!r}, add_bos_token={prepend_bos})"
           + (f", shuffle({shuffle_seed})" if shuffle_seed is not None else ", unshuffled")
           + f", first {n} of {len(tokenized)} rows")
    notes = []
    tl_version = version("transformer_lens")
    try:
        major, minor = (int(x) for x in tl_version.split(".")[:2])
        if (major, minor) >= (3, 1):
            notes.append(f"transformer_lens {tl_version} tokenizes each document separately (3.1 and later), so these rows are not the "
                         "research notebook's (transformer_lens < 3.1 splits joined text into chunks): pip install 'transformer_lens<3.1' "
                         "to reproduce its batch/pos labels")
    except ValueError:
        pass
    return arr.astype(np.int64), how, notes
