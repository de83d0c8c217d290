"""Anatomy string → one of the 51 landmarks, by the ordered rules of the official
`PreTrain_MeDSLIP/data_file/preprocessing/adj_matrix.py`).

An anatomy *string* is a ``|``-joined set of anatomy tokens (``"lobe|left|lower"``), as built from
RadGraph ``ANAT-DP`` heads and modifiers or, by the text parser, from the anatomy words of an
observation's phrase. The rules are tried in landmark order; the first that matches wins. A
non-empty string that matches none becomes ``other``; an empty one (or ``"unspecified"``)
becomes ``unspecified``.

Rule kinds over the token set ``s`` (``a`` base tokens, ``m1``/``m2`` modifier sets):
``m0``: s∩a; ``m1+``: and s∩m1; ``m1-``: and not s∩m1; ``m1+m2-``: a, m1 hit and m2 not;
``m1+m2+``: all three hit; ``m1-m2+``: a and m2 hit, m1 not. A rule also matches when the whole
token set equals one of its special cases ``sc`` (compared as sets, so token order is irrelevant).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from medslip.vocab import LANDMARKS


@dataclass(frozen=True)
class LandmarkRule:
    """One row of the official preprocessing's landmark table."""

    landmark: str
    base: frozenset[str]
    m1: frozenset[str]
    m2: frozenset[str]
    special: tuple[frozenset[str], ...]
    kind: str  # m0 | m1+ | m1- | m1+m2- | m1+m2+ | m1-m2+

    def matches(self, tokens: frozenset[str]) -> bool:
        if tokens in self.special:
            return True
        if not tokens & self.base:
            return False
        hit1, hit2 = bool(tokens & self.m1), bool(tokens & self.m2)
        return {
            "m0": True,
            "m1+": hit1,
            "m1-": not hit1,
            "m1+m2-": hit1 and not hit2,
            "m1+m2+": hit1 and hit2,
            "m1-m2+": hit2 and not hit1,
        }[self.kind]


_HILAR = "hilar, hilum, perihilar, infrahilar"
_LUNG_MODS = (
    "volume, volumes, {}, lower, base, bases, basilar, basal, basis, middle, mid, upper, apex,"
    " apical, perihilar"
)

# (landmark, base tokens a, m1, m2, special cases sc, rule kind): the reference table, verbatim.
_TABLE: tuple[tuple[str, str, str, str, str, str], ...] = (
    ("trachea", "trachea, tracheal", "", "", "", "m0"),
    ("left_hilar", _HILAR, "left", "right", "", "m1+m2-"),
    ("right_hilar", _HILAR, "right", "left", "", "m1+m2-"),
    (
        "hilar_unspec",
        _HILAR,
        "left, right",
        "",
        "hila, perihilar|right|left, perihilar|left|right",
        "m1-",
    ),
    ("left_pleural", "pleural", "left", "right", "", "m1+m2-"),
    ("right_pleural", "pleural", "right", "left", "", "m1+m2-"),
    (
        "pleural_unspec",
        "pleural",
        "left, right",
        "",
        "pleural|left|right, pleural|right|left, pleural|bilateral|right|left, "
        "pleural|bilateral|left|right",
        "m1-",
    ),
    ("heart_size", "heart, cardiac", "border, borders", "", "", "m1-"),
    ("heart_border", "heart, cardiac", "border, borders", "", "", "m1+"),
    ("left_diaphragm", "diaphragm, hemidiaphragm", "left", "right", "", "m1+m2-"),
    ("right_diaphragm", "diaphragm, hemidiaphragm", "right", "left", "", "m1+m2-"),
    (
        "diaphragm_unspec",
        "diaphragm, diaphragms, hemidiaphragms, hemidiaphragm",
        "left, right",
        "",
        "hemidiaphragm|left|right, hemidiaphragm|right|left",
        "m1-",
    ),
    ("retrocardiac", "retrocardiac", "", "", "", "m0"),
    ("lower_left_lobe", "lobe", "left", "lower", "", "m1+m2+"),
    ("upper_left_lobe", "lobe", "left", "upper", "lingula, lingular", "m1+m2+"),
    ("lower_right_lobe", "lobe", "right", "lower", "", "m1+m2+"),
    ("middle_right_lobe", "lobe", "right", "middle", "", "m1+m2+"),
    ("upper_right_lobe", "lobe", "right", "upper", "", "m1+m2+"),
    (
        "left_lower_lung",
        "lung",
        "left",
        "lower, base, basilar, basal, basis",
        "base|left, basilar|left, basal|left, lung|left|bases",
        "m1+m2+",
    ),
    ("left_mid_lung", "lung", "left", "middle, mid", "midlung|left", "m1+m2+"),
    ("left_upper_lung", "lung", "left", "upper", "", "m1+m2+"),
    ("left_apical_lung", "apex, apical, apical, apicolateral", "left", "right", "", "m1+m2-"),
    (
        "left_lung_unspec",
        "lung, hemithorax",
        "left, left-sided",
        _LUNG_MODS.format("right"),
        "left, thorax|left|hemi",
        "m1+m2-",
    ),
    (
        "right_lower_lung",
        "lung",
        "right",
        "lower, base, basilar, basal, basis",
        "base|right, basilar|right, basal|right, lung|right|bases",
        "m1+m2+",
    ),
    ("right_mid_lung", "lung", "right", "middle, mid", "", "m1+m2+"),
    ("right_upper_lung", "lung", "right", "upper", "", "m1+m2+"),
    ("right_apical_lung", "apex, apical, apical, apicolateral", "right", "left", "", "m1+m2-"),
    (
        "right_lung_unspec",
        "lung, hemithorax",
        "right, right-sided",
        _LUNG_MODS.format("left"),
        "right, thorax|right|hemi",
        "m1+m2-",
    ),
    ("lung_apices", "apices, apical", "left, right", "", "biapical, lungs|upper", "m1-"),
    (
        "lung_bases",
        "lung, lungs",
        "left, right",
        "bibasilar, basilar, base, bases, bibasal, basal",
        "lung|lower, lungs|lower, bibasilar, basilar, bases, bibasal, basal, basal|bilateral, "
        "lobe|lower, lobes|lower, lobe|bilateral|lower, bases|both, bibasilar|left|right, "
        "bibasilar|right|left",
        "m1-m2+",
    ),
    ("left_costophrenic", "costophrenic", "left", "right", "", "m1+m2-"),
    ("right_costophrenic", "costophrenic", "right", "left", "", "m1+m2-"),
    ("costophrenic_unspec", "costophrenic", "left, right", "", "", "m1-"),
    ("cardiophrenic_sulcus", "cardiophrenic", "", "", "", "m0"),
    (
        "mediastinal",
        "mediastinal, cardiomediastinal, mediastinum, cardiomediastinum",
        "",
        "",
        "",
        "m0",
    ),
    ("spine", "spine, spinal", "", "", "", "m0"),
    ("clavicle", "clavicle, clavicles", "", "", "", "m0"),
    ("rib", "rib, ribs", "", "", "", "m0"),
    ("stomach", "stomach, abdomen, abdominal", "", "", "", "m0"),
    ("right_atrium", "atrium, atrial", "right", "left", "", "m1+m2-"),
    ("right_ventricle", "ventricle, ventricular", "right", "left", "", "m1+m2-"),
    ("aorta", "aorta, aortic", "", "", "", "m0"),
    ("svc", "svc", "", "", "", "m0"),
    ("interstitium", "interstitium, interstitial", "", "", "", "m0"),
    ("parenchymal", "parenchymal", "", "", "", "m0"),
    ("cavoatrial_junction", "cavoatrial junction", "", "", "", "m0"),
    ("cardiopulmonary", "cardiopulmonary", "", "", "", "m0"),
    ("pulmonary", "pulmonary", "", "", "", "m0"),
    (
        "lung_volumes",
        "lungs, lung, volume, volumes",
        "left, right, lower, base, bases, basilar, basal, basis, middle, mid, upper, apex, apical, "
        "apical",
        "",
        "",
        "m1-",
    ),
)


def _words(cell: str) -> frozenset[str]:
    return frozenset(w.strip() for w in cell.split(",") if w.strip())


def _special(cell: str) -> tuple[frozenset[str], ...]:
    return tuple(frozenset(sc.strip().split("|")) for sc in cell.split(",") if sc.strip())


LANDMARK_RULES: tuple[LandmarkRule, ...] = tuple(
    LandmarkRule(name, _words(a), _words(m1), _words(m2), _special(sc), kind)
    for name, a, m1, m2, sc, kind in _TABLE
)
"""The 49 ordered rules (``unspecified`` and ``other`` are the fallbacks)."""

assert tuple(r.landmark for r in LANDMARK_RULES) == LANDMARKS[:49]

RULE_TOKENS: frozenset[str] = frozenset().union(
    *(r.base | r.m1 | r.m2 | frozenset().union(*r.special) for r in LANDMARK_RULES)
)
"""Every token some rule looks at."""


@lru_cache(maxsize=65536)
def _landmark_of_set(tokens: frozenset[str]) -> str:
    for rule in LANDMARK_RULES:
        if rule.matches(tokens):
            return rule.landmark
    return "other"


def landmark_for(anatomy: str | frozenset[str] | tuple[str, ...]) -> str:
    """Landmark of an anatomy string (``"lobe|left|lower"``) or token collection."""
    if isinstance(anatomy, str):
        if anatomy.strip().lower() in ("", "unspecified"):
            return "unspecified"
        tokens = frozenset(t.strip().lower() for t in anatomy.split("|") if t.strip())
    else:
        tokens = frozenset(anatomy)
    if not tokens:
        return "unspecified"
    return _landmark_of_set(tokens)
