"""Report-level CheXpert / ChestX-ray14 labels from triplets."""

import math

from medslip.labels import Triplet, chestxray14_from_triplets, chexpert_from_triplets
from medslip.vocab import CHESTXRAY14_CLASSES, CHEXPERT_CLASSES


def test_chexpert_semantics_present_beats_uncertain_beats_absent():
    trips = [
        Triplet("effusion", "left_pleural", "absent", 0),
        Triplet("effusion", "right_pleural", "uncertain", 1),
        Triplet("pneumothorax", "unspecified", "absent", 2),
        Triplet("normal", "heart_size", "present", 3),
        Triplet("atelectasis", "lung_bases", "uncertain", 4),
        Triplet("atelectasis", "lung_bases", "present", 5),
        Triplet("tube", "stomach", "present", 6),
    ]
    out = chexpert_from_triplets(trips)
    assert list(out) == list(CHEXPERT_CLASSES)
    assert out["Pleural Effusion"] == -1.0
    assert out["Pneumothorax"] == 0.0
    assert out["Cardiomegaly"] == 0.0
    assert out["Atelectasis"] == 1.0
    assert out["Support Devices"] == 1.0
    assert math.isnan(out["Edema"]) and math.isnan(out["No Finding"])


def test_no_finding_when_only_negatives_and_devices():
    out = chexpert_from_triplets(
        [Triplet("pneumothorax", "unspecified", "absent", 0), Triplet("picc", "svc", "present", 1)]
    )
    assert out["No Finding"] == 1.0 and out["Support Devices"] == 1.0


def test_chestxray14_counts_present_only():
    out = chestxray14_from_triplets(
        [
            Triplet("enlarge", "heart_size", "present", 0),
            Triplet("effusion", "unspecified", "uncertain", 1),
            Triplet("thicken", "right_pleural", "present", 2),
            Triplet("edema", "aorta", "uncertain", 2),
        ]
    )
    assert list(out) == list(CHESTXRAY14_CLASSES)
    assert out["Cardiomegaly"] == 1 and out["Pleural_Thickening"] == 1
    assert out["Effusion"] == 0 and sum(out.values()) == 2


def test_large_heart_is_cardiomegaly_however_phrased():
    from medslip.reports import parse_report

    for text in ("The cardiac silhouette is large.", "Large heart.", "The heart is large."):
        trips = parse_report(text)
        assert chestxray14_from_triplets(trips)["Cardiomegaly"] == 1, text
        assert chexpert_from_triplets(trips)["Cardiomegaly"] == 1.0, text
    trips = parse_report("The heart is not large. Large hiatal hernia.")
    assert chestxray14_from_triplets(trips)["Cardiomegaly"] == 0
