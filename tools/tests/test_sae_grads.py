"""The hand-written SAE backward pass (dense and sparse paths) equals torch autograd."""
import pytest
import torch

from demo.train_sae import SAE


def autograd_grads(sae: SAE, x: torch.Tensor, l1: float) -> dict:
    p = {n: getattr(sae, n).clone().double().requires_grad_(True) for n in sae.names}
    x = x.double()
    acts = torch.relu((x - p["b_dec"]) @ p["W_enc"] + p["b_enc"])
    recon = acts @ p["W_dec"] + p["b_dec"]
    loss = ((recon - x) ** 2).sum(1).mean() + l1 * acts.sum(1).mean()
    loss.backward()
    g = {n: p[n].grad for n in sae.names}
    W = p["W_dec"].detach()
    g["W_dec"] = g["W_dec"] - (g["W_dec"] * W).sum(1, keepdim=True) * W
    return g


@pytest.mark.parametrize("sparse", [False, True])
def test_hand_gradients_match_autograd(sparse):
    torch.manual_seed(0)
    d_in, d_sae, B = 16, 64, 32
    sae = SAE(d_in, d_sae, torch.zeros(d_in), seed=1)
    sae.b_enc -= 0.3  # make the code sparse-ish
    x = torch.randn(B, d_in)
    mine, stats = sae.grads(x, l1=0.7, sparse=sparse)
    ref = autograd_grads(sae, x, 0.7)
    assert 0 < stats["l0"] < d_sae
    for n in sae.names:
        got = mine[n].to_dense() if mine[n].is_sparse else mine[n]
        assert torch.allclose(got.double(), ref[n], rtol=1e-4, atol=1e-5), n
