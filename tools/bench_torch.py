#!/usr/bin/python3
"""Baselines for the cache benchmark (test/bench/cache.ts), on a bundle's own tokens, in the same run.

1. PyTorch eager: the model's forward pass up to the SAE's hook, the SAE encoder with its gate, and the
   non-zeros (torch.nonzero) — what the cache build computes — in chunks of the build's size.
2. The GEMM bound: only the encoder's matrix product [tokens, d_in] x [d_in, d_sae] of the same chunks,
   timed alone; no build that computes every pre-activation can be faster than this on this machine.

Prints one JSON line: tokens, eager_tokens_per_s, gemm_tokens_per_s, gemm_gflops, threads.
Usage: bench_torch.py BUNDLE [--tokens N] [--chunk-tokens 8192] [--threads T]
"""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ftlib.bundle import parse_hook_point, read_bundle, sae_pre_acts  # noqa: E402
from ftlib.model import forward  # noqa: E402


def gate(kind: str, pre: torch.Tensor, sae: dict, sae_cfg: dict) -> torch.Tensor:
    if kind == "jumprelu":
        return torch.relu(pre) * (pre > sae["threshold"])
    if kind == "topk":
        k = int(sae_cfg["k"])
        top = torch.topk(pre, k, dim=-1)
        return torch.zeros_like(pre).scatter(-1, top.indices, torch.relu(top.values))
    return torch.relu(pre)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("bundle")
    ap.add_argument("--tokens", type=int, default=131072)
    ap.add_argument("--chunk-tokens", type=int, default=8192)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    meta, params, sae_np, _tokenizer, tokens_np = read_bundle(a.bundle)
    cfg = meta["model"]
    sae_cfg = meta["sae"]
    p = {k: torch.from_numpy(v).float() for k, v in params.items()}
    sae = {k: torch.from_numpy(v).float() for k, v in sae_np.items()}
    layer, hook = parse_hook_point(sae_cfg["hook_point"])
    seq_len = tokens_np.shape[1]
    chunk_seqs = max(1, a.chunk_tokens // seq_len)
    n_seq = min(tokens_np.shape[0], max(chunk_seqs, a.tokens // seq_len))
    tokens = torch.from_numpy(tokens_np[:n_seq].astype("int64"))
    kind = sae_cfg.get("kind", "relu")

    with torch.inference_mode():
        # Warm-up on one chunk, then the timed pass over every chunk.
        def encode(batch: torch.Tensor) -> int:
            # Only the layers up to the hook, as the app's graph (main/compute/graphs.ts truncates after it).
            if hook == "mlp.hook_post":
                acts = forward(p, cfg, batch, stop_at_layer_mlp=layer)
            elif hook == "hook_resid_pre":
                acts = forward(p, cfg, batch, stop_at_resid_pre=layer)
            else:
                cache: dict = {}
                forward(p, cfg, batch, cache=cache)
                acts = cache[f"blocks.{layer}.{hook}"]
                if hook == "attn.hook_z":
                    acts = acts.flatten(-2)
            feats = gate(kind, sae_pre_acts(sae_cfg, sae, acts), sae, sae_cfg)
            return int(torch.nonzero(feats).shape[0])

        encode(tokens[:chunk_seqs])
        t0 = time.perf_counter()
        nnz = 0
        for s in range(0, n_seq, chunk_seqs):
            nnz += encode(tokens[s:s + chunk_seqs])
        eager = time.perf_counter() - t0

        d_in, d_sae = sae["W_enc"].shape
        x = torch.randn(chunk_seqs * seq_len, d_in)
        x @ sae["W_enc"]
        t0 = time.perf_counter()
        for _ in range(0, n_seq, chunk_seqs):
            x @ sae["W_enc"]
        gemm = time.perf_counter() - t0
    n_tok = n_seq * seq_len
    chunks = len(range(0, n_seq, chunk_seqs))
    flops = 2.0 * chunks * chunk_seqs * seq_len * d_in * d_sae
    print(json.dumps({
        "tokens": n_tok,
        "nnz": nnz,
        "eager_tokens_per_s": n_tok / eager,
        "gemm_tokens_per_s": chunks * chunk_seqs * seq_len / gemm,
        "gemm_gflops": flops / gemm / 1e9,
        "threads": a.threads,
    }))


if __name__ == "__main__":
    main()
