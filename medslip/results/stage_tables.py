"""Tables of the data and report stages for the HTML report: dataset sizes, quarantine and
published split sizes (``data_summary``), and the report labels (``report_labels``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from medslip.errors import MedslipError
from medslip.results.tables import Table

SPLITS = ("train", "val", "test")


def _json(path: Path, keys: tuple[str, ...] = ()) -> dict[str, Any]:
    """A JSON object with ``keys`` (for ``train``/``val``/``test``: objects with ``images`` and
    ``patients``); anything else is an error naming the file."""
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise MedslipError(f"{path}: not a readable JSON file ({exc})") from None
    if not isinstance(value, dict):
        raise MedslipError(f"{path}: not a JSON object")
    for key in keys:
        entry = value.get(key)
        split_ok = isinstance(entry, dict) and {"images", "patients"} <= set(entry)
        if entry is None or (key in SPLITS and not split_ok):
            raise MedslipError(f"{path}: no {key!r} entry (or it lacks images/patients)")
    return value


def data_summary(data_dirs: list[Path], sources: dict[str, str]) -> Table:
    """One row per dataset of ``results/data/{dataset}``: images, quarantined, images and
    patients per published split, and the nested training subsets."""
    rows = []
    for path in data_dirs:
        counts = _json(path / "split_counts.json", (*SPLITS, "seed"))
        shards = _json(path / "shards" / "summary.json", ("images", "quarantined"))
        row = {"source": sources.get(path.name, "?"), "dataset": path.name}
        row |= {"images": shards["images"], "quarantined": shards["quarantined"]}
        for split in SPLITS:
            row |= {f"{split}_{k}": counts[split][k] for k in ("images", "patients")}
        row |= {k: v for k, v in counts.items() if k.startswith("subset_")}
        row["split_seed"] = counts["seed"]
        rows.append(row)
    caption = (
        "Datasets of this run: images in the shards, images quarantined (unreadable; listed "
        "in each dataset's shards/quarantine.csv), and the published splits "
        "(results/data/{dataset}/splits.csv) in images and patients, with the nested training "
        "subsets (`subset_*`, images) that fine-tuning uses. `source`: SynthCXR or real data."
    )
    return Table(pd.DataFrame(rows), "Data", caption, [])


def report_labels(reports_dir: Path) -> Table:
    """One row per pathology entity: reports in which it is present, uncertain, absent."""
    counts = _json(reports_dir / "counts.json", ("reports_read", "reports_parsed", "reports_skipped", "triplets"))
    try:
        triplets = pd.read_parquet(reports_dir / "triplets.parquet")
    except (OSError, ValueError) as exc:
        raise MedslipError(f"{reports_dir / 'triplets.parquet'}: not readable ({exc})") from None
    per_report = triplets.drop_duplicates(["report_id", "pathology", "presence"])
    frame = (
        per_report.pivot_table(
            index="pathology", columns="presence", values="report_id", aggfunc="count"
        )
        .reindex(columns=["present", "uncertain", "absent"])
        .fillna(0)
        .astype(int)
        .sort_values("present", ascending=False)
        .reset_index()
    )
    caption = (
        f"Report labels: {counts['reports_read']} reports read, {counts['reports_parsed']} "
        f"parsed, {counts['reports_skipped']} skipped (reasons in skipped.csv), "
        f"{counts['triplets']} (pathology, anatomy, presence) triplets. Rows: reports in which "
        "each pathology entity is mentioned as present, uncertain or absent (a report can count "
        "in more than one column)."
    )
    return Table(frame, "Report labels", caption, [])
