"""The label vocabulary of MeDSLIP: 75 pathology entities and 51 anatomy landmarks.

Order is the query order of the official code (the official
`PreTrain_MeDSLIP/data_file/preprocessing/adj_matrix.py`); every label matrix in this project is
indexed ``[landmark, entity]`` with these lists."""

from __future__ import annotations

ENTITIES: tuple[str, ...] = (
    "normal",
    "clear",
    "sharp",
    "sharply",
    "unremarkable",
    "intact",
    "stable",
    "free",
    "effusion",
    "opacity",
    "pneumothorax",
    "edema",
    "atelectasis",
    "tube",
    "consolidation",
    "process",
    "abnormality",
    "enlarge",
    "tip",
    "low",
    "pneumonia",
    "line",
    "congestion",
    "catheter",
    "cardiomegaly",
    "fracture",
    "air",
    "tortuous",
    "lead",
    "disease",
    "calcification",
    "prominence",
    "device",
    "engorgement",
    "picc",
    "clip",
    "elevation",
    "expand",
    "nodule",
    "wire",
    "fluid",
    "degenerative",
    "pacemaker",
    "thicken",
    "marking",
    "scar",
    "hyperinflate",
    "blunt",
    "loss",
    "widen",
    "collapse",
    "density",
    "emphysema",
    "aerate",
    "mass",
    "crowd",
    "infiltrate",
    "obscure",
    "deformity",
    "hernia",
    "drainage",
    "distention",
    "shift",
    "stent",
    "pressure",
    "lesion",
    "finding",
    "borderline",
    "hardware",
    "dilation",
    "chf",
    "redistribution",
    "aspiration",
    "tail_abnorm_obs",
    "excluded_obs",
)
"""The 75 pathology/observation entities; indices 0–7 are the normal observations."""

NORMAL_ENTITIES: tuple[str, ...] = ENTITIES[:8]

LANDMARKS: tuple[str, ...] = (
    "trachea",
    "left_hilar",
    "right_hilar",
    "hilar_unspec",
    "left_pleural",
    "right_pleural",
    "pleural_unspec",
    "heart_size",
    "heart_border",
    "left_diaphragm",
    "right_diaphragm",
    "diaphragm_unspec",
    "retrocardiac",
    "lower_left_lobe",
    "upper_left_lobe",
    "lower_right_lobe",
    "middle_right_lobe",
    "upper_right_lobe",
    "left_lower_lung",
    "left_mid_lung",
    "left_upper_lung",
    "left_apical_lung",
    "left_lung_unspec",
    "right_lower_lung",
    "right_mid_lung",
    "right_upper_lung",
    "right_apical_lung",
    "right_lung_unspec",
    "lung_apices",
    "lung_bases",
    "left_costophrenic",
    "right_costophrenic",
    "costophrenic_unspec",
    "cardiophrenic_sulcus",
    "mediastinal",
    "spine",
    "clavicle",
    "rib",
    "stomach",
    "right_atrium",
    "right_ventricle",
    "aorta",
    "svc",
    "interstitium",
    "parenchymal",
    "cavoatrial_junction",
    "cardiopulmonary",
    "pulmonary",
    "lung_volumes",
    "unspecified",
    "other",
)
"""The 51 anatomy landmarks; ``unspecified`` and ``other`` are the fallbacks."""

ENTITY_INDEX: dict[str, int] = {name: i for i, name in enumerate(ENTITIES)}
LANDMARK_INDEX: dict[str, int] = {name: i for i, name in enumerate(LANDMARKS)}

UNSEEN_CLASSES: tuple[str, ...] = (
    "pneumonia",
    "infiltrate",
    "mass",
    "nodule",
    "emphysema",
    "fibrosis",
    "thicken",
    "hernia",
)
"""The official ``exclude_class`` list (MedKLIP's "unseen" ChestX-ray14 protocol, kept by the
official `PreTrain_MeDSLIP/train_MeDSLIP.py`): entities left out of the pathology existence and
contrastive terms so that zero-shot on them tests diseases never supervised. ``fibrosis`` is
not one of the 75 entities (ChestX-ray14's Fibrosis maps to ``tail_abnorm_obs``), so, as in the
official code, it removes nothing: :data:`UNSEEN_ENTITY_INDICES` has 7 entries."""
UNSEEN_ENTITY_INDICES: tuple[int, ...] = tuple(
    ENTITY_INDEX[name] for name in UNSEEN_CLASSES if name in ENTITY_INDEX
)


def _mirror(name: str) -> str:
    swapped = name.replace("left", "\0").replace("right", "left").replace("\0", "right")
    return swapped if swapped in LANDMARK_INDEX else name


LATERAL_SWAP: tuple[int, ...] = tuple(LANDMARK_INDEX[_mirror(name)] for name in LANDMARKS)
"""Landmark permutation of a horizontally flipped image: each ``left_*``/``right_*`` landmark
goes to its mirror (``lower_left_lobe`` ↔ ``lower_right_lobe``, ...); landmarks without a mirror
(``middle_right_lobe``, ``right_atrium``, ``right_ventricle``, midline ones) stay."""

CHESTXRAY14_CLASSES: tuple[str, ...] = (
    "Atelectasis",
    "Cardiomegaly",
    "Effusion",
    "Infiltration",
    "Mass",
    "Nodule",
    "Pneumonia",
    "Pneumothorax",
    "Consolidation",
    "Edema",
    "Emphysema",
    "Fibrosis",
    "Pleural_Thickening",
    "Hernia",
)
"""NIH ChestX-ray14 class names, spelled as in ``Data_Entry_2017_v2020.csv``."""

CHEXPERT_CLASSES: tuple[str, ...] = (
    "No Finding",
    "Enlarged Cardiomediastinum",
    "Cardiomegaly",
    "Lung Opacity",
    "Lung Lesion",
    "Edema",
    "Consolidation",
    "Pneumonia",
    "Atelectasis",
    "Pneumothorax",
    "Pleural Effusion",
    "Pleural Other",
    "Fracture",
    "Support Devices",
)
"""CheXpert / MIMIC-CXR-JPG ``-chexpert.csv`` label columns, in the official order."""

PRESENCES: tuple[str, ...] = ("present", "absent", "uncertain")
"""The presence of a (pathology, anatomy, presence) triplet (the one place they are spelled)."""
PRESENT, ABSENT, UNCERTAIN = PRESENCES

DEVICE_LEMMAS: frozenset[str] = frozenset(
    [
        "tube",
        "line",
        "catheter",
        "picc",
        "pacemaker",
        "lead",
        "wire",
        "device",
        "clip",
        "stent",
        "hardware",
        "drainage",
        "tip",
    ]
)
"""Lemmas of support devices (a device is located where its tip lies; CheXpert's class)."""

assert len(ENTITIES) == 75 and len(LANDMARKS) == 51
