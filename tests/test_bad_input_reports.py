"""Bad input at the report stage (issue 20): report ids given twice or not at all, chunks that
overlap, reports that are not English or from which nothing is extracted, and nonsense chunk
flags."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from medslip.cli import main
from medslip.reports.language import not_english
from tests._cli import fails as _fails

GOOD = "FINDINGS: Small left pleural effusion. Heart size is normal."
GERMAN = (
    "BEFUND: Das Herz ist normal groß. Infiltrat im rechten Unterlappen, vereinbar mit Pneumonie."
)
FRENCH = (
    "CONCLUSION: Opacité du lobe inférieur droit, compatible avec une pneumonie. Pas "
    "d'épanchement pleural."
)
JAPANESE = "所見: 右下葉に浸潤影を認め、肺炎を疑う。胸水なし。"


def _csv(tmp_path, rows: list[tuple[str, str]]):
    path = tmp_path / "reports.csv"
    pd.DataFrame(rows, columns=["report_id", "text"]).to_csv(path, index=False)
    return path


def _parse(path, out, *extra) -> list:
    return ["parse-reports", "--format", "text_csv", "--input", path, "--out-dir", out, *extra]


def test_duplicate_report_ids_are_refused_naming_them(tmp_path, caplog):
    path = _csv(tmp_path, [("a1", GOOD), ("a1", GOOD), ("b2", GOOD), ("b2", GOOD), ("c3", GOOD)])
    _fails(_parse(path, tmp_path / "out"), caplog, path, "a1 (2x)", "b2 (2x)")
    assert not (tmp_path / "out").exists()


def test_empty_report_ids_are_skipped_and_counted(tmp_path):
    path = _csv(tmp_path, [("a1", GOOD), ("", GOOD), ("  ", GOOD), ("b2", GOOD)])
    out = tmp_path / "out"
    assert main([str(a) for a in _parse(path, out)]) == 0
    assert (out / "report_ids.txt").read_text().split() == ["a1", "b2"]
    skipped = pd.read_csv(out / "skipped.csv", dtype=str, keep_default_na=False)
    assert skipped["source"].tolist() == [f"{path}: row 2", f"{path}: row 3"]
    assert set(skipped["reason"]) == {"no report id (column report_id)"}
    assert json.loads((out / "counts.json").read_text())["reports_without_id"] == 2


def test_gather_of_overlapping_chunks_is_refused(tmp_path, caplog):
    path = _csv(tmp_path, [("a1", GOOD), ("b2", GOOD)])
    chunk = tmp_path / "c0"
    assert main([str(a) for a in _parse(path, chunk)]) == 0
    out = tmp_path / "all"
    argv = ["parse-reports", "--gather", chunk, chunk, chunk, "--out-dir", out]
    _fails(argv, caplog, "a1 (3x)", "b2 (3x)", chunk)
    assert not out.exists()


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(GERMAN, id="german"),
        pytest.param(FRENCH, id="french"),
        pytest.param(JAPANESE, id="japanese"),
        pytest.param("BEFUND: Herz normal. Infiltrat rechts. Pneumonie.", id="german-terse"),
    ],
)
def test_non_english_report_is_skipped_counted_and_never_no_finding(tmp_path, text):
    path = _csv(tmp_path, [("en", GOOD), ("xx", text)])
    out = tmp_path / "out"
    assert main([str(a) for a in _parse(path, out)]) == 0
    chexpert = pd.read_parquet(out / "labels_chexpert.parquet").set_index("report_id")
    assert list(chexpert.index) == ["en"]  # no row for it, so no "No Finding = 1"
    skipped = pd.read_csv(out / "skipped.csv", dtype=str).set_index("report_id")
    assert skipped.loc["xx", "reason"].startswith("not English")
    counts = json.loads((out / "counts.json").read_text())
    assert counts["reports_not_english"] == 1 and counts["reports_skipped"] == 1


def test_report_from_which_nothing_is_extracted_is_skipped_and_counted(tmp_path):
    text = "FINDINGS: The patient was seen in the department today for a routine visit."
    path = _csv(tmp_path, [("en", GOOD), ("empty", text)])
    out = tmp_path / "out"
    assert main([str(a) for a in _parse(path, out)]) == 0
    assert (out / "report_ids.txt").read_text().split() == ["en"]
    skipped = pd.read_csv(out / "skipped.csv", dtype=str).set_index("report_id")
    assert skipped.loc["empty", "reason"].startswith("nothing extracted")
    counts = json.loads((out / "counts.json").read_text())
    assert counts["reports_nothing_extracted"] == 1 and counts["reports_parsed"] == 1


def test_english_reports_pass_the_language_check():
    for text in (
        GOOD,
        "Heart size normal. Lungs clear.",
        "No acute cardiopulmonary process.",
        "ET tube 4 cm above the carina. NG tube in the stomach. LA enlargement.",
        "Status post CABG. De novo right effusion, et cetera.",
        "There is a new left retrocardiac opacity concerning for pneumonia.",
    ):
        assert not_english(text) is None, text


@pytest.mark.parametrize(
    ("flags", "names"),
    [
        pytest.param(["--n-chunks", "0"], ["--n-chunks 0", "1 or more"], id="no-chunks"),
        pytest.param(["--chunk", "2", "--n-chunks", "2"], ["--chunk 2", "0..1"], id="chunk-2of2"),
        pytest.param(["--chunk", "-1"], ["--chunk -1"], id="negative"),
    ],
)
def test_nonsense_chunk_flags_are_refused_before_reading(tmp_path, caplog, flags, names):
    argv = _parse(tmp_path / "not-read.csv", tmp_path / "out", *flags)
    _fails(argv, caplog, *names)


def test_output_folder_that_is_a_file_names_the_flag(tmp_path, caplog):
    path, out = _csv(tmp_path, [("a1", GOOD)]), tmp_path / "out"
    out.write_text("a file")
    _fails(_parse(path, out), caplog, "--out-dir", out, "is a file")


def test_gather_checks_each_chunk_like_the_training_loader(tmp_path, caplog):
    import numpy as np

    path = _csv(tmp_path, [("a1", GOOD), ("b2", GOOD)])
    chunks = [tmp_path / "c0", tmp_path / "c1"]
    for i, chunk in enumerate(chunks):
        argv = _parse(path, chunk, "--chunk", i, "--n-chunks", 2)
        assert main([str(a) for a in argv]) == 0
    matrix = chunks[1] / "label_matrix.npy"
    np.save(matrix, np.load(matrix)[:, :, :70])
    argv = ["parse-reports", "--gather", *chunks, "--out-dir", tmp_path / "all"]
    _fails(argv, caplog, matrix, "(1, 51, 70)")
    assert not (tmp_path / "all").exists()


def test_report_id_with_a_line_break_is_skipped(tmp_path):
    path = _csv(tmp_path, [("a1", GOOD), ("b\n2", GOOD)])
    out = tmp_path / "out"
    assert main([str(a) for a in _parse(path, out)]) == 0
    assert (out / "report_ids.txt").read_text() == "a1\n"
    skipped = pd.read_csv(out / "skipped.csv", dtype=str)
    assert skipped.values.tolist() == [["b\\n2", f"{path}: row 2", "report id with a line break"]]
