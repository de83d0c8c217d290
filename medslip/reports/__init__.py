"""Radiology report parsing: report text → (pathology, anatomy, presence) triplets."""

from medslip.labels import Triplet
from medslip.reports.parse import parse_report

__all__ = ["Triplet", "parse_report"]
