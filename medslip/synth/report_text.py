"""SynthCXR report writer: a MIMIC-style radiology report for a study, with its ground truth.

:func:`write_report` turns a :class:`~medslip.synth.spec.StudySpec` into report text and the
(pathology, anatomy, presence) triplets the text states, in the vocabulary of
:mod:`medslip.vocab` and the conventions of the official preprocessing
(`PreTrain_MeDSLIP/data_file/preprocessing/`).

Every sentence comes from a template of :mod:`medslip.synth.report_templates`, declared *with its
triplets next to it* (data, not code paths), so the ground truth can be audited by reading the
tables. A triplet spec is the
string ``"entity landmark presence"``, where the landmark ``@`` means the finding's landmark (or a
landmark pattern such as ``{side}_costophrenic``) and the presence ``~`` means the finding's own
presence (``present``, or ``uncertain`` when the finding is hedged).

Annotation conventions (what a careful annotator following the reference extracts):

* An observation word gets the landmark of the anatomy phrase that locates it, by the reference's
  token rules ("right lower lobe" → ``lower_right_lobe``, "bibasilar" → ``lung_bases``, "left
  pleural" → ``left_pleural``, "lungs" → ``lung_volumes``, "osseous structures" → ``other``);
  an observation with no anatomy in its phrase gets ``unspecified`` ("no pneumothorax",
  "cardiomegaly").
* Severity, comparison and extent words ("small", "moderate", "unchanged", "new", "worsened",
  "patchy") modify an observation: they yield no triplet of their own (the reference collects
  RadGraph modifiers as ``obs_modify`` and does not use them downstream).
* Hedges ("may represent", "cannot be excluded", "possible", "likely", "concerning for") make the
  hedged observation ``uncertain``; the observation that prompts the hedge ("opacity ... may
  represent atelectasis") is ``present``.
* A diagnosis suggested by a located observation shares its location ("right lower lobe opacity
  consistent with pneumonia" → opacity and pneumonia at ``lower_right_lobe``).
* A device is located where its tip lies; each observation word of the device phrase gets that
  landmark ("PICC line tip in the SVC" → picc, line and tip at ``svc``; "pacemaker leads in the
  right atrium and right ventricle" → pacemaker and lead at both). Laterality of the device
  itself ("left-sided pacemaker", "right PICC") and distance references ("4 cm above the carina")
  do not locate it; an anatomy phrase of its own does, and matches no landmark rule ("right
  internal jugular line terminates in the SVC" → line at ``other`` and ``svc``; "left chest
  wall pacemaker with lead terminating in the right atrium" → pacemaker at ``other``, lead at
  ``right_atrium``).

Consistency with the image: every finding is stated at least once, at its landmark (hedged when
``uncertain``) by its kind's own entity (``FINDING_KINDS[kind].entity``: "enlarged cardiac
silhouette, consistent with cardiomegaly" → cardiomegaly at ``heart_size``), other phrasings
("moderate cardiomegaly", "the heart is enlarged") coming on top; normal and stated-absent
sentences are used only when no finding of the study contradicts them (``Statement.forbid``);
a lung region is stated clear ("no right lower lobe consolidation", "no left apical
pneumothorax") only when nothing is drawn over it, which gives the lobe and zone landmarks their
negatives (the anatomy stream's labels there follow the image); and an opacity of the prior
study stated resolved ("previously seen right lower lobe opacity has resolved") lies on a side
with no opacity finding.

Sentence indices: the report body is the FINDINGS section followed by the IMPRESSION section
(sentences of EXAMINATION/INDICATION/TECHNIQUE/COMPARISON are not counted). Sentences end with
``.`` and contain no other period; ``Triplet.sentence`` is the 0-based index of the sentence in
that body, in reading order. When the FINDINGS section is omitted, counting starts at the first
IMPRESSION sentence.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass

import numpy as np

from medslip.labels import Triplet
from medslip.synth.report_templates import (
    ADVERBS,
    CHANGE_WORDS,
    COMPARE_PREFIXES,
    COMPARE_SENTENCES,
    DEFINITE,
    DEGREE_WORDS,
    HEDGED,
    INDICATIONS,
    LESION_CHANGE_WORDS,
    LOCATIONS,
    NORMAL,
    NORMAL_IMPRESSION,
    NORMAL_WITH_PRIOR,
    NOTIFY,
    OMIT_RATE,
    RECOMMEND,
    RESOLVED,
    RESOLVED_BLOCKERS,
    RESOLVED_LANDMARKS,
    RESOLVED_RATE,
    SEVERITY_WORDS,
    TYPO_RATE,
    TYPO_WORDS,
    VIEWS,
    Statement,
    Template,
)
from medslip.synth.spec import FINDING_KINDS, Finding, StudySpec, side_of
from medslip.vocab import PRESENT, UNCERTAIN

# --------------------------------------------------------------------------------------------
# Writing


def _severity_word(kind: str, severity: float) -> str:
    words = SEVERITY_WORDS.get(kind, DEGREE_WORDS)
    return words[0] if severity <= 0.45 else words[1] if severity <= 0.75 else words[2]


def _side(landmark: str) -> str:
    return {-1: "right", 1: "left", 0: ""}[side_of(landmark)]


def _pick(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


def _slots(f: Finding, has_prior: bool, rng: np.random.Generator) -> dict[str, str]:
    """Slot values of ``f``'s sentences; sizes and severity words describe what is drawn."""
    sev = _severity_word(f.kind, f.drawn_severity)
    adj, pp = LOCATIONS.get(f.landmark, ((), ()))
    n = {
        "nodule": str(int(round(5 + 20 * f.drawn_severity))),
        "mass": str(int(round(3 + 5 * f.drawn_severity))),
        "endotracheal_tube": str(int(rng.integers(2, 6))),
    }.get(f.kind, "")
    leads = PACEMAKER_LEADS.get(f.landmark, "")
    return {
        "sev": sev,
        "adv": ADVERBS.get(sev, sev),
        "adj": _pick(rng, adj) if adj else "",
        "pp": _pick(rng, pp) if pp else "",
        "side": _side(f.landmark),
        "n": n,
        "leads": leads,
        "chg": _pick(rng, LESION_CHANGE_WORDS if f.kind in ("nodule", "mass") else CHANGE_WORDS)
        if has_prior and rng.random() < 0.4
        else "",
    }


def _finish(text: str) -> str:
    """Articles before vowels/digits read 'an', the first letter capitalised."""
    text = re.sub(r"\b([Aa]) (?=[aeiou]|8\b|8 |11 |18 )", r"\1n ", text)
    text = re.sub(r"\s+", " ", text).strip()
    return text[0].upper() + text[1:]


def _triplets(
    tpl: Template, f: Finding | None = None, slots: dict[str, str] | None = None
) -> list[tuple[str, str, str]]:
    """The (entity, landmark, presence) statements of a filled-in template."""
    presence = UNCERTAIN if f is not None and f.uncertain else PRESENT
    out = []
    for spec in tpl.triplets:
        entity, landmark, pres = spec.split()
        pres = presence if pres == "~" else pres
        if landmark == "@":
            assert f is not None, spec
            out += [(entity, lm, pres) for lm in _finding_landmarks(f)]
        else:
            out.append((entity, landmark.format(**(slots or {})), pres))
    return out


PACEMAKER_LEADS = {
    "right_atrium": "lead terminating in the right atrium",
    "right_ventricle": "leads in the right atrium and right ventricle",
}
"""Pacemaker landmark → the lead phrase (the renderer draws an atrial lead with every
ventricular one, so a ``right_ventricle`` pacemaker also states its atrial lead)."""


def _finding_landmarks(f: Finding) -> tuple[str, ...]:
    """Landmarks ``@`` stands for: the finding's, and the atrium for a ventricular pacemaker."""
    if f.kind == "pacemaker" and f.landmark == "right_ventricle":
        return ("right_ventricle", "right_atrium")
    return (f.landmark,)


@dataclass
class _Sentence:
    text: str
    triplets: list[tuple[str, str, str]]  # entity, landmark, presence


def _finding_sentence(
    f: Finding,
    has_prior: bool,
    rng: np.random.Generator,
    exclude: str | None = None,
    own_entity: bool = False,
) -> tuple[_Sentence, str]:
    """A sentence stating ``f`` and its template text.

    Avoids the template ``exclude`` when it can; with ``own_entity`` only templates stating the
    kind's own entity (``FINDING_KINDS[kind].entity``) at the finding's landmark are used.
    """
    table = HEDGED if f.uncertain and f.kind in HEDGED else DEFINITE
    options = list(table[f.kind])
    if own_entity:
        own = {f"{f.entity} @", f"{f.entity} {f.landmark}"}
        options = [t for t in options if any(x.rsplit(" ", 1)[0] in own for x in t.triplets)]
    options = [t for t in options if t.text != exclude] or options
    tpl = _pick(rng, options)
    slots = _slots(f, has_prior, rng)
    return _Sentence(_finish(tpl.text.format(**slots)), _triplets(tpl, f, slots)), tpl.text


def _allowed(st: Statement, findings: list[Finding]) -> bool:
    if any(f.kind in st.forbid or f"{f.kind}@{f.landmark}" in st.forbid for f in findings):
        return False
    return all(any(f.kind == kind for f in findings) for kind in st.needs)


def _statement(st: Statement) -> _Sentence:
    return _Sentence(st.template.text, _triplets(st.template))


_SYSTEM_OF = {
    "effusion": "pleura",
    "pneumothorax": "pleura",
    "chest_tube": "devices",
    "cardiomegaly": "heart",
    "rib_fracture": "bones",
    "mass": "lungs",
}
_ORDER = ("devices", "lungs", "regions", "pleura", "heart", "mediastinum", "bones")


def _system(f: Finding) -> str:
    if FINDING_KINDS[f.kind].device:
        return "devices"
    return _SYSTEM_OF.get(f.kind, "lungs")


def _normals(study: StudySpec, rng: np.random.Generator) -> dict[str, list[_Sentence]]:
    """Normal / stated-absent sentences per system: one or two per system, none contradicting."""
    out: dict[str, list[_Sentence]] = {}
    covered: set[tuple[str, str]] = set()  # (entity, landmark) already stated
    for system, statements in NORMAL.items():
        if study.has_prior:
            statements = statements + NORMAL_WITH_PRIOR.get(system, ())
        options = [s for s in statements if _allowed(s, study.findings)]
        if not options or rng.random() < OMIT_RATE[system]:  # the system goes unmentioned
            continue
        k = 1 + int(rng.random() < 0.35 and len(options) > 1)
        idx = rng.choice(len(options), size=k, replace=False)
        chosen = [options[i] for i in sorted(idx)]
        sentences = []
        for st in chosen:
            key = {(t.split()[0], t.split()[1]) for t in st.template.triplets}
            if key & covered:
                continue
            covered |= key
            sentences.append(_statement(st))
        out[system] = sentences
    return out


def _resolved(findings: list[Finding], rng: np.random.Generator) -> _Sentence | None:
    """A prior study's opacity stated resolved, on a side with no opacity finding (or None)."""
    blocked: set[int] = set()
    for f in findings:
        if f.kind in RESOLVED_BLOCKERS:
            blocked |= {side_of(f.landmark)} if side_of(f.landmark) else {-1, 1}
    options = [lm for lm in RESOLVED_LANDMARKS if side_of(lm) not in blocked]
    if not options:
        return None
    landmark = _pick(rng, options)
    tpl = _pick(rng, RESOLVED)
    slots = {"adj": _pick(rng, LOCATIONS[landmark][0]), "landmark": landmark}
    return _Sentence(_finish(tpl.text.format(**slots)), _triplets(tpl, None, slots))


def _typo(word: str, rng: np.random.Generator) -> str:
    i = int(rng.integers(1, len(word) - 1))
    op = int(rng.integers(3))
    if op == 0:
        return word[:i] + word[i] + word[i:]  # doubled letter
    if op == 1:
        return word[:i] + word[i + 1 :]  # missing letter
    return word[:i] + word[i + 1] + word[i] + word[i + 2 :]  # swapped letters


def _add_typo(sentences: list[_Sentence], rng: np.random.Generator) -> None:
    spots = [
        (i, m.start(), m.end())
        for i, s in enumerate(sentences)
        for m in re.finditer(r"[A-Za-z]+", s.text)
        if m.group().lower() in TYPO_WORDS
    ]
    if not spots:
        return
    i, a, b = spots[int(rng.integers(len(spots)))]
    s = sentences[i]
    s.text = s.text[:a] + _typo(s.text[a:b], rng) + s.text[b:]


def _body(study: StudySpec, rng: np.random.Generator) -> tuple[list[_Sentence], list[_Sentence]]:
    """FINDINGS and IMPRESSION sentences of a study (FINDINGS may come back empty: omitted)."""
    findings = list(study.findings)
    omit_findings = rng.random() < 0.1
    abnormal = [f for f in findings if not FINDING_KINDS[f.kind].device]
    devices = [f for f in findings if FINDING_KINDS[f.kind].device]

    body: list[_Sentence] = []
    used: dict[int, tuple[str, bool]] = {}  # finding → (template text, names its own entity)
    if not omit_findings:
        if rng.random() < 0.3:
            body.append(_Sentence(_pick(rng, VIEWS["AP" if study.view == "AP" else "PA"]), []))
        if study.has_prior and rng.random() < 0.3:
            body.append(_Sentence(_pick(rng, COMPARE_SENTENCES), []))
        by_system: dict[str, list[_Sentence]] = {s: [] for s in _ORDER}
        for i, f in enumerate(findings):
            # A finding mentioned only here is stated by its own entity at its landmark.
            sent, tpl = _finding_sentence(f, study.has_prior, rng, own_entity=f not in abnormal)
            used[i] = (tpl, (f.entity, f.landmark) in {t[:2] for t in sent.triplets})
            if study.has_prior and rng.random() < 0.2:
                first = sent.text[0].lower() if sent.text[1:2].islower() else sent.text[0]
                sent.text = _pick(rng, COMPARE_PREFIXES) + first + sent.text[1:]
            by_system[_system(f)].append(sent)
        if study.has_prior and rng.random() < RESOLVED_RATE:
            resolved = _resolved(findings, rng)
            by_system["lungs"] += [resolved] if resolved else []
        normals = _normals(study, rng)
        for system in _ORDER:
            body += by_system[system]
            body += normals.get(system, [])

    impression: list[_Sentence] = []
    for f in devices if omit_findings else []:
        impression.append(_finding_sentence(f, study.has_prior, rng, own_entity=True)[0])
    # Impression: the abnormal findings again, in other words when possible; each finding is
    # stated by its own entity at its landmark at least once in the report.
    order = sorted(range(len(findings)), key=lambda i: findings[i].severity, reverse=True)
    for i in order:
        f = findings[i]
        if f in abnormal:
            tpl, named = used.get(i, (None, False))
            sent, _ = _finding_sentence(f, study.has_prior, rng, exclude=tpl, own_entity=not named)
            impression.append(sent)
    if not abnormal:
        options = [s for s in NORMAL_IMPRESSION if _allowed(s, findings)]
        impression.append(_statement(_pick(rng, options)))
    elif devices and rng.random() < 0.5:  # lines and tubes: say there is no pneumothorax
        no_ptx = ("pneumothorax unspecified absent",)
        options = [s for s in NORMAL["pleura"] if s.template.triplets == no_ptx]
        options = [s for s in options if _allowed(s, findings)]
        if options:
            impression.append(_statement(_pick(rng, options)))
    elif omit_findings and rng.random() < 0.5:  # a stated-absent finding in a short report
        pleura = [s for s in NORMAL["pleura"] if _allowed(s, findings)]
        if pleura:
            impression.append(_statement(_pick(rng, pleura)))
    if any(f.kind in ("nodule", "mass") for f in abnormal) and rng.random() < 0.6:
        impression.append(_Sentence(_pick(rng, RECOMMEND), []))
    if abnormal and rng.random() < 0.15:
        impression.append(_Sentence(_pick(rng, NOTIFY), []))
    return body, impression


def _section(title: str, sentences: list[_Sentence], wrap: bool) -> str:
    text = "  ".join(s.text for s in sentences)
    if wrap:
        text = "\n ".join(textwrap.wrap(text, width=76, break_on_hyphens=False))
    return f" {title}: \n \n {text}\n"


def write_report(study: StudySpec, rng: np.random.Generator) -> tuple[str, list[Triplet]]:
    """Report text for ``study`` and the triplets it states, deterministic given ``rng``.

    Returns ``(text, triplets)``: MIMIC-CXR-style text (EXAMINATION/INDICATION/TECHNIQUE/
    COMPARISON headers, some omitted, then FINDINGS — occasionally omitted — and IMPRESSION),
    and one :class:`Triplet` per (entity, landmark, presence) statement of each sentence, where
    ``sentence`` indexes the FINDINGS-then-IMPRESSION body sentences from 0 (see module doc).
    Every finding of ``study.findings`` is stated at its landmark (hedged → ``uncertain``).
    """
    body, impression = _body(study, rng)
    if rng.random() < TYPO_RATE:
        _add_typo(body + impression, rng)

    triplets: list[Triplet] = []
    for k, s in enumerate(body + impression):
        seen = set()
        for entity, landmark, presence in s.triplets:
            if (entity, landmark, presence) not in seen:
                seen.add((entity, landmark, presence))
                triplets.append(Triplet(entity, landmark, presence, k))

    sex = "F" if rng.random() < 0.5 else "M"
    wrap = rng.random() < 0.7
    parts = ["                                 FINAL REPORT\n"]
    if rng.random() < 0.8:
        exam = "CHEST (PORTABLE AP)" if study.view == "AP" else "CHEST (PA AND LAT)"
        parts.append(f" EXAMINATION:  {exam}\n")
    if rng.random() < 0.85:
        indication = _pick(rng, INDICATIONS).format(
            sex="woman" if sex == "F" else "man", sex_short=sex
        )
        parts.append(f" INDICATION:  {indication}\n")
    if rng.random() < 0.5:
        parts.append(f" TECHNIQUE:  {_pick(rng, VIEWS['AP' if study.view == 'AP' else 'PA'])}\n")
    if rng.random() < 0.8:
        comparison = (
            _pick(rng, ("___.", "Chest radiograph from ___.")) if study.has_prior else "None."
        )
        parts.append(f" COMPARISON:  {comparison}\n")
    if body:
        parts.append(_section("FINDINGS", body, wrap))
    parts.append(_section("IMPRESSION", impression, wrap))
    return "\n".join(parts), triplets
