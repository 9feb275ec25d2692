#!/usr/bin/python3
"""Export a TransformerLens model + an SAE + a token corpus into a Feature Tracer bundle (docs/BUNDLE.md).

Online (pip install transformer_lens datasets huggingface_hub [sae-lens], and network access) — gelu-1l
with Neel Nanda's run1 SAE over the research notebook's corpus:

    python3 tools/export_transformer_lens.py --model gelu-1l --sae neel:25 \\
        --dataset NeelNanda/c4-code-20k --n-seq 8192 --seq-len 128 --out bundles/gelu-1l

and a SAELens SAE (the model defaults to the one its config names):

    python3 tools/export_transformer_lens.py --sae saelens-release:gpt2-small-res-jb:blocks.8.hook_resid_pre \\
        --dataset NeelNanda/pile-10k --seq-len 128 --out bundles/gpt2-res8

Offline (torch and numpy only), from files:

    /usr/bin/python3 tools/export_transformer_lens.py --model-state gelu-1l.pt --model-cfg gelu-1l.json \\
        --sae neel:25.pt --tokens tokens.npy --tokenizer tokenizer.json --out bundles/gelu-1l

Model (one of):
  --model NAME            HookedTransformer.from_pretrained(NAME) for Neel Nanda's SAEs;
                          from_pretrained_no_processing(NAME, **model_from_pretrained_kwargs) for SAELens's
  --model-state FILE      a TransformerLens state dict (torch.save(model.state_dict()) or .safetensors) with
  --model-cfg FILE.json   its config (model.cfg.to_dict() as JSON); the processing the SAE's model had is
                          applied here in plain torch; --model-processed says what FILE already has
                          (none, from_pretrained, or a comma list of fold_ln, center_writing_weights,
                          center_unembed, fold_value_biases)
SAE (--sae):
  neel:RUN                NeelNanda/sparse_autoencoder RUN.pt + RUN_cfg.json (run1 is 25, run2 is 47), online
  neel:FILE.pt, FILE.pt   a Neel-style AutoEncoder state dict (W_enc [d_in, d_sae], b_enc, W_dec, b_dec) and its
                          cfg json (FILE_cfg.json beside it, or --sae-cfg); --hook-point when the cfg names none
  saelens:DIR, DIR        a SAELens folder: cfg.json (any layout) + sae_weights.safetensors (f32/f16/bf16);
                          --sae-model-kwargs JSON adds to its model_from_pretrained_kwargs
  saelens-release:RELEASE:SAE_ID   a SAELens release, online, with the release's config overrides
Corpus (one of):
  --dataset NAME          load_dataset(NAME, split=--dataset-split) → tokenize_and_concatenate(max_length=
                          --seq-len) → shuffle(--shuffle-seed, default 42) → first --n-seq rows, as the
                          research notebook loads it (online; needs --model)
  --tokens FILE           token ids [n_seq, seq_len] (.npy, .safetensors or .pt), first --n-seq rows, with
                          --tokenizer tokenizer.json; --bos-token-id ID|none (default: a special token
                          that starts every row is BOS)
Output: --out DIR, --dtype float32|float16 (model), --sae-dtype float32|float16, --name.

SAE kinds: ReLU (standard), JumpReLU and TopK SAEs, apply_b_dec_to_input either way, on the app's hook
points including attn.hook_z (heads concatenated head-major, as SAELens reads it). Refused, with what
and why: SAE kinds the bundle cannot hold yet (BatchTopK, Matryoshka, gated, transcoders, single-head SAEs, normalize_activations other than none or a known constant), and models the app would
compute differently (non-learned positions other than GPT-NeoX's rotary, local attention, RMSNorm, gated MLPs,
grouped-query attention, attention-only, and the like). GPT-NeoX/Pythia (rotary, parallel attention and MLP)
is exported. Attention scaled otherwise than
by sqrt(d_head) (use_attn_scale False, an explicit attn_scale, scale_attn_by_inverse_layer_idx) is exported
with each layer's divisor in bundle.json's attn_scales. The core, `export_bundle` in tools/export/core.py, is what
tools/tests/test_export*.py check.
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export.core import export_bundle, run  # noqa: E402,F401
from export.sae import Sae, load_neel, load_saelens  # noqa: E402,F401
from ftlib.bundle import BundleError  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    return run(argv, doc=__doc__)


if __name__ == "__main__":
    try:
        main()
    except BundleError as e:
        sys.exit(f"error: {e}")
