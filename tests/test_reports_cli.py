"""medslip parse-reports: outputs, the MIMIC manifest's studies, scatter-gather equality, bad
input handling."""

import json

import numpy as np
import pandas as pd
import pytest

from medslip.cli import main
from medslip.labels import Triplet
from medslip.reports.outputs import REPORT_FILES, label_matrix, uncertain_mask
from medslip.vocab import ENTITY_INDEX, LANDMARK_INDEX

REPORTS = {
    "50000001": b"FINDINGS: Small left pleural effusion. No pneumothorax.\nIMPRESSION: Effusion.",
    "50000002": b"FINDINGS: Heart size is normal. Lungs are clear.\nIMPRESSION: No acute process.",
    "50000003": b"IMPRESSION: Possible right lower lobe pneumonia. Mild cardiomegaly.",
    "50000004": b"",  # empty
    "50000005": "FINDINGS: Retrocardiac opacity (caf\xe9).".encode("latin-1"),  # not UTF-8
    "50000006": b"<html><body>&nbsp;</body></html>",  # markup junk: no clinical text
    "50000007": b"FINDINGS: Bibasilar atelectasis. " * 40_000,  # over the size limit
}


def _write_manifest(root, studies):
    """A MIMIC manifest's study_id and report columns: two images per study, rows shuffled."""
    order = list(REPORTS)
    rows = [
        (sid, f"files/p10/p1000000{order.index(sid) % 3 if sid in REPORTS else 0}/s{sid}.txt")
        for sid in studies
    ]
    frame = pd.DataFrame(rows * 2, columns=["study_id", "report"])
    frame.sample(frac=1, random_state=0).to_parquet(root / "manifest.parquet")


@pytest.fixture
def tree(tmp_path):
    """The reports root; its manifest.parquet lists every study of REPORTS."""
    root = tmp_path / "mimic"
    for i, (sid, data) in enumerate(REPORTS.items()):
        d = root / "files" / "p10" / f"p1000000{i % 3}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"s{sid}.txt").write_bytes(data)
    _write_manifest(root, REPORTS)
    return root


def _run(*argv):
    return main(["parse-reports", *map(str, argv)])


def _mimic(tree, *argv):
    return _run("--format", "mimic", "--input", tree / "manifest.parquet", "--root", tree, *argv)


def test_outputs_and_skips(tree, tmp_path):
    out = tmp_path / "out"
    assert _mimic(tree, "--out-dir", out) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(REPORT_FILES)
    counts = json.loads((out / "counts.json").read_text())
    assert counts["reports_read"] == 7 and counts["reports_skipped"] == 3
    skipped = pd.read_csv(out / "skipped.csv", dtype=str).set_index("report_id")["reason"]
    assert set(skipped.index) == {"50000004", "50000006", "50000007"}
    assert skipped["50000007"].startswith("report longer")
    assert skipped["50000006"].startswith("no clinical text")
    ids = (out / "report_ids.txt").read_text().split()
    assert ids == ["50000001", "50000002", "50000003", "50000005"]  # the manifest's
    m = np.load(out / "label_matrix.npy")
    assert m.shape == (4, 51, 75) and m.dtype == np.int8
    unc = np.load(out / "uncertain_mask.npy")
    assert unc.shape == m.shape and unc.dtype == bool
    first = m[ids.index("50000001")]
    assert first[LANDMARK_INDEX["left_pleural"], ENTITY_INDEX["effusion"]] == 1
    assert first[LANDMARK_INDEX["unspecified"], ENTITY_INDEX["pneumothorax"]] == 0
    pneumonia = LANDMARK_INDEX["lower_right_lobe"], ENTITY_INDEX["pneumonia"]
    assert m[ids.index("50000003")][pneumonia] == -1  # uncertain: the official -1 ...
    assert unc[ids.index("50000003")][pneumonia] and unc.sum() == 1  # ... flagged apart
    trips = pd.read_parquet(out / "triplets.parquet")
    assert "opacity" in set(trips[trips.report_id == "50000005"].pathology)
    chexpert = pd.read_parquet(out / "labels_chexpert.parquet").set_index("report_id")
    assert chexpert.loc["50000003", "Pneumonia"] == -1.0
    assert chexpert.loc["50000002", "No Finding"] == 1.0
    cxr14 = pd.read_parquet(out / "labels_chestxray14.parquet").set_index("report_id")
    assert cxr14.loc["50000001", "Effusion"] == 1 and cxr14.loc["50000003", "Pneumonia"] == 0


def test_vanished_file_is_skipped_with_reason(tree, tmp_path):
    _write_manifest(tree, [*REPORTS, "50000099"])  # listed in the manifest, but no file
    out = tmp_path / "out"
    assert _mimic(tree, "--out-dir", out) == 0
    skipped = pd.read_csv(out / "skipped.csv", dtype=str).set_index("report_id")
    assert skipped.loc["50000099", "reason"].startswith("unreadable")
    assert json.loads((out / "counts.json").read_text())["reports_skipped"] == 4


def test_only_the_studies_the_manifest_lists_are_read(tree, tmp_path):
    _write_manifest(tree, ["50000003", "50000001"])  # e.g. the others have no frontal image
    assert _mimic(tree, "--out-dir", tmp_path / "out") == 0
    assert (tmp_path / "out" / "report_ids.txt").read_text() == "50000001\n50000003\n"


@pytest.mark.parametrize("n_chunks", [3, 9])  # 9 chunks of 7 reports: some are empty
def test_scatter_gather_equals_single_chunk(tree, tmp_path, n_chunks):
    _mimic(tree, "--out-dir", tmp_path / "one")
    chunks = [tmp_path / f"c{i}" for i in range(n_chunks)]
    for i, c in enumerate(chunks):
        _mimic(tree, "--chunk", i, "--n-chunks", n_chunks, "--out-dir", c)
    _run("--gather", *chunks, "--out-dir", tmp_path / "all")
    for name in REPORT_FILES:
        if name.endswith(".parquet"):
            pd.testing.assert_frame_equal(
                pd.read_parquet(tmp_path / "one" / name), pd.read_parquet(tmp_path / "all" / name)
            )
        else:
            assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "all" / name).read_bytes()


def test_gather_refuses_a_directory_that_is_no_chunk(tree, tmp_path, caplog):
    _mimic(tree, "--out-dir", tmp_path / "c0")
    (tmp_path / "c1").mkdir()
    assert _run("--gather", tmp_path / "c0", tmp_path / "c1", "--out-dir", tmp_path / "all") == 2
    assert "not a parse-reports output directory" in caplog.text
    assert not (tmp_path / "all").exists()


def test_missing_manifest_is_a_clear_error(tmp_path, caplog):
    argv = ("--input", tmp_path / "nope", "--root", tmp_path, "--out-dir", tmp_path / "o")
    assert _run("--format", "mimic", *argv) == 2
    assert "nope: input does not exist" in caplog.text
    assert not (tmp_path / "o").exists()


def test_uncertain_stays_apart_from_unmentioned():
    trips = [
        Triplet("pneumonia", "unspecified", "uncertain", 0, 0, 9, "pneumonia"),
        Triplet("effusion", "left_pleural", "uncertain", 1, 10, 18, "effusion"),
        Triplet("effusion", "left_pleural", "present", 2, 20, 28, "effusion"),
    ]
    pneumonia = LANDMARK_INDEX["unspecified"], ENTITY_INDEX["pneumonia"]
    effusion = LANDMARK_INDEX["left_pleural"], ENTITY_INDEX["effusion"]
    matrix, mask = label_matrix(trips), uncertain_mask(trips)
    assert matrix[pneumonia] == -1 and mask[pneumonia]  # the official encoding, flagged
    assert matrix[effusion] == 1 and mask[effusion]  # present beats; the mention stays flagged
    assert mask.sum() == 2 and (matrix != -1).sum() == 1
