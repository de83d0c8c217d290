"""parse_report recovers SynthCXR's ground-truth triplets (the issue's floor: F1 >= 0.95)."""

from medslip.benchmarks.reports import score_synthcxr


def test_triplet_f1_against_synthcxr_ground_truth():
    rows = {row["scope"]: row for row in score_synthcxr(300, seed=11)}
    assert rows["all"]["n_reports"] == 300 and rows["all"]["tp"] > 1000
    assert rows["all"]["f1"] >= 0.95
    assert rows["without excluded_obs"]["f1"] >= 0.95
