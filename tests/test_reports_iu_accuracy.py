"""The labeller meets the issue's accuracy floors on the IU X-ray test ids (NegBio gold); the
bootstrap intervals are checked on the dev ids, so only the floor check reads the test ids."""

import numpy as np

from medslip.benchmarks.reports import SHARED_WITH_CHEXPERT, bootstrap_f1, score_iu


def test_iu_test_ids_meet_floors(real_data):
    rows = {row["class"]: row for row in score_iu(real_data / "iu_xray", "test")}
    assert rows["macro_shared7"]["n_reports"] == 771
    assert rows["macro_shared7"]["f1"] >= 0.80
    assert rows["macro_with_positives"]["f1"] >= 0.70
    beats = sum(rows[c]["ours_f1_on_peer_ids"] > rows[c]["peer_f1"] for c in SHARED_WITH_CHEXPERT)
    assert beats >= 5


def test_every_f1_has_a_bootstrap_interval_around_it(real_data):
    rows = score_iu(real_data / "iu_xray", "dev", n_boot=200, seed=1)  # the test ids stay unseen
    for row in rows:
        if row.get("support", 1):
            assert row["f1_ci_low"] <= row["f1"] <= row["f1_ci_high"], row["class"]
    macro = rows[-2]
    assert macro["class"] == "macro_shared7"
    assert macro["f1_ci_high"] - macro["f1_ci_low"] > 0.02  # 3080 reports cannot pin F1 exactly


def test_bootstrap_is_seeded():
    rng = np.random.default_rng(0)
    gold, pred = rng.integers(0, 2, (300, 3)), rng.integers(0, 2, (300, 3))
    first = bootstrap_f1(pred, gold, n_boot=50, seed=1)
    assert np.array_equal(first, bootstrap_f1(pred, gold, n_boot=50, seed=1))
    assert not np.array_equal(first, bootstrap_f1(pred, gold, n_boot=50, seed=2))


def test_bootstrap_f1_of_a_perfect_labeller_is_one():
    gold = np.random.default_rng(0).integers(0, 2, (300, 3))
    boot = bootstrap_f1(gold, gold, n_boot=50, seed=0)
    assert boot.shape == (50, 3) and np.all(boot == 1.0)
    flipped = bootstrap_f1(1 - gold, gold, n_boot=50, seed=0)
    assert np.all(flipped == 0.0)
