"""SynthCXR report writer: the text states what the study holds, and the triplets say what the
text states (right sentence, entity word in it, landmark by the reference's rules)."""

from __future__ import annotations

import re

import pytest

from medslip.reports.landmarks import landmark_for
from medslip.reports.parse import parse_report
from medslip.synth.report_templates import DEFINITE, HEDGED, LOCATIONS, anchor_entities
from medslip.synth.report_text import write_report
from medslip.synth.sample import demo_reports
from medslip.synth.spec import FINDING_KINDS, Finding, StudySpec, rng_for, side_of

_STOP = {"in", "at", "on", "the", "of"}


def _study(findings: list[Finding], prior: bool = False, view: str = "PA") -> StudySpec:
    return StudySpec(study_id=1, patient_id=2, findings=findings, view=view, has_prior=prior)


def _sections(text: str) -> dict[str, str]:
    parts = re.split(r"^ ?([A-Z]+):", text, flags=re.M)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def _body_sentences(text: str) -> list[str]:
    """FINDINGS then IMPRESSION sentences, split on sentence-final periods."""
    sec = _sections(text)
    out: list[str] = []
    for name in ("FINDINGS", "IMPRESSION"):
        body = " ".join(sec.get(name, "").split())
        out += [s for s in re.split(r"(?<=\.)\s+", body) if s]
    return out


def _check_triplets_in_text(text: str, triplets) -> None:
    sentences = _body_sentences(text)
    for t in triplets:
        assert 0 <= t.sentence < len(sentences), (t, sentences)
        stem = t.pathology[:5].lower()
        assert stem in sentences[t.sentence].lower(), (t, sentences[t.sentence])


def test_location_phrases_map_to_their_landmark_by_reference_rules():
    for landmark, (adjs, pps) in LOCATIONS.items():
        for phrase in adjs + pps:
            # RadGraph spans "cavoatrial junction" as one anatomy token (the official
            # `PreTrain_MeDSLIP/data_file/preprocessing/adj_matrix.py`).
            words = phrase.lower().replace("cavoatrial junction", "cavoatrial_junction")
            tokens = frozenset(w.replace("_", " ") for w in words.split() if w not in _STOP)
            assert landmark_for(tokens) == landmark, (phrase, landmark_for(tokens))


def test_deterministic_given_rng():
    study = _study([Finding("effusion", "left_pleural", 0.6), Finding("picc", "svc", 1.0)])
    a = write_report(study, rng_for(3, 1))
    b = write_report(study, rng_for(3, 1))
    assert a == b
    assert demo_reports(5, 7) == demo_reports(5, 7)


@pytest.mark.parametrize("kind", sorted(FINDING_KINDS))
def test_every_kind_stated_at_its_landmark(kind):
    spec = FINDING_KINDS[kind]
    anchors = anchor_entities(kind)
    hedges = (False,) if spec.device else (False, True)
    for landmark in spec.landmarks:
        for uncertain in hedges:
            for seed in range(6):
                f = Finding(kind, landmark, 0.2 + 0.15 * seed, uncertain=uncertain)
                text, triplets = write_report(_study([f], prior=seed % 2 == 1), rng_for(seed, 9))
                _check_triplets_in_text(text, triplets)
                want = "uncertain" if uncertain else "present"
                # "No right pleural effusion" beside a left one is about the other side
                mentions = [
                    t
                    for t in triplets
                    if t.pathology in anchors and side_of(t.anatomy) in (0, side_of(landmark))
                ]
                assert all(t.presence == want for t in mentions), (text, triplets)
                # Stated by the kind's own entity at its landmark at least once.
                assert (spec.entity, landmark, want) in {
                    (t.pathology, t.anatomy, t.presence) for t in triplets
                }, (text, triplets)


def test_hedged_text_uses_hedge_words():
    hedge = re.compile(
        r"possible|cannot be excluded|may|probable|likely|questionable|concerning|could", re.I
    )
    for seed in range(20):
        f = Finding("effusion", "right_pleural", 0.5, uncertain=True)
        text, _ = write_report(_study([f]), rng_for(seed))
        for s in _body_sentences(text):
            if "effusion" in s.lower() and "no " not in s.lower():
                assert hedge.search(s), s


def test_severity_words_follow_severity():
    for sev, word in ((0.3, "small"), (0.6, "moderate"), (0.95, "large")):
        for seed in range(5):
            text, _ = write_report(
                _study([Finding("effusion", "left_pleural", sev)]), rng_for(seed)
            )
            body = " ".join(_body_sentences(text)).lower()
            assert f"{word} left pleural" in body or f"{word} amount of left" in body, text


def _contradicts(t, f: Finding) -> bool:
    """An absent triplet that denies finding ``f`` (same entity, same or non-lateral place)."""
    if t.presence != "absent" or t.pathology not in anchor_entities(f.kind):
        return False
    lateral = "left" in t.anatomy or "right" in t.anatomy
    return t.anatomy == f.landmark or not lateral


def test_absent_statements_never_deny_a_shown_finding_and_are_common():
    reports = 0
    with_absent = 0
    for text, triplets in demo_reports(300, 11):
        _check_triplets_in_text(text, triplets)
        reports += 1
        with_absent += any(t.presence == "absent" for t in triplets)
    assert with_absent / reports > 0.8
    # The same check against the studies themselves.
    for seed in range(150):
        rng = rng_for(seed, 5)
        kinds = rng.choice(sorted(FINDING_KINDS), size=3, replace=False)
        findings = [
            Finding(str(k), str(rng.choice(FINDING_KINDS[str(k)].landmarks)), 0.6) for k in kinds
        ]
        text, triplets = write_report(_study(findings, prior=bool(seed % 2)), rng)
        for t in triplets:
            for f in findings:
                assert not _contradicts(t, f), (t, f, text)
        if any(f.kind == "cardiomegaly" for f in findings):
            assert not any(
                t.anatomy == "heart_size" and t.pathology in ("normal", "clear") for t in triplets
            ), text
        if any(f.kind in ("consolidation", "pneumonia", "atelectasis") for f in findings):
            assert ("clear", "lung_volumes") not in {(t.pathology, t.anatomy) for t in triplets}


def test_absent_kinds_are_stated_absent():
    text, triplets = write_report(_study([]), rng_for(0))
    absent = [t for t in triplets if t.presence == "absent"]
    assert absent
    assert not any(
        t.presence == "present"
        for t in triplets
        if t.pathology
        not in ("normal", "clear", "sharp", "unremarkable", "intact", "stable", "expand")
    )


def test_sections_and_omitted_findings():
    kinds = {"FINDINGS": 0, "IMPRESSION": 0, "no_findings": 0, "blank": 0}
    for text, _ in demo_reports(200, 3):
        sec = _sections(text)
        assert "IMPRESSION" in sec
        kinds["IMPRESSION"] += 1
        kinds["FINDINGS"] += "FINDINGS" in sec
        kinds["no_findings"] += "FINDINGS" not in sec
        kinds["blank"] += "___" in text
    assert kinds["FINDINGS"] > 150 and kinds["no_findings"] > 5
    assert kinds["blank"] > 100


def test_omitted_findings_section_still_states_every_finding():
    findings = [
        Finding("picc", "cavoatrial_junction", 1.0),
        Finding("nodule", "left_mid_lung", 0.4),
    ]
    seen_omitted = False
    for seed in range(60):
        text, triplets = write_report(_study(findings), rng_for(seed, 2))
        if "FINDINGS" in _sections(text):
            continue
        seen_omitted = True
        got = {(t.pathology, t.anatomy) for t in triplets}
        assert ("picc", "cavoatrial_junction") in got and ("nodule", "left_mid_lung") in got
        assert min(t.sentence for t in triplets) == 0
    assert seen_omitted


def test_variety_of_reports_and_phrasings():
    texts = [t for t, _ in demo_reports(200, 5)]
    assert len(set(texts)) == len(texts)
    for kind in FINDING_KINDS:
        assert len(DEFINITE[kind]) >= 4
        if not FINDING_KINDS[kind].device:
            assert len(HEDGED[kind]) >= 4
    # Phrasings actually used for one finding across seeds.
    f = Finding("atelectasis", "lung_bases", 0.5)
    firsts = set()
    for seed in range(40):
        text, triplets = write_report(_study([f]), rng_for(seed))
        k = next(t.sentence for t in triplets if t.pathology == "atelectasis")
        firsts.add(re.sub(r"\W+", " ", _body_sentences(text)[k].lower()))
    assert len(firsts) >= 6


def test_comparison_phrases_only_with_prior():
    words = re.compile(r"prior|previous|unchanged|persistent|worsened|improving", re.I)
    f = [Finding("effusion", "left_pleural", 0.5), Finding("consolidation", "upper_left_lobe", 0.7)]
    with_prior = sum(
        bool(words.search(write_report(_study(f, True), rng_for(s))[0])) for s in range(40)
    )
    without = sum(
        bool(words.search(write_report(_study(f, False), rng_for(s))[0])) for s in range(40)
    )
    assert with_prior > 20 and without == 0


def _template_words() -> set[str]:
    """Every word the writer's tables can produce (a word outside it is a typo)."""
    from medslip.synth import report_text as rt

    tables = [*rt.DEFINITE.values(), *rt.HEDGED.values()]
    texts = [t.text for table in tables for t in table]
    texts += [s.template.text for sts in rt.NORMAL.values() for s in sts]
    texts += [s.template.text for sts in rt.NORMAL_WITH_PRIOR.values() for s in sts]
    texts += [s.template.text for s in rt.NORMAL_IMPRESSION]
    texts += [t.text for t in rt.RESOLVED]
    texts += [*rt.VIEWS["PA"], *rt.VIEWS["AP"], *rt.COMPARE_SENTENCES, *rt.COMPARE_PREFIXES]
    texts += [
        *rt.CHANGE_WORDS,
        *rt.LESION_CHANGE_WORDS,
        *rt.RECOMMEND,
        *rt.NOTIFY,
        *rt.PACEMAKER_LEADS.values(),
    ]
    texts += [p for a, b in rt.LOCATIONS.values() for p in a + b]
    texts += [w for ws in rt.SEVERITY_WORDS.values() for w in ws]
    texts += [*rt.ADVERBS.values(), "an"]
    return {w for t in texts for w in re.findall(r"[a-z]+", t.lower())}


def test_typos_are_rare_and_spare_finding_words():
    known = _template_words()
    reports = demo_reports(400, 8)
    with_typo = 0
    for text, triplets in reports:
        _check_triplets_in_text(text, triplets)  # entity words intact in their sentences
        words = set(re.findall(r"[a-z]+", " ".join(_body_sentences(text)).lower()))
        with_typo += bool(words - known)
    assert 0 < with_typo < 0.2 * len(reports)


def test_one_sided_normal_statements_only_beside_the_other_side():
    one_sided = re.compile(
        r"no (left|right) pleural|(left|right) costophrenic angle is sharp", re.I
    )
    for seed in range(40):
        text, _ = write_report(_study([]), rng_for(seed, 4))
        assert not one_sided.search(text)
    hits = 0
    for seed in range(40):
        f = Finding("effusion", "left_pleural", 0.5)
        text, triplets = write_report(_study([f]), rng_for(seed, 4))
        hits += bool(one_sided.search(text))
        assert ("effusion", "left_pleural", "absent") not in {
            (t.pathology, t.anatomy, t.presence) for t in triplets
        }
    assert hits > 3


# Anatomy phrases the templates write outside LOCATIONS; their landmarks come from the rules.
_ANATOMY_PHRASES = (
    "left pleural",
    "right pleural",
    "pleural",
    "left costophrenic",
    "right costophrenic",
    "costophrenic angles",
    "cardiac silhouette",
    "heart size",
    "heart",
    "lungs",
    "apical",
    "lung volumes",
    "both lungs",
    "pulmonary",
    "pulmonary vascular",
    "pulmonary vasculature",
    "mediastinal",
    "cardiomediastinal",
    "osseous",
    "rib",
    "hilar",
    "hila",
    "cardiomediastinal silhouette",
    "osseous structures",
    "bony",
    "intrathoracic",
    "cardiopulmonary",
    "posterior rib",
    "posterior ribs",
    "internal jugular",
    "ij",
    "chest wall",
    "pectoral",
    "right atrium",
    "right ventricle",
)


def _landmarks_named(text: str) -> set[str]:
    """Landmarks of the anatomy phrases in ``text`` (longest phrase first, no overlaps)."""
    from medslip.synth import report_text as rt

    phrases = {*_ANATOMY_PHRASES, *(p for a, b in rt.LOCATIONS.values() for p in a + b)}
    phrases = {p.lower().removeprefix("in the ").removeprefix("at the ") for p in phrases}
    low = text.lower()
    taken = [False] * len(low)
    out = set()
    for p in sorted(phrases, key=len, reverse=True):
        # A bare side names a hemithorax only as a pneumothorax's side ("left chest tube": no).
        tail = "(?= pneumothorax)" if p in ("left", "right") else ""
        for m in re.finditer(rf"\b{re.escape(p)}\b{tail}", low):
            if any(taken[m.start() : m.end()]):
                continue
            taken[m.start() : m.end()] = [True] * (m.end() - m.start())
            words = p.replace("cavoatrial junction", "cavoatrial_junction").split()
            tokens = frozenset(w.replace("_", " ") for w in words if w not in _STOP)
            out.add(landmark_for(tokens))
    return out


def test_declared_landmarks_are_the_ones_named_in_the_sentence():
    from medslip.synth import report_text as rt

    statements = [s for sts in rt.NORMAL.values() for s in sts]
    statements += [s for sts in rt.NORMAL_WITH_PRIOR.values() for s in sts]
    statements += list(rt.NORMAL_IMPRESSION)
    for st in statements:
        for entity, landmark, _ in rt._triplets(st.template):
            if landmark != "unspecified":
                assert landmark in _landmarks_named(st.template.text), (st.template.text, entity)
        declared = {lm for _, lm, _ in rt._triplets(st.template)}
        assert _landmarks_named(st.template.text) <= declared, st.template.text
    for kind, spec in FINDING_KINDS.items():
        for landmark in spec.landmarks:
            for hedged in (False, True):
                f = Finding(kind, landmark, 0.5, uncertain=hedged)
                for tpl in (rt.HEDGED if hedged else rt.DEFINITE).get(kind, ()):
                    slots = rt._slots(f, False, rng_for(0))
                    text = tpl.text.format(**slots)
                    named = _landmarks_named(text)
                    declared = {lm for _, lm, _ in rt._triplets(tpl, f, slots)}
                    assert named <= declared, (text, named, declared)
                    for lm in declared - {"unspecified"}:
                        assert lm in named, (text, lm, named)
    for tpl in rt.RESOLVED:
        for landmark in rt.RESOLVED_LANDMARKS:
            slots = {"adj": rt.LOCATIONS[landmark][0][0], "landmark": landmark}
            declared = {lm for _, lm, _ in rt._triplets(tpl, None, slots)}
            assert _landmarks_named(tpl.text.format(**slots)) == declared == {landmark}


def _parsed(text: str) -> set[tuple[str, str, str]]:
    return {(t.pathology, t.anatomy, t.presence) for t in parse_report(f" FINDINGS: {text}")}


def test_the_report_parser_reads_every_normal_and_absent_sentence_as_declared():
    from medslip.synth import report_text as rt

    statements = [s for sts in rt.NORMAL.values() for s in sts]
    statements += [s for sts in rt.NORMAL_WITH_PRIOR.values() for s in sts]
    statements += list(rt.NORMAL_IMPRESSION)
    for st in statements:
        assert _parsed(st.template.text) == set(rt._triplets(st.template)), st.template.text
    for tpl in rt.RESOLVED:
        for landmark in rt.RESOLVED_LANDMARKS:
            for adj in rt.LOCATIONS[landmark][0]:
                slots = {"adj": adj, "landmark": landmark}
                text = rt._finish(tpl.text.format(**slots))
                assert _parsed(text) == {("opacity", landmark, "absent")}, text


@pytest.mark.parametrize("kind", sorted(k for k, spec in FINDING_KINDS.items() if not spec.device))
def test_every_drawable_finding_is_stated_absent_and_hedged_in_words_the_parser_reads(kind):
    """Each finding SynthCXR draws has a stated-absent sentence for studies without it and
    hedged sentences for faint ones; the report parser reads them as absent / uncertain."""
    from medslip.synth import report_text as rt

    entity = FINDING_KINDS[kind].entity
    absent = [
        st.template.text
        for sts in rt.NORMAL.values()
        for st in sts
        if kind in st.forbid and f"{entity} " in " ".join(st.template.triplets)
    ]
    assert absent, kind
    for text in absent:
        assert (entity, "absent") in {(e, p) for e, _, p in _parsed(text)}, text
    for landmark in FINDING_KINDS[kind].landmarks:
        f = Finding(kind, landmark, 0.7, uncertain=True)
        slots = rt._slots(f, False, rng_for(0))
        for tpl in rt.HEDGED[kind]:
            text = rt._finish(tpl.text.format(**slots))
            got = _parsed(text)
            assert got == set(rt._triplets(tpl, f, slots)), text
            assert any(p == "uncertain" for e, _, p in got if e in anchor_entities(kind)), text


# Lung zones by anatomy: landmarks naming overlapping parts of the chest radiograph.
_ZONES = (
    {"lower_right_lobe", "right_lower_lung", "lung_bases"},
    {"lower_left_lobe", "left_lower_lung", "lung_bases", "retrocardiac"},
    {"middle_right_lobe", "right_mid_lung"},
    {"left_mid_lung"},
    {"upper_right_lobe", "right_upper_lung", "right_apical_lung"},
    {"upper_left_lobe", "left_upper_lung", "left_apical_lung"},
)


def _overlapping(landmark: str) -> set[str]:
    """Landmarks sharing a zone with ``landmark``; a hemithorax overlaps its whole side, and a
    bilateral landmark (``lung_bases``, ``interstitium``) both sides."""
    if landmark.endswith("_lung_unspec"):
        return {lm for z in _ZONES for lm in z if side_of(lm) == side_of(landmark)} | {landmark}
    near = {lm for z in _ZONES if landmark in z for lm in z} | {landmark}
    side = side_of(landmark)
    sides = {side} if side else {-1, 1}
    return near | {f"{'right' if s < 0 else 'left'}_lung_unspec" for s in sides}


def test_a_lung_region_is_stated_clear_only_where_nothing_is_drawn():
    """A region sentence ("No right lower lobe consolidation.") makes its landmark negative for
    the anatomy stream, so it is written only when no lung finding is drawn in that part of the
    chest (nor diffuse disease); every region sentence is used somewhere."""
    from medslip.synth import report_text as rt

    regions = {s.template.text: s.template.triplets[0].split()[1] for s in rt.NORMAL["regions"]}
    lung = sorted(k for k, spec in FINDING_KINDS.items() if not spec.device)
    used = set()
    for seed in range(400):
        rng = rng_for(seed, 13)
        kinds = rng.choice(lung, size=int(rng.integers(0, 3)), replace=False)
        findings = [
            Finding(str(k), str(rng.choice(FINDING_KINDS[str(k)].landmarks)), 0.6) for k in kinds
        ]
        text, _ = write_report(_study(findings, prior=bool(seed % 2)), rng)
        for sentence, landmark in regions.items():
            if sentence not in text:
                continue
            used.add(sentence)
            for f in findings:
                assert f.kind not in ("edema", "emphysema"), (sentence, findings)
                assert f.landmark not in _overlapping(landmark), (sentence, findings)
    assert used == set(regions)
