#!/usr/bin/python3
"""Train the demo SAE on blocks.0.mlp.hook_post: the ReLU SAE of Neel Nanda's gelu-1l dictionaries
(unit-norm decoder rows, L1 penalty), dict_mult 8.

acts = ReLU((x − b_dec)·W_enc + b_enc), x̂ = acts·W_dec + b_dec, loss = ‖x̂ − x‖² + λ·Σ acts.
Inputs are scaled so that E‖x‖² = d_in while training; the scale is folded back into b_enc, b_dec and
the activations on export, so the saved SAE reads raw hook_post. λ follows a slow controller towards a
target L0 for the first 70% of steps and is then frozen; features dead for a while are resampled
towards badly reconstructed inputs (Anthropic, "Towards Monosemanticity", 2023).

The forward and backward passes are written by hand so that, once the code is sparse, the decoder
products touch only the firing features: torch's autograd would run every product densely, which is
about 5× the work on these 2 CPU cores.

Usage: /usr/bin/python3 tools/demo/train_sae.py WORK_DIR [--tokens N]
Reads WORK_DIR/model_final.pt and ids_train.npy; writes WORK_DIR/sae_final.pt (raw-input convention).
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from demo.train_model import BOS, load_final_model  # noqa: E402
from ftlib import model  # noqa: E402

SPARSE_BELOW = 0.03  # use the sparse decoder path when fewer than 3% of (token, feature) pairs fire


class ActivationBuffer:
    """Shuffled hook_post activations from random windows of the training stream (Neel Nanda's buffer)."""

    def __init__(self, p, cfg, stream: np.ndarray, layer: int, size: int, seed: int):
        self.p, self.cfg, self.stream, self.layer = p, cfg, stream, layer
        self.rng = np.random.default_rng(seed)
        self.size = size
        self.buf = torch.empty(0, cfg["d_mlp"])
        self.pos = 0
        self.refill()

    @torch.no_grad()
    def _generate(self, n_tokens: int) -> torch.Tensor:
        T = self.cfg["n_ctx"]
        n_seq = math.ceil(n_tokens / T)
        out = []
        for i in range(0, n_seq, 64):
            k = min(64, n_seq - i)
            starts = self.rng.integers(0, len(self.stream) - T, size=k)
            body = np.stack([self.stream[s : s + T - 1] for s in starts])
            toks = torch.from_numpy(np.concatenate([np.full((k, 1), BOS, dtype=np.int32), body], 1)).long()
            out.append(model.forward(self.p, self.cfg, toks, stop_at_layer_mlp=self.layer).reshape(-1, self.cfg["d_mlp"]))
        return torch.cat(out)[:n_tokens]

    def refill(self) -> None:
        keep = self.buf[self.pos :]
        fresh = self._generate(self.size - len(keep))
        self.buf = torch.cat([keep, fresh])
        self.buf = self.buf[torch.from_numpy(self.rng.permutation(len(self.buf)))]
        self.pos = 0

    def next(self, batch: int) -> torch.Tensor:
        if self.pos + batch > self.size // 2 + self.size // 4:
            self.refill()
        x = self.buf[self.pos : self.pos + batch]
        self.pos += batch
        return x


class SAE:
    def __init__(self, d_in: int, d_sae: int, b_dec: torch.Tensor, seed: int):
        g = torch.Generator().manual_seed(seed)
        W_dec = torch.randn(d_sae, d_in, generator=g)
        self.W_dec = W_dec / W_dec.norm(dim=1, keepdim=True)
        # A small encoder at first keeps the initial reconstruction (thousands of features firing) near x's scale.
        self.W_enc = (0.1 * self.W_dec.T).contiguous()
        self.b_enc = torch.zeros(d_sae)
        self.b_dec = b_dec.clone()
        self.names = ("W_enc", "b_enc", "W_dec", "b_dec")
        self.m = {n: torch.zeros_like(getattr(self, n)) for n in self.names}
        self.v = {n: torch.zeros_like(getattr(self, n)) for n in self.names}
        self.t = 0

    def grads(self, x: torch.Tensor, l1: float, sparse: bool | None = None) -> tuple[dict, dict]:
        """Gradients of mean_b(‖x̂ − x‖² + l1·Σ acts) by hand; sparse=None picks the path by density."""
        B = x.shape[0]
        xc = x - self.b_dec
        pre = torch.addmm(self.b_enc, xc, self.W_enc)
        mask = pre > 0
        density = float(mask.sum()) / mask.numel()
        if sparse is None:
            sparse = density < SPARSE_BELOW
        if sparse:
            idx = mask.nonzero().T
            vals = pre[idx[0], idx[1]]
            acts = torch.sparse_coo_tensor(idx, vals, pre.shape).coalesce()
            recon = torch.sparse.mm(acts, self.W_dec) + self.b_dec
        else:
            acts = pre.clamp_min(0)
            recon = acts @ self.W_dec + self.b_dec
        err = recon - x
        mse = float(err.pow(2).sum()) / B
        l1_term = float(vals.sum() if sparse else acts.sum()) / B
        g_recon = 2 * err / B
        grads = {"b_dec": g_recon.sum(0)}
        if sparse:
            grads["W_dec"] = torch.sparse.mm(acts.t(), g_recon)
            gvals = (g_recon[idx[0]] * self.W_dec[idx[1]]).sum(-1) + l1 / B
            gpre = torch.sparse_coo_tensor(idx, gvals, pre.shape).coalesce()
            grads["W_enc"] = torch.sparse.mm(gpre.t(), xc).T
            grads["b_enc"] = torch.sparse.sum(gpre, 0).to_dense()
        else:
            grads["W_dec"] = acts.T @ g_recon
            gpre = (g_recon @ self.W_dec.T + l1 / B) * mask
            grads["W_enc"] = xc.T @ gpre
            grads["b_enc"] = gpre.sum(0)
        grads["b_dec"] = grads["b_dec"] - grads["b_enc"] @ self.W_enc.T
        # Keep decoder rows on the unit sphere: drop the radial part of their gradient.
        grads["W_dec"] = grads["W_dec"] - (grads["W_dec"] * self.W_dec).sum(1, keepdim=True) * self.W_dec
        return grads, {"mse": mse, "l1": l1_term, "l0": float(mask.sum()) / B, "fired": mask.any(0), "density": density}

    def step(self, x: torch.Tensor, l1: float, lr: float) -> dict:
        grads, stats = self.grads(x, l1)
        self.t += 1
        b1, b2 = 0.9, 0.999
        for n in self.names:
            self.m[n].mul_(b1).add_(grads[n], alpha=1 - b1)
            self.v[n].mul_(b2).addcmul_(grads[n], grads[n], value=1 - b2)
            mh = self.m[n] / (1 - b1**self.t)
            vh = self.v[n] / (1 - b2**self.t)
            getattr(self, n).sub_(lr * mh / (vh.sqrt() + 1e-8))
        self.W_dec /= self.W_dec.norm(dim=1, keepdim=True)
        return stats

    def resample(self, dead: torch.Tensor, x: torch.Tensor) -> int:
        """Re-initialise dead features towards inputs the SAE reconstructs badly."""
        n = int(dead.sum())
        if n == 0:
            return 0
        with torch.no_grad():
            pre = torch.addmm(self.b_enc, x - self.b_dec, self.W_enc).clamp_min(0)
            loss = ((pre @ self.W_dec + self.b_dec - x) ** 2).sum(1)
            pick = torch.multinomial(loss.pow(2) + 1e-12, n, replacement=n > len(x))
            dirs = x[pick] - self.b_dec
            dirs = dirs / dirs.norm(dim=1, keepdim=True).clamp_min(1e-8)
            ids = dead.nonzero().squeeze(1)
            alive = ~dead
            enc_norm = self.W_enc[:, alive].norm(dim=0).mean() if alive.any() else torch.tensor(1.0)
            self.W_dec[ids] = dirs
            self.W_enc[:, ids] = dirs.T * enc_norm * 0.2
            self.b_enc[ids] = 0
            for n_ in ("W_enc", "b_enc"):
                if n_ == "W_enc":
                    self.m[n_][:, ids] = 0
                    self.v[n_][:, ids] = 0
                else:
                    self.m[n_][ids] = 0
                    self.v[n_][ids] = 0
            self.m["W_dec"][ids] = 0
            self.v["W_dec"][ids] = 0
        return n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("work")
    ap.add_argument("--tokens", type=float, default=5.2e6)
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--target-l0", type=float, default=50.0)
    ap.add_argument("--dict-mult", type=int, default=8)
    ap.add_argument("--out", default="sae_final.pt")
    args = ap.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    ck = load_final_model(args.work)
    p = {k: v.float() for k, v in ck["params"].items()}
    cfg = ck["cfg"]
    stream = np.load(os.path.join(args.work, "ids_train.npy"))
    d_in = cfg["d_mlp"]
    d_sae = d_in * args.dict_mult
    buf = ActivationBuffer(p, cfg, stream, 0, size=args.batch * 96, seed=1)
    sample = buf.buf[:65536]
    scale = math.sqrt(d_in / float(sample.pow(2).sum(1).mean()))
    sae = SAE(d_in, d_sae, (sample * scale).mean(0), seed=0)
    steps = math.ceil(args.tokens / args.batch)
    l1 = 2.0
    last_fired = torch.zeros(d_sae, dtype=torch.long)
    resample_at = {int(steps * f) for f in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)}
    t0 = time.time()
    hist = []
    for step in range(1, steps + 1):
        lr = args.lr * min(1.0, step / 50) * (1.0 if step < 0.8 * steps else max(0.0, (steps - step) / (0.2 * steps)))
        x = buf.next(args.batch) * scale
        st = sae.step(x, l1, lr)
        last_fired[st["fired"]] = step
        hist.append(st["l0"])
        if step < 0.7 * steps and step % 5 == 0:
            recent = float(np.mean(hist[-5:]))
            l1 *= math.exp(float(np.clip(0.1 * math.log(recent / args.target_l0), -0.1, 0.1)))
        if step in resample_at:
            dead = (step - last_fired) > 100  # no firing in the last ~400k tokens
            n = sae.resample(dead, buf.next(args.batch * 4) * scale)
            print(f"step {step}: resampled {n} dead features", flush=True)
        if step % 25 == 0 or step == steps:
            rate = step * args.batch / (time.time() - t0)
            fvu = st["mse"] / float(((x - x.mean(0)) ** 2).sum(1).mean())
            print(f"step {step}/{steps} mse {st['mse']:.2f} fvu~{fvu:.3f} l0 {st['l0']:.1f} l1coef {l1:.3f} dense {st['density']:.3f} "
                  f"dead(100) {int(((step - last_fired) > 100).sum())} {rate:.0f} tok/s eta {(steps - step) * args.batch / rate / 60:.1f} min", flush=True)
    # Fold the input scale back: the saved SAE reads raw hook_post and reports acts / scale.
    out = {"W_enc": sae.W_enc.clone(), "b_enc": sae.b_enc / scale, "W_dec": sae.W_dec.clone(), "b_dec": sae.b_dec / scale}
    torch.save({"sae": out, "scale": scale, "l1_coeff": l1, "train_tokens": steps * args.batch, "d_sae": d_sae,
                "hook_point": "blocks.0.mlp.hook_post"}, os.path.join(args.work, args.out))
    print(f"done in {(time.time() - t0) / 60:.1f} min", flush=True)


if __name__ == "__main__":
    main()
