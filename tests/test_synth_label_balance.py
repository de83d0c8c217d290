"""The default SynthCXR teaches every finding zero-shot scores: in the default MIMIC training
split, each entity the NIH, RSNA and SIIM class maps score, and SynthCXR draws, is positive in
at least 30 images and negative in at least 30 by the parsed reports; and every landmark a
drawn lung finding sits at is stated negative (nothing there) in at least 30 images, so the
anatomy stream's targets there follow the image rather than only the report's habits.

The reports come from the generator without rendering (the MIMIC tree's text, byte for byte),
are read by the report stage's parser and split by the published split logic, so the counts are
those of ``results/tables/label_statistics.csv`` for ``mimic_cxr_jpg`` / ``train``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from medslip.config import load_config
from medslip.data.readers.mimic import _SPLIT as OFFICIAL_SPLIT
from medslip.data.splits import assign_splits
from medslip.reports.outputs import label_matrix, uncertain_mask
from medslip.reports.parse import parse_report
from medslip.synth.generator import mimic_patients
from medslip.synth.spec import FINDING_KINDS
from medslip.tables.stages import LABELS, entity_labels
from medslip.vocab import CHESTXRAY14_CLASSES, ENTITY_INDEX, LANDMARK_INDEX
from tests.conftest import REPO

MIN_LABELS = 30
EVALUATED = ("nih_cxr14", "rsna_pneumonia", "siim_acr")


def _default_training_reports(config: dict) -> list[str]:
    """Reports of the frontal images of the default MIMIC tree's published training split."""
    rows = [
        {
            "image_id": str(s.study.study_id),
            "dataset": "mimic_cxr_jpg",
            "patient_id": str(patient.subject_id),
            "split": OFFICIAL_SPLIT[patient.split],
            "view": s.study.view,
            "report": s.text,
        }
        for patient in mimic_patients(config)
        for s in patient.studies  # one frontal image per study
    ]
    frame = pd.DataFrame(rows)
    frame = frame[frame["view"].isin(config["data"]["mimic_views"])]
    splits = config["data"]["splits"]
    seed = config["seed"] if splits["seed"] is None else splits["seed"]
    split = assign_splits(frame, seed, splits["val_fraction"], splits["test_fraction"])
    return frame.loc[split == "train", "report"].tolist()


@pytest.fixture(scope="module")
def config() -> dict:
    return load_config(REPO / "config" / "config.yaml")


@pytest.fixture(scope="module")
def training_triplets(config: dict) -> list:
    reports = _default_training_reports(config)
    assert len(reports) > 1500
    return [parse_report(text) for text in reports]


def test_every_scored_drawn_entity_has_30_positives_and_30_negatives_in_default_training(
    config: dict, training_triplets: list
):
    maps = config["evaluate"]["entity_maps"]
    scored = {entity for dataset in EVALUATED for entity in maps[dataset].values()}
    drawn = {kind.entity for kind in FINDING_KINDS.values()}
    # The rest are ChestX-ray14 classes SynthCXR never draws: no image could teach them.
    nih_drawn = {kind.nih for kind in FINDING_KINDS.values()}
    never = {maps["nih_cxr14"][c] for c in CHESTXRAY14_CLASSES if c not in nih_drawn}
    assert scored - drawn == never

    parsed = training_triplets
    labels = entity_labels(
        np.stack([label_matrix(t) for t in parsed]), np.stack([uncertain_mask(t) for t in parsed])
    )
    counts = {}
    for entity in sorted(scored & drawn):
        n = np.bincount(labels[:, ENTITY_INDEX[entity]], minlength=len(LABELS))
        counts[entity] = dict(zip(LABELS, n.tolist(), strict=True))
    short = {
        entity: n
        for entity, n in counts.items()
        if n["positive"] < MIN_LABELS or n["negative"] < MIN_LABELS
    }
    assert not short, short
    # Every one is also hedged somewhere (uncertain: the official encoding leaves it unlabelled).
    assert all(n["uncertain"] > 0 for n in counts.values()), counts


def test_every_landmark_of_a_drawn_lung_finding_is_stated_clear_in_30_training_images(
    training_triplets: list,
):
    """Anatomy existence (the official encoding: a landmark is positive when any entity is
    asserted there, negative when only stated-absent ones are) has both classes at each lung
    landmark SynthCXR draws a finding at."""
    matrices = np.stack([label_matrix(t) for t in training_triplets])  # N × 51 × 75
    positive = (matrices == 1).any(axis=2)
    negative = ~positive & (matrices == 0).any(axis=2)
    landmarks = {lm for k in FINDING_KINDS.values() if not k.device for lm in k.landmarks}
    counts = {
        lm: (int(positive[:, LANDMARK_INDEX[lm]].sum()), int(negative[:, LANDMARK_INDEX[lm]].sum()))
        for lm in sorted(landmarks)
    }
    short = {lm: n for lm, n in counts.items() if n[0] == 0 or n[1] < MIN_LABELS}
    assert not short, short
