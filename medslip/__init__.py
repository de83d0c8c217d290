"""medslip: the reproducibility pipeline for MeDSLIP (arXiv 2403.10635)."""

__version__ = "0.1.0"
