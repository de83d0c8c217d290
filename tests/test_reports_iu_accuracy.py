"""The labeller meets the issue's accuracy floors on the IU X-ray test ids (NegBio gold)."""

from medslip.reports.bench import SHARED_WITH_CHEXPERT, score_iu


def test_iu_test_ids_meet_floors(real_data):
    rows = {row["class"]: row for row in score_iu(real_data / "iu_xray", "test")}
    assert rows["macro_shared7"]["n_reports"] == 771
    assert rows["macro_shared7"]["f1"] >= 0.80
    assert rows["macro_with_positives"]["f1"] >= 0.70
    beats = sum(rows[c]["ours_f1_on_peer_ids"] > rows[c]["peer_f1"] for c in SHARED_WITH_CHEXPERT)
    assert beats >= 5
