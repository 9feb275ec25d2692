#!/usr/bin/python3
"""Train the demo transformer: gelu-1l's architecture, smaller (see DEMO_CFG).

Usage: /usr/bin/python3 tools/demo/train_model.py WORK_DIR [--tokens N]
WORK_DIR holds corpus/ and tokenizer.json (build_corpus.py, train_tokenizer.py); this script
writes ids_train.npy / ids_heldout.npy, checkpoints (resumable) and model_final.pt there.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from ftlib import bpe, model  # noqa: E402

DEMO_CFG = {
    "n_layers": 1,
    "d_model": 256,
    "n_heads": 8,
    "d_head": 32,
    "d_mlp": 1024,
    "d_vocab": 8192,
    "n_ctx": 128,
    "act_fn": "gelu",
    "normalization_type": "LN",
    "eps": 1e-5,
    "positional_embedding_type": "standard",
}
BOS = 0


def encode_split(work: str, split: str) -> np.ndarray:
    path = os.path.join(work, f"ids_{split}.npy")
    if os.path.exists(path):
        return np.load(path)
    enc = bpe.Encoder.from_file(os.path.join(work, "tokenizer.json"))
    with open(os.path.join(work, "corpus", f"{split}.txt"), encoding="utf-8") as f:
        docs = f.read().split(bpe.EOT)
    ids: list[int] = []
    for d in docs:
        ids.append(BOS)
        ids.extend(enc.encode(d))
    arr = np.asarray(ids, dtype=np.int32)
    np.save(path, arr)
    return arr


CHECKPOINT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "checkpoint")


def load_final_model(work: str) -> dict:
    """The trained model: WORK_DIR/model_final.pt, else the committed tools/demo/checkpoint/ (so the SAE and
    the bundle can be redone without retraining the model). Keys: params, cfg, heldout_loss, train_tokens."""
    path = os.path.join(work, "model_final.pt")
    if os.path.exists(path):
        return torch.load(path)
    from ftlib import safetensors_io

    with open(os.path.join(CHECKPOINT_DIR, "model_final.json")) as f:
        meta = json.load(f)
    params = {k: torch.from_numpy(v) for k, v in safetensors_io.load(os.path.join(CHECKPOINT_DIR, "model_final.safetensors")).items()}
    return {"params": params, **meta}


def sequences(stream: np.ndarray, seq_len: int) -> np.ndarray:
    """Consecutive chunks of seq_len-1 tokens, each with BOS prepended (as the c4-code bundle)."""
    n = len(stream) // (seq_len - 1)
    body = stream[: n * (seq_len - 1)].reshape(n, seq_len - 1)
    return np.concatenate([np.full((n, 1), BOS, dtype=np.int32), body], axis=1)


def batch_at(stream: np.ndarray, rng: np.random.Generator, batch: int, seq_len: int) -> torch.Tensor:
    starts = rng.integers(0, len(stream) - seq_len, size=batch)
    body = np.stack([stream[s : s + seq_len - 1] for s in starts])
    return torch.from_numpy(np.concatenate([np.full((batch, 1), BOS, dtype=np.int32), body], axis=1)).long()


@torch.no_grad()
def heldout_loss(p: dict, cfg: dict, seqs: np.ndarray, n: int = 256) -> float:
    total, count = 0.0, 0
    for i in range(0, min(n, len(seqs)), 32):
        toks = torch.from_numpy(seqs[i : i + 32]).long()
        logits = model.forward(p, cfg, toks)
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, cfg["d_vocab"]), toks[:, 1:].reshape(-1), reduction="sum")
        total += loss.item()
        count += toks[:, 1:].numel()
    return total / count


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("work")
    ap.add_argument("--tokens", type=float, default=20.5e6)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-3)
    args = ap.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    cfg = DEMO_CFG
    train = encode_split(args.work, "train")
    held = sequences(encode_split(args.work, "heldout"), cfg["n_ctx"])
    print(f"train tokens {len(train)}, held-out sequences {len(held)}", flush=True)
    tokens_per_step = args.batch * cfg["n_ctx"]
    steps = math.ceil(args.tokens / tokens_per_step)
    warmup = 200
    ckpt = os.path.join(args.work, "model_ckpt.pt")
    p = {k: v.requires_grad_(True) for k, v in model.init_params(cfg, seed=0).items()}
    decay = [v for k, v in p.items() if k.split(".")[-1].startswith("W_")]
    no_decay = [v for k, v in p.items() if not k.split(".")[-1].startswith("W_")]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}], lr=args.lr, betas=(0.9, 0.98))
    step = 0
    if os.path.exists(ckpt):
        state = torch.load(ckpt)
        with torch.no_grad():
            for k in p:
                p[k].copy_(state["params"][k])
        opt.load_state_dict(state["opt"])
        step = state["step"]
        print(f"resumed at step {step}", flush=True)
    rng = np.random.default_rng(step + 1)
    t0, tok0 = time.time(), 0
    while step < steps:
        lr = args.lr * min(1.0, (step + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / steps)))
        for g in opt.param_groups:
            g["lr"] = lr
        toks = batch_at(train, rng, args.batch, cfg["n_ctx"])
        logits = model.forward(p, cfg, toks)
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, cfg["d_vocab"]), toks[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(p.values()), 1.0)
        opt.step()
        step += 1
        tok0 += tokens_per_step
        if step % 50 == 0 or step == steps:
            rate = tok0 / (time.time() - t0)
            print(f"step {step}/{steps} loss {loss.item():.3f} lr {lr:.2e} {rate:.0f} tok/s eta {(steps - step) * tokens_per_step / rate / 60:.1f} min", flush=True)
        if step % 250 == 0 or step == steps:
            torch.save({"params": {k: v.detach() for k, v in p.items()}, "opt": opt.state_dict(), "step": step}, ckpt + ".tmp")
            os.replace(ckpt + ".tmp", ckpt)
    final = {k: v.detach().clone() for k, v in p.items()}
    hl = heldout_loss(final, cfg, held, n=1024)
    torch.save({"params": final, "cfg": cfg, "heldout_loss": hl, "train_tokens": steps * tokens_per_step}, os.path.join(args.work, "model_final.pt"))
    print(f"done: held-out loss {hl:.4f} nats/token", flush=True)


if __name__ == "__main__":
    main()
