#!/usr/bin/python3
"""Train the demo SAE on blocks.0.mlp.hook_post: the ReLU SAE of Neel Nanda's gelu-1l dictionaries
(unit-norm decoder rows, L1 penalty), dict_mult 8.

acts = ReLU((x − b_dec)·W_enc + b_enc), x̂ = acts·W_dec + b_dec, loss = ‖x̂ − x‖² + λ·Σ acts.
Inputs are scaled so that E‖x‖² = d_in while training; the scale is folded back into b_enc, b_dec and
the activations on export, so the saved SAE reads raw hook_post.

The recipe, and why (each choice came from a failed run on these 2 cores):
- Data init (default): decoder rows are random centred inputs, W_enc = W_decᵀ, thresholds at which each
  feature fires on 1% of inputs, one global scale fitted by least squares. From a random init the L1
  penalty first had to crush ~3000 firing features per token, and that crush left 80% of them dead.
- λ ramps up over the first 5% of steps, then a slow controller steers it to a target L0 until 70%
  of the steps, then it is frozen; the learning rate decays over the last 20%. b_enc gets a larger
  learning rate than the weights: with inputs of unit-scale entries, W_enc's entries are ~1/d_in and
  its thresholds are O(1), so one Adam step size cannot suit both.
- Features dead for a while are resampled towards badly reconstructed inputs (Anthropic, "Towards
  Monosemanticity", 2023).
- At the end the encoder is frozen and the decoder refit to the reconstruction alone, which undoes the
  L1 shrinkage without changing which features fire (SAE.refit_decoder).
- `--free-norm` trains Anthropic's April 2024 parameterisation instead (L1 weighted by decoder norms);
  either way the saved SAE has unit-norm decoder rows.
- `--topk K` trains a TopK SAE (Gao et al. 2024) first and converts it to the ReLU form the app reads
  (SAE.to_relu: per-feature thresholds at TopK's firing rates), then trains ReLU + L1 for `--relu-frac`
  of the steps (0: keep the raw TopK state, for experiments). Measured here on the demo model's
  hook_post (held-out FVU): TopK k=48 reached 0.338 after 0.8M activations and 0.300 after 1.8M, far
  better per token than the L1 recipe (0.454 after 6.2M, before the refit); but the conversion costs
  more than that: 0.67 right after it, 0.38 after a decoder refit, 0.41 after an L1 phase, and an
  MSE-only fine-tune with each threshold fixed along its direction drifted to L0 110. The demo's SAE is
  the L1 recipe's (0.322 after the refit, in fp16 over the whole held-out corpus).

The forward and backward passes are written by hand so that, once the code is sparse, the decoder
products touch only the firing features: torch's autograd would run every product densely, which is
about 5× the work on these 2 CPU cores. Run it with jemalloc (LD_PRELOAD=libjemalloc.so.2): glibc hands
every 128 MB temporary back to the kernel, which cost a third of the CPU time in page faults.

Usage: /usr/bin/python3 tools/demo/train_sae.py WORK_DIR [--tokens N] [--lr LR] [--target-l0 L0] …
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
    def __init__(self, d_in: int, d_sae: int, b_dec: torch.Tensor, seed: int, dtype: torch.dtype = torch.bfloat16,
                 free_norm: bool = False):
        g = torch.Generator().manual_seed(seed)
        W_dec = torch.randn(d_sae, d_in, generator=g)
        W_dec = W_dec / W_dec.norm(dim=1, keepdim=True)
        # free_norm (Anthropic's April 2024 recipe): decoder rows of norm 0.1, W_enc = W_decᵀ, and the L1
        # penalty weighted by each row's norm; otherwise unit rows and a small encoder, which keeps the
        # initial reconstruction (thousands of features firing) near x's scale.
        self.free_norm = free_norm
        if free_norm:
            W_dec = 0.1 * W_dec
        self.W_enc = (0.1 * W_dec.T if not free_norm else W_dec.T).contiguous()
        self.W_dec = W_dec
        self.b_enc = torch.zeros(d_sae)
        self.b_dec = b_dec.clone()
        self.names = ("W_enc", "b_enc", "W_dec", "b_dec")
        self.dtype = dtype  # of the two dense products per step (tests use float32)
        self.bias_lr_mult = 1.0
        self.resample_enc_scale = 0.2
        self.topk = 0  # > 0: TopK activation (Gao et al. 2024) while training; see to_relu()
        self.opt = torch.optim.Adam([{"params": [self.W_enc, self.W_dec, self.b_dec]}, {"params": [self.b_enc], "bias": True}], lr=1e-3)

    @torch.no_grad()
    def init_from_data(self, x: torch.Tensor, fire_fraction: float, seed: int) -> None:
        """Start every feature at a direction the data uses: decoder rows are random centred inputs
        (unit norm), W_enc = W_decᵀ, and each b_enc is the threshold at which its feature fires on
        `fire_fraction` of x. From a random start the L1 penalty first has to crush thousands of firing
        features, and in our runs that crush left 80% of the dictionary dead."""
        g = torch.Generator().manual_seed(seed)
        pick = torch.randperm(len(x), generator=g)[: self.W_dec.shape[0]]
        dirs = x[pick] - self.b_dec
        self.W_dec.copy_(dirs / dirs.norm(dim=1, keepdim=True).clamp_min(1e-8))
        self.W_enc.copy_(self.W_dec.T)
        proj = (x[:16384] - self.b_dec) @ self.W_enc
        self.b_enc.copy_(-torch.quantile(proj, 1 - fire_fraction, dim=0))
        # Inputs share much of their direction, so the raw code overshoots: scale it to the least-squares fit.
        xs = x[:16384] - self.b_dec
        recon = torch.relu(proj + self.b_enc) @ self.W_dec
        alpha = float((recon * xs).sum() / recon.pow(2).sum())
        self.W_enc.mul_(alpha)
        self.b_enc.mul_(alpha)

    def encode_pre(self, x: torch.Tensor) -> torch.Tensor:
        """Pre-activations, by default in bf16 with fp32 accumulation: 1.6× faster than fp32 on these
        cores, and the training signal does not need more than bf16's 3 significant digits. The bundle's
        figures are measured in fp32 (make_bundle.py)."""
        dt = self.dtype
        return torch.addmm(self.b_enc.to(dt), (x - self.b_dec).to(dt), self.W_enc.to(dt)).float()

    @staticmethod
    def csr(mask: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """A CSR matrix from a boolean mask and its values in row-major order. torch's to_sparse_csr()
        on the dense matrix takes ~1 s here; counting per row is ~20 ms."""
        B, F = mask.shape
        idx = mask.nonzero()
        crow = torch.zeros(B + 1, dtype=torch.int64)
        crow[1:] = torch.cumsum(mask.sum(1), 0)
        return torch.sparse_csr_tensor(crow, idx[:, 1].contiguous(), values, (B, F))

    def grads(self, x: torch.Tensor, l1: float, sparse: bool | None = None) -> tuple[dict, dict]:
        """Gradients of mean_b(‖x̂ − x‖² + l1·Σ acts) by hand. Once the code is sparse, the decoder and
        the weight gradients touch only the firing (token, feature) pairs (CSR products); torch's autograd
        would run every product densely, about 5× the work on these 2 CPU cores."""
        B = x.shape[0]
        pre = self.encode_pre(x)
        mask = pre > 0
        if self.topk:
            mask &= torch.zeros_like(mask).scatter_(1, pre.topk(self.topk, dim=1).indices, True)
            l1 = 0.0
        nnz = int(mask.sum())
        # The L1 weight of each feature: its decoder norm (free_norm), else 1.
        w = self.W_dec.norm(dim=1) * (l1 / B) if self.free_norm else torch.full((mask.shape[1],), l1 / B)
        if sparse is None:
            sparse = nnz < SPARSE_BELOW * mask.numel()
        acts = self.csr(mask, pre[mask]) if sparse else pre * mask  # mask: pre > 0 (and TopK's choice)
        recon = (torch.sparse.mm(acts, self.W_dec) if sparse else acts @ self.W_dec) + self.b_dec
        err = recon - x
        mse = float(err.pow(2).sum()) / B
        g_recon = 2 * err / B
        grads = {"W_dec": torch.sparse.mm(acts.t(), g_recon) if sparse else acts.T @ g_recon}
        # d loss / d pre on the firing pairs: g_recon·W_dec[f] + l1/B (a bf16 dense product, masked).
        gacts = (g_recon.to(self.dtype) @ self.W_dec.T.to(self.dtype)).float()
        if sparse:
            gpre = self.csr(mask, gacts[mask])
            gvals = gpre.values() + w[gpre.col_indices()]
            gpre = self.csr(mask, gvals)
            act_sums = torch.zeros_like(self.b_enc).index_add_(0, acts.col_indices(), acts.values())
            grads["W_enc"] = torch.sparse.mm(gpre.t(), x - self.b_dec).T
            grads["b_enc"] = torch.zeros_like(self.b_enc).index_add_(0, gpre.col_indices(), gvals)
        else:
            gpre = (gacts + w) * mask
            act_sums = acts.sum(0)
            grads["W_enc"] = (x - self.b_dec).T @ gpre
            grads["b_enc"] = gpre.sum(0)
        grads["b_dec"] = g_recon.sum(0) - grads["b_enc"] @ self.W_enc.T
        if self.free_norm:
            grads["W_dec"] += (act_sums * w / self.W_dec.norm(dim=1).square())[:, None] * self.W_dec
        return grads, {"mse": mse, "l0": nnz / B, "fired": mask.any(0), "density": nnz / mask.numel()}

    def step(self, x: torch.Tensor, l1: float, lr: float) -> dict:
        grads, stats = self.grads(x, l1)
        if not self.free_norm:
            # Keep decoder rows on the unit sphere: drop the radial part of their gradient.
            grads["W_dec"] = grads["W_dec"] - (grads["W_dec"] * self.W_dec).sum(1, keepdim=True) * self.W_dec
        for n in self.names:
            getattr(self, n).grad = grads[n]
        for group in self.opt.param_groups:
            group["lr"] = lr * (self.bias_lr_mult if group.get("bias") else 1.0)
        self.opt.step()
        if not self.free_norm:
            self.W_dec /= self.W_dec.norm(dim=1, keepdim=True)
        return stats

    def reset_adam(self, name: str, ids: torch.Tensor, dim: int) -> None:
        state = self.opt.state.get(getattr(self, name))
        if state:
            for k in ("exp_avg", "exp_avg_sq"):
                state[k].index_fill_(dim, ids, 0)

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
            self.W_dec[ids] = dirs * (self.W_dec[alive].norm(dim=1).mean() if self.free_norm and alive.any() else 1.0)
            self.W_enc[:, ids] = dirs.T * enc_norm * self.resample_enc_scale
            self.b_enc[ids] = self.b_enc[alive].median() if self.resample_enc_scale == 1.0 and alive.any() else 0.0
            self.reset_adam("W_enc", ids, 1)
            self.reset_adam("b_enc", ids, 0)
            self.reset_adam("W_dec", ids, 0)
        return n

    @torch.no_grad()
    def to_relu(self, x: torch.Tensor) -> None:
        """Turn a TopK SAE into the plain ReLU form the app reads (acts = ReLU(x·W_enc + b_enc)): each
        feature's bias is lowered to the threshold at which it fires on x as often as TopK selected it.
        TopK learns a much better dictionary per training token than an L1 penalty (no shrinkage while
        the directions form); the ReLU phase and the decoder refit that follow absorb the offset."""
        pre = torch.cat([self.encode_pre(x[i : i + 4096]) for i in range(0, len(x), 4096)])
        sel = torch.zeros_like(pre, dtype=torch.bool).scatter_(1, pre.topk(self.topk, dim=1).indices, True) & (pre > 0)
        rate = sel.float().mean(0).clamp(1.0 / len(x), 0.5)
        theta = torch.stack([torch.quantile(pre[:, f], 1 - float(rate[f])) for f in range(pre.shape[1])]) \
            if pre.shape[1] <= 64 else self._quantiles(pre, 1 - rate)
        self.b_enc -= theta.clamp_min(0)
        self.topk = 0

    @staticmethod
    def _quantiles(pre: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        srt = pre.sort(dim=0).values
        at = (q * (len(pre) - 1)).round().long().clamp(0, len(pre) - 1)
        return srt.gather(0, at[None, :]).squeeze(0)

    def refit_decoder(self, buf, scale: float, steps: int, batch: int, lr: float) -> None:
        """With the encoder frozen (so L0 and which features fire do not change), fit the decoder and b_dec
        to the reconstruction alone. This undoes the L1 penalty's shrinkage, which the unit-norm decoder
        cannot absorb. The encoder reads x − b_dec, so its old offset is folded into b_enc first; at the
        end the new b_dec is folded back and the decoder rows are renormalised to unit norm, scaling each
        feature's encoder column and bias by the same factor (ReLU is positively homogeneous): the SAE's
        function is unchanged by that last step and its form stays Neel Nanda's."""
        with torch.no_grad():
            offset = self.b_enc - self.b_dec @ self.W_enc  # pre = x·W_enc + offset
            opt = torch.optim.Adam([self.W_dec, self.b_dec], lr=lr)
            for step in range(1, steps + 1):
                x = buf.next(batch) * scale
                pre = torch.addmm(offset.to(self.dtype), x.to(self.dtype), self.W_enc.to(self.dtype)).float()
                mask = pre > 0
                acts = self.csr(mask, pre[mask])
                err = torch.sparse.mm(acts, self.W_dec) + self.b_dec - x
                g = 2 * err / len(x)
                self.W_dec.grad = torch.sparse.mm(acts.t(), g)
                self.b_dec.grad = g.sum(0)
                for group in opt.param_groups:
                    group["lr"] = lr * min(1.0, (steps - step + 1) / (0.3 * steps))
                opt.step()
                if step % 25 == 0 or step == steps:
                    print(f"refit {step}/{steps} mse {float(err.pow(2).sum()) / len(x):.2f}", flush=True)
            self.b_enc = offset + self.b_dec @ self.W_enc
        self.normalise_decoder()

    @torch.no_grad()
    def normalise_decoder(self) -> None:
        """Unit-norm decoder rows, scaling each feature's encoder column and bias by the row's norm: exact,
        since ReLU is positively homogeneous. The result is in Neel Nanda's form."""
        norms = self.W_dec.norm(dim=1).clamp_min(1e-8)
        self.W_dec = self.W_dec / norms[:, None]
        self.W_enc = self.W_enc * norms[None, :]
        self.b_enc = self.b_enc * norms


@torch.no_grad()
def heldout_activations(p: dict, cfg: dict, path: str, n_seq: int = 1024) -> torch.Tensor:
    """hook_post on the first n_seq held-out sequences (BOS + 127 tokens), as the bundle's corpus is cut."""
    T = cfg["n_ctx"]
    ids = np.load(path)[: n_seq * (T - 1)].reshape(n_seq, T - 1)
    toks = torch.from_numpy(np.concatenate([np.full((n_seq, 1), BOS, dtype=np.int64), ids.astype(np.int64)], 1))
    return torch.cat([model.forward(p, cfg, toks[i : i + 64], stop_at_layer_mlp=0).reshape(-1, cfg["d_mlp"]) for i in range(0, n_seq, 64)])


@torch.no_grad()
def evaluate(sae: SAE, x: torch.Tensor) -> dict:
    """fp32 L0, FVU and the fraction of features silent on x (a quick estimate; make_bundle.py measures
    the bundle's figures on the whole held-out corpus)."""
    err = var = l0 = 0.0
    fired = torch.zeros(sae.W_enc.shape[1], dtype=torch.bool)
    mean = x.mean(0)
    for i in range(0, len(x), 8192):
        xb = x[i : i + 8192]
        acts = torch.relu((xb - sae.b_dec) @ sae.W_enc + sae.b_enc)
        if sae.topk:
            acts = acts * torch.zeros_like(acts).scatter_(1, acts.topk(sae.topk, dim=1).indices, 1.0)
        err += float(((acts @ sae.W_dec + sae.b_dec - xb) ** 2).sum())
        var += float(((xb - mean) ** 2).sum())
        l0 += float((acts > 0).sum())
        fired |= (acts > 0).any(0)
    return {"fvu": round(err / var, 4), "l0": round(l0 / len(x), 2), "silent": round(1 - float(fired.float().mean()), 4)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("work")
    ap.add_argument("--tokens", type=float, default=6.2e6)
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--target-l0", type=float, default=50.0)
    ap.add_argument("--dict-mult", type=int, default=8)
    ap.add_argument("--free-norm", action="store_true", help="Anthropic's April 2024 parameterisation")
    ap.add_argument("--resample-every", type=float, default=0.05, help="fraction of the steps between resamplings")
    ap.add_argument("--dead-window", type=int, default=60, help="steps without firing that make a feature dead")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--init", choices=("data", "random"), default="data")
    ap.add_argument("--init-fire", type=float, default=0.01, help="data init: fraction of inputs each feature fires on")
    ap.add_argument("--l1-init", type=float, default=6.0, help="L1 coefficient after the warm-up (then steered to --target-l0)")
    ap.add_argument("--bias-lr-mult", type=float, default=20.0, help="b_enc's learning rate over the others'")
    ap.add_argument("--topk", type=int, default=0, help="train with TopK(k) first, then convert to ReLU form")
    ap.add_argument("--relu-frac", type=float, default=0.3, help="with --topk: fraction of the steps trained as ReLU + L1 at the end")
    ap.add_argument("--refit-steps", type=int, default=300)
    ap.add_argument("--refit-lr", type=float, default=1e-3)
    ap.add_argument("--out", default="sae_final.pt")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
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
    sae = SAE(d_in, d_sae, (sample * scale).mean(0), seed=0, free_norm=args.free_norm)
    if args.init == "data":
        sae.init_from_data(sample * scale, args.init_fire, seed=0)
        sae.bias_lr_mult = args.bias_lr_mult
        sae.resample_enc_scale = 1.0
    steps = math.ceil(args.tokens / args.batch)
    l1 = args.l1_init
    warm = max(1, int(0.05 * steps))  # the L1 coefficient ramps up from 0 over the first 5% of steps
    # With --topk: TopK until `switch`, then the ReLU form with the L1 penalty steered to the target L0.
    switch = int((1 - args.relu_frac) * steps) if args.topk else 0
    sae.topk = args.topk
    control = (switch + 1, int(0.93 * steps)) if args.topk else (warm, int(0.7 * steps))
    last_fired = torch.zeros(d_sae, dtype=torch.long)
    every = max(1, int(steps * args.resample_every))
    resample_at = set(range(every, int(0.75 * (switch or steps)), every))
    heldout = heldout_activations(p, cfg, os.path.join(args.work, "ids_heldout.npy"), n_seq=512) * scale
    t0 = time.time()
    hist = []
    for step in range(1, steps + 1):
        if args.topk and step == switch + 1:
            print("held-out, TopK:", evaluate(sae, heldout), flush=True)
            sae.to_relu(buf.next(args.batch * 8) * scale)
            print("held-out, converted to ReLU:", evaluate(sae, heldout), flush=True)
        lr = args.lr * min(1.0, step / 50) * (1.0 if step < 0.8 * steps else max(0.0, (steps - step) / (0.2 * steps)))
        x = buf.next(args.batch) * scale
        st = sae.step(x, l1 * (1.0 if args.topk else min(1.0, step / warm)), lr)
        last_fired[st["fired"]] = step
        hist.append(st["l0"])
        if control[0] <= step < control[1] and step % 5 == 0:
            recent = float(np.mean(hist[-5:]))
            l1 *= math.exp(float(np.clip(0.1 * math.log(recent / args.target_l0), -0.1, 0.1)))
        if step in resample_at:
            dead = (step - last_fired) > args.dead_window
            n = sae.resample(dead, buf.next(args.batch * 4) * scale)
            print(f"step {step}: resampled {n} dead features", flush=True)
        if step % 25 == 0 or step == steps:
            rate = step * args.batch / (time.time() - t0)
            fvu = st["mse"] / float(((x - x.mean(0)) ** 2).sum(1).mean())
            print(f"step {step}/{steps} mse {st['mse']:.2f} fvu~{fvu:.3f} l0 {st['l0']:.1f} l1coef {l1:.3f} dense {st['density']:.3f} "
                  f"dead {int(((step - last_fired) > args.dead_window).sum())} {rate:.0f} tok/s eta {(steps - step) * args.batch / rate / 60:.1f} min", flush=True)
    print("held-out before refit:", evaluate(sae, heldout), flush=True)
    if sae.topk:  # --relu-frac 0: keep the TopK SAE as it is (its raw state, for experiments)
        torch.save({"topk_state": {n: getattr(sae, n).clone() for n in sae.names}, "topk": sae.topk, "scale": scale, "args": vars(args)},
                   os.path.join(args.work, args.out))
        return
    if args.refit_steps:
        sae.refit_decoder(buf, scale, args.refit_steps, args.batch, args.refit_lr)
        print("held-out after refit:", evaluate(sae, heldout), flush=True)
    sae.normalise_decoder()
    # Fold the input scale back: the saved SAE reads raw hook_post and reports acts / scale.
    out = {"W_enc": sae.W_enc.clone(), "b_enc": sae.b_enc / scale, "W_dec": sae.W_dec.clone(), "b_dec": sae.b_dec / scale}
    torch.save({"sae": out, "scale": scale, "l1_coeff": l1, "train_tokens": steps * args.batch, "d_sae": d_sae,
                "refit_steps": args.refit_steps, "args": vars(args),
                "hook_point": "blocks.0.mlp.hook_post"}, os.path.join(args.work, args.out))
    print(f"done in {(time.time() - t0) / 60:.1f} min", flush=True)


if __name__ == "__main__":
    main()
