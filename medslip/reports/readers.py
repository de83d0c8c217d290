"""Report sources → ``Report`` records (id, text), or ``Skipped`` records saying why not.

Sources: the studies a MIMIC-CXR-JPG manifest lists (its ``study_id`` and ``report`` columns;
the report files ``files/pXX/pXXXXXXXX/sXXXXXXXX.txt`` under a reports root, also SynthCXR's), IU
X-ray ``indiana_reports.csv`` (Kaggle layout), the Open-i XML reports (a directory of
``*.xml`` or the ``NLMCXR_reports.tgz`` archive) and a CSV of free-text reports. Readers never
raise on a bad report: it comes back as ``Skipped`` and the run goes on.
"""

from __future__ import annotations

import codecs
import csv
import re
import tarfile
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from medslip.errors import MedslipError
from medslip.reports.language import not_english
from medslip.reports.parse import MAX_REPORT_CHARS, clean_text
from medslip.reports.sections import report_sections

_MAX_FILE_BYTES = 4 * MAX_REPORT_CHARS  # a UTF-8 character takes at most 4 bytes
_BOMS = (  # UTF-32 first: its little-endian mark starts with UTF-16's
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_NOT_TEXT = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f\ufffd]")  # controls, undecodable
_WORD = re.compile(r"[A-Za-z]{2,}")
_CSV_FIELD_LIMIT = 2**31 - 1  # so a huge field is read (and skipped as too long), not fatal


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
    """Text of a report: UTF-8/16/32 as its byte-order mark says; without one UTF-8, and bytes
    that are not UTF-8 as cp1252/latin-1."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return data.decode(codec, errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        try:
            return data.decode("cp1252")
        except UnicodeDecodeError:
            return data.decode("latin-1")


def check_text(report_id: str, text: str, source: str) -> Report | Skipped:
    """A ``Report``, or ``Skipped`` for one longer than ``MAX_REPORT_CHARS``, an empty one, one
    that is not text (over 1 % control characters or undecodable bytes: binary data, or UTF-16
    without a byte-order mark), one without clinical text (no word in the sections the
    parser reads, e.g. only ``FINDINGS:``) and one not in English
    (:func:`~medslip.reports.language.not_english`), so that no report is labelled from
    nothing."""
    if len(text) > MAX_REPORT_CHARS:
        return Skipped(report_id, source, f"report longer than {MAX_REPORT_CHARS} characters")
    if not text.strip():
        return Skipped(report_id, source, "empty report")
    bad = len(_NOT_TEXT.findall(text))
    if 100 * bad > len(text):
        reason = f"not text: {bad} of {len(text)} characters are control or undecodable bytes"
        return Skipped(report_id, source, f"{reason} (binary, or UTF-16/32 without a BOM)")
    cleaned = clean_text(text)
    body = " ".join(cleaned[s.start : s.end] for s in report_sections(cleaned))
    foreign = not_english(body) if any(c.isalpha() for c in body) else None
    if foreign:
        return Skipped(report_id, source, f"{foreign}; the parser reads English only")
    if not _WORD.search(body):
        return Skipped(
            report_id, source, "no clinical text (only headers or non-clinical sections)"
        )
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


def require_reports(studies: list[tuple[str, str]], root: str | Path) -> None:
    """MedslipError when ``studies`` is not empty but none of their report files is under
    ``root`` (MIMIC-CXR reports ship apart from the MIMIC-CXR-JPG images), rather than parse
    nothing and write empty label matrices."""
    root = Path(root)
    if studies and not any(rel and (root / rel).is_file() for _, rel in studies):
        raise MedslipError(
            f"{root}: none of the {len(studies)} report files the manifest lists is there "
            f"(e.g. {studies[0][1] or 'no path'}); the MIMIC-CXR reports (mimic-cxr-reports.zip) "
            "ship apart from the images: set datasets.mimic_cxr_reports to their root"
        )


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
    for row in _csv_rows(Path(path), ("uid", "findings", "impression")):
        rid = f"CXR{row['uid']}"
        yield check_text(rid, _iu_text(row["findings"], row["impression"]), str(path))


def _csv_rows(path: Path, columns: tuple[str, ...]) -> Iterator[dict[str, str]]:
    """The rows of a report CSV that has ``columns``; MedslipError naming the file (and line)
    when it cannot be read, lacks a column or is malformed."""
    csv.field_size_limit(max(csv.field_size_limit(), _CSV_FIELD_LIMIT))
    try:
        with open(path, newline="", encoding="utf-8", errors="replace") as fh:
            reader = csv.DictReader(fh)
            missing = set(columns) - set(reader.fieldnames or ())
            if missing:
                raise MedslipError(f"{path}: missing column(s) {sorted(missing)}")
            yield from reader
    except OSError as exc:
        raise MedslipError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except csv.Error as exc:
        raise MedslipError(f"{path}: line {reader.line_num}: malformed CSV ({exc})") from None


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
            try:
                data = xml.read_bytes()
            except OSError as exc:
                yield Skipped(f"CXR{xml.stem}", str(xml), f"unreadable: {exc.strerror or exc}")
                continue
            yield _xml_report(f"CXR{xml.stem}", data, str(xml))
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
    """A CSV of free-text reports with an id column and a text column; a row without an id is
    skipped (its source names the row: 1-based, header not counted)."""
    for number, row in enumerate(_csv_rows(Path(path), (id_column, text_column)), 1):
        rid = (row[id_column] or "").strip()
        if not rid:
            yield Skipped("", f"{path}: row {number}", f"no report id (column {id_column})")
            continue
        if "\n" in rid or "\r" in rid:  # report_ids.txt holds one id a line
            shown = rid.replace("\n", "\\n").replace("\r", "\\r")
            yield Skipped(shown, f"{path}: row {number}", "report id with a line break")
            continue
        yield check_text(rid, row[text_column] or "", str(path))


def require_unique_ids(ids: Iterable[str], where: str) -> None:
    """MedslipError naming ``where`` and the ids when a report id is given twice (an empty id
    is a skipped record of its own, not a duplicate)."""
    counts = Counter(i for i in ids if i)
    twice = sorted(i for i, n in counts.items() if n > 1)
    if twice:
        shown = ", ".join(f"{i} ({counts[i]}x)" for i in twice[:5])
        more = f" and {len(twice) - 5} more" if len(twice) > 5 else ""
        raise MedslipError(f"{where}: report ids given more than once: {shown}{more}")
