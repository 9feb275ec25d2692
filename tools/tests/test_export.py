"""The exporter, offline: every input format exported to a bundle, read back as the app reads it, and its SAE
acts equal to the source's own computation on the unprocessed model; every refusal raises with its reason
and writes nothing."""
import json
import math
import os

import numpy as np
import pytest
import torch

import export_fixtures as fx
from conftest import ROOT
from export_transformer_lens import Sae, export_bundle, main
from ftlib import bundle, model, safetensors_io
from ftlib.bundle import BundleError


def run_export(tmp_path, extra: list, cfg=None, sd=None, toks=None, tok_fmt="npy", out_name="bundle"):
    """Writes the model and tokens, runs the command line in-process; returns (out, cfg, sd, toks)."""
    cfg = cfg or fx.tl_cfg("gpt2", 2)
    sd = sd if sd is not None else fx.tl_state_dict(cfg)
    toks = fx.tokens() if toks is None else toks
    pt, js = fx.write_model(tmp_path, cfg, sd)
    tp = fx.write_tokens(tmp_path, toks, tok_fmt)
    out = str(tmp_path / out_name)
    main(["--model-state", pt, "--model-cfg", js, "--tokens", tp, "--tokenizer", fx.tokenizer_path(), "--out", out, *extra])
    return out, cfg, sd, toks


def check_acts(out, cfg, sd, toks, hook, w, centred, apply_b_dec=True):
    meta, acts, sae = fx.bundle_acts(out)
    assert meta["sae"]["hook_point"] == hook
    ref = fx.reference_acts(fx.reference_hook(sd, cfg, toks, hook, centred), w, apply_b_dec)
    assert 0.05 < float((ref > 0).double().mean()) < 0.95, "the fixture's features should fire on some tokens only"
    assert torch.allclose(acts, ref, rtol=1e-4, atol=1e-4), float((acts - ref).abs().max())
    return meta, sae


# --- every format ----------------------------------------------------------------------------------------------

def test_neel_checkpoint_on_gelu_1l_notebook_format(tmp_path):
    """The notebook's case: gelu-1l style, Neel's 1L-Sparse-Autoencoder cfg (no hook named), tokens as .npy."""
    cfg = fx.tl_cfg("gelu", 1)
    w = fx.sae_tensors(fx.D_MLP, 128, seed=1)
    sae = fx.write_neel(tmp_path, w, fx.NEEL_1L_CFG)
    out, cfg, sd, toks = run_export(tmp_path, ["--sae", f"neel:{sae}"], cfg=cfg)
    meta, _ = check_acts(out, cfg, sd, toks, "blocks.0.mlp.hook_post", w, centred=True)
    assert meta["model"]["processing"] == {k: True for k in model.PROCESSING_FLAGS}  # from_pretrained's defaults
    assert meta["model"]["normalization_type"] == "LNPre" and meta["model"]["act_fn"] == "gelu"
    assert meta["dataset"]["prepend_bos"] is True and meta["dataset"]["bos_token_id"] == 0
    assert meta["sae"]["d_sae"] == 128 and meta["sae"]["dtype"] == "float32"


def test_neel_checkpoint_named_hook_two_layers_safetensors_tokens(tmp_path):
    w = fx.sae_tensors(fx.D_MLP, 48, seed=2)
    sae = fx.write_neel(tmp_path, w, {"act_name": "blocks.1.mlp.hook_post", "act_size": fx.D_MLP, "dict_size": 48})
    out, cfg, sd, toks = run_export(tmp_path, ["--sae", sae, "--dtype", "float16", "--n-seq", "4"], tok_fmt="safetensors")
    meta, acts, _ = fx.bundle_acts(out)
    ref = fx.reference_acts(fx.reference_hook(sd, cfg, toks[:4], "blocks.1.mlp.hook_post", True), w)
    assert meta["model"]["dtype"] == "float16" and meta["dataset"]["n_seq"] == 4
    assert torch.allclose(acts, ref, rtol=2e-2, atol=2e-2)  # float16 weights: rounding only


@pytest.mark.parametrize("layout,dtype,hook,kwargs,centred", [
    ("current", torch.float32, "blocks.1.hook_resid_pre", None, False),  # SAELens's default: no processing at all
    ("current", torch.bfloat16, "blocks.0.mlp.hook_pre", {"fold_ln": True, "center_writing_weights": True}, True),
    ("v5", torch.float16, "blocks.1.hook_mlp_out", {}, False),
    ("v5", torch.bfloat16, "blocks.0.hook_attn_out", {"center_writing_weights": True}, True),
    ("old", torch.float16, "blocks.0.hook_resid_post", {"center_writing_weights": True}, True),
    ("old", torch.float32, "blocks.1.hook_resid_mid", None, False),
])
def test_saelens_folders(tmp_path, layout, dtype, hook, kwargs, centred):
    d_in = fx.D_MLP if "mlp.hook" in hook else fx.D_MODEL
    w = fx.sae_tensors(d_in, 40, seed=3, dtype=dtype)
    folder = fx.write_saelens(tmp_path, "sae", w, fx.saelens_cfg(layout, hook, d_in, 40, str(dtype).split(".")[-1], kwargs))
    out, cfg, sd, toks = run_export(tmp_path, ["--sae", f"saelens:{folder}"], tok_fmt="pt")
    meta, sae = check_acts(out, cfg, sd, toks, hook, w, centred)
    proc = meta["model"]["processing"]
    assert proc["center_writing_weights"] is centred
    assert proc["fold_ln"] is bool((kwargs or {}).get("fold_ln")) and proc["fold_value_biases"] is False
    assert meta["model"]["normalization_type"] == ("LNPre" if proc["fold_ln"] else "LN")
    # The SAE is stored in float32, which holds every bfloat16 and float16 value exactly.
    for k in ("W_enc", "b_enc", "W_dec", "b_dec"):
        assert np.array_equal(sae[k], w[k].float().numpy().astype(np.float64)), k


def test_residual_sae_sees_uncentred_stream_unless_asked(tmp_path):
    """center_writing_weights changes hook_resid_*: the same SAE on the same model gives other acts with it."""
    w = fx.sae_tensors(fx.D_MODEL, 40, seed=4)
    plain = fx.write_saelens(tmp_path, "plain", w, fx.saelens_cfg("current", "blocks.1.hook_resid_pre", fx.D_MODEL, 40))
    out, cfg, sd, toks = run_export(tmp_path, ["--sae", plain])
    out2, *_ = run_export(tmp_path, ["--sae", plain, "--sae-model-kwargs", '{"center_writing_weights": true}'], cfg=cfg, sd=sd, toks=toks, out_name="b2")
    _, a1, _ = fx.bundle_acts(out)
    meta2, a2, _ = fx.bundle_acts(out2)
    assert meta2["model"]["processing"]["center_writing_weights"] is True
    assert not torch.allclose(a1, a2, atol=1e-3)
    check_acts(out2, cfg, sd, toks, "blocks.1.hook_resid_pre", w, centred=True)


def test_saelens_apply_b_dec_false_scaling_factor_and_norm_factor_are_folded(tmp_path):
    w = fx.sae_tensors(fx.D_MODEL, 40, seed=5, dtype=torch.bfloat16)
    s = torch.linspace(0.5, 2.0, 40)
    cfg_json = fx.saelens_cfg("v5", "blocks.1.hook_resid_post", fx.D_MODEL, 40, "bfloat16", apply_b_dec_to_input=False,
                              finetuning_scaling_factor=True)
    folder = fx.write_saelens(tmp_path, "sae", {**w, "scaling_factor": s}, cfg_json)
    out, cfg, sd, toks = run_export(tmp_path, ["--sae", folder])
    _, sae = check_acts(out, cfg, sd, toks, "blocks.1.hook_resid_post", w, centred=False, apply_b_dec=False)
    assert np.allclose(sae["W_dec"], (w["W_dec"].double() * s.double()[:, None]).numpy(), rtol=1e-6)  # decode(acts) unchanged
    assert np.array_equal(sae["W_enc"], w["W_enc"].float().numpy().astype(np.float64))
    # expected_average_only_in with its constant (what SAELens folds for releases that list one)
    from export.sae import load_saelens

    f2 = fx.write_saelens(tmp_path, "norm", w, fx.saelens_cfg("current", "blocks.1.hook_resid_post", fx.D_MODEL, 40,
                                                               normalize_activations="expected_average_only_in"))
    folded = load_saelens(f2, norm_scaling_factor=3.0)
    x = torch.randn(5, fx.D_MODEL, dtype=torch.float64)
    W = {k: torch.from_numpy(v) for k, v in folded.weights.items()}
    ours = torch.relu((x - W["b_dec"]) @ W["W_enc"] + W["b_enc"])
    assert torch.allclose(ours, fx.reference_acts(x, w, norm_scale=3.0), atol=1e-9)


def test_preprocessed_state_dict(tmp_path):
    """A state dict saved after from_pretrained (LNPre config), declared with --model-processed from_pretrained."""
    cfg = fx.tl_cfg("gelu", 2)
    raw = fx.tl_state_dict(cfg, seed=6)
    folded = model.fold_and_center({k: v.double() for k, v in raw.items() if v.is_floating_point()}, cfg)
    w = fx.sae_tensors(fx.D_MLP, 128, seed=7)
    sae = fx.write_neel(tmp_path, w, {**fx.NEEL_1L_CFG, "act_name": "blocks.1.mlp.hook_post"})
    out, *_ = run_export(tmp_path, ["--sae", sae, "--model-processed", "from_pretrained"], cfg={**cfg, "normalization_type": "LNPre"},
                         sd={k: v.float() for k, v in folded.items()})
    toks = fx.tokens()
    check_acts(out, cfg, raw, toks, "blocks.1.mlp.hook_post", w, centred=True)


def test_bf16_reader_matches_torch():
    x = torch.randn(1000) * 10 ** torch.randint(-20, 20, (1000,)).float()
    bits = safetensors_io.bf16_bits(x.numpy())
    assert np.array_equal(bits, x.to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16))
    assert np.array_equal(safetensors_io.bf16_to_float32(bits), x.to(torch.bfloat16).float().numpy())


# --- attention scaling ------------------------------------------------------------------------------------------

ATTN_SCALINGS = [
    ("no_scale", {"use_attn_scale": False}, [1.0, 1.0]),  # GPT-Neo, TinyStories
    ("by_layer", {"scale_attn_by_inverse_layer_idx": True}, [math.sqrt(fx.D_HEAD), 2 * math.sqrt(fx.D_HEAD)]),
    ("explicit", {"attn_scale": 2.0}, [2.0, 2.0]),
    ("no_scale_by_layer", {"use_attn_scale": False, "attn_scale": 5.0, "scale_attn_by_inverse_layer_idx": True}, [1.0, 2.0]),
    ("unset", {"attn_scale": -1.0, "scale_attn_by_inverse_layer_idx": True}, [math.sqrt(fx.D_HEAD), 2 * math.sqrt(fx.D_HEAD)]),
]


@pytest.mark.parametrize("over,scales", [(o, s) for _, o, s in ATTN_SCALINGS], ids=[n for n, _, _ in ATTN_SCALINGS])
@pytest.mark.parametrize("hook", ["blocks.1.hook_resid_post", "blocks.1.attn.hook_z"])
def test_attention_scaling_exported_exactly(tmp_path, over, scales, hook):
    """use_attn_scale, attn_scale and scale_attn_by_inverse_layer_idx: bundle.json's attn_scales holds each layer's
    divisor, and the bundle's SAE acts equal the source's encoder on TransformerLens's hook value with them."""
    cfg = fx.tl_cfg("gpt2", 2, **over)
    d_in = fx.N_HEADS * fx.D_HEAD
    w = fx.sae_tensors(d_in, 40, seed=8)
    folder = fx.write_saelens(tmp_path, "sae", w, fx.saelens_cfg("current", hook, d_in, 40, **({"reshape_activations": "hook_z"} if "hook_z" in hook else {})))
    out, cfg, sd, toks = run_export(tmp_path, ["--sae", f"saelens:{folder}"], cfg=cfg)
    meta, acts, _ = fx.bundle_acts(out)
    assert meta["model"]["attn_scales"] == scales
    x = saelens_hook_z_input(sd, cfg, toks, 1, None) if "hook_z" in hook else fx.reference_hook(sd, cfg, toks, hook, centred=False)
    ref = fx.reference_acts(x, w)
    assert 0.05 < float((ref > 0).double().mean()) < 0.95, "the fixture's features should fire on some tokens only"
    assert torch.allclose(acts, ref, rtol=1e-4, atol=1e-4), float((acts - ref).abs().max())
    # The divisors matter: the same weights with every layer at sqrt(d_head) give other acts.
    plain = fx.reference_hook(sd, {**cfg, "use_attn_scale": True, "attn_scale": math.sqrt(fx.D_HEAD), "scale_attn_by_inverse_layer_idx": False},
                              toks, f"blocks.1.{'hook_resid_post' if 'resid' in hook else 'attn.hook_z'}", centred=False)
    if "hook_z" in hook:
        plain = plain.reshape(*plain.shape[:2], -1)
    assert not torch.allclose(acts, fx.reference_acts(plain, w), rtol=1e-2, atol=1e-2)


def test_standard_attention_scale_writes_no_attn_scales(tmp_path):
    """sqrt(d_head) in every layer, given or left to TransformerLens's default: bundle.json as before the field."""
    w = fx.sae_tensors(fx.D_MLP, 128, seed=9)
    sae = fx.write_neel(tmp_path, w, {**fx.NEEL_1L_CFG, "act_name": "blocks.1.mlp.hook_post"})
    older = {k: v for k, v in fx.tl_cfg("gpt2", 2).items() if k not in ("attn_scale", "use_attn_scale", "scale_attn_by_inverse_layer_idx")}
    for i, cfg in enumerate((fx.tl_cfg("gpt2", 2), fx.tl_cfg("gpt2", 2, attn_scale=-1.0), older)):
        out, *_ = run_export(tmp_path, ["--sae", sae], cfg=cfg, out_name=f"b{i}")
        with open(os.path.join(out, "bundle.json")) as f:
            assert "attn_scales" not in json.load(f)["model"]


# --- GPT-NeoX / Pythia ----------------------------------------------------------------------------------------

NEOX_CASES = [
    ("saelens_resid_post", "saelens", "blocks.1.hook_resid_post", None, False),
    ("saelens_resid_pre_centred", "saelens", "blocks.1.hook_resid_pre", {"center_writing_weights": True}, True),
    ("saelens_mlp_processed", "saelens", "blocks.0.mlp.hook_post", {"fold_ln": True, "center_writing_weights": True, "fold_value_biases": True}, True),
    ("saelens_hook_z", "saelens", "blocks.1.attn.hook_z", None, False),
    ("neel_from_pretrained", "neel", "blocks.1.mlp.hook_post", None, True),
]


@pytest.mark.parametrize("source,hook,kwargs,centred", [c[1:] for c in NEOX_CASES], ids=[c[0] for c in NEOX_CASES])
def test_neox_exported_exactly(tmp_path, source, hook, kwargs, centred):
    """A TransformerLens GPT-NeoX state dict (no W_pos, rotary buffers) and config (rotary on half of each head,
    parallel blocks): the bundle carries rotary_dim, rotary_base and parallel_attn_mlp, and its SAE acts equal the
    source's encoder on the unprocessed model's hook value from tools/golden_neox.py's own NeoX forward pass."""
    cfg = fx.tl_cfg("neox", 2)
    d_in = fx.D_MLP if "mlp.hook" in hook else fx.D_MODEL
    w = fx.sae_tensors(d_in, 128 if source == "neel" else 40, seed=11)
    if source == "neel":
        sae = fx.write_neel(tmp_path, w, {**fx.NEEL_1L_CFG, "act_name": hook})
    else:
        sae = "saelens:" + fx.write_saelens(tmp_path, "sae", w, fx.saelens_cfg("current", hook, d_in, 40, kwargs=kwargs,
                                                                            **({"reshape_activations": "hook_z"} if "hook_z" in hook else {})))
    out, cfg, sd, toks = run_export(tmp_path, ["--sae", sae], cfg=cfg)
    meta, sae_out = check_acts(out, cfg, sd, toks, hook, w, centred)
    m = meta["model"]
    assert (m["positional_embedding_type"], m["rotary_dim"], m["rotary_base"], m["parallel_attn_mlp"]) == ("rotary", fx.D_HEAD // 2, 10000.0, True)
    assert "attn_scales" not in m
    _, params, *_ = bundle.read_bundle(out)
    assert "pos_embed.W_pos" not in params


def test_neox_refusals(tmp_path):
    """No SAE on resid_mid in parallel blocks; GPT-J's rotary layout is refused by name."""
    w = fx.sae_tensors(fx.D_MODEL, 40)
    folder = fx.write_saelens(tmp_path, "sae", w, fx.saelens_cfg("current", "blocks.1.hook_resid_mid", fx.D_MODEL, 40))
    with pytest.raises(BundleError, match="does not exist in a model with parallel attention and MLP"):
        run_export(tmp_path, ["--sae", folder], cfg=fx.tl_cfg("neox", 2))
    with pytest.raises(BundleError, match="rotary_adjacent_pairs=True"):
        run_export(tmp_path, ["--sae", folder], cfg=fx.tl_cfg("neox", 2, rotary_adjacent_pairs=True, parallel_attn_mlp=False))
    assert not (tmp_path / "bundle").exists()


# --- refusals ---------------------------------------------------------------------------------------------------

MODEL_REFUSALS = [
    ({"positional_embedding_type": "rotary", "rotary_dim": 4, "rotary_adjacent_pairs": True}, "rotary_adjacent_pairs=True"),
    ({"positional_embedding_type": "rotary", "rotary_dim": 3}, "rotary_dim=3"),
    ({"positional_embedding_type": "rotary", "rotary_dim": 4, "use_NTK_by_parts_rope": True}, "use_NTK_by_parts_rope=True"),
    ({"positional_embedding_type": "alibi"}, "alibi"),
    ({"positional_embedding_type": "shortformer"}, "shortformer"),
    ({"attn_only": True}, "attn_only=True"),
    ({"normalization_type": "RMS"}, "RMSNorm"),
    ({"gated_mlp": True}, "gated_mlp=True"),
    ({"n_key_value_heads": 2}, "n_key_value_heads=2"),
    ({"attn_types": ["global", "local"], "window_size": 4}, "attn_types"),
    ({"act_fn": "solu_ln"}, "act_fn='solu_ln'"),
    ({"act_fn": "silu"}, "act_fn='silu'"),
    ({"d_vocab_out": 100}, "d_vocab_out=100"),
    ({"attn_scale": 0.0}, "attn_scale=0.0"),
    ({"final_rms": True}, "final_rms=True"),
    ({"num_experts": 4}, "num_experts=4"),
    ({"output_logits_soft_cap": 30.0}, "output_logits_soft_cap"),
]


@pytest.mark.parametrize("over,needle", MODEL_REFUSALS, ids=[n for _, n in MODEL_REFUSALS])
def test_model_refusals(tmp_path, over, needle):
    cfg = fx.tl_cfg("gpt2", 2)
    sd = fx.tl_state_dict(cfg)
    w = fx.sae_tensors(fx.D_MLP, 128)
    sae = fx.write_neel(tmp_path, w, {**fx.NEEL_1L_CFG, "act_name": "blocks.1.mlp.hook_post"})
    with pytest.raises(BundleError, match=r"not supported: .*" + needle.replace("[", r"\[").replace("(", r"\(")):
        run_export(tmp_path, ["--sae", sae], cfg={**cfg, **over}, sd=sd)
    assert not (tmp_path / "bundle").exists()


SAE_REFUSALS = [
    ("batchtopk", dict(architecture="batchtopk", k=4), {"threshold": torch.zeros(40)}, "BatchTopK SAEs"),
    ("jumprelu_tanh", dict(architecture="jumprelu", activation_fn_str="tanh-relu"), {"threshold": torch.zeros(40)}, "activation_fn 'tanh-relu'"),
    ("gated", dict(architecture="gated"), {"b_gate": torch.zeros(40), "r_mag": torch.zeros(40), "b_mag": torch.zeros(40)}, "gated SAEs"),
    ("threshold_in_standard", {}, {"threshold": torch.zeros(40)}, "hold threshold"),
    ("tanh_relu", dict(activation_fn_str="tanh-relu"), {}, "activation_fn 'tanh-relu'"),
    ("norm_avg", dict(normalize_activations="expected_average_only_in"), {}, "normalize_activations='expected_average_only_in'"),
    ("norm_bool", dict(normalize_activations=True), {}, "normalize_activations='expected_average_only_in'"),
    ("norm_const", dict(normalize_activations="constant_norm_rescale"), {}, "normalize_activations='constant_norm_rescale'"),
    ("norm_ln", dict(normalize_activations="layer_norm"), {}, "normalize_activations='layer_norm'"),
    ("head", dict(hook_head_index=2), {}, "one attention head's output"),
    ("transcoder", dict(hook_name_out="blocks.1.hook_mlp_out"), {}, "transcoders"),
    ("kwargs", dict(model_from_pretrained_kwargs={"center_writing_weights": True, "hf_model": "x"}), {}, "model_from_pretrained_kwargs has hf_model"),
]


@pytest.mark.parametrize("case,over,extra,needle", SAE_REFUSALS, ids=[c[0] for c in SAE_REFUSALS])
def test_sae_refusals(tmp_path, case, over, extra, needle):
    w = fx.sae_tensors(fx.D_MODEL, 40)
    cfg_json = fx.saelens_cfg("v5", "blocks.1.hook_resid_pre", fx.D_MODEL, 40, **over)
    folder = fx.write_saelens(tmp_path, "sae", {**w, **extra}, cfg_json)
    msg = "not yet supported by the app: " if case not in ("kwargs",) else "not supported: "
    with pytest.raises(BundleError, match=msg + ".*" + needle):
        run_export(tmp_path, ["--sae", f"saelens:{folder}"])
    assert not (tmp_path / "bundle").exists()


def sae_kind_cases():
    """(id, layout, cfg overrides, extra tensors, kind, k) for JumpReLU and TopK SAEs in SAELens's config layouts."""
    thr = torch.rand(40, generator=torch.Generator().manual_seed(9)) * 0.8 - 0.1  # some negative: ReLU still gates
    return [
        ("jumprelu_current", "current", dict(architecture="jumprelu"), {"threshold": thr}, "jumprelu", None),
        ("jumprelu_v5_log", "v5", dict(architecture="jumprelu", apply_b_dec_to_input=False), {"log_threshold": thr.abs().log()}, "jumprelu", None),
        ("topk_current", "current", dict(architecture="topk", k=6), {}, "topk", 6),
        ("topk_v5_kwargs", "v5", dict(activation_fn_str="topk", activation_fn_kwargs={"k": 3}, apply_b_dec_to_input=False), {}, "topk", 3),
        ("topk_old", "old", dict(activation_fn_str="topk", activation_fn_kwargs={"k": 4}), {}, "topk", 4),
    ]


@pytest.mark.parametrize("case,layout,over,extra,kind,k", sae_kind_cases(), ids=[c[0] for c in sae_kind_cases()])
def test_saelens_jumprelu_and_topk(tmp_path, case, layout, over, extra, kind, k):
    """JumpReLU and TopK SAELens SAEs export to their bundle kinds; the bundle's acts (its own definition, read
    back as the app reads it) equal SAELens's encoder on the source's tensors."""
    w = fx.sae_tensors(fx.D_MODEL, 40, seed=11)
    cfg_json = fx.saelens_cfg(layout, "blocks.1.hook_resid_pre", fx.D_MODEL, 40, **over)
    folder = fx.write_saelens(tmp_path, "sae", {**w, **extra}, cfg_json)
    out, cfg, sd, toks = run_export(tmp_path, ["--sae", f"saelens:{folder}"])
    meta, acts, sae = fx.bundle_acts(out)
    apply = over.get("apply_b_dec_to_input", True)
    assert meta["sae"]["kind"] == kind and meta["sae"].get("k") == k
    assert meta["sae"].get("apply_b_dec_to_input", True) is apply
    ref_w = {**w, "threshold": thr_of(extra)} if kind == "jumprelu" else w
    ref = fx.reference_acts(fx.reference_hook(sd, cfg, toks, "blocks.1.hook_resid_pre", False), ref_w, apply, kind=kind, k=k)
    assert torch.allclose(acts, ref, rtol=1e-4, atol=1e-4), float((acts - ref).abs().max())
    nz = (ref > 0).sum(-1)
    if kind == "topk":
        assert int(nz.max()) == k  # TopK bites: at most k of 40 fire, and some tokens have k
    else:
        gated = fx.reference_acts(fx.reference_hook(sd, cfg, toks, "blocks.1.hook_resid_pre", False), w, apply)
        assert bool(((gated > 0) & (ref == 0)).any()), "the thresholds should shut some positive pre-activations"


def thr_of(extra: dict) -> torch.Tensor:
    return extra["threshold"] if "threshold" in extra else extra["log_threshold"].double().exp()


def test_topk_without_k_jumprelu_without_threshold_and_k_above_d_sae_refused(tmp_path):
    w = fx.sae_tensors(fx.D_MODEL, 40)
    folder = fx.write_saelens(tmp_path, "a", w, fx.saelens_cfg("current", "blocks.1.hook_resid_pre", fx.D_MODEL, 40, architecture="topk"))
    with pytest.raises(BundleError, match="gives no k"):
        run_export(tmp_path, ["--sae", f"saelens:{folder}"])
    folder = fx.write_saelens(tmp_path, "b", w, fx.saelens_cfg("current", "blocks.1.hook_resid_pre", fx.D_MODEL, 40, architecture="jumprelu"))
    with pytest.raises(BundleError, match="hold no threshold"):
        run_export(tmp_path, ["--sae", f"saelens:{folder}"])
    folder = fx.write_saelens(tmp_path, "c", w, fx.saelens_cfg("current", "blocks.1.hook_resid_pre", fx.D_MODEL, 40, architecture="topk", k=41))
    with pytest.raises(BundleError, match="k=41"):
        run_export(tmp_path, ["--sae", f"saelens:{folder}"])
    assert not (tmp_path / "bundle").exists()


def saelens_hook_z_input(sd: dict, cfg: dict, toks: np.ndarray, layer: int, kwargs: dict | None) -> torch.Tensor:
    """What a SAELens hook_z SAE reads, computed here from the raw weights: TransformerLens's z [batch, pos, n_heads,
    d_head] (layer `layer`'s attention on its LN1 output), then SAELens's reshape '... n_heads d_head -> ...
    (n_heads d_head)': the heads side by side, head 0's d_head first. Of the model's processing (`kwargs`) only
    fold_value_biases changes z: it moves each head's value bias into b_O, and after fold_ln that bias includes
    LN1's bias through W_V, so z loses b_V (+ ln1.b·W_V)."""
    kwargs = kwargs or {}
    resid = fx.reference_hook(sd, cfg, toks, f"blocks.{layer}.hook_resid_pre", centred=False)
    P = {k: v.double() for k, v in sd.items() if v.is_floating_point()}
    pre = f"blocks.{layer}."
    xc = resid - resid.mean(-1, keepdim=True)
    x = xc / (xc.pow(2).mean(-1, keepdim=True) + cfg["eps"]).sqrt() * P[pre + "ln1.w"] + P[pre + "ln1.b"]
    b_V = P[pre + "attn.b_V"]
    if kwargs.get("fold_value_biases"):
        # v = x·W_V + b_V with x = LN1's output (its bias included): what is left once b_V + [fold_ln]·ln1.b·W_V is gone.
        b_V = -torch.einsum("d,hde->he", P[pre + "ln1.b"], P[pre + "attn.W_V"]) if kwargs.get("fold_ln") else torch.zeros_like(b_V)
    q = torch.einsum("bpd,hde->bphe", x, P[pre + "attn.W_Q"]) + P[pre + "attn.b_Q"]
    k = torch.einsum("bpd,hde->bphe", x, P[pre + "attn.W_K"]) + P[pre + "attn.b_K"]
    v = torch.einsum("bpd,hde->bphe", x, P[pre + "attn.W_V"]) + b_V
    T = x.shape[1]
    scores = torch.einsum("bqhe,bkhe->bhqk", q, k) / fx.tl_attn_divisor(cfg, layer)
    scores = scores.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf"))
    z = torch.einsum("bhqk,bkhe->bqhe", scores.softmax(-1), v)
    assert z.shape[-2:] == (cfg["n_heads"], cfg["d_head"])
    return torch.cat([z[..., h, :] for h in range(cfg["n_heads"])], dim=-1)


@pytest.mark.parametrize("layout,kwargs,over", [
    ("current", None, {"reshape_activations": "hook_z"}),
    ("current", {"fold_ln": True, "center_writing_weights": True, "fold_value_biases": True}, {"reshape_activations": "hook_z"}),
    ("v5", None, {}),
    ("v5", {"fold_value_biases": True}, {}),
    ("old", None, {}),
], ids=["current", "current-processed", "v5", "v5-fold_value_biases", "old"])
def test_hook_z_sae_exported_exactly(tmp_path, layout, kwargs, over):
    """A SAELens SAE on attn.hook_z in each config layout: the bundle's SAE acts (its hook_z, heads concatenated as
    the app reads it) equal SAELens's encoder on SAELens's reshaped z of the model the SAE was trained on."""
    hook = "blocks.1.attn.hook_z"
    w = fx.sae_tensors(fx.N_HEADS * fx.D_HEAD, 40, seed=5)
    folder = fx.write_saelens(tmp_path, "sae", w, fx.saelens_cfg(layout, hook, fx.N_HEADS * fx.D_HEAD, 40, kwargs=kwargs, **over))
    out, cfg, sd, toks = run_export(tmp_path, ["--sae", f"saelens:{folder}"])
    meta, acts, sae = fx.bundle_acts(out)  # read_bundle's checks pass
    assert meta["sae"]["hook_point"] == hook and meta["sae"]["d_in"] == fx.N_HEADS * fx.D_HEAD
    assert meta["model"]["processing"]["fold_value_biases"] is bool((kwargs or {}).get("fold_value_biases"))
    for k in ("W_enc", "W_dec", "b_dec", "b_enc"):  # head-major on both sides: the tensors travel unchanged
        assert np.array_equal(sae[k].astype(np.float32), w[k].numpy()), k
    x = saelens_hook_z_input(sd, cfg, toks, 1, kwargs)
    ref = fx.reference_acts(x, w)
    assert 0.05 < float((ref > 0).double().mean()) < 0.95, "the fixture's features should fire on some tokens only"
    assert torch.allclose(acts, ref, rtol=1e-4, atol=1e-4), float((acts - ref).abs().max())
    # The head order matters: the same SAE on z with its heads in reverse order reads something else.
    flipped = torch.cat(list(reversed(x.split(fx.D_HEAD, dim=-1))), dim=-1)
    assert not torch.allclose(acts, fx.reference_acts(flipped, w), rtol=1e-2, atol=1e-2)


def test_hook_z_sae_refusals(tmp_path):
    w = fx.sae_tensors(fx.D_MODEL, 40)
    # hook_z's value without the value biases, under an SAE whose model kept them.
    cfg = fx.tl_cfg("gpt2", 2)
    raw = fx.tl_state_dict(cfg)
    folded = model.process_weights({k: v.double() for k, v in raw.items() if v.is_floating_point()}, cfg, fold_value_biases=True)[0]
    folder = fx.write_saelens(tmp_path, "sae", w, fx.saelens_cfg("current", "blocks.1.attn.hook_z", fx.D_MODEL, 40, reshape_activations="hook_z"))
    with pytest.raises(BundleError, match="declared processed with fold_value_biases, but this SAE was trained on a model loaded without it"):
        run_export(tmp_path, ["--sae", folder, "--model-processed", "fold_value_biases"], cfg=cfg, sd={k: v.float() for k, v in folded.items()})
    # Undeclared, the zero b_V is noted in the provenance.
    out, *_ = run_export(tmp_path, ["--sae", folder], cfg=cfg, sd={k: v.float() for k, v in folded.items()})
    with open(os.path.join(out, "bundle.json")) as f:
        assert any("every b_V in the state dict is zero" in n for n in json.load(f)["provenance"]["export"]["notes"])
    # SAELens's hook_z reshape on a hook that is not hook_z; a reshape the exporter does not know; one head's z.
    for name, over, needle in (
            ("a", {"reshape_activations": "hook_z"}, "reshape_activations='hook_z', but the SAE reads blocks.1.hook_resid_pre"),
            ("b", {"reshape_activations": "other"}, "reshape_activations='other'")):
        f = fx.write_saelens(tmp_path, name, w, fx.saelens_cfg("current", "blocks.1.hook_resid_pre", fx.D_MODEL, 40, **over))
        with pytest.raises(BundleError, match=needle):
            run_export(tmp_path, ["--sae", f], out_name="refused")
    f = fx.write_saelens(tmp_path, "c", fx.sae_tensors(fx.D_HEAD, 40), fx.saelens_cfg("v5", "blocks.1.attn.hook_z", fx.D_HEAD, 40, hook_head_index=2))
    with pytest.raises(BundleError, match="an SAE on one attention head's output"):
        run_export(tmp_path, ["--sae", f], out_name="refused")
    assert not (tmp_path / "refused").exists()


def test_scaling_factor_without_flag_refused(tmp_path):
    w = fx.sae_tensors(fx.D_MODEL, 40)
    folder = fx.write_saelens(tmp_path, "sae", {**w, "scaling_factor": torch.full((40,), 2.0)},
                              fx.saelens_cfg("v5", "blocks.1.hook_resid_pre", fx.D_MODEL, 40))
    with pytest.raises(BundleError, match="scaling_factor that is not all ones"):
        run_export(tmp_path, ["--sae", folder])


def test_centred_state_dict_under_uncentred_residual_sae_refused(tmp_path):
    cfg = fx.tl_cfg("gpt2", 2)
    raw = fx.tl_state_dict(cfg)
    centred = model.process_weights({k: v.double() for k, v in raw.items() if v.is_floating_point()}, cfg, center_writing_weights=True)[0]
    w = fx.sae_tensors(fx.D_MODEL, 40)
    folder = fx.write_saelens(tmp_path, "sae", w, fx.saelens_cfg("current", "blocks.1.hook_resid_pre", fx.D_MODEL, 40))
    for declared in ("center_writing_weights", "none"):  # declared, or detected
        with pytest.raises(BundleError, match="already centred .* trained on a model loaded without it"):
            run_export(tmp_path, ["--sae", folder, "--model-processed", declared], cfg=cfg, sd={k: v.float() for k, v in centred.items()})
    # An MLP SAE does not care: hook_post is the same either way.
    w2 = fx.sae_tensors(fx.D_MLP, 40)
    f2 = fx.write_saelens(tmp_path, "mlp", w2, fx.saelens_cfg("current", "blocks.1.mlp.hook_post", fx.D_MLP, 40))
    out, *_ = run_export(tmp_path, ["--sae", f2, "--model-processed", "center_writing_weights"], cfg=cfg, sd={k: v.float() for k, v in centred.items()})
    check_acts(out, cfg, raw, fx.tokens(), "blocks.1.mlp.hook_post", w2, centred=False)


@pytest.mark.parametrize("case,needle", [
    ("token_range", r"token ids must lie in \[0, 300\)"),
    ("bos_mismatch", "--bos-token-id 7: row 0 of the tokens starts with 0"),
    ("big_tokenizer", "the tokenizer has 401 tokens but the model's d_vocab is 300"),
    ("seq_len", "--seq-len 8, but"),
    ("long_rows", r"tokens must be \[n_seq, seq_len ≤ n_ctx=16\]"),
    ("dataset_offline", "--dataset tokenizes with the model's tokenizer"),
    ("both_corpora", "pass one corpus"),
    ("hook_mismatch", "says the SAE reads blocks.1.mlp.hook_post, but --hook-point says blocks.0.mlp.hook_post"),
    ("sae_width", "SAE d_in is 64 but blocks.1.hook_resid_pre has width 32"),
    ("missing_tensor", r"lacks blocks.1.mlp.W_out \(expected shape \[64, 32\]\)"),
    ("shape", r"blocks.0.attn.W_Q has shape \[4, 32, 7\]"),
    ("hook_layer", "names layer 2, but the model has 2 layers"),
    ("no_cfg", "--model-state needs --model-cfg"),
])
def test_input_refusals(tmp_path, case, needle):
    cfg = fx.tl_cfg("gpt2", 2)
    sd = fx.tl_state_dict(cfg)
    toks = fx.tokens()
    w = fx.sae_tensors(fx.D_MLP, 48)
    sae_cfg = {"act_name": "blocks.1.mlp.hook_post"}
    extra = []
    if case == "token_range":
        toks[2, 3] = 300
    elif case == "bos_mismatch":
        extra = ["--bos-token-id", "7"]
    elif case == "big_tokenizer":
        tj = json.load(open(fx.tokenizer_path()))
        tj["added_tokens"].append({**tj["added_tokens"][0], "id": 400, "content": "<PAD>"})
        (tmp_path / "tok.json").write_text(json.dumps(tj))
        extra = ["--tokenizer", str(tmp_path / "tok.json")]
    elif case == "seq_len":
        extra = ["--seq-len", "8"]
    elif case == "long_rows":
        toks = fx.tokens(seq_len=20)
    elif case == "dataset_offline":
        extra = ["--dataset", "NeelNanda/c4-code-20k"]
    elif case == "both_corpora":
        extra = ["--dataset", "x"]
    elif case == "hook_mismatch":
        extra = ["--hook-point", "blocks.0.mlp.hook_post"]
    elif case == "sae_width":
        sae_cfg = {"act_name": "blocks.1.hook_resid_pre"}
    elif case == "missing_tensor":
        del sd["blocks.1.mlp.W_out"]
    elif case == "shape":
        sd["blocks.0.attn.W_Q"] = torch.zeros(4, 32, 7)
    elif case == "hook_layer":
        sae_cfg = {"act_name": "blocks.2.mlp.hook_post"}
    sae = fx.write_neel(tmp_path, w, sae_cfg)
    if case == "dataset_offline":
        pt, js = fx.write_model(tmp_path, cfg, sd)
        argv = ["--model-state", pt, "--model-cfg", js, "--sae", sae, "--tokenizer", fx.tokenizer_path(), "--out", str(tmp_path / "bundle"), *extra]
        with pytest.raises(BundleError, match=needle):
            main(argv)
    elif case == "no_cfg":
        pt, _ = fx.write_model(tmp_path, cfg, sd)
        with pytest.raises(BundleError, match=needle):
            main(["--model-state", pt, "--sae", sae, "--tokens", fx.write_tokens(tmp_path, toks, "npy"), "--out", str(tmp_path / "bundle")])
    else:
        if case == "big_tokenizer":
            pt, js = fx.write_model(tmp_path, cfg, sd)
            tp = fx.write_tokens(tmp_path, toks, "npy")
            with pytest.raises(BundleError, match=needle):
                main(["--model-state", pt, "--model-cfg", js, "--sae", sae, "--tokens", tp, "--out", str(tmp_path / "bundle"), *extra])
        else:
            with pytest.raises(BundleError, match=needle):
                run_export(tmp_path, ["--sae", sae, *extra], cfg=cfg, sd=sd, toks=toks)
    assert not (tmp_path / "bundle").exists()


def test_online_paths_need_their_libraries(tmp_path):
    try:
        import transformer_lens  # noqa: F401

        pytest.skip("transformer_lens is installed here")
    except ImportError:
        pass
    with pytest.raises(BundleError, match="needs the Python package transformer_lens .* offline, export from files instead"):
        main(["--model", "gelu-1l", "--sae", fx.write_neel(tmp_path, fx.sae_tensors(fx.D_MLP, 128), fx.NEEL_1L_CFG),
              "--dataset", "NeelNanda/c4-code-20k", "--out", str(tmp_path / "bundle")])


# --- the core, as other tools call it -------------------------------------------------------------------------

DEMO_PRESENT = os.path.exists(os.path.join(ROOT, "resources", "demo", "bundle.json"))


@pytest.mark.skipif(not DEMO_PRESENT, reason="resources/demo is not built yet (tools/demo/)")
def test_demo_model_round_trip(tmp_path):
    demo = os.path.join(ROOT, "resources", "demo")
    meta, params, sw, tok, tokens = bundle.read_bundle(demo)
    cfg = meta["model"]
    sae = Sae(hook_point=meta["sae"]["hook_point"], weights=sw, processing=cfg["processing"], source="demo")
    out = tmp_path / "demo"
    export_bundle(str(out), state_dict=params, tl_cfg=cfg, sae=sae, tokenizer=tok, tokens=tokens[:4], dataset=meta["dataset"],
                  processed=cfg["processing"], dtype="float16", sae_dtype="float16")
    back = safetensors_io.load(str(out / "model.safetensors"))
    orig = safetensors_io.load(os.path.join(demo, "model.safetensors"))
    assert back.keys() == orig.keys()
    assert all(np.array_equal(back[k], orig[k]) for k in orig)
    assert cfg["normalization_type"] == "LNPre" and cfg["processing"]["fold_ln"] is True
    assert math.isclose(json.load(open(out / "bundle.json"))["model"]["eps"], cfg["eps"])
