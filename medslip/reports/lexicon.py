"""Observation lexicon: surface phrases → lemma → one of the 75 entities (the official
`PreTrain_MeDSLIP/data_file/preprocessing/` scripts).

Three layers, all data:

* ``SURFACE_LEMMAS``: lower-case surface phrases (what the matcher looks for) → the lemma spaCy's
  lemmatiser would give (``effusions`` → ``effusion``, ``enlarged`` → ``enlarge``); synonyms of the
  task ("infectious process", "enlarged cardiac silhouette") map straight to their target lemma;
* ``LEMMA_NORMALISATION``: the official preprocessing's manual lemma table (``opacification`` →
  ``opacity``);
* grouping (``entity_for_lemma``): a lemma that is one of the 73 named entities keeps its name,
  an ``EXCLUDED_OBS`` lemma becomes ``excluded_obs``, anything else ``tail_abnorm_obs``.
"""

from __future__ import annotations

from medslip.vocab import ENTITY_INDEX

LEMMA_NORMALISATION: dict[str, str] = {
    source: target
    for target, sources in {
        "enlarge": ("enlargement", "increase"),
        "engorgement": ("engorge",),
        "opacity": ("opacification", "opacity-"),
        "calcification": ("calcify",),
        "effusion": ("effusion ;",),
        "atelectasis": ("atelectatic", "atelectasis ;", "atelectase"),
        "aerate": ("aeration",),
        "distention": ("distend", "distension"),
        "widen": ("wide",),
        "prominence": ("prominent",),
        "haziness": ("haze",),
        "mass": ("masse",),
        "kyphosis": ("kyphotic",),
        "degenerative": ("degenerate",),
        "obscure": ("obscuration",),
        "fibrosis": ("fibrotic",),
        "nodule": ("nodular", "nodularity"),
        "ventilation": ("ventilate",),
        "tortuous": ("tortuosity",),
        "elongation": ("elongate",),
        "elevation": ("elevate",),
        "drainage": ("drain",),
        "deviation": ("deviate",),
        "consolidation": ("consolidative", "consolidate"),
        "dilation": ("dilate", "dilatation"),
        "pneumothorax": ("hydropneumothorax", "pneumothoraces", "pneumothorace"),
        "improve": ("improvement", "improved"),
        "difficult to assess": (
            "can not be assess",
            "can not be evaluate",
            "not well see",
            "not well assess",
            "can not be accurately assess",
            "not well evaluate",
            "not well visualize",
            "difficult to evaluate",
            "poorly see",
        ),
        "pacemaker": ("pacer",),
        "pneumonia": ("infection", "infectious", "infectious process"),
    }.items()
    for source in sources
}
"""The reference's lemma normalisation, source lemma → target lemma."""

_EXCLUDED_WORDS = (
    "none unchanged change great similar large small moderate mild median decrease bad more "
    "constant worsen new improve status position sternotomy cabg replacement postoperative "
    "assessment patient"
)
EXCLUDED_OBS: frozenset[str] = frozenset(_EXCLUDED_WORDS.split())
"""Lemmas the reference maps to ``excluded_obs``."""

# lemma -> surface forms (lower case, space-separated tokens as the tokenizer splits them).
_FORMS: dict[str, str] = {
    "normal": "normal, normally, within normal limits, wnl, negative",
    "clear": "clear",
    "sharp": "sharp",
    "sharply": "sharply",
    "unremarkable": "unremarkable",
    "intact": "intact",
    "stable": "stable, stably",
    "free": "free",
    "effusion": "effusion, effusions",
    "opacity": "opacity, opacities, opacification, opacifications, opacified",
    "pneumothorax": "pneumothorax, pneumothoraces, hydropneumothorax, pneumothoraxes",
    "edema": "edema, oedema, edematous",
    "atelectasis": "atelectasis, atelectases, atelectatic, subsegmental atelectasis",
    "tube": "tube, tubes, et tube, ng tube, og tube, tracheostomy",
    "consolidation": "consolidation, consolidations, consolidative, consolidated",
    "process": "process, processes",
    "abnormality": "abnormality, abnormalities, abnormal",
    "enlarge": "enlarge, enlarged, enlargement, enlarging, increase, increased",
    "tip": "tip, tips",
    "low": "low, lower volumes",
    "pneumonia": (
        "pneumonia, pneumonias, pneumonic, infection, infections, infectious, infectious process,"
        " bronchopneumonia, pneumonitis"
    ),
    "line": "line, lines",
    "congestion": "congestion, congested, congestive",
    "catheter": "catheter, catheters",
    "cardiomegaly": (
        "cardiomegaly, enlarged cardiac silhouette, enlarged heart, cardiac enlargement,"
        " enlarged cardiac shadow"
    ),
    "fracture": "fracture, fractures, fractured",
    "air": "air",
    "tortuous": "tortuous, tortuosity",
    "lead": "lead, leads",
    "disease": "disease, diseases",
    "calcification": "calcification, calcifications, calcified, calcific",
    "prominence": "prominence, prominent",
    "device": "device, devices",
    "engorgement": "engorgement, engorged",
    "picc": "picc",
    "clip": "clip, clips",
    "elevation": "elevation, elevated",
    "expand": "expand, expanded, expansion",
    "nodule": "nodule, nodules",
    "nodular": "nodular, nodularity",  # → nodule by the reference normalisation
    "wire": "wire, wires",
    "fluid": "fluid",
    "degenerative": "degenerative, degeneration, degenerated",
    "pacemaker": "pacemaker, pacemakers, pacer",
    "thicken": "thickening, thickened, thicken",
    "marking": "marking, markings",
    "scar": "scar, scars, scarring",
    "hyperinflate": (
        "hyperinflated, hyperinflation, hyperexpanded, hyperexpansion, hyperaerated,"
        " hyperlucent, overinflated"
    ),
    "blunt": "blunting, blunted, blunt",
    "loss": "loss",
    "widen": "widening, widened, wide",
    "collapse": "collapse, collapsed",
    "density": "density, densities",
    "emphysema": "emphysema, emphysematous",
    "aerate": "aerated, aeration",
    "mass": "mass, masses, masslike, mass-like",
    "crowd": "crowding, crowded",
    "infiltrate": "infiltrate, infiltrates, infiltration, infiltrative",
    "obscure": "obscured, obscuring, obscuration, obscures",
    "deformity": "deformity, deformities",
    "hernia": "hernia, hernias, herniation",
    "drainage": "drain, drains, drainage",
    "distention": "distention, distension, distended",
    "shift": "shift",
    "stent": "stent, stents",
    "pressure": "pressure, pressures",
    "lesion": "lesion, lesions",
    "finding": "finding, findings",
    "borderline": "borderline",
    "hardware": "hardware",
    "dilation": "dilation, dilated, dilatation",
    "chf": "chf, heart failure, congestive heart failure",
    "redistribution": "redistribution, cephalization",
    "aspiration": "aspiration",
    # tail lemmas (→ tail_abnorm_obs) that label sets need or that block wrong anatomy links
    "fibrosis": "fibrosis, fibrotic, fibrous",
    "granuloma": (
        "granuloma, granulomas, granulomatous, granulomatous infection, granulomatous process,"
        " granulomatous disease"
    ),
    "haziness": "haziness, hazy, haze",
    "airspace disease": "airspace disease",
    "kyphosis": "kyphosis, kyphotic",
    "scoliosis": "scoliosis",
    "osteophyte": "osteophyte, osteophytes",
    "spondylosis": "spondylosis",
    "adenopathy": "adenopathy, lymphadenopathy",
    "cyst": "cyst, cysts",
    "cavitation": "cavitation, cavitary",
    "bronchiectasis": "bronchiectasis",
    "hyperlucency": "hyperlucency",
    "flattening": "flattening, flattened",
    "tumor": "tumor, tumors, neoplasm, carcinoma",
    "difficult to assess": "not well seen, poorly seen, difficult to evaluate, not well visualized",
    # EXCLUDED_OBS lemmas (→ excluded_obs)
    "unchanged": "unchanged",
    "change": "change, changes",
    "similar": "similar",
    "large": "large, larger",
    "small": "small, smaller",
    "moderate": "moderate",
    "mild": "mild",
    "decrease": "decrease, decreased",
    "worsen": "worsen, worsened, worsening, worse",
    "new": "new",
    "improve": "improve, improved, improvement, improving",
    "sternotomy": "sternotomy",
    "cabg": "cabg",
    "postoperative": "postoperative, postsurgical",
}

SURFACE_LEMMAS: dict[str, str] = {
    form.strip(): lemma for lemma, forms in _FORMS.items() for form in forms.split(",")
}
"""Lower-case surface phrase → lemma (before the official preprocessing's normalisation)."""


def normalise_lemma(lemma: str) -> str:
    """Apply the official preprocessing's manual lemma normalisation."""
    return LEMMA_NORMALISATION.get(lemma, lemma)


def entity_for_lemma(lemma: str) -> str:
    """Entity of a (normalised) lemma: its own name, ``excluded_obs`` or ``tail_abnorm_obs``."""
    lemma = normalise_lemma(lemma)
    if lemma in ENTITY_INDEX and lemma not in ("tail_abnorm_obs", "excluded_obs"):
        return lemma
    if lemma in EXCLUDED_OBS:
        return "excluded_obs"
    return "tail_abnorm_obs"
