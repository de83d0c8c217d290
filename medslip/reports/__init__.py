"""Radiology report parsing: report text → (pathology, anatomy, presence) triplets."""

from medslip.reports.parse import Triplet, parse_report

__all__ = ["Triplet", "parse_report"]
