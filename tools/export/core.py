"""The exporter's core and its command line: inputs resolved (files offline, the hub online), every check
made, then the bundle written (tools/ftlib/bundle.py)."""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

from ftlib import bundle, safetensors_io
from ftlib.bundle import BundleError

from . import corpus
from .sae import NEEL_RUNS, Sae, load_sae_spec
from .tlmodel import FROM_PRETRAINED, PROCESSING_FLAGS, prepare_model

DEFAULT_N_SEQ = 8192
DEFAULT_SEQ_LEN = 128


def export_bundle(out_dir: str, *, state_dict: dict, tl_cfg: dict, sae: Sae, tokenizer: dict, tokens: np.ndarray,
                  dataset: dict, processed: dict | None = None, dtype: str = "float32", sae_dtype: str = "float32",
                  sources: dict | None = None, name: str = "", notes: list | None = None) -> dict:
    """TransformerLens state dict + config + SAE + tokenizer + tokens → bundle folder.

    `processed`: the weight processing the state dict already has (none by default). The SAE's own
    processing (sae.processing) is applied on top, so that the bundle's hook values are those the SAE
    was trained on; bundle.json's model.processing records the result. Every check runs first; a
    refusal raises BundleError and writes nothing.
    """
    _, hook = bundle.parse_hook_point(sae.hook_point)
    if hook not in bundle.HOOK_WIDTHS:
        raise BundleError(f"not yet supported by the app: SAEs on {hook} ({sae.hook_point}); the bundle's hook points are "
                          f"{', '.join(sorted(bundle.HOOK_WIDTHS))}")
    params, model_cfg, model_notes = prepare_model(state_dict, tl_cfg, processed=processed, wanted=sae.processing,
                                                   hook_point=sae.hook_point)
    tokens = np.asarray(tokens)
    if dataset.get("prepend_bos"):
        bos = dataset.get("bos_token_id")
        if bos is None:
            raise BundleError("dataset.prepend_bos is true but no bos_token_id is given")
        if tokens.ndim == 2 and tokens.size and not np.all(tokens[:, 0] == bos):
            row = int(np.nonzero(tokens[:, 0] != bos)[0][0])
            raise BundleError(f"dataset.prepend_bos is true but row {row} of the tokens starts with {int(tokens[row, 0])}, not BOS {bos}")
    all_notes = list(sae.notes) + model_notes + list(notes or [])
    export_info = {"sae": {"source": sae.source, "hook_point": sae.hook_point, "trained_on_processing": sae.processing,
                           "model_name": sae.model_name, "prepend_bos": sae.prepend_bos, "context_size": sae.context_size,
                           "dataset_path": sae.dataset_path},
                   "notes": all_notes}
    return bundle.write_bundle(out_dir, model_cfg=model_cfg, params=params, sae_cfg=sae.cfg(), sae=sae.weights,
                               tokenizer=tokenizer, tokens=tokens, dataset=dataset, dtype=dtype, sae_dtype=sae_dtype,
                               sources=sources, name=name, extra_provenance={"export": export_info})


# --- command line -------------------------------------------------------------------------------------------

def _processed_flags(text: str) -> dict:
    if text in ("", "none"):
        return {k: False for k in PROCESSING_FLAGS}
    if text == "from_pretrained":
        return dict(FROM_PRETRAINED)
    names = [t.strip() for t in text.split(",") if t.strip()]
    bad = [n for n in names if n not in PROCESSING_FLAGS]
    if bad:
        raise BundleError(f"--model-processed: unknown {', '.join(bad)} (none, from_pretrained, or a comma list of {', '.join(PROCESSING_FLAGS)})")
    return {k: k in names for k in PROCESSING_FLAGS}


def load_state_dict(path: str) -> dict:
    if not os.path.exists(path):
        raise BundleError(f"--model-state {path} does not exist")
    if path.endswith(".safetensors"):
        return safetensors_io.load(path)
    import torch

    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001
        raise BundleError(f"{path} is not a torch state dict of tensors ({type(e).__name__}: {e})") from e
    if not isinstance(sd, dict):
        raise BundleError(f"{path} holds a {type(sd).__name__}, not a state dict (save model.state_dict())")
    return sd


def _json_arg(text: str | None, flag: str) -> dict:
    if not text:
        return {}
    try:
        v = json.loads(text)
    except json.JSONDecodeError as e:
        raise BundleError(f"{flag} is not JSON: {e.msg}") from e
    if not isinstance(v, dict):
        raise BundleError(f"{flag} must be a JSON object")
    return v


def resolve_sae(args) -> Sae:
    kwargs = _json_arg(args.sae_model_kwargs, "--sae-model-kwargs")
    kind, _, rest = args.sae.partition(":")
    if kind == "neel" and (rest.isdigit() or rest in NEEL_RUNS):
        from . import online

        return online.neel_from_hub(rest, args.hook_point)
    if kind == "saelens-release":
        release, _, sae_id = rest.partition(":")
        if not release or not sae_id:
            raise BundleError("--sae saelens-release:RELEASE:SAE_ID, e.g. saelens-release:gpt2-small-res-jb:blocks.8.hook_resid_pre")
        from . import online

        return online.saelens_release(release, sae_id, kwargs)
    sae = load_sae_spec(args.sae, hook_point=args.hook_point, sae_cfg=args.sae_cfg, model_kwargs=kwargs)
    if kwargs and sae.origin != "saelens":
        raise BundleError("--sae-model-kwargs is for SAELens SAEs; Neel Nanda's were trained on from_pretrained's model")
    return sae


def run(argv: list[str] | None = None, doc: str | None = None) -> dict:
    """The command: parse argv, resolve the inputs, export. `doc` is the --help text."""
    ap = argparse.ArgumentParser(prog="export_transformer_lens.py", description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    m = ap.add_argument_group("model (one of)")
    m.add_argument("--model", help="TransformerLens model name, loaded online (default: the SAE's model, gelu-1l for neel:RUN)")
    m.add_argument("--model-state", help="a TransformerLens state dict (torch .pt or .safetensors), offline")
    m.add_argument("--model-cfg", help="its config as JSON (HookedTransformerConfig.to_dict()), with --model-state")
    m.add_argument("--model-processed", default="none",
                   help="what processing --model-state already has: none (default), from_pretrained, or a comma list of " + ", ".join(PROCESSING_FLAGS))
    m.add_argument("--allow-model-mismatch", action="store_true", help="accept a --model other than the one the SAE config names")
    s = ap.add_argument_group("SAE")
    s.add_argument("--sae", required=True, help="neel:RUN | neel:FILE.pt | FILE.pt | saelens:DIR | DIR | saelens-release:RELEASE:SAE_ID")
    s.add_argument("--sae-cfg", help="a Neel-style checkpoint's cfg json (default: FILE_cfg.json beside FILE.pt)")
    s.add_argument("--hook-point", help="a Neel-style checkpoint's hook, when its cfg names none (the 1L-Sparse-Autoencoder format means blocks.0.mlp.hook_post)")
    s.add_argument("--sae-model-kwargs", help="JSON merged into a SAELens SAE's model_from_pretrained_kwargs, e.g. '{\"center_writing_weights\": true}'")
    c = ap.add_argument_group("corpus (one of)")
    c.add_argument("--dataset", help="Hugging Face dataset, tokenized as the research notebook does (online)")
    c.add_argument("--dataset-split", default="train")
    c.add_argument("--dataset-column", default="text")
    c.add_argument("--shuffle-seed", default="42", help="seed of the dataset's shuffle after tokenize_and_concatenate (default 42, the notebook's; 'none': unshuffled)")
    c.add_argument("--tokens", help="token ids [n_seq, seq_len] (.npy, .safetensors or .pt), offline")
    c.add_argument("--tokenizer", help="tokenizer.json (required offline; online the model's own is used)")
    c.add_argument("--bos-token-id", help="BOS id every row starts with, or 'none' (default: a special token starting every row, else none)")
    c.add_argument("--n-seq", type=int, default=DEFAULT_N_SEQ, help=f"at most this many sequences (default {DEFAULT_N_SEQ})")
    c.add_argument("--seq-len", type=int, help=f"tokens per sequence, BOS included (default: the SAE's context size, else {DEFAULT_SEQ_LEN})")
    o = ap.add_argument_group("output")
    o.add_argument("--out", required=True, help="bundle folder to write")
    o.add_argument("--dtype", default="float32", choices=["float32", "float16"], help="model weights' storage dtype")
    o.add_argument("--sae-dtype", default="float32", choices=["float32", "float16"], help="SAE weights' storage dtype (float32 holds bfloat16 and float16 exactly)")
    o.add_argument("--name", help="bundle name")
    args = ap.parse_args(argv)

    if args.n_seq <= 0:
        raise BundleError("--n-seq must be positive")
    sae = resolve_sae(args)
    notes: list[str] = []

    # Model.
    if args.model and args.model_state:
        raise BundleError("--model (online) and --model-state (offline) are alternatives: pass one")
    tok_obj = None
    if args.model_state:
        if not args.model_cfg:
            raise BundleError("--model-state needs --model-cfg (the model's TransformerLens config as JSON)")
        with open(args.model_cfg) as f:
            tl_cfg = json.load(f)
        state_dict = load_state_dict(args.model_state)
        processed = _processed_flags(args.model_processed)
        model_label = tl_cfg.get("model_name") or os.path.basename(args.model_state)
        model_source = (f"TransformerLens state dict {os.path.basename(args.model_state)} + {os.path.basename(args.model_cfg)}"
                        + (" (unprocessed)" if args.model_processed == "none" else f" (already processed: {args.model_processed})"))
        if sae.model_name and tl_cfg.get("model_name") and sae.model_name != tl_cfg["model_name"] and not args.allow_model_mismatch:
            notes.append(f"the SAE names model {sae.model_name!r}, the config {tl_cfg['model_name']!r}")
    else:
        if args.model_processed != "none":
            raise BundleError("--model-processed describes a --model-state file; online, the model is loaded as the SAE needs it")
        name = args.model or ("gelu-1l" if sae.origin == "neel" else sae.model_name)
        if not name:
            raise BundleError("no model: pass --model NAME (online) or --model-state FILE --model-cfg FILE.json (offline)")
        from . import online

        state_dict, tl_cfg, tok_obj, processed, model_source = online.load_model(name, sae, args.allow_model_mismatch)
        model_label = name

    # Tokenizer.
    if args.tokenizer:
        tokenizer = corpus.load_tokenizer(args.tokenizer)
    elif tok_obj is not None:
        from . import online

        tokenizer = online.tokenizer_json(tok_obj)
    else:
        raise BundleError("offline, pass --tokenizer tokenizer.json (the model's tokenizer)")

    # Corpus.
    if bool(args.tokens) == bool(args.dataset):
        raise BundleError("pass one corpus: --tokens FILE (offline) or --dataset NAME (online)")
    n_ctx = tl_cfg.get("n_ctx")
    if args.tokens:
        tokens = corpus.load_tokens(args.tokens)
        if args.seq_len and args.seq_len != tokens.shape[1]:
            raise BundleError(f"--seq-len {args.seq_len}, but {args.tokens} has rows of {tokens.shape[1]} tokens")
        total = len(tokens)
        tokens = tokens[: args.n_seq]
        bos_arg = args.bos_token_id if args.bos_token_id in (None, "none") else int(args.bos_token_id)
        prepend_bos, bos_id, bos_notes = corpus.decide_bos(tokens, tokenizer, bos_arg, sae.prepend_bos)
        notes += bos_notes
        tokens_source = f"{os.path.basename(args.tokens)}: first {len(tokens)} of {total} rows"
        corpus_label = os.path.basename(args.tokens)
        dataset = {"name": corpus_label, "prepend_bos": prepend_bos, "bos_token_id": bos_id}
    else:
        if tok_obj is None:
            raise BundleError("--dataset tokenizes with the model's tokenizer: it needs --model NAME (online); offline, pass --tokens FILE")
        seq_len = args.seq_len or (sae.context_size if sae.context_size and (not n_ctx or sae.context_size <= n_ctx) else DEFAULT_SEQ_LEN)
        prepend_bos = True if sae.prepend_bos is None else bool(sae.prepend_bos)
        seed = None if str(args.shuffle_seed).lower() == "none" else int(args.shuffle_seed)
        from . import online

        tokens, tokens_source, ds_notes = online.dataset_tokens(args.dataset, tok_obj, seq_len=seq_len, n_seq=args.n_seq, prepend_bos=prepend_bos,
                                                      split=args.dataset_split, column=args.dataset_column, shuffle_seed=seed)
        notes += ds_notes
        bos_id = int(tok_obj.bos_token_id) if prepend_bos else None
        corpus_label = args.dataset
        dataset = {"name": args.dataset, "prepend_bos": prepend_bos, "bos_token_id": bos_id}

    sources = {"model.safetensors": model_source, "sae.safetensors": sae.source,
               "tokenizer.json": os.path.basename(args.tokenizer) if args.tokenizer else f"{model_label}'s tokenizer",
               "tokens.safetensors": tokens_source}
    name = args.name or f"{model_label} + {sae.hook_point} SAE ({sae.d_sae} features) over {corpus_label}"
    meta = export_bundle(args.out, state_dict=state_dict, tl_cfg=tl_cfg, sae=sae, tokenizer=tokenizer, tokens=tokens, dataset=dataset,
                         processed=processed, dtype=args.dtype, sae_dtype=args.sae_dtype, sources=sources, name=name, notes=notes)
    for n in meta["provenance"]["export"]["notes"]:
        print(f"note: {n}", file=sys.stderr)
    m = meta["model"]
    print(f"wrote {args.out}: {m['n_layers']}-layer d_model {m['d_model']} ({m['normalization_type']}, processing "
          f"{', '.join(k for k, v in m['processing'].items() if v) or 'none'}), SAE {meta['sae']['d_in']}→{meta['sae']['d_sae']} on "
          f"{meta['sae']['hook_point']}, {meta['dataset']['n_seq']}×{meta['dataset']['seq_len']} tokens")
    return meta
