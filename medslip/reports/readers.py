"""Report sources → ``Report`` records (id, text), or ``Skipped`` records saying why not.

Sources: the studies a MIMIC-CXR-JPG manifest lists (its ``study_id`` and ``report`` columns;
the report files ``files/pXX/pXXXXXXXX/sXXXXXXXX.txt`` under a reports root, also SynthCXR's), IU
X-ray ``indiana_reports.csv`` (Kaggle layout), the Open-i XML reports (a directory of
``*.xml`` or the ``NLMCXR_reports.tgz`` archive) and a CSV of free-text reports. Readers never
raise on a bad report: it comes back as ``Skipped`` and the run goes on.
"""

from __future__ import annotations

import csv
import tarfile
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from medslip.errors import MedslipError
from medslip.reports.parse import MAX_REPORT_CHARS

_MAX_FILE_BYTES = 4 * MAX_REPORT_CHARS  # a UTF-8 character takes at most 4 bytes


@dataclass(frozen=True)
class Report:
    """A report's id (MIMIC study id ``5xxxxxxx``, IU ``CXR<uid>``, CSV id) and its text."""

    report_id: str
    text: str
    source: str


@dataclass(frozen=True)
class Skipped:
    """A report that could not be read, and why."""

    report_id: str
    source: str
    reason: str


def decode_report(data: bytes) -> str:
    """UTF-8 text of a report; bytes that are not UTF-8 are read as cp1252/latin-1."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        try:
            return data.decode("cp1252")
        except UnicodeDecodeError:
            return data.decode("latin-1")


def check_text(report_id: str, text: str, source: str) -> Report | Skipped:
    """A ``Report``, or ``Skipped`` for an empty one or one longer than ``MAX_REPORT_CHARS``."""
    if len(text) > MAX_REPORT_CHARS:
        return Skipped(report_id, source, f"report longer than {MAX_REPORT_CHARS} characters")
    if not text.strip():
        return Skipped(report_id, source, "empty report")
    return Report(report_id, text, source)


MANIFEST_COLUMNS = ("study_id", "report")
"""Columns of a data manifest (``medslip manifest``) the MIMIC reader uses."""


def mimic_studies(manifest: str | Path) -> list[tuple[str, str]]:
    """(study id, report path relative to the reports root) of every study a MIMIC-CXR-JPG
    manifest lists, once each, sorted by study id (the manifest's spelling: digits, no ``s``)."""
    manifest = Path(manifest)
    try:
        frame = pd.read_parquet(manifest, columns=list(MANIFEST_COLUMNS))
    except (OSError, ValueError, KeyError) as exc:
        raise MedslipError(
            f"{manifest}: not a manifest with columns {list(MANIFEST_COLUMNS)} ({exc})"
        ) from exc
    frame = frame[frame["study_id"].fillna("").astype(str) != ""]
    frame = frame.drop_duplicates("study_id").sort_values("study_id", kind="stable")
    return [(str(s), str(r or "")) for s, r in zip(frame["study_id"], frame["report"], strict=True)]


def read_mimic_reports(
    studies: list[tuple[str, str]], root: str | Path
) -> Iterator[Report | Skipped]:
    """Reports of the given (study id, relative report path) under ``root``; the report id is
    the study id."""
    root = Path(root)
    for rid, relative in studies:
        if not relative:
            yield Skipped(rid, "", "no report path in the manifest")
            continue
        path = root / relative
        try:
            if path.stat().st_size > _MAX_FILE_BYTES:  # too long whatever it decodes to
                yield Skipped(rid, str(path), f"report longer than {MAX_REPORT_CHARS} characters")
                continue
            data = path.read_bytes()
        except OSError as exc:
            yield Skipped(rid, str(path), f"unreadable: {exc.strerror or exc}")
            continue
        yield check_text(rid, decode_report(data), str(path))


def _iu_text(findings: str | None, impression: str | None) -> str:
    parts = []
    if findings and findings.strip():
        parts.append(f"FINDINGS: {findings.strip()}")
    if impression and impression.strip():
        parts.append(f"IMPRESSION: {impression.strip()}")
    return "\n".join(parts)


def read_iu_csv(path: str | Path) -> Iterator[Report | Skipped]:
    """IU X-ray ``indiana_reports.csv`` (uid, findings, impression, ...); ids are ``CXR<uid>``."""
    path = Path(path)
    with _open_csv(path) as fh:
        reader = csv.DictReader(fh)
        missing = {"uid", "findings", "impression"} - set(reader.fieldnames or ())
        if missing:
            raise MedslipError(f"{path}: missing column(s) {sorted(missing)}")
        for row in reader:
            rid = f"CXR{row['uid']}"
            yield check_text(rid, _iu_text(row["findings"], row["impression"]), str(path))


def _open_csv(path: Path):
    try:
        return open(path, newline="", encoding="utf-8", errors="replace")
    except OSError as exc:
        raise MedslipError(f"{path}: cannot open ({exc.strerror or exc})") from exc


def _xml_report(rid: str, data: bytes, source: str) -> Report | Skipped:
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        return Skipped(rid, source, f"malformed XML: {exc}")
    sections = {
        (node.get("Label") or "").upper(): (node.text or "") for node in root.iter("AbstractText")
    }
    return check_text(rid, _iu_text(sections.get("FINDINGS"), sections.get("IMPRESSION")), source)


def read_iu_xml(path: str | Path) -> Iterator[Report | Skipped]:
    """Open-i report XMLs from a directory of ``*.xml`` or a ``.tgz``; ids are ``CXR<n>``."""
    path = Path(path)
    if path.is_dir():
        for xml in sorted(path.rglob("*.xml")):
            yield _xml_report(f"CXR{xml.stem}", xml.read_bytes(), str(xml))
        return
    if not (path.is_file() and tarfile.is_tarfile(path)):
        raise MedslipError(f"{path}: neither a directory nor a tar archive of Open-i XML reports")
    with tarfile.open(path) as tar:
        for member in sorted(tar.getmembers(), key=lambda m: m.name):
            if member.isfile() and member.name.endswith(".xml"):
                stem = Path(member.name).stem
                yield _xml_report(f"CXR{stem}", tar.extractfile(member).read(), member.name)


def read_text_csv(
    path: str | Path, id_column: str = "report_id", text_column: str = "text"
) -> Iterator[Report | Skipped]:
    """A CSV of free-text reports with an id column and a text column."""
    path = Path(path)
    with _open_csv(path) as fh:
        reader = csv.DictReader(fh)
        missing = {id_column, text_column} - set(reader.fieldnames or ())
        if missing:
            raise MedslipError(f"{path}: missing column(s) {sorted(missing)}")
        for row in reader:
            yield check_text(row[id_column], row[text_column] or "", str(path))
