"""Folding and centring (what from_pretrained does) leaves hook_post and the log-probabilities unchanged."""
import torch

from ftlib import model

CFG = {"n_layers": 2, "d_model": 16, "n_heads": 2, "d_head": 8, "d_mlp": 32, "d_vocab": 50, "n_ctx": 12,
       "act_fn": "gelu", "normalization_type": "LN", "eps": 1e-5, "positional_embedding_type": "standard"}


def test_fold_and_center_preserves_function():
    torch.manual_seed(0)
    p = {k: v.double() for k, v in model.init_params({**CFG, "init_std": 0.3}, seed=3).items()}
    g = torch.Generator().manual_seed(4)
    for k in p:
        if k.endswith((".w",)):
            p[k] = 1 + 0.3 * torch.randn(p[k].shape, generator=g, dtype=torch.float64)
        elif k.split(".")[-1].startswith("b"):
            p[k] = 0.2 * torch.randn(p[k].shape, generator=g, dtype=torch.float64)
    toks = torch.randint(0, CFG["d_vocab"], (3, CFG["n_ctx"]), generator=g)
    c1, c2 = {}, {}
    lp1 = model.forward(p, CFG, toks, cache=c1).log_softmax(-1)
    folded = model.fold_and_center(p, CFG)
    assert not any(k.startswith("ln") or ".ln" in k for k in folded)
    lp2 = model.forward(folded, {**CFG, "normalization_type": "LNPre"}, toks, cache=c2).log_softmax(-1)
    assert torch.allclose(lp1, lp2, atol=1e-9)
    for l in range(CFG["n_layers"]):
        assert torch.allclose(c1[f"blocks.{l}.mlp.hook_post"], c2[f"blocks.{l}.mlp.hook_post"], atol=1e-9)
        assert torch.allclose(c1[f"blocks.{l}.attn.hook_pattern"], c2[f"blocks.{l}.attn.hook_pattern"], atol=1e-9)
    # Centred writing weights: the residual stream has zero mean over d_model.
    assert c2["blocks.1.hook_resid_mid"].mean(-1).abs().max() < 1e-9
    assert torch.count_nonzero(folded["blocks.0.attn.b_V"]) == 0


def test_forward_stops_at_a_hook_with_the_full_pass_values():
    """bench_torch.py and the shaped-bundle maker stop the pass at the SAE's hook: the same values as a full pass."""
    p = model.init_params({**CFG, "init_std": 0.3}, seed=5)
    toks = torch.randint(0, CFG["d_vocab"], (2, CFG["n_ctx"]), generator=torch.Generator().manual_seed(6))
    cache: dict = {}
    model.forward(p, CFG, toks, cache=cache)
    for l in range(CFG["n_layers"]):
        assert torch.equal(model.forward(p, CFG, toks, stop_at_resid_pre=l), cache[f"blocks.{l}.hook_resid_pre"])
        assert torch.equal(model.forward(p, CFG, toks, stop_at_layer_mlp=l), cache[f"blocks.{l}.mlp.hook_post"])
