"""Section extraction for MIMIC-CXR and IU X-ray reports.

Headers are upper-case words ending in a colon (``FINDINGS:``, ``IMPRESSION:``,
``FINDINGS AND IMPRESSION:``, ``CONCLUSION:``, ...). The parser reads the *findings-like* and
*impression-like* sections. When a report has neither, every section except the
non-clinical ones (indication, history, comparison, technique, ...) is read; a report without any
header is read whole.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_HEADER = re.compile(r"(?:^|(?<=\n)|(?<=\.\s)|(?<=\.\s\s))[ \t]*([A-Z][A-Z /&()-]{2,40}?)[ \t]*:")

FINDINGS_NAMES = ("FINDINGS", "FINDING", "REPORT", "BODY", "PA AND LATERAL", "CHEST")
IMPRESSION_NAMES = ("IMPRESSION", "IMPRESSIONS", "CONCLUSION", "CONCLUSIONS", "SUMMARY", "OPINION")
SKIPPED_NAMES = (
    "INDICATION",
    "INDICATIONS",
    "HISTORY",
    "CLINICAL HISTORY",
    "COMPARISON",
    "COMPARISONS",
    "TECHNIQUE",
    "EXAMINATION",
    "EXAM",
    "REASON FOR EXAM",
    "REASON FOR EXAMINATION",
    "CLINICAL INFORMATION",
    "CLINICAL INDICATION",
    "NOTIFICATION",
    "RECOMMENDATION",
    "RECOMMENDATIONS",
    "PROCEDURE",
    "TYPE OF EXAMINATION",
    "FINAL REPORT",
    "WET READ",
    "REFERRING PHYSICIAN",
    "DATE",
    "STUDY",
    "PRIOR",
    "PRIORS",
    "ADDENDUM",
)


@dataclass(frozen=True)
class Section:
    """A section's name (upper case; ``""`` for text before any header) and its char span."""

    name: str
    start: int
    end: int


def split_sections(text: str) -> list[Section]:
    """All sections of a report in order, with the header text excluded from the span."""
    headers = [m for m in _HEADER.finditer(text) if m.group(1).strip()]
    sections: list[Section] = []
    first = headers[0].start() if headers else len(text)
    if text[:first].strip():
        sections.append(Section("", 0, first))
    for i, m in enumerate(headers):
        end = headers[i + 1].start() if i + 1 < len(headers) else len(text)
        sections.append(Section(" ".join(m.group(1).split()), m.end(), end))
    return sections


def _is_findings(name: str) -> bool:
    return name in FINDINGS_NAMES or name.startswith("FINDINGS")


def _is_impression(name: str) -> bool:
    return name in IMPRESSION_NAMES or name.startswith("IMPRESSION")


def report_sections(text: str) -> list[Section]:
    """The sections the parser reads (see module docstring), in text order."""
    sections = split_sections(text)
    chosen = [s for s in sections if _is_findings(s.name) or _is_impression(s.name)]
    if not chosen:
        chosen = [s for s in sections if s.name not in SKIPPED_NAMES]
    return [s for s in chosen if text[s.start : s.end].strip()]
