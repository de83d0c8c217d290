"""Reading the evaluation stage's metrics files and summarising them over seeds.

A *run* is one metrics file (one pretraining seed, and for fine-tuning one fine-tuning seed).
Runs of the same table row are summarised as: value = mean over runs of the point estimates;
``_lo``/``_hi`` = mean over runs of each run's 95 % patient-bootstrap bounds (the test-set
uncertainty); ``_seed_sd`` = standard deviation of the point estimates between runs (NaN for one
run); ``n_seeds`` = number of runs; ``seeds`` = which. Every row of a variant says where its
weights come from (``weights``: trained by this workflow, or the published checkpoint).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medslip.errors import MedslipError
from medslip.variants import VARIANTS, variant_rank

SOURCES = ("SynthCXR", "real")
"""Data sources a row can name (never averaged together)."""


def read_metrics(paths: Iterable[str | Path]) -> list[dict[str, Any]]:
    """Every metrics JSON of ``paths`` (each with ``task``, ``dataset``, ``variant``, ``seed`` and
    ``status``), with ``_path`` added; an unreadable or foreign file is an error naming it."""
    out = []
    for path in map(Path, paths):
        try:
            metrics = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise MedslipError(f"{path}: not a readable metrics JSON ({exc})") from None
        missing = [k for k in ("task", "dataset", "variant", "seed", "status") if k not in metrics]
        if not isinstance(metrics, dict) or missing:
            raise MedslipError(f"{path}: not an evaluation metrics file (missing {missing})")
        out.append(metrics | {"_path": str(path)})
    return out


def source_of(dataset: str, sources: dict[str, str], path: str) -> str:
    """The data source of ``dataset`` (``SynthCXR`` or ``real``); unknown → error naming it."""
    source = sources.get(dataset)
    if source not in SOURCES:
        raise MedslipError(
            f"{path}: dataset {dataset!r} has no data source ({SOURCES}) in --sources {sources}"
        )
    return source


def run_label(metrics: dict[str, Any]) -> str:
    """``0`` (pretraining seed) or ``0/ft1`` (pretraining / fine-tuning seed)."""
    ft = metrics.get("ft_seed")
    return f"{metrics['seed']}" if ft is None else f"{metrics['seed']}/ft{ft}"


def with_ci(entry: dict[str, Any], metrics: Iterable[str]) -> dict[str, float]:
    """``{m, m_lo, m_hi}`` from a metrics-file entry's ``m`` and ``m_ci`` (missing → NaN)."""
    out = {}
    for m in metrics:
        lo, hi = entry.get(f"{m}_ci") or (None, None)
        out |= {m: _num(entry.get(m)), f"{m}_lo": _num(lo), f"{m}_hi": _num(hi)}
    return out


def _num(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and value is not None else math.nan


def weights_of(variant: str) -> str:
    """Where a variant's weights come from (the registry's ``Variant.weights``; "" if unknown)."""
    entry = VARIANTS.get(variant)
    return entry.weights if entry is not None else ""


def with_weights(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with a ``weights`` column right after ``variant``."""
    frame = frame.copy()
    frame.insert(frame.columns.get_loc("variant") + 1, "weights", frame["variant"].map(weights_of))
    return frame


def summarise(
    runs: list[dict[str, Any]], keys: list[str], metrics: list[str], plain: Iterable[str] = ()
) -> pd.DataFrame:
    """One row per ``keys`` from one record per run (``keys``, ``run``, ``status``, ``note``,
    and ``m``, ``m_lo``, ``m_hi`` per metric): means over runs, ``m_seed_sd``, ``n_seeds``,
    ``seeds``; ``plain`` columns are averaged without interval. Rows are ordered by ``keys``,
    each in first-seen order except variants (the variant registry's order); ``weights`` follows
    ``variant`` (:func:`with_weights`)."""
    plain = list(plain)
    metric_columns = [f"{m}{s}" for m in metrics for s in ("", "_lo", "_hi", "_seed_sd")]
    columns = keys + ["status", "n_seeds", "seeds"] + metric_columns + plain + ["note"]
    if not runs:
        return with_weights(pd.DataFrame(columns=columns))
    frame = pd.DataFrame(runs)
    rows = []
    for key, group in frame.groupby(keys, sort=False, dropna=False):
        row: dict[str, Any] = dict(zip(keys, key, strict=True))
        ok = group[group["status"] == "ok"]
        row["status"] = "ok" if len(ok) else "n/a"
        row["n_seeds"] = len(ok)
        row["seeds"] = " ".join(map(str, ok["run"])) if len(ok) else ""
        for m in metrics:
            values = ok[m].to_numpy(float) if m in ok else np.array([])
            finite = values[np.isfinite(values)]
            row[m] = finite.mean() if len(finite) else math.nan
            for bound in ("_lo", "_hi"):
                b = ok[m + bound].to_numpy(float) if m + bound in ok else np.array([])
                row[m + bound] = np.nanmean(b) if np.isfinite(b).any() else math.nan
            row[f"{m}_seed_sd"] = finite.std(ddof=1) if len(finite) > 1 else math.nan
        for p in plain:
            v = ok[p].to_numpy(float) if p in ok else np.array([])
            row[p] = np.nanmean(v) if np.isfinite(v).any() else math.nan
        notes = sorted({n for n in group["note"] if isinstance(n, str) and n})
        row["note"] = "; ".join(notes)
        rows.append(row)
    out = pd.DataFrame(rows, columns=columns)
    ranks = []
    for k in keys:
        seen = {v: i for i, v in enumerate(dict.fromkeys(out[k]))}
        ranks.append(out[k].map(variant_rank if k == "variant" else seen).fillna(len(seen)))
    order = np.lexsort([r.to_numpy() for r in reversed(ranks)])
    return with_weights(out.iloc[order].reset_index(drop=True))
