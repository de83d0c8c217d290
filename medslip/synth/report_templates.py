"""SynthCXR report templates: every sentence the report writer (:mod:`medslip.synth.report_text`)
can use, declared *with its triplets next to it* (data, not code paths), so the ground truth can be
audited by reading these tables. The conventions they follow are in the writer's docstring.

A triplet spec is the string ``"entity landmark presence"``, where the landmark ``@`` means the
finding's landmark (or a landmark pattern such as ``{side}_costophrenic``) and the presence ``~``
means the finding's own presence (``present``, or ``uncertain`` when the finding is hedged).
"""

from __future__ import annotations

from dataclasses import dataclass

from medslip.synth.spec import FINDING_KINDS, side_of


@dataclass(frozen=True)
class Template:
    """One sentence pattern and the triplets it states (``"entity landmark presence"`` specs)."""

    text: str
    triplets: tuple[str, ...]


def _t(text: str, *triplets: str) -> Template:
    return Template(text, triplets)


# Anatomy phrases per landmark: (adjectival forms, prepositional forms). Each maps to its landmark
# by the reference's token rules (checked in the tests).
LOCATIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "left_pleural": (("left pleural",), ("in the left pleural space",)),
    "right_pleural": (("right pleural",), ("in the right pleural space",)),
    "lower_left_lobe": (("left lower lobe",), ("in the left lower lobe",)),
    "upper_left_lobe": (("left upper lobe",), ("in the left upper lobe",)),
    "lower_right_lobe": (("right lower lobe",), ("in the right lower lobe",)),
    "middle_right_lobe": (("right middle lobe",), ("in the right middle lobe",)),
    "upper_right_lobe": (("right upper lobe",), ("in the right upper lobe",)),
    "retrocardiac": (("retrocardiac",), ("in the retrocardiac region",)),
    "left_lower_lung": (
        ("left basilar", "left base", "left lower lung"),
        ("at the left base", "at the left lung base", "in the left lower lung"),
    ),
    "right_lower_lung": (
        ("right basilar", "right base", "right lower lung"),
        ("at the right base", "at the right lung base", "in the right lower lung"),
    ),
    "lung_bases": (("bibasilar", "bibasal"), ("at the lung bases", "at both lung bases")),
    "left_apical_lung": (("left apical",), ("at the left apex", "at the left lung apex")),
    "right_apical_lung": (("right apical",), ("at the right apex", "at the right lung apex")),
    "left_lung_unspec": (("left",), ("on the left", "in the left hemithorax")),
    "right_lung_unspec": (("right",), ("on the right", "in the right hemithorax")),
    "left_upper_lung": (("left upper lung",), ("in the left upper lung",)),
    "right_upper_lung": (("right upper lung",), ("in the right upper lung",)),
    "left_mid_lung": (("left mid lung",), ("in the left mid lung", "in the left midlung")),
    "right_mid_lung": (("right mid lung",), ("in the right mid lung",)),
    "left_hilar": (("left hilar", "left perihilar"), ("at the left hilum", "in the left hilum")),
    "right_hilar": (
        ("right hilar", "right perihilar"),
        ("at the right hilum", "in the right hilum"),
    ),
    "hilar_unspec": (("perihilar", "bilateral perihilar"), ("in the perihilar regions",)),
    "pulmonary": (("pulmonary",), ()),
    "interstitium": (("interstitial",), ()),
    "svc": (("SVC",), ("in the SVC", "in the mid SVC", "in the lower SVC")),
    "cavoatrial_junction": (("cavoatrial junction",), ("at the cavoatrial junction",)),
    "trachea": (("tracheal",), ("in the trachea", "in the mid trachea")),
}
"""Landmark → (adjectival phrases, prepositional phrases) naming it."""

_SIZE = ("small", "moderate", "large")
DEGREE_WORDS = ("mild", "moderate", "severe")
_EXTENT = ("patchy", "moderate", "extensive")
SEVERITY_WORDS: dict[str, tuple[str, str, str]] = {
    "effusion": _SIZE,
    "pneumothorax": _SIZE,
    "consolidation": _EXTENT,
    "pneumonia": _EXTENT,
    "atelectasis": DEGREE_WORDS,
    "cardiomegaly": DEGREE_WORDS,
    "edema": DEGREE_WORDS,
    "emphysema": DEGREE_WORDS,
    "rib_fracture": ("nondisplaced", "minimally displaced", "displaced"),
}
"""Kind → words for severity in (0, 0.45], (0.45, 0.75], (0.75, 1]."""

ADVERBS = {"mild": "mildly", "moderate": "moderately", "severe": "severely"}

# Definite (present) and hedged (uncertain) sentences per finding kind. Slots: {sev} severity word,
# {adv} its adverb, {adj}/{pp} adjectival/prepositional anatomy phrase of the landmark, {side}
# left/right, {n} a size or distance, {chg} a comparison word ("" without a prior study).
DEFINITE: dict[str, tuple[Template, ...]] = {
    "effusion": (
        _t("There is a {chg}{sev} {side} pleural effusion.", "effusion @ ~"),
        _t("{chg}{sev} {side} pleural effusion.", "effusion @ ~"),
        _t("A {chg}{sev} {side} pleural effusion is present.", "effusion @ ~"),
        _t(
            "{chg}{sev} {side} pleural effusion with blunting of the {side} costophrenic angle.",
            "effusion @ ~",
            "blunt {side}_costophrenic present",
        ),
        _t("A {sev} amount of {side} pleural fluid is seen.", "fluid @ ~"),
    ),
    "pneumothorax": (
        _t("There is a {chg}{sev} {adj} pneumothorax.", "pneumothorax @ ~"),
        _t("{chg}{sev} {adj} pneumothorax.", "pneumothorax @ ~"),
        _t("A {chg}{sev} pneumothorax is seen {pp}.", "pneumothorax @ ~"),
        _t("{chg}{sev} pneumothorax {pp}.", "pneumothorax @ ~"),
    ),
    "consolidation": (
        _t("There is {chg}{sev} consolidation {pp}.", "consolidation @ ~"),
        _t("{chg}{sev} {adj} consolidation.", "consolidation @ ~"),
        _t("{sev} consolidation is present {pp}.", "consolidation @ ~"),
        _t(
            "{chg}{sev} opacity {pp} consistent with consolidation.",
            "opacity @ present",
            "consolidation @ ~",
        ),
    ),
    "pneumonia": (
        _t(
            "{chg}{sev} {adj} opacity consistent with pneumonia.",
            "opacity @ present",
            "pneumonia @ ~",
        ),
        _t("{chg}{sev} {adj} pneumonia.", "pneumonia @ ~"),
        _t(
            "{sev} consolidation {pp} compatible with pneumonia.",
            "consolidation @ present",
            "pneumonia @ ~",
        ),
        _t("There is {chg}{sev} pneumonia {pp}.", "pneumonia @ ~"),
    ),
    "atelectasis": (
        _t("{chg}{sev} {adj} atelectasis.", "atelectasis @ ~"),
        _t("There is {chg}{sev} atelectasis {pp}.", "atelectasis @ ~"),
        _t("{sev} atelectasis is seen {pp}.", "atelectasis @ ~"),
        _t(
            "{chg}{sev} {adj} opacity consistent with atelectasis.",
            "opacity @ present",
            "atelectasis @ ~",
        ),
    ),
    "cardiomegaly": (
        _t("{chg}{sev} cardiomegaly.", "cardiomegaly unspecified ~"),
        _t("The heart is {adv} enlarged.", "enlarge heart_size ~"),
        _t("Heart size is {adv} enlarged.", "enlarge heart_size ~"),
        _t("{sev} enlargement of the cardiac silhouette.", "enlarge heart_size ~"),
        _t("The cardiac silhouette is {adv} enlarged.", "enlarge heart_size ~"),
        _t("There is {chg}{sev} cardiomegaly.", "cardiomegaly unspecified ~"),
        _t(
            "Enlarged cardiac silhouette, consistent with {sev} cardiomegaly.",
            "enlarge heart_size ~",
            "cardiomegaly heart_size ~",
        ),
    ),
    "edema": (
        _t("{chg}{sev} {adj} edema.", "edema @ ~"),
        _t("There is {chg}{sev} {adj} edema.", "edema @ ~"),
        _t("{sev} {adj} edema is present.", "edema @ ~"),
        _t(
            "Pulmonary vascular congestion with {chg}{sev} {adj} edema.",
            "congestion pulmonary present",
            "edema @ ~",
        ),
    ),
    "nodule": (
        _t("{chg}{n} mm nodule {pp}.", "nodule @ ~"),
        _t("There is a {chg}{n} mm {adj} nodule.", "nodule @ ~"),
        _t("A {n} mm nodule is seen {pp}.", "nodule @ ~"),
        _t("{adj} nodule measuring {n} mm.", "nodule @ ~"),
        _t("Well-circumscribed {n} mm nodule {pp}.", "nodule @ ~"),
    ),
    "mass": (
        _t("{chg}{n} cm {adj} mass.", "mass @ ~"),
        _t("There is a {chg}{n} cm mass {pp}.", "mass @ ~"),
        _t("A {n} cm mass is seen {pp}.", "mass @ ~"),
        _t("{adj} mass measuring {n} cm.", "mass @ ~"),
    ),
    "emphysema": (
        _t("{chg}{sev} emphysema.", "emphysema unspecified ~"),
        _t("{sev} emphysema is seen in both lungs.", "emphysema lung_volumes ~"),
        _t(
            "Hyperinflated lungs consistent with {sev} emphysema.",
            "hyperinflate lung_volumes present",
            "emphysema lung_volumes ~",
        ),
        _t("There is {sev} emphysema.", "emphysema unspecified ~"),
    ),
    "rib_fracture": (
        _t("{chg}{sev} posterior rib fracture.", "fracture @ ~"),
        _t("There is a {chg}{sev} fracture of a posterior rib.", "fracture @ ~"),
        _t("A {sev} fracture of a posterior rib is seen.", "fracture @ ~"),
        _t("{sev} fracture of one of the posterior ribs.", "fracture @ ~"),
    ),
    "endotracheal_tube": (
        _t("Endotracheal tube terminates {pp}, {n} cm above the carina.", "tube @ ~"),
        _t(
            "The endotracheal tube tip is {pp}, approximately {n} cm above the carina.",
            "tube @ ~",
            "tip @ ~",
        ),
        _t("ET tube tip {pp}.", "tube @ ~", "tip @ ~"),
        _t("An endotracheal tube is in place with its tip {pp}.", "tube @ ~", "tip @ ~"),
    ),
    "chest_tube": (
        _t("{side} chest tube is in place {pp}.", "tube @ ~"),
        _t("A {side} pleural tube is present.", "tube @ ~"),
        _t("{side} pigtail catheter {pp}.", "catheter @ ~"),
        _t("{chg}{side} pleural drain is in place.", "drainage @ ~"),
    ),
    "central_line": (
        _t("Right internal jugular central line terminates {pp}.", "line @ ~", "line other ~"),
        _t("Central venous catheter tip {pp}.", "catheter @ ~", "tip @ ~"),
        _t("Right IJ line with tip {pp}.", "line @ ~", "tip @ ~", "line other ~"),
        _t("A central line ends {pp}.", "line @ ~"),
    ),
    "picc": (
        _t("Right PICC line tip {pp}.", "picc @ ~", "line @ ~", "tip @ ~"),
        _t("PICC line terminates {pp}.", "picc @ ~", "line @ ~"),
        _t("A right-sided PICC ends {pp}.", "picc @ ~"),
        _t("PICC tip {pp}.", "picc @ ~", "tip @ ~"),
    ),
    "pacemaker": (
        _t(
            "Left-sided pacemaker with {leads}.",
            "pacemaker @ ~",
            "lead @ ~",
        ),
        _t("Pacemaker {leads}.", "pacemaker @ ~", "lead @ ~"),
        _t("Left chest wall pacemaker with {leads}.", "pacemaker other ~", "lead @ ~"),
        _t("A left pectoral pacemaker is present with {leads}.", "pacemaker other ~", "lead @ ~"),
        _t("Transvenous pacemaker {leads}.", "pacemaker @ ~", "lead @ ~"),
    ),
}
"""Kind → sentences stating the finding (``~`` is ``present`` here)."""

HEDGED: dict[str, tuple[Template, ...]] = {
    "effusion": (
        _t("Possible {sev} {side} pleural effusion.", "effusion @ ~"),
        _t("A {sev} {side} pleural effusion cannot be excluded.", "effusion @ ~"),
        _t("There may be a {sev} {side} pleural effusion.", "effusion @ ~"),
        _t("Probable {sev} {side} pleural effusion.", "effusion @ ~"),
        _t(
            "Blunting of the {side} costophrenic angle, likely a {sev} {side} pleural effusion.",
            "blunt {side}_costophrenic present",
            "effusion @ ~",
        ),
    ),
    "pneumothorax": (
        _t("Possible {sev} {adj} pneumothorax.", "pneumothorax @ ~"),
        _t("A {sev} pneumothorax {pp} cannot be excluded.", "pneumothorax @ ~"),
        _t("Questionable {sev} {adj} pneumothorax.", "pneumothorax @ ~"),
        _t("There may be a {sev} pneumothorax {pp}.", "pneumothorax @ ~"),
    ),
    "consolidation": (
        _t(
            "{sev} opacity {pp} may represent consolidation.",
            "opacity @ present",
            "consolidation @ ~",
        ),
        _t("Possible {sev} {adj} consolidation.", "consolidation @ ~"),
        _t("{sev} consolidation {pp} cannot be excluded.", "consolidation @ ~"),
        _t(
            "{sev} {adj} opacity, possibly consolidation.", "opacity @ present", "consolidation @ ~"
        ),
    ),
    "pneumonia": (
        _t("{sev} opacity {pp} may represent pneumonia.", "opacity @ present", "pneumonia @ ~"),
        _t("{sev} {adj} opacity, concerning for pneumonia.", "opacity @ present", "pneumonia @ ~"),
        _t("Pneumonia {pp} cannot be excluded.", "pneumonia @ ~"),
        _t("Possible {sev} {adj} pneumonia.", "pneumonia @ ~"),
        _t(
            "{sev} {adj} opacity could reflect pneumonia in the appropriate clinical setting.",
            "opacity @ present",
            "pneumonia @ ~",
        ),
    ),
    "atelectasis": (
        _t("{sev} {adj} opacity, likely atelectasis.", "opacity @ present", "atelectasis @ ~"),
        _t("{sev} opacity {pp} may represent atelectasis.", "opacity @ present", "atelectasis @ ~"),
        _t("Possible {sev} {adj} atelectasis.", "atelectasis @ ~"),
        _t("{sev} atelectasis {pp} cannot be excluded.", "atelectasis @ ~"),
    ),
    "cardiomegaly": (
        _t("Possible {sev} cardiomegaly.", "cardiomegaly unspecified ~"),
        _t("The heart may be {adv} enlarged.", "enlarge heart_size ~"),
        _t("Heart size is likely {adv} enlarged.", "enlarge heart_size ~"),
        _t("{sev} cardiomegaly cannot be excluded.", "cardiomegaly unspecified ~"),
        _t(
            "Possible {sev} enlargement of the cardiac silhouette, which may reflect cardiomegaly.",
            "enlarge heart_size ~",
            "cardiomegaly heart_size ~",
        ),
    ),
    "edema": (
        _t("Possible {sev} {adj} edema.", "edema @ ~"),
        _t("{sev} {adj} edema cannot be excluded.", "edema @ ~"),
        _t("There may be {sev} {adj} edema.", "edema @ ~"),
        _t("Probable {sev} {adj} edema.", "edema @ ~"),
    ),
    "nodule": (
        _t("Possible {n} mm nodule {pp}.", "nodule @ ~"),
        _t("A {n} mm opacity {pp} may represent a nodule.", "opacity @ present", "nodule @ ~"),
        _t("Questionable {n} mm nodule {pp}.", "nodule @ ~"),
        _t("A {n} mm {adj} nodule cannot be excluded.", "nodule @ ~"),
    ),
    "mass": (
        _t("Possible {n} cm mass {pp}.", "mass @ ~"),
        _t("A {n} cm {adj} mass cannot be excluded.", "mass @ ~"),
        _t("{adj} opacity, concerning for a mass.", "opacity @ present", "mass @ ~"),
        _t("A {n} cm opacity {pp} may represent a mass.", "opacity @ present", "mass @ ~"),
    ),
    "emphysema": (
        _t("Possible {sev} emphysema.", "emphysema unspecified ~"),
        _t("Possible {sev} emphysema in both lungs.", "emphysema lung_volumes ~"),
        _t("{sev} emphysema cannot be excluded.", "emphysema unspecified ~"),
        _t("Probable {sev} emphysema.", "emphysema unspecified ~"),
    ),
    "rib_fracture": (
        _t("Possible {sev} posterior rib fracture.", "fracture @ ~"),
        _t("A {sev} fracture of a posterior rib cannot be excluded.", "fracture @ ~"),
        _t("Questionable {sev} posterior rib fracture.", "fracture @ ~"),
        _t("There may be a {sev} fracture of a posterior rib.", "fracture @ ~"),
    ),
}
"""Kind → sentences hedging the finding (``~`` is ``uncertain`` here). Devices are never hedged."""

KIND_ANCHORS: dict[str, frozenset[str]] = {
    "effusion": frozenset({"effusion", "fluid"}),
    "cardiomegaly": frozenset({"cardiomegaly", "enlarge"}),
    "chest_tube": frozenset({"tube", "catheter", "drainage"}),
    "central_line": frozenset({"line", "catheter"}),
    "pacemaker": frozenset({"pacemaker", "lead"}),
}
"""Kind → entities that mention it (default: the kind's own entity)."""


def anchor_entities(kind: str) -> frozenset[str]:
    """Entities whose triplet mentions a finding of ``kind``."""
    return KIND_ANCHORS.get(kind, frozenset({FINDING_KINDS[kind].entity}))


@dataclass(frozen=True)
class Statement:
    """A normal or stated-absent sentence, allowed only when no finding in ``forbid`` is shown.

    ``forbid`` entries are finding kinds, or ``kind@landmark`` for one landmark only; ``needs``
    are kinds the study must show somewhere ("no right pleural effusion" beside a left one).
    """

    template: Template
    forbid: frozenset[str]
    needs: frozenset[str] = frozenset()


def _s(text: str, triplets: tuple[str, ...], forbid: str, needs: str = "") -> Statement:
    return Statement(Template(text, triplets), frozenset(forbid.split()), frozenset(needs.split()))


_LUNG_KINDS = "consolidation pneumonia atelectasis edema nodule mass emphysema pneumothorax"
_OPACITY_KINDS = "consolidation pneumonia atelectasis nodule mass"
_LEFT_BASE = ("retrocardiac", "lower_left_lobe", "left_lower_lung", "lung_bases")
_RETROCARDIAC_KINDS = " ".join(f"{k}@{lm}" for k in _OPACITY_KINDS.split() for lm in _LEFT_BASE)
_HILA = "mass@left_hilar mass@right_hilar edema@hilar_unspec"


def _region(text: str, triplet: str, *region: str) -> Statement:
    """A sentence stating a lung region free of disease (``triplet``: ``"entity landmark
    absent"``), allowed only when nothing is drawn over the region: no lung finding at any
    landmark of ``region``, no pneumothorax of the stated landmark's whole hemithorax (of either
    one for a bilateral landmark such as ``lung_bases``), no diffuse disease (edema, emphysema),
    and no finding of the stated entity on the same side (anywhere, for a
    bilateral landmark) — so the region's landmark is negative only where the image is clear."""
    entity, landmark, _ = triplet.split()
    side = side_of(landmark)
    forbid = {"edema", "emphysema"}
    for hemithorax in {-1: ("right",), 0: ("right", "left"), 1: ("left",)}[side]:
        forbid.add(f"pneumothorax@{hemithorax}_lung_unspec")
    for name, kind in FINDING_KINDS.items():
        for lm in kind.landmarks:
            same_entity = entity in anchor_entities(name) and side in (0, side_of(lm))
            if not kind.device and (lm in region or same_entity):
                forbid.add(f"{name}@{lm}")
    return Statement(Template(text, (triplet,)), frozenset(forbid))


_RIGHT_BASE = ("lower_right_lobe", "right_lower_lung", "lung_bases")
_RIGHT_MID = ("middle_right_lobe", "right_mid_lung")
_RIGHT_UPPER = ("upper_right_lobe", "right_upper_lung", "right_apical_lung")
_LEFT_MID = ("left_mid_lung",)
_LEFT_UPPER = ("upper_left_lobe", "left_upper_lung", "left_apical_lung")
_RIGHT_LUNG = (*_RIGHT_BASE, *_RIGHT_MID, *_RIGHT_UPPER, "right_hilar", "right_lung_unspec")
_LEFT_LUNG = (*_LEFT_BASE, *_LEFT_MID, *_LEFT_UPPER, "left_hilar", "left_lung_unspec")

# Normal and stated-absent sentences by system, in the order a report walks through the chest.
NORMAL: dict[str, tuple[Statement, ...]] = {
    "lungs": (
        _s("The lungs are clear.", ("clear lung_volumes present",), _LUNG_KINDS),
        _s("The lungs are well aerated.", ("aerate lung_volumes present",), _LUNG_KINDS),
        _s(
            "Lungs are well expanded and clear.",
            ("expand lung_volumes present", "clear lung_volumes present"),
            _LUNG_KINDS,
        ),
        _s(
            "There is no focal consolidation.",
            ("consolidation unspecified absent",),
            _OPACITY_KINDS,
        ),
        _s(
            "No focal consolidation is seen.", ("consolidation unspecified absent",), _OPACITY_KINDS
        ),
        _s(
            "There is no focal opacity or consolidation.",
            ("opacity unspecified absent", "consolidation unspecified absent"),
            _OPACITY_KINDS,
        ),
        _s(
            "No focal consolidation or atelectasis.",
            ("consolidation unspecified absent", "atelectasis unspecified absent"),
            _OPACITY_KINDS,
        ),
        _s("No atelectasis.", ("atelectasis unspecified absent",), "atelectasis"),
        _s("No retrocardiac opacity.", ("opacity retrocardiac absent",), _RETROCARDIAC_KINDS),
        _s(
            "No evidence of pneumonia.",
            ("pneumonia unspecified absent",),
            "pneumonia consolidation",
        ),
        _s("There is no pulmonary edema.", ("edema pulmonary absent",), "edema"),
        _s("No evidence of pulmonary edema.", ("edema pulmonary absent",), "edema"),
        _s("Pulmonary vascularity is normal.", ("normal pulmonary present",), "edema"),
        _s("No pulmonary vascular congestion.", ("congestion pulmonary absent",), "edema"),
        _s("No suspicious pulmonary nodules.", ("nodule pulmonary absent",), "nodule mass"),
        _s(
            "No suspicious nodules or masses.",
            ("nodule unspecified absent", "mass unspecified absent"),
            "nodule mass",
        ),
        _s("No pulmonary mass.", ("mass pulmonary absent",), "mass"),
        _s("Lung volumes are normal.", ("normal lung_volumes present",), "emphysema"),
        _s("The lungs are not hyperinflated.", ("hyperinflate lung_volumes absent",), "emphysema"),
        _s("No evidence of emphysema.", ("emphysema unspecified absent",), "emphysema"),
    ),
    "regions": (  # a lung region stated free of disease: its landmark is negative
        _region(
            "No right lower lobe consolidation.",
            "consolidation lower_right_lobe absent",
            *_RIGHT_BASE,
        ),
        _region("No right basilar opacity.", "opacity right_lower_lung absent", *_RIGHT_BASE),
        _region(
            "No left lower lobe consolidation.", "consolidation lower_left_lobe absent", *_LEFT_BASE
        ),
        _region("No left basilar opacity.", "opacity left_lower_lung absent", *_LEFT_BASE),
        _region(
            "No bibasilar atelectasis.", "atelectasis lung_bases absent", *_RIGHT_BASE, *_LEFT_BASE
        ),
        _region(
            "No right middle lobe consolidation.",
            "consolidation middle_right_lobe absent",
            *_RIGHT_MID,
        ),
        _region(
            "No nodule is seen in the right mid lung.", "nodule right_mid_lung absent", *_RIGHT_MID
        ),
        _region(
            "No nodule is seen in the left mid lung.", "nodule left_mid_lung absent", *_LEFT_MID
        ),
        _region("No right upper lobe opacity.", "opacity upper_right_lobe absent", *_RIGHT_UPPER),
        _region("No left upper lobe opacity.", "opacity upper_left_lobe absent", *_LEFT_UPPER),
        _region("No right upper lung nodule.", "nodule right_upper_lung absent", *_RIGHT_UPPER),
        _region("No left upper lung nodule.", "nodule left_upper_lung absent", *_LEFT_UPPER),
        _region(
            "No right apical pneumothorax.", "pneumothorax right_apical_lung absent", *_RIGHT_UPPER
        ),
        _region(
            "No left apical pneumothorax.", "pneumothorax left_apical_lung absent", *_LEFT_UPPER
        ),
        _region("No right pneumothorax.", "pneumothorax right_lung_unspec absent", *_RIGHT_LUNG),
        _region("No left pneumothorax.", "pneumothorax left_lung_unspec absent", *_LEFT_LUNG),
        _region("No interstitial edema.", "edema interstitium absent", "interstitium"),
        _region("No right hilar mass.", "mass right_hilar absent", "right_hilar"),
        _region("No left hilar mass.", "mass left_hilar absent", "left_hilar"),
    ),
    "pleura": (
        _s(
            "No pleural effusion or pneumothorax.",
            ("effusion pleural_unspec absent", "pneumothorax unspecified absent"),
            "effusion pneumothorax",
        ),
        _s(
            "There is no pleural effusion or pneumothorax.",
            ("effusion pleural_unspec absent", "pneumothorax unspecified absent"),
            "effusion pneumothorax",
        ),
        _s("There is no pleural effusion.", ("effusion pleural_unspec absent",), "effusion"),
        _s(
            "No focal consolidation, pleural effusion, or pneumothorax.",
            (
                "consolidation unspecified absent",
                "effusion pleural_unspec absent",
                "pneumothorax unspecified absent",
            ),
            f"{_OPACITY_KINDS} effusion pneumothorax",
        ),
        _s("No pneumothorax is seen.", ("pneumothorax unspecified absent",), "pneumothorax"),
        _s("No pneumothorax.", ("pneumothorax unspecified absent",), "pneumothorax"),
        _s("No apical pneumothorax.", ("pneumothorax lung_apices absent",), "pneumothorax"),
        _s(
            "No effusion or pneumothorax.",
            ("effusion unspecified absent", "pneumothorax unspecified absent"),
            "effusion pneumothorax",
        ),
        _s(
            "There is no evidence of pneumothorax.",
            ("pneumothorax unspecified absent",),
            "pneumothorax",
        ),
        _s(
            "The costophrenic angles are sharp.", ("sharp costophrenic_unspec present",), "effusion"
        ),
        _s(
            "No left pleural effusion.",
            ("effusion left_pleural absent",),
            "effusion@left_pleural",
            needs="effusion",
        ),
        _s(
            "No right pleural effusion.",
            ("effusion right_pleural absent",),
            "effusion@right_pleural",
            needs="effusion",
        ),
        _s(
            "The left costophrenic angle is sharp.",
            ("sharp left_costophrenic present",),
            "effusion@left_pleural",
            needs="effusion",
        ),
        _s(
            "The right costophrenic angle is sharp.",
            ("sharp right_costophrenic present",),
            "effusion@right_pleural",
            needs="effusion",
        ),
    ),
    "heart": (
        _s("Heart size is normal.", ("normal heart_size present",), "cardiomegaly"),
        _s("Normal heart size.", ("normal heart_size present",), "cardiomegaly"),
        _s("The heart is normal in size.", ("normal heart_size present",), "cardiomegaly"),
        _s("Heart size is within normal limits.", ("normal heart_size present",), "cardiomegaly"),
        _s(
            "The cardiac silhouette is within normal limits.",
            ("normal heart_size present",),
            "cardiomegaly",
        ),
        _s("The heart is not enlarged.", ("enlarge heart_size absent",), "cardiomegaly"),
        _s("Heart size is not enlarged.", ("enlarge heart_size absent",), "cardiomegaly"),
        _s("No cardiomegaly.", ("cardiomegaly unspecified absent",), "cardiomegaly"),
    ),
    "mediastinum": (
        _s(
            "The mediastinal and hilar contours are unremarkable.",
            ("unremarkable mediastinal present", "unremarkable hilar_unspec present"),
            _HILA,
        ),
        _s("Mediastinal contours are normal.", ("normal mediastinal present",), ""),
        _s(
            "The cardiomediastinal silhouette is normal.",
            ("normal mediastinal present",),
            "cardiomegaly",
        ),
        _s(
            "Cardiomediastinal and hilar contours are within normal limits.",
            ("normal mediastinal present", "normal hilar_unspec present"),
            f"cardiomegaly {_HILA}",
        ),
        _s(
            "The cardiomediastinal silhouette and pulmonary vasculature are within normal limits.",
            ("normal mediastinal present", "normal pulmonary present"),
            "cardiomegaly edema",
        ),
        _s("Normal cardiomediastinal silhouette.", ("normal mediastinal present",), "cardiomegaly"),
        _s("The hila are unremarkable.", ("unremarkable hilar_unspec present",), _HILA),
        _s("No mediastinal widening.", ("widen mediastinal absent",), ""),
        _s(  # "enlarge" also states cardiomegaly: not beside an enlarged heart
            "The hila are not enlarged.",
            ("enlarge hilar_unspec absent",),
            f"cardiomegaly {_HILA}",
        ),
    ),
    "bones": (
        _s("The osseous structures are intact.", ("intact other present",), "rib_fracture"),
        _s("No acute osseous abnormality.", ("abnormality other absent",), "rib_fracture"),
        _s("No displaced rib fractures.", ("fracture rib absent",), "rib_fracture"),
        _s(
            "Visualized osseous structures are unremarkable.",
            ("unremarkable other present",),
            "rib_fracture",
        ),
        _s("No acute fracture is seen.", ("fracture unspecified absent",), "rib_fracture"),
        _s("No acute bony abnormality.", ("abnormality other absent",), "rib_fracture"),
    ),
}
"""System → normal / stated-absent sentences and the findings that rule each out."""

OMIT_RATE: dict[str, float] = {
    "lungs": 0.12,
    "regions": 0.4,
    "pleura": 0.12,
    "heart": 0.5,
    "mediastinum": 0.3,
    "bones": 0.12,
}
"""System → probability that a report says nothing normal about it (heart size and the
mediastinum often go unmentioned, so their landmarks are not positive in every normal report;
a region stated clear is an occasional remark, which gives the lobe and zone landmarks negatives
in studies with nothing drawn there)."""

NORMAL_WITH_PRIOR: dict[str, tuple[Statement, ...]] = {
    "heart": (_s("Heart size is stable.", ("stable heart_size present",), "cardiomegaly"),),
    "mediastinum": (
        _s("The cardiomediastinal silhouette is stable.", ("stable mediastinal present",), ""),
    ),
}
"""System → extra normal sentences used only when there is a prior study."""

RESOLVED: tuple[Template, ...] = (
    _t("Previously seen {adj} opacity has resolved.", "opacity {landmark} absent"),
    _t("Interval resolution of the {adj} opacity.", "opacity {landmark} absent"),
    _t("The previously noted {adj} opacity has cleared.", "opacity {landmark} absent"),
)
"""Sentences of a study with a prior: an opacity the prior showed at ``{landmark}`` is gone."""

RESOLVED_LANDMARKS: tuple[str, ...] = (
    "upper_right_lobe",
    "middle_right_lobe",
    "lower_right_lobe",
    "upper_left_lobe",
    "lower_left_lobe",
    "right_upper_lung",
    "left_upper_lung",
    "right_mid_lung",
    "left_mid_lung",
    "right_lower_lung",
    "left_lower_lung",
)
"""Where a resolved opacity may have been (a side with no opacity finding now)."""

RESOLVED_BLOCKERS = frozenset(_OPACITY_KINDS.split())
"""Kinds whose finding on a side (on both sides when it has none) rules out a resolved opacity
there."""

RESOLVED_RATE = 0.25
"""Probability that a report with a prior says a previous opacity has resolved."""

_ALL_KINDS = " ".join(k for k in FINDING_KINDS if not FINDING_KINDS[k].device)
NORMAL_IMPRESSION: tuple[Statement, ...] = (
    _s("No acute cardiopulmonary process.", ("process cardiopulmonary absent",), _ALL_KINDS),
    _s(
        "No acute cardiopulmonary abnormality.",
        ("abnormality cardiopulmonary absent",),
        _ALL_KINDS,
    ),
    _s(
        "No radiographic evidence of acute cardiopulmonary disease.",
        ("disease cardiopulmonary absent",),
        _ALL_KINDS,
    ),
    _s("No acute intrathoracic process.", ("process other absent",), _ALL_KINDS),
)
"""Impressions of a study with no finding other than devices."""

# Sentences that state nothing (no triplets): views, comparison, recommendations, notification.
VIEWS = {
    "PA": (
        "PA and lateral views of the chest provided.",
        "PA and lateral views of the chest were obtained.",
        "Frontal and lateral views of the chest were obtained.",
    ),
    "AP": (
        "Portable AP view of the chest.",
        "Single portable frontal view of the chest was obtained.",
        "AP upright view of the chest provided.",
    ),
}
COMPARE_SENTENCES = (
    "Comparison is made to the prior study from ___.",
    "The previous radiograph from ___ was reviewed.",
)
COMPARE_PREFIXES = (
    "Compared to the prior study, ",
    "As compared to the previous radiograph, ",
    "Since the prior exam, ",
)
CHANGE_WORDS = ("unchanged ", "new ", "persistent ", "slightly worsened ", "improving ")
LESION_CHANGE_WORDS = ("unchanged ", "new ", "slightly larger ")
"""Comparison words before a finding (nodules and masses neither improve nor worsen)."""
RECOMMEND = (
    "Recommend chest CT for further evaluation.",
    "Further evaluation with CT is recommended.",
)
NOTIFY = (
    "These results were communicated to ___ by telephone at ___ on ___.",
    "The referring clinician, ___, was paged with these results at ___.",
)
INDICATIONS = (
    "___-year-old {sex} with shortness of breath.",
    "___-year-old {sex} with cough and fever.",
    "___ {sex_short} with chest pain.",
    "History: ___{sex_short} with dyspnea.",
    "___-year-old {sex} status post line placement.",
    "Preoperative evaluation.",
    "___-year-old {sex} with hypoxia, evaluate for interval change.",
)
TYPO_WORDS = frozenset(
    {
        "there",
        "again",
        "noted",
        "seen",
        "visualized",
        "present",
        "identified",
        "previous",
        "radiograph",
        "views",
        "obtained",
        "provided",
        "terminates",
        "measuring",
        "place",
    }
)
"""Words a typo may hit (never an observation, anatomy, negation or hedge word)."""

TYPO_RATE = 0.08
"""Probability that a report carries one typo."""
