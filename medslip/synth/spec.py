"""What a SynthCXR study is made of: the finding catalogue and the records shared by the
renderer (:mod:`medslip.synth.render`), the report writer (:mod:`medslip.synth.report_text`) and
the official-format writers (:mod:`medslip.synth.formats`).

Every landmark named here is one of the 51 landmarks of :mod:`medslip.vocab` and every entity one
of its 75 entities.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from medslip.vocab import ENTITY_INDEX, LANDMARK_INDEX


def side_of(landmark: str) -> int:
    """Patient side of a landmark name: -1 right (image left), 1 left, 0 none."""
    parts = landmark.split("_")
    return -1 if "right" in parts else 1 if "left" in parts else 0


@dataclass(frozen=True)
class FindingKind:
    """A kind of finding the renderer can draw.

    ``entity`` is the MeDSLIP entity a report mention maps to; ``landmarks`` are the landmarks it
    may be placed at; ``nih`` names the ChestX-ray14 class it counts as (``None`` when none).
    """

    name: str
    entity: str
    landmarks: tuple[str, ...]
    nih: str | None
    device: bool = False


FINDING_KINDS: dict[str, FindingKind] = {
    k.name: k
    for k in (
        FindingKind(
            "effusion",
            "effusion",
            ("left_pleural", "right_pleural"),
            "Effusion",
        ),
        FindingKind(
            "consolidation",
            "consolidation",
            (
                "lower_left_lobe",
                "lower_right_lobe",
                "middle_right_lobe",
                "upper_right_lobe",
                "upper_left_lobe",
            ),
            "Consolidation",
        ),
        FindingKind(
            "pneumonia",
            "pneumonia",
            (
                "lower_left_lobe",
                "lower_right_lobe",
                "middle_right_lobe",
                "upper_right_lobe",
                "retrocardiac",
            ),
            "Pneumonia",
        ),
        FindingKind(
            "atelectasis",
            "atelectasis",
            ("left_lower_lung", "right_lower_lung", "lung_bases", "retrocardiac"),
            "Atelectasis",
        ),
        FindingKind(
            "pneumothorax",
            "pneumothorax",
            ("left_apical_lung", "right_apical_lung", "left_lung_unspec", "right_lung_unspec"),
            "Pneumothorax",
        ),
        FindingKind("cardiomegaly", "cardiomegaly", ("heart_size",), "Cardiomegaly"),
        FindingKind("edema", "edema", ("pulmonary", "interstitium", "hilar_unspec"), "Edema"),
        FindingKind(
            "nodule",
            "nodule",
            (
                "left_upper_lung",
                "right_upper_lung",
                "left_mid_lung",
                "right_mid_lung",
                "left_lower_lung",
                "right_lower_lung",
            ),
            "Nodule",
        ),
        FindingKind(
            "mass",
            "mass",
            ("upper_left_lobe", "upper_right_lobe", "left_hilar", "right_hilar"),
            "Mass",
        ),
        FindingKind("emphysema", "emphysema", ("lung_volumes",), "Emphysema"),
        FindingKind("rib_fracture", "fracture", ("rib",), None),
        FindingKind("endotracheal_tube", "tube", ("trachea",), None, device=True),
        FindingKind(
            "chest_tube",
            "tube",
            ("left_pleural", "right_pleural"),
            None,
            device=True,
        ),
        FindingKind("central_line", "line", ("svc",), None, device=True),
        FindingKind("picc", "picc", ("cavoatrial_junction", "svc"), None, device=True),
        FindingKind(
            "pacemaker",
            "pacemaker",
            ("right_ventricle", "right_atrium"),
            None,
            device=True,
        ),
    )
}
"""The findings SynthCXR renders, by name."""


FAINT = 0.55
"""Severity factor of an uncertain finding: drawn (and described) fainter than its severity."""


@dataclass
class Finding:
    """One rendered finding: ``kind`` (a key of :data:`FINDING_KINDS`) at ``landmark``.

    ``severity`` in (0, 1] scales size/density. ``uncertain`` findings are drawn faint and the
    report hedges them ("may represent", "cannot exclude").
    """

    kind: str
    landmark: str
    severity: float
    uncertain: bool = False

    @property
    def entity(self) -> str:
        return FINDING_KINDS[self.kind].entity

    @property
    def drawn_severity(self) -> float:
        """The severity drawn and described: ``severity``, times :data:`FAINT` when uncertain."""
        return self.severity * (FAINT if self.uncertain else 1.0)


@dataclass
class StudySpec:
    """Everything drawn and written for one study (one report, one or more images)."""

    study_id: int
    patient_id: int
    findings: list[Finding]
    view: str = "PA"  # PA or AP
    has_prior: bool = False
    seed: int = 0
    anatomy: dict[str, float] = field(default_factory=dict)


def rng_for(seed: int, *keys: int) -> np.random.Generator:
    """An independent, reproducible generator for ``(seed, *keys)``."""
    return np.random.default_rng(np.random.SeedSequence([seed, *keys]))


for _k in FINDING_KINDS.values():
    assert _k.entity in ENTITY_INDEX, _k
    assert all(lm in LANDMARK_INDEX for lm in _k.landmarks), _k
