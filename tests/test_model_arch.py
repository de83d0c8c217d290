"""Architecture of the models: parameter counts, decoder paths, books, trunk loading, learning."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
from safetensors.torch import load_file, save_file

from medslip.errors import MedslipError
from medslip.model import ModelOutput, create_model
from medslip.model.decoder import TransformerDecoder, sine_positions
from medslip.model.losses import existence_labels, protocl_loss, sample_negatives
from medslip.model.trunk import ResNetTrunk, load_trunk_weights
from medslip.settings import ModelSettings
from medslip.variants import VARIANT_NAMES as VARIANTS

TEXT_DIM = 16
PAPER = ModelSettings(
    variant="medslip", image_size=224, trunk_layers=(3, 4, 6), trunk_width=64,
    trunk_init="random", d_model=256, n_layers=4, n_heads=4, d_ffn=1024, dropout=0.1,
    mask_activation="none", memory_norm=False, init_std=0.02, positions="none",
)  # fmt: skip
TINY = ModelSettings(
    variant="medslip", image_size=64, trunk_layers=(1, 1, 1), trunk_width=8,
    trunk_init="random", d_model=32, n_layers=2, n_heads=4, d_ffn=64, dropout=0.1,
    mask_activation="none", memory_norm=False, init_std=0.02, positions="none",
)  # fmt: skip
EXPECTED_TERMS = {
    "medslip": {"exist_p", "exist_a", "protocl_p", "protocl_a", "icl"},
    "random_init": {"exist_p", "exist_a", "protocl_p", "protocl_a", "icl"},
    "medslip_no_protocl": {"exist_p", "exist_a", "icl"},
    "medslip_no_icl": {"exist_p", "exist_a", "protocl_p", "protocl_a"},
    "medslip_no_disentangle": {"exist_p", "exist_a", "protocl_p", "protocl_a", "icl"},
    "medklip": {"exist_p", "position"},
    "global_clip": {"clip"},
    "medslip_official": {"exist_p", "exist_a", "protocl_p", "protocl_a", "icl"},
    "medklip_official": {"exist_p", "position"},
}


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models are overhead-bound: one intra-op thread avoids oversubscribing the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def books(text_dim: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(75, text_dim, generator=gen), torch.randn(51, text_dim, generator=gen)


def build(settings: ModelSettings, text_dim: int = TEXT_DIM, seed: int = 0):
    torch.manual_seed(seed)
    return create_model(settings, text_dim, *books(text_dim), clip_temperature=0.07)


def batch(
    size: int, image_size: int, seed: int = 0, p_pos: float = 0.05, p_zero: float = 0.05
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random images and label matrices (cells 1 with p_pos, 0 with p_zero, else -1)."""
    gen = torch.Generator().manual_seed(seed)
    images = torch.randn(size, 3, image_size, image_size, generator=gen)
    u = torch.rand(size, 51, 75, generator=gen)
    return images, torch.where(u < p_pos, 1, torch.where(u < p_pos + p_zero, 0, -1))


def trainable(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def terms(model, images, matrix, alpha=1.0, beta=1.0, seed=0):
    text = torch.randn(len(images), model.text_dim)
    out = model(images, text=text)
    return model.loss(out, matrix, torch.Generator().manual_seed(seed), alpha, beta, 7)


# ---- sizes ---------------------------------------------------------------------------------


def test_paper_preset_parameter_counts():
    """Parameter counts of the official models: MeDSLIP ≈ 21.24 M, MedKLIP ≈ 14.46 M, trunk ≈ 8.54 M
    (768-d text).

    With the default 384-d encoder (all-MiniLM-L6-v2): MeDSLIP 20,941,892, MedKLIP 14,267,330.
    """
    medslip = build(PAPER, 768)
    medklip = build(replace(PAPER, variant="medklip"), 768)
    assert trainable(medslip) == 21_237_572 and abs(trainable(medslip) / 1e6 - 21.24) < 0.01
    assert trainable(medklip) == 14_464_322 and abs(trainable(medklip) / 1e6 - 14.46) < 0.01
    trunk = trainable(medslip.res_features)
    assert trunk == 8_543_296 and abs(trunk / 1e6 - 8.54) < 0.01
    with torch.no_grad():
        assert medslip.tokens(torch.zeros(1, 3, 224, 224)).shape == (1, 196, 1024)
    assert trainable(build(PAPER, 384)) == 20_941_892
    assert trainable(build(replace(PAPER, variant="medklip"), 384)) == 14_267_330


def test_trunk_shape_and_torchvision_names():
    trunk = ResNetTrunk((1, 2, 1), 8)
    assert trunk(torch.randn(2, 3, 64, 96)).shape == (2, 128, 4, 6)
    names = set(trunk.state_dict())
    for name in ("conv1.weight", "bn1.running_var", "layer1.0.conv1.weight",
                 "layer1.0.downsample.0.weight", "layer1.0.downsample.1.bias",
                 "layer2.1.bn3.weight", "layer3.0.downsample.0.weight"):  # fmt: skip
        assert name in names
    assert not any(n.startswith(("layer4", "fc", "avgpool")) for n in names)


def test_trunk_runs_channels_last_with_the_values_and_state_dict_of_nchw():
    """The trunk computes in NHWC (no layout copies per convolution) but gives the features an
    NCHW computation gives, and keeps plain NCHW weights that safetensors can save."""
    torch.manual_seed(0)
    trunk = ResNetTrunk((1, 1, 1), 8).double().eval()
    images = torch.randn(2, 3, 64, 64, dtype=torch.float64)
    out = trunk(images)
    assert out.is_contiguous(memory_format=torch.channels_last)
    x = trunk.maxpool(trunk.relu(trunk.bn1(trunk.conv1(images.contiguous()))))
    nchw = trunk.layer3(trunk.layer2(trunk.layer1(x)))
    assert torch.allclose(out, nchw, atol=1e-10)
    assert all(t.is_contiguous() for t in trunk.state_dict().values())


# ---- decoder -------------------------------------------------------------------------------


def test_decoder_fast_path_equals_the_attention_path():
    torch.manual_seed(0)
    decoder = TransformerDecoder(
        32, 4, 64, 0.1, 3, final_norm=True, init_std=0.02, positions="none"
    ).eval()
    tgt, memory = torch.randn(2, 75, 32), torch.randn(2, 49, 32)
    fast, none = decoder(tgt, memory, False)
    slow, maps = decoder(tgt, memory, True)
    assert none is None and len(maps) == 3
    assert (fast - slow).abs().max() < 1e-5
    for attn in maps:
        assert attn.shape == (2, 75, 49) and (attn >= 0).all()
        assert torch.allclose(attn.sum(-1), torch.ones(2, 75), atol=1e-6)


def test_model_attention_maps_are_probabilities_over_the_tokens():
    model = build(TINY).eval()
    images, _ = batch(2, 64)
    out = model(images, return_attention=True)
    plain = model(images)
    assert plain.attn_p is None and plain.attn_a is None
    assert (out.logits_p - plain.logits_p).abs().max() < 1e-5
    tokens = (64 // 16) ** 2
    for maps, queries in ((out.attn_p, 75), (out.attn_a, 51)):
        assert len(maps) == TINY.n_layers
        for attn in maps:
            assert attn.shape == (2, queries, tokens)
            assert torch.allclose(attn.sum(-1), torch.ones(2, queries), atol=1e-6)


def test_outputs_shapes_and_icl_logits():
    model = build(TINY).eval()
    out = model(batch(3, 64)[0])
    assert out.logits_p.shape == (3, 75, 2) and out.logits_a.shape == (3, 51, 2)
    assert out.cl_p.shape == (3, 75, TEXT_DIM) and out.cl_a.shape == (3, 51, TEXT_DIM)
    assert out.icl.shape == (3, 51, 75)
    assert torch.allclose(out.icl[1, 7, 30], out.h_a[1, 7] @ out.h_p[1, 30])
    assert model.decoder_pathology.norm is None and model.decoder_anatomy.norm is None
    assert not any("decoder_pathology.norm" in k for k in model.state_dict())


# ---- books, variants, losses ---------------------------------------------------------------


def test_books_are_replaceable_and_not_in_the_state_dict():
    model = build(TINY).eval()
    assert not any("books" in key for key in model.state_dict())
    images, _ = batch(2, 64)
    before = model.existence_probability(images)
    model.set_books(*books(TEXT_DIM, seed=1))
    assert not torch.allclose(before, model.existence_probability(images))
    with pytest.raises(MedslipError, match=r"expected shape \(75, 16\)"):
        model.set_books(torch.zeros(74, TEXT_DIM), torch.zeros(51, TEXT_DIM))


def test_existence_probability_is_the_pathology_softmax():
    images, _ = batch(2, 64)
    for variant in ("medslip", "medklip"):
        model = build(replace(TINY, variant=variant)).eval()
        want = model(images).logits_p.softmax(-1)[..., 1]
        assert torch.allclose(model.existence_probability(images), want, atol=1e-6)
    clip = build(replace(TINY, variant="global_clip")).eval()
    score = clip.existence_probability(images)
    books_emb = torch.nn.functional.normalize(clip.text_projection(clip.pathology_books), dim=-1)
    cosine = clip(images).image_emb @ books_emb.T
    assert score.shape == (2, 75) and torch.allclose(score, (1 + cosine) / 2)


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_variant_trains_every_parameter(variant):
    """Loss keys, the weighted total, and a gradient for every trainable parameter (DDP), also
    when the batch has no positive at all."""
    model = build(replace(TINY, variant=variant))
    images, matrix = batch(4, 64)
    loss = terms(model, images, matrix, alpha=0.5, beta=2.0)
    assert set(loss) == EXPECTED_TERMS[variant] | {"total"}
    weights = {"protocl_p": 0.5, "protocl_a": 0.5, "position": 0.5, "icl": 2.0}
    total = sum(weights.get(k, 1.0) * v for k, v in loss.items() if k != "total")
    assert torch.allclose(loss["total"], total)
    for matrix_case in (matrix, torch.full_like(matrix, -1)):
        model.zero_grad(set_to_none=True)
        terms(model, images, matrix_case)["total"].backward()
        for name, param in model.named_parameters():
            assert param.grad is not None and torch.isfinite(param.grad).all(), name
    if variant == "medslip_no_disentangle":
        assert model.mask_generator is None
    if variant == "medslip_no_protocl":
        assert model.cl_fc_pathology is None and model.cl_fc_anatomy is None


@pytest.mark.parametrize("variant", VARIANTS)
def test_state_dict_round_trips_through_safetensors(variant, tmp_path):
    model = build(replace(TINY, variant=variant)).eval()
    save_file(model.state_dict(), tmp_path / "model.safetensors")
    other = build(replace(TINY, variant=variant), seed=1).eval()
    other.load_state_dict(load_file(tmp_path / "model.safetensors"))
    images, _ = batch(2, 64)
    assert torch.equal(model.existence_probability(images), other.existence_probability(images))


def test_model_loss_wires_streams_to_the_right_books():
    """model.loss equals the loss functions called by hand with M's two orientations."""
    model = build(replace(TINY, dropout=0.0)).double().eval()
    images, matrix = batch(3, 64)
    out = model(images.double())
    got = model.loss(out, matrix, torch.Generator().manual_seed(3), 1.0, 1.0, 7)
    gen = torch.Generator().manual_seed(3)
    pos_p, pos_a = (matrix == 1).transpose(1, 2), matrix == 1
    neg_p, neg_a = sample_negatives(~pos_p, 7, gen), sample_negatives(~pos_a, 7, gen)
    assert got["protocl_p"] == protocl_loss(out.cl_p, pos_p, model.anatomy_books, *neg_p)
    assert got["protocl_a"] == protocl_loss(out.cl_a, pos_a, model.pathology_books, *neg_a)
    assert existence_labels(matrix)[0].eq(1).any()


def test_settings_errors():
    with pytest.raises(MedslipError, match="clip_temperature"):
        create_model(replace(TINY, variant="global_clip"), TEXT_DIM, *books(TEXT_DIM))
    with pytest.raises(MedslipError, match="mask_activation"):
        build(replace(TINY, mask_activation="tanh"))
    with pytest.raises(MedslipError, match="n_heads"):
        build(replace(TINY, n_heads=5))
    clip = build(replace(TINY, variant="global_clip"))
    assert math.isclose(clip.logit_scale.item(), math.log(1 / 0.07), rel_tol=1e-6)
    with pytest.raises(MedslipError, match="text="):
        clip.loss(clip(batch(2, 64)[0]), batch(2, 64)[1], torch.Generator(), 1.0, 1.0, 7)


@pytest.mark.parametrize("variant", ["medslip", "medklip", "global_clip"])
def test_losses_are_float32_under_bf16_autocast(variant):
    model = build(replace(TINY, variant=variant))
    images, matrix = batch(2, 64)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = terms(model, images, matrix)
    for value in loss.values():
        assert value.dtype == torch.float32 and torch.isfinite(value)
    loss["total"].backward()


def test_sigmoid_mask_gates_the_streams():
    model = build(replace(TINY, mask_activation="sigmoid")).eval()
    x_p, x_a = model._streams(batch(2, 64)[0])
    x = model.tokens(batch(2, 64)[0])
    gate = x_p / x
    assert torch.allclose(x_p + x_a, x, atol=1e-6)
    assert ((gate > -1e-4) & (gate < 1 + 1e-4))[x.abs() > 1e-3].all()


@pytest.mark.parametrize("variant", ["medslip", "medklip"])
def test_memory_norm_normalises_every_memory_token_and_keeps_the_checkpoint_shape(variant):
    plain = build(replace(TINY, variant=variant)).eval()
    normed = build(replace(TINY, variant=variant, memory_norm=True)).eval()
    assert {k: v.shape for k, v in plain.state_dict().items()} == {
        k: v.shape for k, v in normed.state_dict().items()
    }
    assert all(torch.equal(v, normed.state_dict()[k]) for k, v in plain.state_dict().items())
    images, _ = batch(2, 64)
    for stream, z in normed.stream_tokens(images).items():
        raw = plain.stream_tokens(images)[stream]
        assert torch.allclose(z.mean(-1), torch.zeros(z.shape[:2]), atol=1e-5)
        assert torch.allclose(z.std(-1, unbiased=False), torch.ones(z.shape[:2]), atol=0.01)
        assert raw.std(-1).mean() < 0.5  # official init: the tokens start near zero

    # the cross-attention then sees tokens that differ: its maps leave the uniform 1 / T
    def spread(model):
        return torch.stack(model(images, return_attention=True).attn_p).std(-1).mean()

    assert spread(normed) > 10 * spread(plain)


def test_sine_positions_let_a_query_find_a_place_and_change_only_the_keys():
    """Without positions a decoder is blind to where a token sits (permuting the memory leaves
    its output unchanged, as in the official code); with ``positions: sine`` the keys carry the
    token's grid place, so the output depends on it; values and weights are untouched."""
    plain = TransformerDecoder(32, 4, 64, 0.0, 2, final_norm=True, init_std=0.1, positions="none")
    placed = TransformerDecoder(32, 4, 64, 0.0, 2, final_norm=True, init_std=0.1, positions="sine")
    placed.load_state_dict(plain.state_dict())  # no new weights
    queries, memory = torch.randn(2, 5, 32), torch.randn(2, 16, 32)
    shuffled = memory[:, torch.randperm(16, generator=torch.Generator().manual_seed(0))]
    same = plain(queries, memory, True)
    assert torch.allclose(same[0], plain(queries, shuffled, False)[0], atol=1e-5)
    out, maps = placed(queries, memory, True)
    assert not torch.allclose(out, placed(queries, shuffled, False)[0], atol=1e-3)
    assert not torch.allclose(maps[0], same[1][0], atol=1e-3)
    # identical tokens: plain attention is uniform, sine attention still prefers places
    flat = memory[:, :1].expand(-1, 16, -1)
    assert torch.allclose(plain(queries, flat, True)[1][0], torch.full((2, 5, 16), 1 / 16))
    assert placed(queries, flat, True)[1][0].std(-1).min() > 1e-3
    # the code: a distinct (d,) vector per token of the 4 x 4 grid, row-major
    code = sine_positions(16, 32)
    assert code.shape == (16, 32) and len(torch.unique(code, dim=0)) == 16
    assert torch.equal(code[1, :16], code[0, :16]) and torch.equal(code[4, 16:], code[0, 16:])
    with pytest.raises(MedslipError, match="square token grid"):
        sine_positions(12, 32)
    with pytest.raises(MedslipError, match="divisible by 4"):
        TransformerDecoder(30, 3, 64, 0.0, 1, final_norm=True, init_std=0.1, positions="sine")


def test_init_std_sets_every_linear_and_attention_projection():
    model = build(replace(TINY, init_std=0.1))
    official = build(TINY)
    for name, weight in model.named_parameters():
        if name.endswith(
            ("in_proj_weight", "out_proj.weight", "linear1.weight", "res_l1_pathology.weight")
        ):
            assert 0.08 < weight.std() < 0.12, name
            assert 0.015 < dict(official.named_parameters())[name].std() < 0.025, name


# ---- trunk weights -------------------------------------------------------------------------


def torchvision_state(trunk: ResNetTrunk) -> dict[str, torch.Tensor]:
    """A DDP-saved torchvision-style ResNet state dict: the trunk plus layer4/fc, 'module.'."""
    state = {f"module.{k}": torch.randn(v.shape) if v.is_floating_point() else v + 3
             for k, v in trunk.state_dict().items()}  # fmt: skip
    state["module.layer4.0.conv1.weight"] = torch.randn(8, 128, 1, 1)
    state["module.fc.weight"] = torch.randn(10, 512)
    state["module.fc.bias"] = torch.randn(10)
    return state


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_trunk_loads_a_torchvision_state_dict(tmp_path, suffix, caplog):
    source = ResNetTrunk((1, 1, 1), 8)
    state = torchvision_state(source)
    path = tmp_path / f"resnet50{suffix}"
    if suffix == ".safetensors":
        save_file(state, path)
    else:
        torch.save({"state_dict": state}, path)
    trunk = ResNetTrunk((1, 1, 1), 8)
    with caplog.at_level("INFO", logger="medslip.model.trunk"):
        report = load_trunk_weights(trunk, path)
    assert report.missing == () and report.mismatched == ()
    assert len(report.loaded) == len(trunk.state_dict())
    assert set(report.unexpected) == {"module.layer4.0.conv1.weight", "module.fc.weight",
                                      "module.fc.bias"}  # fmt: skip
    for key, value in trunk.state_dict().items():
        assert torch.equal(value, state[f"module.{key}"]), key
    assert "unexpected 3" in caplog.text and str(path) in caplog.text


def test_trunk_reports_shape_mismatch_and_prefixes(tmp_path):
    trunk = ResNetTrunk((1, 1, 1), 8)
    state = {f"backbone.{k}": v for k, v in trunk.state_dict().items()}
    state["backbone.conv1.weight"] = torch.randn(8, 3, 3, 3)
    save_file(state, tmp_path / "w.safetensors")
    report = load_trunk_weights(ResNetTrunk((1, 1, 1), 8), tmp_path / "w.safetensors")
    assert report.missing == ("conv1.weight",)
    assert report.unexpected == report.mismatched == ("backbone.conv1.weight",)


def test_trunk_refuses_a_file_that_matches_nothing(tmp_path):
    path = tmp_path / "vit.safetensors"
    save_file({"blocks.0.attn.qkv.weight": torch.randn(4, 4)}, path)
    with pytest.raises(MedslipError, match="vit.safetensors: no key matches"):
        load_trunk_weights(ResNetTrunk((1, 1, 1), 8), path)
    wide = tmp_path / "wide.safetensors"
    save_file(ResNetTrunk((1, 1, 1), 16).state_dict(), wide)
    with pytest.raises(MedslipError, match="wide.safetensors: no key matches.*trunk_width"):
        load_trunk_weights(ResNetTrunk((1, 1, 1), 8), wide)
    with pytest.raises(MedslipError, match="does not exist"):
        load_trunk_weights(ResNetTrunk((1, 1, 1), 8), tmp_path / "missing.pth")


def test_trunk_init_from_settings(tmp_path):
    source = ResNetTrunk((1, 1, 1), 8)
    save_file(torchvision_state(source), tmp_path / "r50.safetensors")
    model = build(replace(TINY, trunk_init=str(tmp_path / "r50.safetensors")))
    weight = load_file(tmp_path / "r50.safetensors")["module.layer2.0.conv2.weight"]
    assert torch.equal(model.res_features.layer2[0].conv2.weight, weight)


# ---- learning ------------------------------------------------------------------------------


def test_full_model_overfits_a_fixed_batch():
    """Tiny MeDSLIP (64 px, layers [1,1,1], width 8, d 32) on 8 random images whose matrices are
    sparse like real reports (~38 positive cells each). Dropout 0 so that the memorisation
    target is reachable. Within 300 Adam steps (about 130 needed) EVERY term, and so the total,
    drops by >= 90 %: the ICL term alone (large at init) cannot carry the total."""
    model = build(replace(TINY, dropout=0.0), text_dim=32)
    images, matrix = batch(8, 64, seed=5, p_pos=0.01, p_zero=0.02)
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    gen = torch.Generator().manual_seed(0)
    first = None
    for _ in range(300):
        loss = model.loss(model(images), matrix, gen, 1.0, 1.0, 7)
        first = first or {k: v.item() for k, v in loss.items()}
        ratio = {k: round(v.item() / first[k], 3) for k, v in loss.items()}
        if max(ratio.values()) <= 0.1:
            break
        optimizer.zero_grad()
        loss["total"].backward()
        optimizer.step()
    assert set(ratio) == EXPECTED_TERMS["medslip"] | {"total"}
    assert max(ratio.values()) <= 0.1, ratio
    assert isinstance(model(images[:1]), ModelOutput)


# ---- exclude_class -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["medslip", "medklip"])
def test_exclude_class_removes_the_unseen_entities_from_the_pathology_terms(name):
    """With ``exclude_class`` the seven unseen entities (official list, fibrosis is not one of
    the 75) get no gradient from the pathology terms, while every other entity does."""
    from medslip.model.losses import excluded_entities
    from medslip.vocab import ENTITY_INDEX, UNSEEN_ENTITY_INDICES

    assert len(UNSEEN_ENTITY_INDICES) == 7 and ENTITY_INDEX["pneumonia"] in UNSEEN_ENTITY_INDICES
    model = build(replace(TINY, variant=name, dropout=0.0))
    images, matrix = batch(4, 64, p_pos=0.3, p_zero=0.3)
    out = model(images)
    out.logits_p.retain_grad()
    exclude = excluded_entities(True, images.device)
    loss = model.loss(out, matrix, torch.Generator().manual_seed(0), 1.0, 1.0, 7, exclude=exclude)
    pathology = loss["exist_p"] + loss.get("protocl_p", loss.get("position"))
    pathology.backward()
    grad = out.logits_p.grad.abs().sum(dim=(0, 2))
    kept = [i for i in range(75) if i not in UNSEEN_ENTITY_INDICES]
    assert float(grad[list(UNSEEN_ENTITY_INDICES)].sum()) == 0.0
    assert float(grad[kept].sum()) > 0.0
    assert excluded_entities(False, images.device) is None
