"""One report source → one output directory: the library behind ``medslip parse-reports``.

:func:`parse_reports` reads the ``chunk``-th of ``n_chunks`` contiguous slices of a source's
reports (sorted: MIMIC studies by study id, the other formats in file order), parses them and
writes the files of :mod:`medslip.reports.outputs`; :func:`~medslip.reports.outputs.gather_outputs`
concatenates chunk directories into a result identical to a one-chunk run.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

from medslip.errors import MedslipError
from medslip.labels import Triplet
from medslip.progress import progress
from medslip.reports.outputs import write_outputs
from medslip.reports.readers import (
    Report,
    Skipped,
    mimic_studies,
    read_iu_csv,
    read_iu_xml,
    read_mimic_reports,
    read_text_csv,
    require_reports,
    require_unique_ids,
)

log = logging.getLogger(__name__)

FORMATS: tuple[str, ...] = ("mimic", "iu_csv", "iu_xml", "text_csv", "radgraph")
"""Report sources: ``mimic`` (a MIMIC-CXR-JPG manifest + the reports root its ``report`` paths
are relative to), IU X-ray ``indiana_reports.csv``, Open-i XML, a CSV of free text, RadGraph
JSON (already annotated: read, not parsed)."""


NOTHING_EXTRACTED = "nothing extracted: no statement the parser knows"
"""Skip reason of a report read without error from which the parser extracts no triplet."""


def chunk_slice(items: Sequence, chunk: int, n_chunks: int) -> list:
    """The ``chunk``-th of ``n_chunks`` contiguous, near-equal slices of ``items``."""
    if n_chunks < 1:
        raise MedslipError(f"--n-chunks {n_chunks}: must be 1 or more")
    if not 0 <= chunk < n_chunks:
        raise MedslipError(f"--chunk {chunk}: not in 0..{n_chunks - 1} (--n-chunks {n_chunks})")
    lo = len(items) * chunk // n_chunks
    hi = len(items) * (chunk + 1) // n_chunks
    return list(items[lo:hi])


def read_source(
    fmt: str,
    path: str | Path,
    *,
    root: str | Path | None = None,
    chunk: int = 0,
    n_chunks: int = 1,
    id_column: str = "report_id",
    text_column: str = "text",
) -> list:
    """The records of one chunk of a source: ``Report``/``Skipped`` (RadGraph: (id, triplets))."""
    path = Path(path)
    if fmt not in FORMATS:
        raise MedslipError(f"unknown report format {fmt!r}; known: {list(FORMATS)}")
    if not path.exists():
        raise MedslipError(f"{path}: input does not exist")
    if fmt == "mimic":
        if root is None or not Path(root).is_dir():
            raise MedslipError(f"mimic: reports root {root} is not a directory")
        studies = mimic_studies(path)
        require_reports(studies, root)  # every chunk alike, so no chunk passes on its own
        return list(read_mimic_reports(chunk_slice(studies, chunk, n_chunks), root))
    if fmt == "radgraph":
        from medslip.reports.radgraph import read_radgraph

        records: Iterable = read_radgraph(path)
    elif fmt == "iu_csv":
        records = read_iu_csv(path)
    elif fmt == "iu_xml":
        records = read_iu_xml(path)
    else:
        records = read_text_csv(path, id_column, text_column)
    records = list(records)
    require_unique_ids((r[0] if isinstance(r, tuple) else r.report_id for r in records), str(path))
    return chunk_slice(records, chunk, n_chunks)


def parse_records(
    records: Iterable[Report | Skipped | tuple[str, list[Triplet]]],
) -> tuple[list[tuple[str, list[Triplet]]], list[Skipped]]:
    """Parse every ``Report`` (RadGraph's (id, triplets) pass through); ``Skipped`` kept apart,
    and so is a report from which nothing is extracted (no triplet: never labelled)."""
    from medslip.reports.parse import default_parser

    parser = None
    parsed, skipped = [], []
    for rec in progress(records, "parse-reports", unit="report", logger=log):
        if isinstance(rec, Report):
            parser = parser or default_parser()
            triplets = parser.parse(rec.text)
            rec = (
                (rec.report_id, triplets)
                if triplets
                else Skipped(rec.report_id, rec.source, NOTHING_EXTRACTED)
            )
        elif not isinstance(rec, Skipped) and not rec[1]:
            rec = Skipped(rec[0], "", NOTHING_EXTRACTED)
        if isinstance(rec, Skipped):
            log.warning("skipped %s (%s): %s", rec.report_id, rec.source, rec.reason)
            skipped.append(rec)
        else:
            parsed.append(rec)
    return parsed, skipped


def parse_reports(fmt: str, path: str | Path, out_dir: str | Path, **options) -> dict:
    """Read one chunk of a source (options of :func:`read_source`), parse it and write the
    output files into ``out_dir``; returns the counts."""
    parsed, skipped = parse_records(read_source(fmt, path, **options))
    return write_outputs(Path(out_dir), parsed, skipped)
