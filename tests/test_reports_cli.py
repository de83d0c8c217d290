"""medslip parse-reports: outputs, scatter-gather equality, bad input handling."""

import json

import numpy as np
import pandas as pd
import pytest

from medslip.cli import main
from medslip.reports.matrix import OUTPUT_FILES, label_matrix
from medslip.reports.parse import Triplet
from medslip.vocab import ENTITY_INDEX, LANDMARK_INDEX

REPORTS = {
    "s50000001": b"FINDINGS: Small left pleural effusion. No pneumothorax.\nIMPRESSION: Effusion.",
    "s50000002": b"FINDINGS: Heart size is normal. Lungs are clear.\nIMPRESSION: No acute process.",
    "s50000003": b"IMPRESSION: Possible right lower lobe pneumonia. Mild cardiomegaly.",
    "s50000004": b"",  # empty
    "s50000005": "FINDINGS: Retrocardiac opacity (caf\xe9).".encode("latin-1"),  # not UTF-8
    "s50000006": b"<html><body>&nbsp;</body></html>",  # markup junk
    "s50000007": b"FINDINGS: Bibasilar atelectasis. " * 40_000,  # over the size limit
}


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "mimic"
    for i, (sid, data) in enumerate(REPORTS.items()):
        d = root / "files" / "p10" / f"p1000000{i % 3}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{sid}.txt").write_bytes(data)
    return root


def _run(*argv):
    return main(["parse-reports", *map(str, argv)])


def test_outputs_and_skips(tree, tmp_path):
    out = tmp_path / "out"
    assert _run("--format", "mimic", "--input", tree, "--out-dir", out) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUT_FILES)
    counts = json.loads((out / "counts.json").read_text())
    assert counts["reports_read"] == 7 and counts["reports_skipped"] == 2
    skipped = pd.read_csv(out / "skipped.csv")
    assert set(skipped.report_id) == {"s50000004", "s50000007"}
    assert skipped.set_index("report_id").loc["s50000007", "reason"].startswith("report longer")
    ids = (out / "report_ids.txt").read_text().split()
    m = np.load(out / "label_matrix.npy")
    assert m.shape == (5, 51, 75) and m.dtype == np.int8
    first = m[ids.index("s50000001")]
    assert first[LANDMARK_INDEX["left_pleural"], ENTITY_INDEX["effusion"]] == 1
    assert first[LANDMARK_INDEX["unspecified"], ENTITY_INDEX["pneumothorax"]] == 0
    third = m[ids.index("s50000003")]
    assert third[LANDMARK_INDEX["lower_right_lobe"], ENTITY_INDEX["pneumonia"]] == -1
    trips = pd.read_parquet(out / "triplets.parquet")
    assert "opacity" in set(trips[trips.report_id == "s50000005"].pathology)
    chexpert = pd.read_parquet(out / "labels_chexpert.parquet").set_index("report_id")
    assert chexpert.loc["s50000003", "Pneumonia"] == -1.0
    assert chexpert.loc["s50000002", "No Finding"] == 1.0
    cxr14 = pd.read_parquet(out / "labels_chestxray14.parquet").set_index("report_id")
    assert cxr14.loc["s50000001", "Effusion"] == 1 and cxr14.loc["s50000003", "Pneumonia"] == 0


def test_vanished_file_is_skipped_with_reason(tree, tmp_path):
    dangling = tree / "files" / "p10" / "p10000000" / "s50000099.txt"
    dangling.symlink_to(tmp_path / "gone.txt")  # listed in the tree, but cannot be read
    out = tmp_path / "out"
    assert _run("--format", "mimic", "--input", tree, "--out-dir", out) == 0
    skipped = pd.read_csv(out / "skipped.csv").set_index("report_id")
    assert skipped.loc["s50000099", "reason"].startswith("unreadable")
    assert json.loads((out / "counts.json").read_text())["reports_skipped"] == 3


@pytest.mark.parametrize("n_chunks", [3, 9])  # 9 chunks of 7 reports: some are empty
def test_scatter_gather_equals_single_chunk(tree, tmp_path, n_chunks):
    _run("--format", "mimic", "--input", tree, "--out-dir", tmp_path / "one")
    chunks = [tmp_path / f"c{i}" for i in range(n_chunks)]
    for i, c in enumerate(chunks):
        argv = ("--chunk", i, "--n-chunks", n_chunks, "--out-dir", c)
        _run("--format", "mimic", "--input", tree, *argv)
    _run("--gather", *chunks, "--out-dir", tmp_path / "all")
    for name in OUTPUT_FILES:
        if name.endswith(".parquet"):
            pd.testing.assert_frame_equal(
                pd.read_parquet(tmp_path / "one" / name), pd.read_parquet(tmp_path / "all" / name)
            )
        else:
            assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "all" / name).read_bytes()


def test_gather_refuses_chunks_with_mixed_uncertain_settings(tree, tmp_path, caplog):
    chunks = [tmp_path / "c0", tmp_path / "c1"]
    for i, flags in enumerate([(), ("--uncertain-as-positive",)]):
        argv = ("--chunk", i, "--n-chunks", 2, *flags, "--out-dir", chunks[i])
        _run("--format", "mimic", "--input", tree, *argv)
    assert _run("--gather", *chunks, "--out-dir", tmp_path / "all") == 2
    assert "uncertain_as_positive" in caplog.text
    assert not (tmp_path / "all").exists()


def test_missing_tree_is_a_clear_error(tmp_path, caplog):
    assert _run("--format", "mimic", "--input", tmp_path / "nope", "--out-dir", tmp_path / "o") == 2
    assert "nope: input does not exist" in caplog.text
    assert not (tmp_path / "o").exists()


def test_uncertain_as_positive_switch():
    trips = [Triplet("pneumonia", "unspecified", "uncertain", 0, 0, 9, "pneumonia")]
    cell = LANDMARK_INDEX["unspecified"], ENTITY_INDEX["pneumonia"]
    assert label_matrix(trips)[cell] == -1
    assert label_matrix(trips, uncertain_as_positive=True)[cell] == 1
