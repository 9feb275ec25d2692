"""The corpus side of the exporter: token files offline, BOS handling, and the tokenizer file."""
from __future__ import annotations

import json
import os

import numpy as np

from ftlib import safetensors_io
from ftlib.bundle import BundleError


def load_tokens(path: str) -> np.ndarray:
    """Token ids [n_seq, seq_len] from .npy, .safetensors (tensor `tokens`, or its only tensor) or .pt
    (a tensor saved with torch.save, e.g. `tokenized_data["tokens"]`)."""
    if not os.path.exists(path):
        raise BundleError(f"--tokens {path} does not exist")
    if path.endswith(".npy"):
        arr = np.load(path, allow_pickle=False)
    elif path.endswith(".safetensors"):
        tensors = safetensors_io.load(path)
        if "tokens" in tensors:
            arr = tensors["tokens"]
        elif len(tensors) == 1:
            arr = next(iter(tensors.values()))
        else:
            raise BundleError(f"{path} holds {', '.join(sorted(tensors))}; name the token tensor `tokens`")
    elif path.endswith(".pt"):
        import torch

        t = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(t, dict) and "tokens" in t:
            t = t["tokens"]
        if not hasattr(t, "numpy"):
            raise BundleError(f"{path} holds a {type(t).__name__}, not a tensor of token ids")
        arr = t.numpy()
    else:
        raise BundleError(f"--tokens {path}: expected a .npy, .safetensors or .pt file")
    if arr.dtype.kind not in "iu":
        raise BundleError(f"{path}: token ids must be integers, got {arr.dtype}")
    if arr.ndim != 2:
        raise BundleError(f"{path}: tokens must be [n_seq, seq_len], got shape {list(arr.shape)}")
    return arr


def load_tokenizer(path: str) -> dict:
    if not os.path.exists(path):
        raise BundleError(f"--tokenizer {path} does not exist")
    with open(path, encoding="utf-8") as f:
        try:
            tj = json.load(f)
        except json.JSONDecodeError as e:
            raise BundleError(f"{path} is not JSON ({e.msg}); --tokenizer takes a Hugging Face tokenizer.json") from e
    if not isinstance(tj, dict) or not isinstance(tj.get("model"), dict):
        raise BundleError(f"{path} is not a Hugging Face tokenizers file (tokenizer.json, with a 'model' section)")
    return tj


def special_token_ids(tokenizer: dict) -> dict[int, str]:
    return {t["id"]: t.get("content", "") for t in tokenizer.get("added_tokens") or [] if t.get("special", True)}


def decide_bos(tokens: np.ndarray, tokenizer: dict, bos_token_id: int | str | None, want_bos: bool | None) -> tuple[bool, int | None, list[str]]:
    """(prepend_bos, bos_token_id, notes). An explicit id must start every row ('none': no BOS); otherwise
    a special token that starts every row is taken as BOS. `want_bos`: what the SAE was trained with, when known."""
    notes: list[str] = []
    first = tokens[:, 0]
    if bos_token_id == "none":
        return False, None, notes
    if bos_token_id is not None:
        bad = np.nonzero(first != bos_token_id)[0]
        if len(bad):
            raise BundleError(f"--bos-token-id {bos_token_id}: row {int(bad[0])} of the tokens starts with {int(first[bad[0]])}; "
                              "every row must start with BOS when one is declared")
        return True, int(bos_token_id), notes
    if len(np.unique(first)) == 1 and int(first[0]) in special_token_ids(tokenizer):
        t = int(first[0])
        notes.append(f"every row starts with the special token {special_token_ids(tokenizer)[t]!r} (id {t}): taken as BOS")
        return True, t, notes
    if want_bos:
        notes.append("the SAE was trained with a BOS token at the start of each sequence, but these rows do not all start with "
                     "one special token: prepend_bos is false, and typed prompts get no BOS either")
    return False, None, notes
