"""Writing one evaluation's outputs: the predictions Parquet and the metrics JSON (NaN written as
null), both atomically, names from :mod:`medslip.layout`."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medslip.atomic import atomic_path, write_bytes_atomic
from medslip.layout import EVAL_FILES


def json_ready(value: Any) -> Any:
    """``value`` with NumPy scalars as Python numbers and NaN/inf as None (strict JSON)."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def not_applicable(head: dict[str, Any], reason: str) -> dict[str, Any]:
    """Metrics of a model the task does not apply to: ``status`` n/a and why; no numbers."""
    return head | {"status": "n/a", "reason": reason}


def write_outputs(out_dir: Path, predictions: pd.DataFrame, metrics: dict[str, Any]) -> None:
    """``predictions.parquet`` and ``metrics.json`` under ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / EVAL_FILES["predictions"]) as tmp:
        predictions.to_parquet(tmp, index=False)
    text = json.dumps(json_ready(metrics), indent=1, allow_nan=False) + "\n"
    write_bytes_atomic(out_dir / EVAL_FILES["metrics"], text.encode())
