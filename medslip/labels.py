"""The (pathology, anatomy, presence) ``Triplet`` and report-level class labels from triplets.

``Triplet`` is the one record of a statement a report makes, written by the report parser
(:mod:`medslip.reports`), the RadGraph reader and the SynthCXR report writer alike.

Two label sets are derived from the same triplets:

* ChestX-ray14 (``CHESTXRAY14_CLASSES``): 0/1 per class, positive iff some matching triplet is
  ``present`` (the NIH / NegBio convention: uncertain and negated mentions are 0);
* CheXpert (``CHEXPERT_CLASSES``): 1.0 positive, 0.0 negative, -1.0 uncertain, NaN unmentioned,
  aggregated over mentions as present > uncertain > absent (the CheXpert labeler's rule).
  ``No Finding`` is 1.0 when the report states something (at least one triplet) and no class
  other than ``Support Devices`` is 1.0 or -1.0, else NaN: a report read as saying nothing is
  no evidence of a normal study.

A triplet matches a class rule when its pathology (or, for ``tail_abnorm_obs``, its ``lemma``
when it has one, e.g. ``fibrosis``) is one of the rule's entities and its anatomy is one of the
rule's landmarks (any landmark when the rule names none), and its lemma (when it has one) is not
one the rule excludes. A *normal* entity (normal, clear, sharp,
unremarkable, ...) asserted at a class's own landmark counts as a negative mention of that class
("heart size is normal" → Cardiomegaly 0).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from medslip.vocab import (
    ABSENT,
    CHESTXRAY14_CLASSES,
    CHEXPERT_CLASSES,
    DEVICE_LEMMAS,
    ENTITY_INDEX,
    LANDMARK_INDEX,
    LANDMARKS,
    NORMAL_ENTITIES,
    PRESENCES,
    PRESENT,
    UNCERTAIN,
)


@dataclass(frozen=True)
class Triplet:
    """One statement of a report: entity, landmark, presence and where it was read.

    ``sentence`` is the 0-based sentence index in the report (FINDINGS then IMPRESSION);
    ``start``/``end`` are character offsets of the observation phrase in the report text (-1 when
    not known, e.g. SynthCXR's ground truth); ``lemma`` is the lexicon lemma before the
    reference's normalisation (``nodular`` for a ``nodule``, ``fibrosis`` for a
    ``tail_abnorm_obs``; None when not known).
    """

    pathology: str
    anatomy: str
    presence: str
    sentence: int = 0
    start: int = -1
    end: int = -1
    lemma: str | None = None

    def __post_init__(self) -> None:
        if self.pathology not in ENTITY_INDEX:
            raise ValueError(f"unknown entity {self.pathology!r}")
        if self.anatomy not in LANDMARK_INDEX:
            raise ValueError(f"unknown landmark {self.anatomy!r}")
        if self.presence not in PRESENCES:
            raise ValueError(f"bad presence {self.presence!r}")


@dataclass(frozen=True)
class ClassRule:
    """One way a class is mentioned: entities (or tail lemmas) at some landmarks (None: any)."""

    entities: frozenset[str]
    landmarks: frozenset[str] | None = None
    except_lemmas: frozenset[str] = frozenset()

    def matches(self, pathology: str, lemma: str | None, anatomy: str) -> bool:
        hit = pathology in self.entities or (lemma is not None and lemma in self.entities)
        return (
            hit
            and (self.landmarks is None or anatomy in self.landmarks)
            and lemma not in self.except_lemmas
        )


def _rule(entities: str, landmarks: str | None = None, except_lemmas: str = "") -> ClassRule:
    return ClassRule(
        frozenset(entities.split()),
        None if landmarks is None else frozenset(landmarks.split()),
        frozenset(except_lemmas.split()),
    )


_MEDIASTINUM = "mediastinal hilar_unspec left_hilar right_hilar"
_PLEURA = (
    "left_pleural right_pleural pleural_unspec left_costophrenic right_costophrenic "
    "costophrenic_unspec"
)
_NOT_OTHER = " ".join(name for name in LANDMARKS if name != "other")  # pericardial, joint: other
_NORMAL = " ".join(NORMAL_ENTITIES)
_DEVICES = " ".join(sorted(DEVICE_LEMMAS))

CHEXPERT_RULES: dict[str, tuple[ClassRule, ...]] = {
    "Enlarged Cardiomediastinum": (
        _rule("enlarge widen prominence", "mediastinal"),
        _rule(_NORMAL, "mediastinal"),
    ),
    "Cardiomegaly": (
        _rule("cardiomegaly"),
        _rule("enlarge large prominence", "heart_size"),
        _rule(_NORMAL + " borderline", "heart_size"),
    ),
    "Lung Opacity": (_rule("opacity density infiltrate haziness"),),
    "Lung Lesion": (_rule("nodule mass lesion"),),
    "Edema": (_rule("edema chf"), _rule("congestion", "pulmonary unspecified")),
    "Consolidation": (_rule("consolidation"),),
    "Pneumonia": (_rule("pneumonia"),),
    "Atelectasis": (_rule("atelectasis collapse"),),
    "Pneumothorax": (_rule("pneumothorax"),),
    "Pleural Effusion": (
        _rule("effusion", _NOT_OTHER),
        _rule("fluid blunt", _PLEURA),
        _rule("sharp sharply clear", "left_costophrenic right_costophrenic costophrenic_unspec"),
    ),
    "Pleural Other": (_rule("thicken scar calcification fibrosis", _PLEURA),),
    "Fracture": (_rule("fracture"),),
    "Support Devices": (_rule(_DEVICES),),
}
"""CheXpert class → the triplet patterns that mention it (``No Finding`` is derived)."""

CHESTXRAY14_RULES: dict[str, tuple[ClassRule, ...]] = {
    "Atelectasis": (_rule("atelectasis collapse"),),
    "Cardiomegaly": (_rule("cardiomegaly"), _rule("enlarge large", "heart_size")),
    "Effusion": (_rule("effusion", _NOT_OTHER), _rule("fluid", _PLEURA)),  # blunting alone: 0
    "Infiltration": (_rule("infiltrate"),),
    "Mass": (_rule("mass"),),
    "Nodule": (_rule("nodule", None, "nodular"),),  # NegBio gold: "nodular density" is no nodule
    "Pneumonia": (_rule("pneumonia"),),
    "Pneumothorax": (_rule("pneumothorax"),),
    "Consolidation": (_rule("consolidation"),),
    "Edema": (_rule("edema"),),
    "Emphysema": (_rule("emphysema"),),
    "Fibrosis": (_rule("fibrosis"),),
    "Pleural_Thickening": (_rule("thicken"),),  # NegBio gold counts any thickening (IU dev ids)
    "Hernia": (_rule("hernia"),),
}
"""ChestX-ray14 class → the triplet patterns that mention it."""

_NORMAL_SET = frozenset(NORMAL_ENTITIES)
PRESENCE_RANK: dict[str, int] = {ABSENT: 0, UNCERTAIN: 1, PRESENT: 2}
"""Presence → rank for aggregating mentions: present > uncertain > absent."""
_CHEXPERT_VALUE = {0: 0.0, 1: -1.0, 2: 1.0}


def _presence_rank(triplet: Triplet, rules: tuple[ClassRule, ...]) -> int | None:
    """Rank of the triplet's mention of a class (None: not a mention)."""
    for rule in rules:
        if rule.matches(triplet.pathology, triplet.lemma, triplet.anatomy):
            if triplet.pathology in _NORMAL_SET and triplet.presence == PRESENT:
                return PRESENCE_RANK[ABSENT]  # "heart size is normal": a negative mention
            if triplet.pathology in _NORMAL_SET:
                return None  # "not clear" / "not normal" says nothing specific
            return PRESENCE_RANK[triplet.presence]
    return None


def _best_ranks(
    triplets: Iterable[Triplet], rules: dict[str, tuple[ClassRule, ...]]
) -> dict[str, int | None]:
    best: dict[str, int | None] = dict.fromkeys(rules)
    for t in triplets:
        if t.presence not in PRESENCE_RANK:
            raise ValueError(f"bad presence {t.presence!r} in triplet {t!r}")
        for cls, class_rules in rules.items():
            rank = _presence_rank(t, class_rules)
            if rank is not None and (best[cls] is None or rank > best[cls]):
                best[cls] = rank
    return best


def chexpert_from_triplets(triplets: Iterable[Triplet]) -> dict[str, float]:
    """CheXpert labels of one report: class → 1.0 / 0.0 / -1.0 / NaN, all 14 classes in order."""
    triplets = list(triplets)
    best = _best_ranks(triplets, CHEXPERT_RULES)
    out = {
        cls: (math.nan if best.get(cls) is None else _CHEXPERT_VALUE[best[cls]])
        for cls in CHEXPERT_CLASSES
        if cls != "No Finding"
    }
    finding = any(v in (1.0, -1.0) for cls, v in out.items() if cls != "Support Devices")
    return {"No Finding": math.nan if finding or not triplets else 1.0, **out}


def chestxray14_from_triplets(triplets: Iterable[Triplet]) -> dict[str, int]:
    """ChestX-ray14 labels of one report: class → 1 if some mention is present, else 0."""
    best = _best_ranks(triplets, CHESTXRAY14_RULES)
    return {cls: int(best[cls] == PRESENCE_RANK[PRESENT]) for cls in CHESTXRAY14_CLASSES}


def class_entities(rules: dict[str, tuple[ClassRule, ...]]) -> dict[str, tuple[str, ...]]:
    """Class -> the finding entities its positive rules name (rules that name a normal entity
    are negative mentions and left out, as are lemmas that are not entities), for scoring a
    class from image-level entity probabilities; classes with none (CheXpert's derived
    ``No Finding``) are left out."""
    out = {}
    for cls, class_rules in rules.items():
        positive = [rule for rule in class_rules if not rule.entities & _NORMAL_SET]
        names = {e for rule in positive for e in rule.entities}
        entities = tuple(sorted(e for e in names if e in ENTITY_INDEX))
        if entities:
            out[cls] = entities
    return out
