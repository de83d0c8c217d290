"""DVC metrics and plot data (``results/metrics/``, names in :mod:`medslip.layout`): the headline
numbers of the ablation table, the dataset counts of the data stage, per-rule figures of
Snakemake's benchmark files, and the zero-shot ROC points of every evaluated run on one dataset.

The JSON files hold numbers only (no NaN: a value that is not applicable is left out). The
headline is one file per data source and task (``headline/<source>/<column>.json``) holding
``{variant: value}``, so that ``dvc metrics show`` is one row per task and one column per
variant, and ``dvc metrics diff`` one row per changed (task, variant); intervals and seed counts
stay in ``results/tables/ablation.csv``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medslip.atomic import write_bytes_atomic
from medslip.errors import MedslipError
from medslip.layout import ABLATION_KEYS, EVAL_FILES, headline_columns
from medslip.tables.stages import data_summary


def _number(value: Any) -> float | int | None:
    """``value`` as a finite JSON number, else None."""
    if isinstance(value, bool | np.bool_):
        return None
    if isinstance(value, int | np.integer):
        return int(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def headline(ablation: pd.DataFrame) -> dict[str, dict[str, dict[str, float]]]:
    """``{source: {column: {variant: value}}}`` from the ablation table: the headline value of
    every task (column) per variant and data source; not-applicable cells, and columns without a
    value, left out. A variant with two splits of one source is an error (the key would hide
    one)."""
    missing = [k for k in ABLATION_KEYS if k not in ablation.columns]
    if missing:
        raise MedslipError(f"ablation table: key columns {missing} are missing")
    duplicated = ablation.duplicated(["variant", "source"])
    if duplicated.any():
        rows = ablation.loc[duplicated, list(ABLATION_KEYS)].to_dict("records")
        raise MedslipError(f"ablation table: several splits of one variant and source: {rows}")
    out: dict[str, dict[str, dict[str, float]]] = {}
    columns = headline_columns(list(ablation.columns))
    for i, row in ablation.iterrows():
        for c in columns:
            text = row[c].strip() if isinstance(row[c], str) else ""
            if text not in ("", "n/a") and _number(text) is None:
                raise MedslipError(f"ablation table: row {i + 1}: {c} {row[c]!r} is not a number")
    for column in columns:
        for _, row in ablation.iterrows():
            if (value := _number(row[column])) is not None:
                per_variant = out.setdefault(str(row["source"]), {}).setdefault(column, {})
                per_variant[str(row["variant"])] = value
    return out


def write_headline(value: Mapping[str, Mapping[str, Mapping[str, float]]], out: str | Path) -> int:
    """:func:`headline` as ``out/<source>/<column>.json`` files (each atomically); the number of
    files."""
    for source, columns in value.items():
        for column, per_variant in columns.items():
            write_json(per_variant, Path(out, source, f"{column}.json"))
    Path(out).mkdir(parents=True, exist_ok=True)  # a table without values: an empty folder
    return sum(len(columns) for columns in value.values())


def data_counts(data_dirs: Iterable[str | Path]) -> dict[str, dict[str, int]]:
    """``{dataset: {images, quarantined, <split>_images, <split>_patients, subset_*}}`` from the
    data stage's ``split_counts.json`` and ``shards/summary.json`` of each ``results/data/*``."""
    frame = data_summary([Path(d) for d in data_dirs], {}).frame
    drop = {"source", "dataset", "split_seed"}
    return {
        row["dataset"]: {
            k: n for k, v in row.items() if k not in drop and (n := _number(v)) is not None
        }
        for row in frame.to_dict("records")
    }


def benchmark_figures(jobs: Mapping[str, Iterable[str | Path]]) -> dict[str, dict[str, float]]:
    """``{rule: {jobs, median_s, total_s, max_rss_mb}}`` from the Snakemake benchmark files of
    each rule's jobs (``s`` and ``max_rss`` columns; a job whose memory was not sampled, ``NA``,
    counts for time only)."""
    out: dict[str, dict[str, float]] = {}
    for rule, paths in sorted(jobs.items()):
        frames = []
        for path in paths:
            try:
                frames.append(pd.read_csv(path, sep="\t", na_values=["NA", "-"]))
            except (OSError, ValueError) as exc:
                raise MedslipError(f"{path}: not a readable benchmark file ({exc})") from None
        if not frames:
            continue
        table = pd.concat(frames, ignore_index=True)
        if "s" not in table.columns:
            raise MedslipError(f"{rule}: benchmark files without an `s` column")
        seconds = pd.to_numeric(table["s"], errors="coerce")
        rss = pd.to_numeric(table.get("max_rss", pd.Series(dtype=float)), errors="coerce")
        figures = {
            "jobs": len(table),
            "median_s": _number(seconds.median()),
            "total_s": _number(seconds.sum()),
            "max_rss_mb": _number(rss.max()),
        }
        out[rule] = {k: v for k, v in figures.items() if v is not None}
    return out


def roc_points(run_dirs: Iterable[str | Path]) -> pd.DataFrame:
    """Zero-shot ROC points (``variant, seed, fpr, tpr``) of every evaluation dir
    ``results/eval/zeroshot/{dataset}/{variant}/seed{seed}``: the test split's (image, class)
    rows with a finite label and score, pooled over the classes (sklearn ``roc_curve``). Runs
    without a result (``"status": "n/a"``) or with one class only have no points."""
    from sklearn.metrics import roc_curve

    parts = []
    for run in map(Path, run_dirs):
        try:
            metrics = json.loads((run / EVAL_FILES["metrics"]).read_text())
        except (OSError, ValueError) as exc:
            raise MedslipError(f"{run}: no readable {EVAL_FILES['metrics']} ({exc})") from None
        if metrics.get("status") != "ok":
            continue
        predictions = pd.read_parquet(
            run / EVAL_FILES["predictions"], columns=["split", "label", "score"]
        )
        test = predictions[predictions["split"] == "test"]
        label = pd.to_numeric(test["label"], errors="coerce").to_numpy(dtype=float)
        score = pd.to_numeric(test["score"], errors="coerce").to_numpy(dtype=float)
        keep = np.isfinite(label) & np.isfinite(score)
        if len(np.unique(label[keep])) < 2:
            continue
        fpr, tpr, _ = roc_curve(label[keep].astype(int), score[keep])
        parts.append(
            pd.DataFrame(
                {"variant": metrics["variant"], "seed": metrics["seed"], "fpr": fpr, "tpr": tpr}
            )
        )
    columns = ["variant", "seed", "fpr", "tpr"]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)


def write_json(value: Mapping[str, Any], path: str | Path) -> None:
    """``value`` as indented JSON at ``path`` (atomically)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, (json.dumps(value, indent=1, sort_keys=True) + "\n").encode())


def write_csv(frame: pd.DataFrame, path: str | Path) -> None:
    """``frame`` as CSV at ``path`` (atomically)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, frame.to_csv(index=False).encode())
