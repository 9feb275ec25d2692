"""The hand-written SAE backward pass (dense and sparse paths) equals torch autograd."""
import pytest
import torch

from demo.train_sae import SAE


def autograd_grads(sae: SAE, x: torch.Tensor, l1: float) -> dict:
    p = {n: getattr(sae, n).clone().double().requires_grad_(True) for n in sae.names}
    x = x.double()
    acts = torch.relu((x - p["b_dec"]) @ p["W_enc"] + p["b_enc"])
    recon = acts @ p["W_dec"] + p["b_dec"]
    weight = p["W_dec"].norm(dim=1) if sae.free_norm else 1.0
    loss = ((recon - x) ** 2).sum(1).mean() + l1 * (acts * weight).sum(1).mean()
    loss.backward()
    g = {n: p[n].grad for n in sae.names}
    return g


@pytest.mark.parametrize("free_norm", [False, True])
@pytest.mark.parametrize("sparse", [False, True])
def test_hand_gradients_match_autograd(sparse, free_norm):
    torch.manual_seed(0)
    d_in, d_sae, B = 16, 64, 32
    sae = SAE(d_in, d_sae, torch.zeros(d_in), seed=1, dtype=torch.float32, free_norm=free_norm)
    sae.W_dec *= torch.rand(d_sae, 1) + 0.5  # rows of different norms
    sae.b_enc -= 0.3  # make the code sparse-ish
    x = torch.randn(B, d_in)
    mine, stats = sae.grads(x, l1=0.7, sparse=sparse)
    ref = autograd_grads(sae, x, 0.7)
    assert 0 < stats["l0"] < d_sae
    for n in sae.names:
        got = mine[n].to_dense() if mine[n].is_sparse else mine[n]
        assert torch.allclose(got.double(), ref[n], rtol=1e-4, atol=1e-5), n


class Stream:
    """A fixed pool of inputs served in batches, as ActivationBuffer serves hook_post."""

    def __init__(self, x: torch.Tensor):
        self.x, self.i = x, 0

    def next(self, batch: int) -> torch.Tensor:
        out = self.x[self.i : self.i + batch]
        self.i = (self.i + batch) % len(self.x)
        return out


def sae_function(sae: SAE, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    acts = torch.relu((x.double() - sae.b_dec.double()) @ sae.W_enc.double() + sae.b_enc.double())
    return acts, acts @ sae.W_dec.double() + sae.b_dec.double()


def test_decoder_refit_keeps_the_code_and_lowers_the_error():
    torch.manual_seed(0)
    d_in, d_sae = 16, 64
    x = torch.randn(512, d_in) @ torch.randn(d_in, d_in) + 0.5
    sae = SAE(d_in, d_sae, x.mean(0), seed=2, dtype=torch.float32)
    sae.W_enc *= 5
    sae.b_enc -= 0.5
    acts0, recon0 = sae_function(sae, x)
    sae.refit_decoder(Stream(x), 1.0, steps=200, batch=128, lr=1e-2)
    acts1, recon1 = sae_function(sae, x)
    # The same features fire on the same inputs (only their scale per feature may change) ...
    assert torch.equal(acts0 > 0, acts1 > 0)
    for f in range(d_sae):
        on = acts0[:, f] > 0
        if on.any():
            c = acts1[:, f].norm() / acts0[:, f].norm()
            assert torch.allclose(acts1[:, f], c * acts0[:, f], rtol=1e-4, atol=1e-4), f
    # ... decoder rows are unit norm again, and the reconstruction error dropped.
    assert torch.allclose(sae.W_dec.norm(dim=1), torch.ones(d_sae), atol=1e-5)
    err0 = float(((recon0 - x.double()) ** 2).sum())
    err1 = float(((recon1 - x.double()) ** 2).sum())
    assert err1 < 0.9 * err0


@pytest.mark.parametrize("sparse", [False, True])
def test_topk_gradients_match_autograd(sparse):
    """With --topk the code keeps each input's k largest positive pre-activations and has no L1 term."""
    torch.manual_seed(0)
    d_in, d_sae, B, k = 16, 64, 32, 5
    sae = SAE(d_in, d_sae, torch.zeros(d_in), seed=1, dtype=torch.float32)
    sae.topk = k
    x = torch.randn(B, d_in)
    mine, stats = sae.grads(x, l1=0.7, sparse=sparse)  # the L1 coefficient is ignored under TopK
    assert stats["l0"] <= k
    p = {n: getattr(sae, n).clone().double().requires_grad_(True) for n in sae.names}
    pre = (x.double() - p["b_dec"]) @ p["W_enc"] + p["b_enc"]
    keep = torch.zeros_like(pre).scatter_(1, pre.topk(k, dim=1).indices, 1.0) * (pre > 0)
    recon = torch.relu(pre) * keep @ p["W_dec"] + p["b_dec"]
    ((recon - x.double()) ** 2).sum(1).mean().backward()
    for n in sae.names:
        got = mine[n].to_dense() if mine[n].is_sparse else mine[n]
        assert torch.allclose(got.double(), p[n].grad, rtol=1e-4, atol=1e-5), n


def test_topk_to_relu_fires_each_feature_as_often_as_topk_selected_it():
    torch.manual_seed(0)
    d_in, d_sae, k = 16, 32, 4
    x = torch.randn(4096, d_in)
    sae = SAE(d_in, d_sae, torch.zeros(d_in), seed=3, dtype=torch.float32)
    sae.W_enc *= 10
    sae.topk = k
    pre = (x - sae.b_dec) @ sae.W_enc + sae.b_enc
    chosen = (torch.zeros_like(pre).scatter_(1, pre.topk(k, dim=1).indices, 1.0) * (pre > 0)).mean(0)
    sae.to_relu(x)
    assert sae.topk == 0
    fired = (((x - sae.b_dec) @ sae.W_enc + sae.b_enc) > 0).double().mean(0)
    # The same firing rate per feature (within one input of the quantile's rounding) ...
    assert torch.allclose(fired, chosen.double(), atol=2 / len(x))
    # ... so the same mean L0 as TopK's.
    assert abs(float(fired.sum()) - float(chosen.sum())) < 0.05 * k
