"""The exporter's online path, wired to stand-ins for TransformerLens, SAELens, datasets and huggingface_hub
(none is installed here, and there is no hub): which loader it calls with which processing, the notebook's
corpus preparation (tokenize_and_concatenate, shuffle(42), first n rows), the tokenizer taken before
tokenize_and_concatenate adds its <PAD> token, and the bundle's acts against the reference."""
import json
import os
import sys
import types

import numpy as np
import pytest
import torch

import export_fixtures as fx
from export_transformer_lens import main
from ftlib import model as ftmodel
from ftlib.bundle import BundleError

MODELS = {"gelu-1l": fx.tl_cfg("gelu", 1, model_name="gelu-1l"), "gpt2-2l-test": fx.tl_cfg("gpt2", 2)}
RAW = {name: fx.tl_state_dict(cfg, seed=11) for name, cfg in MODELS.items()}
ROWS = fx.tokens(n_seq=10, seed=12)


class FakeTokenizer:
    bos_token_id = 0
    eos_token_id = 0

    def __init__(self):
        self.tj = json.load(open(fx.tokenizer_path()))
        self.backend_tokenizer = types.SimpleNamespace(to_str=lambda: json.dumps(self.tj))


class FakeDataset:
    def __init__(self, rows, log):
        self.rows, self.log = rows, log

    def shuffle(self, seed):
        self.log.append(("shuffle", seed))
        return FakeDataset(self.rows[np.random.default_rng(seed).permutation(len(self.rows))], self.log)

    def select(self, idx):
        return FakeDataset(self.rows[list(idx)], self.log)

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, key):
        assert key == "tokens"
        return torch.from_numpy(self.rows.astype(np.int64))


@pytest.fixture
def hub(tmp_path, monkeypatch):
    log: list = []
    files = tmp_path / "hub"

    def load(name, processing):
        cfg = dict(MODELS[name])
        sd, norm = ftmodel.process_weights({k: v.double() for k, v in RAW[name].items() if v.is_floating_point()}, cfg, **processing)
        cfg["normalization_type"] = norm
        sd = {k: v.float() for k, v in sd.items()}
        sd["blocks.0.attn.IGNORE"] = torch.tensor(-1e5)
        return types.SimpleNamespace(state_dict=lambda: sd, cfg=types.SimpleNamespace(to_dict=lambda: cfg), tokenizer=FakeTokenizer())

    class HookedTransformer:
        @classmethod
        def from_pretrained(cls, name, device=None, fold_ln=True, center_writing_weights=True, center_unembed=True, fold_value_biases=True, **kw):
            log.append(("from_pretrained", name, kw))
            return load(name, dict(fold_ln=fold_ln, center_writing_weights=center_writing_weights, center_unembed=center_unembed, fold_value_biases=fold_value_biases))

        @classmethod
        def from_pretrained_no_processing(cls, name, device=None, fold_ln=False, center_writing_weights=False, center_unembed=False,
                                          fold_value_biases=False, **kw):
            log.append(("from_pretrained_no_processing", name, dict(kw, fold_ln=fold_ln, center_writing_weights=center_writing_weights)))
            return load(name, dict(fold_ln=fold_ln, center_writing_weights=center_writing_weights, center_unembed=center_unembed, fold_value_biases=fold_value_biases))

    def tokenize_and_concatenate(data, tokenizer, streaming=False, max_length=1024, column_name="text", add_bos_token=True, num_proc=10):
        log.append(("tokenize_and_concatenate", data, max_length, column_name, add_bos_token))
        # TransformerLens adds a pad token to a tokenizer that has none: 301 tokens, one more than d_vocab.
        tokenizer.tj["added_tokens"].append({**tokenizer.tj["added_tokens"][0], "id": 300, "content": "<PAD>"})
        return FakeDataset(ROWS[:, :max_length], log)

    utils = types.ModuleType("transformer_lens.utils")
    utils.tokenize_and_concatenate = tokenize_and_concatenate
    loading = types.ModuleType("transformer_lens.loading_from_pretrained")
    loading.get_official_model_name = lambda n: {"gelu-1l": "NeelNanda/GELU_1L512W_C4_Code"}.get(n, n)
    tl = types.ModuleType("transformer_lens")
    tl.HookedTransformer, tl.utils, tl.loading_from_pretrained = HookedTransformer, utils, loading
    datasets = types.ModuleType("datasets")
    datasets.load_dataset = lambda name, split: log.append(("load_dataset", name, split)) or f"<{name}>"
    hf = types.ModuleType("huggingface_hub")

    def hf_hub_download(repo_id, filename):
        log.append(("download", repo_id, filename))
        path = files / repo_id / filename
        assert path.exists(), path
        return str(path)

    hf.hf_hub_download = hf_hub_download
    directory = types.ModuleType("sae_lens.loading.pretrained_saes_directory")
    releases = {"fake-res": types.SimpleNamespace(conversion_func=None), "fake-converted": types.SimpleNamespace(conversion_func="gemma_2")}
    directory.get_pretrained_saes_directory = lambda: releases
    directory.get_repo_id_and_folder_name = lambda release, sae_id: ("fake/sae-repo", sae_id)
    directory.get_config_overrides = lambda release, sae_id: {"model_from_pretrained_kwargs": {"center_writing_weights": True}}
    directory.get_norm_scaling_factor = lambda release, sae_id: None
    for name, mod in {"transformer_lens": tl, "transformer_lens.utils": utils, "transformer_lens.loading_from_pretrained": loading,
                      "datasets": datasets, "huggingface_hub": hf, "sae_lens": types.ModuleType("sae_lens"),
                      "sae_lens.loading": types.ModuleType("sae_lens.loading"), "sae_lens.loading.pretrained_saes_directory": directory}.items():
        monkeypatch.setitem(sys.modules, name, mod)
    return log, files


def test_gelu_1l_neel_run1_notebook_corpus(hub, tmp_path):
    log, files = hub
    w = fx.sae_tensors(fx.D_MLP, 128, seed=13)
    os.makedirs(files / "NeelNanda/sparse_autoencoder")
    fx.write_neel(files / "NeelNanda/sparse_autoencoder", w, fx.NEEL_1L_CFG, name="25")
    out = str(tmp_path / "bundle")
    main(["--model", "gelu-1l", "--sae", "neel:run1", "--dataset", "NeelNanda/c4-code-20k", "--n-seq", "4", "--seq-len", "16", "--out", out])
    assert ("from_pretrained", "gelu-1l", {}) in log  # the model as from_pretrained gives it, as the notebook loads it
    assert ("download", "NeelNanda/sparse_autoencoder", "25.pt") in log and ("download", "NeelNanda/sparse_autoencoder", "25_cfg.json") in log
    assert ("load_dataset", "NeelNanda/c4-code-20k", "train") in log
    assert ("tokenize_and_concatenate", "<NeelNanda/c4-code-20k>", 16, "text", True) in log
    assert ("shuffle", 42) in log
    meta, acts, _ = fx.bundle_acts(out)
    shuffled = ROWS[np.random.default_rng(42).permutation(len(ROWS))][:4]
    from ftlib import safetensors_io

    assert np.array_equal(safetensors_io.load(os.path.join(out, "tokens.safetensors"))["tokens"], shuffled)
    ref = fx.reference_acts(fx.reference_hook(RAW["gelu-1l"], MODELS["gelu-1l"], shuffled, "blocks.0.mlp.hook_post", True), w)
    assert torch.allclose(acts, ref, rtol=1e-4, atol=1e-4)
    assert meta["model"]["processing"] == {k: True for k in ftmodel.PROCESSING_FLAGS}
    assert "<PAD>" not in open(os.path.join(out, "tokenizer.json")).read()
    assert "shuffle(42), first 4 of 10 rows" in meta["provenance"]["files"]["tokens.safetensors"]["source"]


def test_saelens_release_with_config_overrides(hub, tmp_path):
    log, files = hub
    w = fx.sae_tensors(fx.D_MODEL, 40, seed=14, dtype=torch.bfloat16)
    fx.write_saelens(files / "fake/sae-repo", "blocks.1.hook_resid_pre", w,
                     fx.saelens_cfg("current", "blocks.1.hook_resid_pre", fx.D_MODEL, 40, "bfloat16", kwargs={}))
    out = str(tmp_path / "bundle")
    main(["--sae", "saelens-release:fake-res:blocks.1.hook_resid_pre", "--dataset", "fake/dataset", "--out", out])
    # The model the SAE names, loaded as SAELens loads it, with the release's override applied.
    calls = [c for c in log if c[0].startswith("from_pretrained")]
    assert calls == [("from_pretrained_no_processing", "gpt2-2l-test", {"fold_ln": False, "center_writing_weights": True})]
    assert ("tokenize_and_concatenate", "<fake/dataset>", fx.N_CTX, "text", True) in log  # seq_len: the SAE's context_size
    meta, acts, sae = fx.bundle_acts(out)
    shuffled = ROWS[np.random.default_rng(42).permutation(len(ROWS))]
    ref = fx.reference_acts(fx.reference_hook(RAW["gpt2-2l-test"], MODELS["gpt2-2l-test"], shuffled, "blocks.1.hook_resid_pre", True), w)
    assert torch.allclose(acts, ref, rtol=1e-4, atol=1e-4)
    assert meta["model"]["processing"]["center_writing_weights"] is True and meta["model"]["processing"]["fold_ln"] is False
    assert np.array_equal(sae["W_enc"], w["W_enc"].float().numpy().astype(np.float64))


def test_online_refusals(hub, tmp_path):
    log, files = hub
    with pytest.raises(BundleError, match="stored in another format .*save_model"):
        main(["--sae", "saelens-release:fake-converted:layer_3/width_16k", "--dataset", "x", "--out", str(tmp_path / "b")])
    w = fx.sae_tensors(fx.D_MODEL, 40)
    fx.write_saelens(files / "fake/sae-repo", "blocks.1.hook_resid_pre", w, fx.saelens_cfg("current", "blocks.1.hook_resid_pre", fx.D_MODEL, 40))
    with pytest.raises(BundleError, match="trained on gpt2-2l-test, but --model is gelu-1l"):
        main(["--model", "gelu-1l", "--sae", "saelens-release:fake-res:blocks.1.hook_resid_pre", "--dataset", "x", "--out", str(tmp_path / "b")])
    assert not (tmp_path / "b").exists()
