"""medslip: the reproducibility pipeline for MeDSLIP (arXiv 2403.10635)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from medslip.predict import Predictor

__version__ = "0.1.0"


def load_pretrained(
    run_dir: str | Path,
    books: str | Path | None = None,
    device: str = "cpu",
    thresholds: str | Path | None = None,
) -> Predictor:
    """The model of a run directory (``results/models/{variant}/seed{seed}``, trained or
    imported), ready for ``model.predict(images)``; see :meth:`medslip.predict.Predictor.load`.
    Imported here on first use, so that ``import medslip`` stays light."""
    from medslip.predict import Predictor

    return Predictor.load(run_dir, books, device, thresholds)
