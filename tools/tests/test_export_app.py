"""The app itself opens an exported bundle: `feature-tracer trace` on it exits 0, and its pre-activation at
the traced point equals the one computed from the unprocessed model and the SAE's own checkpoint."""
import json
import os
import shutil
import subprocess

import pytest

import export_fixtures as fx
from conftest import ROOT
from export_transformer_lens import main

NODE = shutil.which("node")
HAVE_APP = NODE is not None and os.path.exists(os.path.join(ROOT, "node_modules", "tsx"))


@pytest.mark.skipif(not HAVE_APP, reason="needs node and the app's devDependencies (npm install)")
@pytest.mark.parametrize("kind,over", [("gpt2", {}), ("gpt2", {"use_attn_scale": False, "scale_attn_by_inverse_layer_idx": True}), ("neox", {})],
                         ids=["gpt2", "gpt2-attn-scales", "neox"])
def test_app_traces_an_exported_bundle(tmp_path, kind, over):
    """GPT-2 style, with TransformerLens's other attention scalings, and GPT-NeoX style (rotary, parallel blocks)."""
    cfg = fx.tl_cfg(kind, 2, **over)
    sd = fx.tl_state_dict(cfg, seed=3)
    pt, js = fx.write_model(tmp_path, cfg, sd)
    w = fx.sae_tensors(fx.D_MLP, 48, seed=4)
    sae = fx.write_neel(tmp_path, w, {"act_name": "blocks.1.mlp.hook_post", "act_size": fx.D_MLP, "dict_size": 48})
    toks = fx.tokens(seed=5)
    out = str(tmp_path / "bundle")
    main(["--model-state", pt, "--model-cfg", js, "--sae", sae, "--tokens", fx.write_tokens(tmp_path, toks, "npy"),
          "--tokenizer", fx.tokenizer_path(), "--out", out])
    env = dict(os.environ, HOME=str(tmp_path), XDG_CACHE_HOME=str(tmp_path / "cache"), XDG_CONFIG_HOME=str(tmp_path / "config"),
               FEATURE_TRACER_USER_DATA=str(tmp_path / "user-data"))
    r = subprocess.run([NODE, "bin/feature-tracer.mjs", "trace", "--bundle", out, "--feature", "0", "--sample", "0", "--pos", "1", "--json"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    trace = json.loads(r.stdout)
    x = fx.reference_hook(sd, cfg, toks, "blocks.1.mlp.hook_post", centred=True)
    W = {k: v.double() for k, v in w.items()}
    pre = float(((x - W["b_dec"]) @ W["W_enc"] + W["b_enc"])[0, 1, 0])
    assert trace["hookPoint"] == "blocks.1.mlp.hook_post" and trace["tokenId"] == int(toks[0, 1])
    assert abs(trace["preActivation"] - pre) < 1e-4 * max(1.0, abs(pre))
