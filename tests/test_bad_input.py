"""Bad input never becomes a wrong result (issue 12): every case goes through the ``medslip``
command line and checks the exit code, that the message is one line naming the file / key / row,
that the good items beside the bad one are still processed, and that no partial or stale file is
left under a final name.

The tests run as root, for whom ``chmod 000`` does not make a file unreadable: a read error is
provoked by monkeypatching ``Path.read_bytes`` (IU XML) or ``lmdb.open`` (a read-only shard
folder), and an unwritable output folder by a regular file where the folder should be.
"""

from __future__ import annotations

import json
import logging
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from medslip import __version__
from medslip.cli import main
from medslip.labels import chexpert_from_triplets
from tests._cli import fails as _fails

GOOD_REPORT = b"FINDINGS: Heart size is normal. Lungs are clear. No pleural effusion."


def _mimic_reports(root: Path, reports: dict[str, bytes]) -> Path:
    """A reports root with one file per study and the manifest listing them; the manifest."""
    folder = root / "files/p10/p10000001"
    folder.mkdir(parents=True)
    for sid, data in reports.items():
        (folder / f"s{sid}.txt").write_bytes(data)
    manifest = root / "manifest.parquet"
    paths = [f"files/p10/p10000001/s{sid}.txt" for sid in reports]
    pd.DataFrame({"study_id": list(reports), "report": paths}).to_parquet(manifest)
    return manifest


def _parse_mimic(manifest: Path, out: Path) -> list:
    return ["parse-reports", "--format", "mimic", "--input", manifest, "--root", manifest.parent,
            "--out-dir", out]  # fmt: skip


# 1. Unreadable or empty reports are skipped with a reason, never labelled; BOM text is decoded.
EFFUSION = "FINDINGS: Moderate right pleural effusion.\n"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        pytest.param(EFFUSION.encode("utf-16"), None, id="utf16-bom-decoded"),
        pytest.param(EFFUSION.encode("utf-32"), None, id="utf32-bom-decoded"),
        pytest.param(EFFUSION.encode("utf-16-le"), "not text", id="utf16-without-bom"),
        pytest.param(b"FINDINGS:", "no clinical text", id="only-a-header"),
        pytest.param(b"FINDINGS: ___\nIMPRESSION: ", "no clinical text", id="blanks-only"),
        pytest.param(np.random.default_rng(0).bytes(4000), "not text", id="random-bytes"),
    ],
)
def test_unreadable_or_empty_reports_are_skipped_not_labelled(tmp_path, data, reason):
    manifest = _mimic_reports(tmp_path / "r", {"50000001": GOOD_REPORT, "50000009": data})
    out = tmp_path / "out"
    assert main([str(a) for a in _parse_mimic(manifest, out)]) == 0
    ids = (out / "report_ids.txt").read_text().split()
    skipped = pd.read_csv(out / "skipped.csv", dtype=str).set_index("report_id")
    chexpert = pd.read_parquet(out / "labels_chexpert.parquet").set_index("report_id")
    assert chexpert.loc["50000001", "No Finding"] == 1.0  # the good report beside it
    counts = json.loads((out / "counts.json").read_text())
    if reason is None:  # decoded as the byte-order mark says, and read
        assert ids == ["50000001", "50000009"] and skipped.empty
        assert chexpert.loc["50000009", "Pleural Effusion"] == 1.0
        assert math.isnan(chexpert.loc["50000009", "No Finding"])
    else:  # skipped with the reason, in no label table
        assert ids == ["50000001"] and list(skipped.index) == ["50000009"]
        assert skipped.loc["50000009", "reason"].startswith(reason)
        assert skipped.loc["50000009", "source"].endswith("s50000009.txt")
        assert counts["reports_skipped"] == 1 and len(chexpert) == 1


def test_no_finding_needs_a_statement():
    assert math.isnan(chexpert_from_triplets([])["No Finding"])


# 2, 7. Config: only null means SynthCXR; an empty config file is refused like Snakemake does.
@pytest.mark.parametrize(
    ("text", "names"),
    [
        pytest.param(
            'datasets:\n  nih_cxr14: ""\n', ["datasets.nih_cxr14", "null"], id="empty-root"
        ),
        pytest.param("", ["empty config file"], id="empty-file"),
        pytest.param("# only a comment\n", ["empty config file"], id="comment-only"),
    ],
)
def test_bad_config_is_refused_naming_the_key(tmp_path, caplog, text, names):
    path = tmp_path / "my.yaml"
    path.write_text(text)
    _fails(["check-config", path], caplog, path, *names)


# 3, 7. RSNA boxes: dropped or clipped boxes are reported with file and row; a non-numeric
# coordinate or a table without rows is an error naming the file.
RSNA_HEADER = "patientId,x,y,width,height,Target\n"


def _rsna(root: Path, rows: str) -> Path:
    root.mkdir(parents=True)
    (root / "stage_2_train_labels.csv").write_text(RSNA_HEADER + rows)
    detail = {line.split(",")[0] for line in rows.splitlines()}
    classes = "".join(f"{pid},Lung Opacity\n" for pid in sorted(detail))
    (root / "stage_2_detailed_class_info.csv").write_text("patientId,class\n" + classes)
    return root


def _manifest(root: Path, out: Path) -> list:
    return ["manifest", "--dataset", "rsna_pneumonia", "--root", root, "--out", out]


def test_rsna_boxes_are_kept_as_given_and_checked_where_the_image_is_read(tmp_path):
    """The manifest keeps a box as the table gives it; whether it lies inside its image is
    checked against the image's own size at preprocessing (tests/test_bad_input_data.py)."""
    rows = "good,100,100,200,300,1\nfar,2000,100,50,50,1\nnone,,,,,0\n"
    root, out = _rsna(tmp_path / "rsna", rows), tmp_path / "manifest.parquet"
    assert main([str(a) for a in _manifest(root, out)]) == 0
    boxes = pd.read_parquet(out).set_index("image_id")["boxes"].map(json.loads)
    assert boxes["good"] == [["Lung Opacity", 100.0, 100.0, 200.0, 300.0]]
    assert boxes["far"] == [["Lung Opacity", 2000.0, 100.0, 50.0, 50.0]]
    assert boxes["none"] == []


@pytest.mark.parametrize(
    ("rows", "names"),
    [
        pytest.param(
            "good,1,2,3,4,1\nbad,10,abc,30,40,1\n", ["row 2", "y='abc'"], id="non-numeric"
        ),
        pytest.param(
            "good,1,2,3,4,1\nbad,10,,30,40,1\n", ["row 2", "must be numbers"], id="partial"
        ),
        pytest.param("", ["no rows"], id="header-only"),
    ],
)
def test_bad_rsna_table_is_an_error_naming_file_and_row(tmp_path, caplog, rows, names):
    root, out = _rsna(tmp_path / "rsna", rows), tmp_path / "manifest.parquet"
    _fails(_manifest(root, out), caplog, root / "stage_2_train_labels.csv", *names)
    assert not out.exists()


# Issue item 2: a label table edited in place inside a configured root reruns its reader.
def test_label_table_edited_in_place_reruns_the_manifest(tmp_path):
    from tests._workflow import make_workdir, snakemake

    work = tmp_path / "work"
    work.mkdir()
    make_workdir(work)
    root = _rsna(tmp_path / "rsna", "a,1,2,3,4,1\nb,,,,,0\n")
    (work / "rsna.yaml").write_text(f"datasets:\n  rsna_pneumonia: {root}\n")
    target = "results/data/rsna_pneumonia/manifest.parquet"

    def run(*args: str) -> str:
        res = snakemake(work, *args, target, configs=("rsna.yaml",))
        assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
        return res.stdout + res.stderr

    run()
    assert "Nothing to be done" in run("-n")
    table = root / "stage_2_train_labels.csv"
    table.write_text(RSNA_HEADER + "a,1,2,3,4,1\nb,5,6,7,8,1\n")  # the root's time stays
    later = (work / target).stat().st_mtime + 10
    os.utime(table, (later, later))
    assert "rule data_manifest" in run("-n")


# Issue item 10: fewer report chunks (or shards) than an earlier run leaves none of the earlier
# run's extra chunk folders, shard files, logs or benchmarks behind; the others stay.
def test_fewer_chunks_or_shards_remove_the_extra_ones(tmp_path):
    from tests._workflow import make_workdir, snakemake

    work = make_workdir(tmp_path)
    res = snakemake(work, "reports")  # .test: 2 report chunks
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    earlier_shards = {  # what a run with 8 shards left (.test has 2)
        "results/data/nih_cxr14/shards/shard-00007.lmdb": "shard",
        "results/data/nih_cxr14/shards/shard-00007.index.parquet": "index",
        "results/logs/data/preprocess_nih_cxr14_00007.log": "log",
        "results/benchmarks/data/preprocess_nih_cxr14_00007.tsv": "benchmark",
    }
    kept = work / "results/logs/data/preprocess_nih_cxr14_00001.log"
    for name in [*earlier_shards, kept]:
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_text("earlier run")
    (work / "one.yaml").write_text("reports: {n_chunks: 1}\n")
    res = snakemake(work, "reports", configs=("one.yaml",))
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    chunk_1 = [
        "results/reports/mimic_cxr/chunks/1",
        "results/logs/reports/parse_chunk_1.log",
        "results/benchmarks/reports/parse_chunk_1.tsv",
    ]
    for name in [*chunk_1, *earlier_shards]:
        assert not (work / name).exists(), name
        assert f"removed {name}" in res.stderr
    assert (work / "results/reports/mimic_cxr/chunks/0/counts.json").is_file()
    assert kept.read_text() == "earlier run"


# 4, 7. Quarantine reasons stay readable when the gather step fails; a text file named .png
# gets a stable reason.
def _images(folder: Path, bad: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True)
    for name in ("a.png", "b.png"):
        Image.fromarray(np.full((32, 32), 100, np.uint8)).save(folder / name)
    for name, data in bad.items():
        (folder / name).write_bytes(data)
    return folder


def test_gather_failure_keeps_every_reason_in_the_log(tmp_path, caplog):
    folder = _images(tmp_path / "img", {"notes.png": b"just some text\n"})
    out = tmp_path / "shards"
    argv = ["preprocess", "--images", folder, "--out", out, "--size", 16, "--workers", 1]
    _fails([*argv, "--max-bad-fraction", "0.1"], caplog, out, "above")
    (out / "quarantine.csv").unlink()  # what Snakemake does to a failed job's outputs
    reason = "notes.png: not an image in a format PIL reads"
    assert f"quarantined notes (notes.png): {reason}" in caplog.text
    assert "0x" not in caplog.text  # no object address: the table is the same on every run
    assert not (out / "summary.json").exists() and not (out / "index.parquet").exists()
    assert main([str(a) for a in [*argv, "--max-bad-fraction", "0.5"]]) == 0  # good ones kept
    assert pd.read_csv(out / "quarantine.csv")["reason"].tolist() == [reason]
    assert json.loads((out / "summary.json").read_text())["images"] == 2


# 5. One bad item of a batch is skipped with a reason; the rest is processed.
def test_csv_field_over_the_csv_limit_skips_that_report(tmp_path):
    path = tmp_path / "reports.csv"
    huge = "No pleural effusion. " * 10_000  # 210,000 characters > csv's 131,072
    path.write_text(f'report_id,text\nA,"Lungs are clear."\nB,"{huge}"\nC,"Small effusion."\n')
    out = tmp_path / "out"
    argv = ["parse-reports", "--format", "text_csv", "--input", path, "--out-dir", out]
    assert main([str(a) for a in argv]) == 0
    assert (out / "report_ids.txt").read_text().split() == ["A", "C"]
    skipped = pd.read_csv(out / "skipped.csv", dtype=str)
    assert skipped["report_id"].tolist() == ["B"]
    assert skipped["reason"].iloc[0].startswith("report longer than")


def test_unreadable_iu_xml_file_is_skipped(tmp_path, monkeypatch):
    folder = tmp_path / "ecgen"
    folder.mkdir()
    for n in (1, 2, 3):
        (folder / f"{n}.xml").write_text(
            '<eCitation><AbstractText Label="FINDINGS">The lungs are clear.</AbstractText>'
            '<AbstractText Label="IMPRESSION">No acute disease.</AbstractText></eCitation>'
        )
    read_bytes = Path.read_bytes

    def unreadable_2(self: Path) -> bytes:  # chmod 000 does not stop root
        if self.name == "2.xml":
            raise PermissionError(13, "Permission denied", str(self))
        return read_bytes(self)

    monkeypatch.setattr(Path, "read_bytes", unreadable_2)
    out = tmp_path / "out"
    argv = ["parse-reports", "--format", "iu_xml", "--input", folder, "--out-dir", out]
    assert main([str(a) for a in argv]) == 0
    assert (out / "report_ids.txt").read_text().split() == ["CXR1", "CXR3"]
    skipped = pd.read_csv(out / "skipped.csv", dtype=str)
    assert skipped.values.tolist() == [
        ["CXR2", str(folder / "2.xml"), "unreadable: Permission denied"]
    ]


# 6. No traceback: a path the command cannot use is one line naming it, exit code 2.
def test_output_folder_that_cannot_be_made(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the output folder should be")
    manifest = _mimic_reports(tmp_path / "r", {"50000001": GOOD_REPORT})
    _fails(_parse_mimic(manifest, blocker / "out"), caplog, blocker)
    folder = _images(tmp_path / "img", {})
    _fails(["preprocess", "--images", folder, "--out", blocker / "shards"], caplog, blocker)


def test_read_only_shard_folder(tmp_path, caplog, monkeypatch):
    import lmdb

    def read_only(path: str, **_) -> None:  # what lmdb says on a read-only file system
        raise lmdb.ReadonlyError(f"{path}: Read-only file system")

    monkeypatch.setattr(lmdb, "open", read_only)
    folder, out = _images(tmp_path / "img", {}), tmp_path / "shards"
    _fails(["preprocess", "--images", folder, "--out", out], caplog, out / "shard-00000.lmdb")
    assert not out.exists() or not any(out.iterdir())


def test_contact_sheet_without_truth(tmp_path, caplog):
    tree, out = tmp_path / "tree", tmp_path / "sheet.png"
    tree.mkdir()
    argv = ["contact-sheet", "--tree", tree, "--truth", tmp_path / "nope", "--out", out]
    _fails(argv, caplog, "--truth", tmp_path / "nope")
    assert not out.exists()


def test_gather_with_a_missing_shard(tmp_path, caplog):
    folder, shards = _images(tmp_path / "img", {}), tmp_path / "shards"
    argv = ["preprocess", "--images", folder, "--out", shards, "--size", 16, "--n-shards", 2]
    assert main([str(a) for a in argv]) == 0
    paths = sorted(shards.glob("shard-*.lmdb"))
    paths[1].unlink()
    out = tmp_path / "gathered"
    _fails(["preprocess", "--gather", *paths, "--out", out], caplog, paths[1])
    assert not out.exists()


def test_damaged_lmdb_shard_is_an_error_naming_it(tmp_path):
    """A shard whose header opens but whose pages are garbage (a disk error, a bad copy)."""
    from medslip.data.shards import ShardReader
    from medslip.errors import MedslipError

    folder, shards = _images(tmp_path / "img", {}), tmp_path / "shards"
    assert main([str(a) for a in ["preprocess", "--images", folder, "--out", shards]]) == 0
    (path,) = shards.glob("shard-*.lmdb")
    data = bytearray(path.read_bytes())
    data[8192:] = np.random.default_rng(0).integers(0, 256, len(data) - 8192, np.uint8).tobytes()
    path.write_bytes(bytes(data))  # the two meta pages are kept, the data pages are not
    with pytest.raises(MedslipError, match=f"{path}: damaged LMDB shard"):
        ShardReader(path)


def test_console_shows_one_line_and_no_traceback(tmp_path):
    """The same through the console script: stderr ends in one error line, no traceback."""
    res = subprocess.run(
        [sys.executable, "-m", "medslip.cli", "preprocess", "--gather", tmp_path / "x.lmdb",
         "--out", tmp_path / "o"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr.strip().splitlines()[-1].endswith(f"{tmp_path / 'x.lmdb'}: missing; "
                                                        "was shard x.lmdb written?")  # fmt: skip


# 8. MIMIC images without their reports stop the run, naming the config key.
def test_mimic_without_reports_is_an_error_naming_the_key(tmp_path, caplog):
    manifest = _mimic_reports(tmp_path / "r", {"50000001": GOOD_REPORT, "50000002": GOOD_REPORT})
    for txt in (tmp_path / "r").rglob("*.txt"):
        txt.unlink()  # images listed, reports not downloaded
    out = tmp_path / "out"
    _fails(_parse_mimic(manifest, out), caplog, "datasets.mimic_cxr_reports", tmp_path / "r")
    assert not out.exists()


# 9. A rerun after a kill: temporary files of dead writers are removed.
def test_rerun_removes_temporary_files_of_killed_writers(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    out = tmp_path / "shards"
    out.mkdir()
    stale = out / f".shard-00000.tmp{dead.pid}.lmdb"
    stale.write_bytes(b"half a shard")
    folder = _images(tmp_path / "img", {})
    assert main(["preprocess", "--images", str(folder), "--out", str(out), "--size", "16"]) == 0
    assert not stale.exists() and f"removed {stale}" in caplog.text
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []


# 10. Every command logs the version, the git revision and its effective options first.
def test_commands_log_version_revision_and_options(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    path = tmp_path / "my.yaml"
    path.write_text("{}\n")
    assert main(["check-config", str(path)]) == 0
    first = caplog.records[0].getMessage()
    assert first.startswith(f"medslip {__version__} (git ") and f'"config": "{path}"' in first
