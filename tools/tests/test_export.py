"""The exporter's core: TransformerLens state dict + config + SAE → bundle, round trip and refusals."""
import json
import os

import numpy as np
import pytest
import torch

from conftest import ROOT
from export_transformer_lens import export_bundle, sae_from_saelens
from ftlib import bpe, bundle, model, safetensors_io
from ftlib.bundle import BundleError

TL_CFG = {"n_layers": 2, "d_model": 32, "n_heads": 4, "d_head": 8, "d_mlp": 64, "d_vocab": 270, "n_ctx": 16,
          "act_fn": "gelu_new", "normalization_type": "LN", "eps": 1e-5, "positional_embedding_type": "standard",
          "attn_only": False, "d_vocab_out": 270}


def random_tl_model():
    p = model.init_params({**TL_CFG, "init_std": 0.3}, seed=5)
    sd = {k: v.clone() for k, v in p.items()}
    # TransformerLens state dicts carry buffers too; the exporter must ignore them.
    sd["blocks.0.attn.mask"] = torch.ones(16, 16).tril()
    sd["blocks.0.attn.IGNORE"] = torch.tensor(-1e5)
    return p, sd


def tokenizer(n):
    vocab, merges = bpe.train(["the quick brown fox jumps over the lazy dog " * 20 + "0123456789 abcdefghij"], n)
    tj = bpe.tokenizer_json(vocab, merges)
    assert bundle.tokenizer_vocab_size(tj) == n
    return tj


def sae(d_in, d_sae, hook="blocks.1.mlp.hook_post", seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"hook_point": hook, "d_in": d_in, "d_sae": d_sae}, {
        "W_enc": torch.randn(d_in, d_sae, generator=g), "b_enc": torch.randn(d_sae, generator=g),
        "W_dec": torch.randn(d_sae, d_in, generator=g), "b_dec": torch.randn(d_in, generator=g)}


def test_random_two_layer_round_trip(tmp_path):
    p, sd = random_tl_model()
    sc, sw = sae(64, 48)
    toks = np.random.default_rng(0).integers(0, 270, size=(5, 16)).astype(np.int32)
    out = tmp_path / "b"
    export_bundle(str(out), state_dict=sd, tl_cfg=TL_CFG, sae_cfg=sc, sae=sw, tokenizer=tokenizer(270), tokens=toks,
                  dataset={"name": "random", "prepend_bos": False, "bos_token_id": 0})
    meta, params, sae_back, _, tokens = bundle.read_bundle(str(out))
    assert meta["model"]["normalization_type"] == "LN" and meta["model"]["act_fn"] == "gelu_new"
    assert set(params) == set(bundle.expected_model_shapes(meta["model"]))
    for k, v in params.items():
        assert np.array_equal(v.astype(np.float32), p[k].numpy()), k
    assert np.array_equal(tokens, toks)
    P = {k: torch.tensor(v) for k, v in params.items()}
    ref = model.forward({k: v.double() for k, v in p.items()}, TL_CFG, torch.tensor(toks).long())
    assert torch.allclose(model.forward(P, meta["model"], torch.tensor(toks).long()), ref, atol=1e-9)
    for name, info in meta["provenance"]["files"].items():
        assert info["sha256"] == bundle.sha256(str(out / name))


DEMO_PRESENT = os.path.exists(os.path.join(ROOT, "resources", "demo", "bundle.json"))


@pytest.mark.skipif(not DEMO_PRESENT, reason="resources/demo is not built yet (tools/demo/)")
def test_demo_model_round_trip(tmp_path):
    demo = os.path.join(ROOT, "resources", "demo")
    meta, params, sw, tok, tokens = bundle.read_bundle(demo)
    cfg = meta["model"]
    out = tmp_path / "demo"
    export_bundle(str(out), state_dict=params, tl_cfg=cfg, sae_cfg=meta["sae"], sae=sw, tokenizer=tok,
                  tokens=tokens[:4], dataset=meta["dataset"], processing=cfg["processing"], dtype="float16")
    back = safetensors_io.load(str(out / "model.safetensors"))
    orig = safetensors_io.load(os.path.join(demo, "model.safetensors"))
    assert back.keys() == orig.keys()
    assert all(np.array_equal(back[k], orig[k]) for k in orig)
    assert cfg["normalization_type"] == "LNPre" and cfg["processing"]["fold_ln"] is True


@pytest.mark.parametrize("case,needle", [
    ("sae_width", "d_in is 63"),
    ("vocab", "tokenizer has 260 tokens"),
    ("missing", "lacks blocks.1.mlp.W_out"),
    ("shape", "blocks.0.attn.W_Q has shape [4, 32, 7]"),
    ("hook", "names layer 2"),
])
def test_refusals_name_the_problem_and_write_nothing(tmp_path, case, needle):
    _, sd = random_tl_model()
    sc, sw = sae(64, 48)
    tj = tokenizer(270)
    if case == "sae_width":
        sc, sw = sae(63, 48)
    elif case == "vocab":
        tj = tokenizer(260)
    elif case == "missing":
        del sd["blocks.1.mlp.W_out"]
    elif case == "shape":
        sd["blocks.0.attn.W_Q"] = torch.zeros(4, 32, 7)
    elif case == "hook":
        sc["hook_point"] = "blocks.2.mlp.hook_post"
    out = tmp_path / "never"
    with pytest.raises(BundleError, match=needle.replace("[", r"\[").replace("]", r"\]")):
        export_bundle(str(out), state_dict=sd, tl_cfg=TL_CFG, sae_cfg=sc, sae=sw, tokenizer=tj,
                      tokens=np.zeros((2, 16), np.int32), dataset={"prepend_bos": True, "bos_token_id": 0})
    assert not out.exists()


def test_saelens_without_b_dec_on_input_is_converted(tmp_path):
    sc, sw = sae(64, 48)
    sw = {k: v.numpy() for k, v in sw.items()}
    safetensors_io.save(str(tmp_path / "sae_weights.safetensors"), sw)
    (tmp_path / "cfg.json").write_text(json.dumps({"hook_name": "blocks.1.mlp.hook_post", "d_in": 64, "d_sae": 48,
                                                   "apply_b_dec_to_input": False, "architecture": "standard"}))
    cfg, conv = sae_from_saelens(str(tmp_path))
    x = np.random.default_rng(1).normal(size=(7, 64)).astype(np.float64)
    saelens = np.maximum(x @ sw["W_enc"] + sw["b_enc"], 0)
    ours = np.maximum((x - conv["b_dec"]) @ conv["W_enc"] + conv["b_enc"], 0)
    assert cfg["hook_point"] == "blocks.1.mlp.hook_post"
    assert np.allclose(ours, saelens, atol=1e-4)
