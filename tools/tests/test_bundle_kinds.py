"""ftlib.bundle's SAE kinds refuse what the app's schema refuses (test/unit/sae-kinds.test.ts has the same
cases), and the committed kind fixtures read back with the app's rules."""
import json
import os
import shutil

import pytest

from conftest import ROOT
from ftlib import bundle, safetensors_io
from ftlib.bundle import BundleError

TINY = os.path.join(ROOT, "test", "fixtures", "tiny")


def with_sae(**over) -> dict:
    with open(os.path.join(TINY, "bundle.json")) as f:
        meta = json.load(f)
    meta["sae"].update(over)
    return meta


@pytest.mark.parametrize("over,needle", [
    (dict(kind="topk"), r"sae\.k"),
    (dict(kind="topk", k=0), r"sae\.k"),
    (dict(kind="topk", k=65), r"k = 65 .*d_sae = 64"),
    (dict(kind="gated"), r"sae\.kind"),
    (dict(apply_b_dec_to_input="no"), r"sae\.apply_b_dec_to_input"),
])
def test_config_refusals_match_the_app(over, needle):
    with pytest.raises(BundleError, match=needle):
        bundle.check_config(with_sae(**over))


def test_topk_with_k_up_to_d_sae_accepted():
    bundle.check_config(with_sae(kind="topk", k=64))


@pytest.mark.parametrize("kind", ["jumprelu", "topk"])
def test_kind_fixtures_read_back(kind):
    meta, _, sae, _, _ = bundle.read_bundle(os.path.join(ROOT, "test", "fixtures", f"tiny-{kind}"))
    assert meta["sae"]["kind"] == kind
    assert ("threshold" in sae) == (kind == "jumprelu")


def test_jumprelu_without_threshold_refused(tmp_path):
    d = tmp_path / "b"
    shutil.copytree(os.path.join(ROOT, "test", "fixtures", "tiny-jumprelu"), d)
    tensors = safetensors_io.load(str(d / "sae.safetensors"))
    del tensors["threshold"]
    safetensors_io.save(str(d / "sae.safetensors"), tensors)
    meta = json.loads((d / "bundle.json").read_text())
    meta["provenance"]["files"] = {}
    (d / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match=r"lacks tensor threshold \(expected shape \[64\]\)"):
        bundle.read_bundle(str(d))


def with_model(**over) -> dict:
    meta = with_sae()
    meta["model"].update(over)
    return meta


@pytest.mark.parametrize("scales,needle", [
    ([1.0], r"model\.attn_scales has 1 entries but the model has 2 layers"),
    ([1.0, 0.0], r"model\.attn_scales: must be a list of positive numbers"),
    ([1.0, -2.0], r"model\.attn_scales: must be a list of positive numbers"),
    ([1.0, True], r"model\.attn_scales: must be a list of positive numbers"),
    ([1.0, float("inf")], r"model\.attn_scales: must be a list of positive numbers"),
    (2.0, r"model\.attn_scales: must be a list of positive numbers"),
])
def test_attn_scales_refusals_match_the_app(scales, needle):
    """The same cases as test/unit/attn-scales.test.ts."""
    with pytest.raises(BundleError, match=needle):
        bundle.check_config(with_model(attn_scales=scales))


@pytest.mark.parametrize("name,scales", [("unscaled", [1.0, 1.0]), ("by-layer", [8 ** 0.5, 2 * 8 ** 0.5])])
def test_attn_scale_fixtures_read_back(name, scales):
    meta, *_ = bundle.read_bundle(os.path.join(ROOT, "test", "fixtures", f"tiny-attn-{name}"))
    assert meta["model"]["attn_scales"] == scales
    bundle.check_config(with_model(attn_scales=scales))


NEOX = os.path.join(ROOT, "test", "fixtures", "tiny-neox")


def neox_with(**over) -> dict:
    with open(os.path.join(NEOX, "bundle.json")) as f:
        meta = json.load(f)
    for k, v in over.items():
        if v is None:
            meta["model"].pop(k, None)
        else:
            meta["model"][k] = v
    return meta


@pytest.mark.parametrize("over,needle", [
    (dict(rotary_dim=None), r"need model\.rotary_dim and model\.rotary_base"),
    (dict(rotary_base=None), r"need model\.rotary_dim and model\.rotary_base"),
    (dict(rotary_dim=3), r"rotary_dim = 3 must be even and at most d_head = 8"),
    (dict(rotary_dim=10), r"rotary_dim = 10"),
    (dict(positional_embedding_type="standard"), r"belong to rotary positional embeddings only"),
    (dict(positional_embedding_type="alibi"), r"model\.positional_embedding_type"),
])
def test_rotary_refusals_match_the_app(over, needle):
    """The same cases as test/unit/neox.test.ts."""
    with pytest.raises(BundleError, match=needle):
        bundle.check_config(neox_with(**over))


def test_neox_fixture_reads_back_without_w_pos_and_has_no_resid_mid():
    meta, params, *_ = bundle.read_bundle(NEOX)
    assert meta["model"]["positional_embedding_type"] == "rotary" and meta["model"]["parallel_attn_mlp"] is True
    assert "pos_embed.W_pos" not in params
    with pytest.raises(BundleError, match="does not exist in a model with parallel attention and MLP"):
        bundle.hook_width(meta["model"], "blocks.1.hook_resid_mid")
    assert bundle.hook_width({**meta["model"], "parallel_attn_mlp": False}, "blocks.1.hook_resid_mid") == 32
