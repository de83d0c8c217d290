"""SynthCXR anatomy and rendering: landmarks where a radiologist expects them, findings visible."""

from __future__ import annotations

import numpy as np
import pytest

from medslip.synth import anatomy as an
from medslip.synth.render import Renderer
from medslip.synth.sample import anatomy_for, sample_study
from medslip.synth.spec import FINDING_KINDS, Finding
from medslip.vocab import LANDMARKS

S = 128


@pytest.fixture(scope="module")
def renderer():
    return Renderer(S, seed=0)


@pytest.fixture(scope="module")
def anat():
    return an.build_anatomy(an.sample_params(np.random.default_rng(0)), S)


def test_every_drawn_landmark_is_a_medslip_landmark_with_a_mask(anat):
    assert set(an.LANDMARK_NAMES) <= set(LANDMARKS)
    assert set(LANDMARKS) - set(an.LANDMARK_NAMES) == {"unspecified", "other"}
    for name in an.LANDMARK_NAMES:
        assert an.landmark_mask(anat, name).sum() > 3, name


def test_patient_right_is_on_the_image_left(anat):
    cx = {
        n: np.nonzero(an.landmark_mask(anat, n))[1].mean()
        for n in (
            "right_lung_unspec",
            "left_lung_unspec",
            "right_costophrenic",
            "left_costophrenic",
            "aorta",
            "stomach",
        )
    }
    assert cx["right_lung_unspec"] < S / 2 < cx["left_lung_unspec"]
    assert cx["right_costophrenic"] < S / 2 < cx["left_costophrenic"]
    assert (
        cx["aorta"] > S / 2 and cx["stomach"] > S / 2
    )  # aortic knob and gastric bubble on the left


@pytest.mark.parametrize("side", ["left", "right"])
def test_lobes_and_zones_partition_each_lung(anat, side):
    lung = an.landmark_mask(anat, f"{side}_lung_unspec")
    lobes = [n for n in an.LANDMARK_NAMES if n.endswith("_lobe") and f"_{side}_" in n]
    zones = [f"{side}_{z}_lung" for z in ("upper", "mid", "lower")]
    for group in (lobes, zones):
        masks = [an.landmark_mask(anat, n) for n in group]
        assert np.array_equal(np.logical_or.reduce(masks), lung)
        assert sum(m.sum() for m in masks) == lung.sum()  # disjoint
    ys = [np.nonzero(an.landmark_mask(anat, z))[0].mean() for z in zones]
    assert ys[0] < ys[1] < ys[2]


def _ctr(anat):
    heart = an.landmark_mask(anat, "heart_size")
    lungs = an.landmark_mask(anat, "lung_volumes") | heart
    width = lambda m: np.ptp(np.nonzero(m.any(0))[0]) + 1  # noqa: E731
    return width(heart) / width(lungs)


def test_cardiomegaly_raises_cardiothoracic_ratio_past_half():
    rng = np.random.default_rng(3)
    normal = [_ctr(an.build_anatomy(anatomy_for([], rng, ap=False), S)) for _ in range(10)]
    big = [Finding("cardiomegaly", "heart_size", 0.8)]
    enlarged = [_ctr(an.build_anatomy(anatomy_for(big, rng, ap=False), S)) for _ in range(10)]
    assert max(normal) < 0.5 < min(enlarged)


def test_faint_cardiomegaly_is_borderline_between_normal_and_definite():
    rng = np.random.default_rng(4)
    normal = [_ctr(an.build_anatomy(anatomy_for([], rng, ap=True), S)) for _ in range(10)]
    faint = [Finding("cardiomegaly", "heart_size", 0.8, uncertain=True)]
    borderline = [_ctr(an.build_anatomy(anatomy_for(faint, rng, ap=True), S)) for _ in range(10)]
    definite = [Finding("cardiomegaly", "heart_size", 0.3)]
    enlarged = [_ctr(an.build_anatomy(anatomy_for(definite, rng, ap=True), S)) for _ in range(10)]
    assert max(normal) < min(borderline) and max(borderline) < min(enlarged)
    assert 0.47 < min(borderline) <= max(borderline) < 0.54


def test_render_is_deterministic(renderer, anat):
    f = [Finding("consolidation", "lower_right_lobe", 0.8)]
    a = renderer.render(anat, f, np.random.default_rng(5))
    b = renderer.render(anat, f, np.random.default_rng(5))
    assert np.array_equal(a.pixels, b.pixels) and np.array_equal(a.masks[0], b.masks[0])
    assert a.pixels.dtype == np.uint8 and a.pixels.shape == (S, S)


@pytest.mark.parametrize(
    ("finding", "brighter"),
    [
        (Finding("effusion", "right_pleural", 0.8), True),
        (Finding("consolidation", "lower_left_lobe", 0.9), True),
        (Finding("mass", "right_hilar", 0.9), True),
        (Finding("pneumothorax", "left_lung_unspec", 0.9), False),
    ],
)
def test_findings_change_density_inside_their_mask(renderer, anat, finding, brighter):
    clean = renderer.render(anat, [], np.random.default_rng(1)).pixels.astype(float)
    out = renderer.render(anat, [finding], np.random.default_rng(1))
    m = out.masks[0]
    assert m.sum() > 10
    delta = out.pixels[m].astype(float).mean() - clean[m].mean()
    assert (delta > 10) if brighter else (delta < -3), delta


def test_pneumothorax_region_has_no_lung_markings(renderer, anat):
    f = [Finding("pneumothorax", "left_lung_unspec", 0.9)]
    out = renderer.render(anat, f, np.random.default_rng(2))
    clean = renderer.render(anat, [], np.random.default_rng(2)).pixels.astype(float)
    m = out.masks[0] & ~np.roll(out.masks[0], 2, 1)  # drop the pleural line at the edge
    assert m.sum() > 20
    assert out.pixels[m].astype(float).std() < clean[m].std()


@pytest.mark.parametrize("kind", ["consolidation", "pneumonia", "nodule", "mass", "atelectasis"])
def test_opacities_sit_at_their_landmark_and_are_visible(renderer, kind):
    """Over several patients: airspace opacities inside their landmark, focal ones centred on it
    (≥ 30% inside), none lost by clipping (a retrocardiac opacity projects over the heart)."""
    airspace = kind in ("consolidation", "pneumonia")
    for seed in range(6):
        rng = np.random.default_rng(seed)
        for landmark in FINDING_KINDS[kind].landmarks:
            f = Finding(kind, landmark, 0.5)
            anat = an.build_anatomy(anatomy_for([f], rng, ap=False), S)
            m = renderer.render(anat, [f], rng).masks[0]
            inside = (m & an.landmark_mask(anat, landmark)).sum()
            assert m.sum() >= (20 if airspace else 4), (kind, landmark, seed, m.sum())
            assert inside >= (0.99 if airspace else 0.3) * m.sum(), (kind, landmark, seed)


@pytest.mark.parametrize("kind", sorted(FINDING_KINDS))
def test_every_finding_kind_renders_a_mask_at_its_landmark(renderer, kind):
    rng = np.random.default_rng(11)
    spec = FINDING_KINDS[kind]
    for landmark in spec.landmarks:
        f = Finding(kind, landmark, 0.8)
        anat = an.build_anatomy(anatomy_for([f], rng, ap=False), S)
        m = renderer.render(anat, [f], rng).masks[0]
        assert m.sum() > 0, (kind, landmark)
        if kind in ("consolidation", "pneumonia", "nodule", "atelectasis", "effusion"):
            region = an.landmark_mask(anat, landmark) | an.landmark_mask(anat, "lung_volumes")
            assert (m & region).sum() >= 0.9 * m.sum(), (kind, landmark)


def test_sampled_studies_vary_and_respect_catalogue():
    studies = [sample_study(i, i, np.random.default_rng(i), 0.65) for i in range(300)]
    kinds = {f.kind for s in studies for f in s.findings}
    assert kinds == set(FINDING_KINDS)
    normal = sum(not s.findings for s in studies) / len(studies)
    assert 0.2 < normal < 0.5
    assert {s.view for s in studies} == {"AP", "PA"}
    for s in studies:
        for f in s.findings:
            assert f.landmark in FINDING_KINDS[f.kind].landmarks


def test_ap_view_of_a_patient_magnifies_heart_and_mediastinum():
    patient = an.sample_params(np.random.default_rng(4))
    pa = anatomy_for([], np.random.default_rng(5), ap=False, base=patient)
    ap = anatomy_for([], np.random.default_rng(5), ap=True, base=patient)
    assert not pa.ap and ap.ap
    assert ap.heart_width == pytest.approx(1.08 * pa.heart_width)
    assert ap.mediastinum_width == pytest.approx(1.1 * pa.mediastinum_width)
