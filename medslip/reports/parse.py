"""Radiology report text → (pathology, anatomy, presence) triplets.

Pipeline per report: section extraction (``sections``) → scispaCy rule tokenizer on a blank English
pipeline → rule-based sentence split on sentence-final punctuation and blank lines (MIMIC wraps
lines inside sentences) → one ``PhraseMatcher`` pass (``LOWER``) for observation phrases
(``lexicon``) and negation/uncertainty cues (``context``), longest match first → anatomy words of
each observation's own phrase → landmark by the official preprocessing's rules (``landmarks``) →
presence by cue scope.

Anatomy linking: anatomy words inside the observation phrase ("enlarged cardiac silhouette");
else the anatomy phrases of the following locative phrase ("opacity in the left lower lobe"); else
those to its left back to the previous observation or clause boundary ("left pleural effusion",
"heart size is normal"); else those to its right; else ``unspecified``. Each anatomy phrase found
yields one triplet per distinct landmark (``heart and mediastinum are normal`` → two).
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from functools import lru_cache

from medslip.labels import Triplet
from medslip.reports.context import CUES, TERMINATORS, Cue, presence_of
from medslip.reports.landmarks import RULE_TOKENS, landmark_for
from medslip.reports.lexicon import SURFACE_LEMMAS, entity_for_lemma
from medslip.reports.sections import report_sections
from medslip.vocab import DEVICE_LEMMAS, NORMAL_ENTITIES

MAX_REPORT_CHARS = 100_000
"""Report size limit (a chest X-ray report is ~1 kB): the readers skip longer reports and
``parse`` reads only this many characters of one, with a warning."""


ANATOMY_ALIASES: dict[str, str] = {
    "t-spine": "spine",
    "l-spine": "spine",
    "vertebral": "spine",
    "vertebrae": "spine",
    "hemi-thorax": "hemithorax",
    "hemithoraces": "hemithorax",
    "zone": "lung",
    "zones": "lung",
    "field": "lung",
    "fields": "lung",
    "bilaterally": "bilateral",
    "mid-lung": "midlung",
    "left-sided": "left",
    "right-sided": "right",
    "hemidiaphragmatic": "hemidiaphragm",
    "diaphragmatic": "diaphragm",
}
"""Anatomy word → the rule token it stands for."""

ANATOMY_PAIR_ALIASES: dict[str, str] = {"left side": "left", "right side": "right"}
"""Two adjacent anatomy words → the rule token they stand for (like ``left-sided``)."""

ANATOMY_SPLITS: dict[str, tuple[str, ...]] = {"midlung": ("mid", "lung")}
"""Anatomy words that stand for two rule tokens (the official `adj_matrix.py` only lists
``midlung|left``)."""

_EXTRA_ANATOMY_WORDS = (
    "silhouette contour contours size vasculature vascularity vascular structures osseous bony"
    " bones bone soft tissues tissue chest angle angles sulcus sulci knob arch carina"
    " bronchus bronchi sternum sternal shoulder shoulders humerus thoracic lumbar parenchyma"
    " hilus vessels wall pericardial pericardium joint intrathoracic jugular ij pectoral"
    " subclavian"
)
EXTRA_ANATOMY: frozenset[str] = frozenset(_EXTRA_ANATOMY_WORDS.split())
"""Anatomy words no rule looks at (an observation linked only to these gets ``other``); the words
of the rule tokens (``bilateral``, ``junction``) are anatomy words too (``ANATOMY_WORDS``)."""

ANATOMY_WORDS: frozenset[str] = (
    frozenset(w for t in RULE_TOKENS for w in t.split())
    | EXTRA_ANATOMY
    | frozenset(ANATOMY_ALIASES.values())
)
_TWO_WORD_TOKENS = frozenset(t for t in RULE_TOKENS if " " in t)
_GLUE_WORDS = (
    "of the - anterior posterior lateral medial first second third fourth fifth sixth seventh"
    " eighth ninth tenth eleventh twelfth"
)
_PHRASE_GLUE = frozenset(_GLUE_WORDS.split())
_ORDINAL = re.compile(r"^\d+(st|nd|rd|th)?$")
_LOCATIVE_WORDS = (
    "in at of within along involving over overlying projecting near throughout from into on"
    " above below beneath behind adjacent"
)
LOCATIVES: frozenset[str] = frozenset(_LOCATIVE_WORDS.split())
_BOUNDARIES = TERMINATORS | {",", "and", "or"}
_STRONG_LINK_WORDS = (
    "consistent compatible likely probably possibly may might could represent represents"
    " representing reflect reflects reflecting concerning suggestive suggesting suggest"
)
_STRONG_LINKS = frozenset(_STRONG_LINK_WORDS.split())
_MODIFIER_WORDS = (
    "mild mildly moderate moderately severe severely small large minimal slight slightly"
    " extensive patchy trace tiny subtle focal diffuse new unchanged persistent worsening improving"
)
_LINK_WORDS = (
    _STRONG_LINKS
    | frozenset(_MODIFIER_WORDS.split())
    | {"with", "for", "of", "which", "most", "a", "an", ",", "in", "be"}
)
_DEVICE_SIDE_WORDS = frozenset({"left", "right", "chest", "bilateral"})
_RIGHT_BOUNDARIES = TERMINATORS | {","}
_SENTENCE_END = frozenset({".", "?", "!"})
_NORMALS = frozenset(NORMAL_ENTITIES)
_CLEAN = re.compile(r"[/\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|<[^<>]{0,200}>|&#?\w{1,10};")


def _blank(match: re.Match) -> str:
    return " " * len(match.group(0))


def clean_text(text: str) -> str:
    """``text`` with markup, control characters and slashes turned into spaces of the same
    length (so character spans stay valid)."""
    return _CLEAN.sub(_blank, text)


@dataclass(frozen=True)
class _Obs:
    start: int  # token index in sentence
    end: int
    lemma: str
    entity: str  # entity of ``lemma``
    # (lemma, entity) of each triplet it yields: its own, then that of a synonym phrase's own
    # first word ("enlarged" of "enlarged cardiac silhouette") when it differs
    readings: tuple[tuple[str, str], ...]


class ReportParser:
    """Holds the tokenizer and matcher; ``parse(text)`` gives a report's triplets."""

    def __init__(self) -> None:
        import spacy
        from spacy.matcher import PhraseMatcher

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            from scispacy.custom_tokenizer import combined_rule_tokenizer

            self.nlp = spacy.blank("en")
            self.nlp.tokenizer = combined_rule_tokenizer(self.nlp)
        self.matcher = PhraseMatcher(self.nlp.vocab, attr="LOWER")
        self._labels: dict[int, tuple] = {}  # match key → ("OBS", lemma, readings) | ("CUE", kind)
        for surface, lemma in SURFACE_LEMMAS.items():
            first = surface.split(" ")[0]
            also = SURFACE_LEMMAS.get(first, "") if first != surface else ""
            lemmas = (lemma, also) if also and also != lemma else (lemma,)
            readings = tuple((x, entity_for_lemma(x)) for x in lemmas)
            self._add(f"OBS:{'+'.join(lemmas)}", ("OBS", lemma, readings), surface)
        for kind, phrases in CUES.items():
            for phrase in phrases:
                self._add(f"CUE:{kind}", ("CUE", kind), phrase)

    def _add(self, key: str, label: tuple, phrase: str) -> None:
        key_id = self.nlp.vocab.strings.add(key)
        self._labels[key_id] = label
        self.matcher.add(key, [self.nlp.make_doc(phrase)])

    def parse(self, text: str) -> list[Triplet]:
        """Triplets of one report (empty for a report with nothing to read)."""
        if len(text) > MAX_REPORT_CHARS:
            warnings.warn(
                f"report of {len(text)} characters: only the first {MAX_REPORT_CHARS} are read",
                stacklevel=2,
            )
            text = text[:MAX_REPORT_CHARS]
        text = clean_text(text)
        triplets: list[Triplet] = []
        sentence_offset = 0
        for section in report_sections(text):
            section_text = text[section.start : section.end]
            doc = self.nlp.tokenizer(section_text)
            n_sent = self._parse_doc(doc, section_text, section.start, sentence_offset, triplets)
            sentence_offset += n_sent
        return triplets

    def _parse_doc(
        self, doc, text: str, char_offset: int, sent_offset: int, out: list[Triplet]
    ) -> int:
        """Append the triplets of one section (``doc``, tokenised from ``text``) to ``out``."""
        from spacy.tokens import Doc

        kept = [t for t in doc if not t.is_space]  # line wraps and blank lines are not words
        if not kept:
            return 0
        starts = [t.idx for t in kept]
        ends = [t.idx + len(t.text) for t in kept]
        words = [ANATOMY_ALIASES.get(t.lower_, t.lower_) for t in kept]
        gaps = [text[ends[i] : starts[i + 1]] for i in range(len(kept) - 1)] + [""]
        sent_of, bounds = _sentences(words, gaps)
        clean = doc if len(kept) == len(doc) else Doc(self.nlp.vocab, words=[t.text for t in kept])
        # longest match first, then leftmost; a token belongs to at most one match
        matches = sorted(self.matcher(clean), key=lambda m: (m[1] - m[2], m[1]))
        taken = [False] * len(words)
        obs_by_sent: dict[int, list[_Obs]] = {}
        cues_by_sent: dict[int, list[Cue]] = {}
        for key_id, start, end in matches:
            if any(taken[start:end]) or sent_of[start] != sent_of[end - 1]:
                continue
            for i in range(start, end):
                taken[i] = True
            s = sent_of[start]
            base = bounds[s][0]
            label = self._labels[key_id]
            if label[0] == "OBS":
                lemma, readings = label[1], label[2]
                obs = _Obs(start - base, end - base, lemma, readings[0][1], readings)
                obs_by_sent.setdefault(s, []).append(obs)
            else:
                cues_by_sent.setdefault(s, []).append(Cue(label[1], start - base, end - base))
        for s in sorted(obs_by_sent):
            observations = sorted(obs_by_sent[s], key=lambda o: o.start)
            lo, hi = bounds[s]
            sent_words = words[lo:hi]
            cues = cues_by_sent.get(s, [])
            for k, obs in enumerate(observations):
                if _modifies_another(observations, k, sent_words):
                    continue  # "small" in "small left effusion": a modifier, not an observation
                normal = obs.entity in _NORMALS
                presence = presence_of(obs.start, obs.end, sent_words, cues, normal)
                span = (char_offset + starts[lo + obs.start], char_offset + ends[lo + obs.end - 1])
                phrases = _anatomy_phrases(observations, k, sent_words)
                landmarks = dict.fromkeys(landmark_for(a) for a in phrases)
                for lemma, entity in obs.readings:
                    for landmark in landmarks:
                        out.append(
                            Triplet(
                                entity,
                                landmark,
                                presence,
                                sent_offset + s,
                                *span,
                                lemma,
                            )
                        )
        return len(bounds)


def _sentences(words: list[str], gaps: list[str]) -> tuple[list[int], list[tuple[int, int]]]:
    """Sentence id of every token and each sentence's ``[start, end)`` token range.

    A sentence ends at ``.``/``?``/``!`` or where the gap after a token holds a blank line.
    """
    sent_of: list[int] = []
    bounds: list[tuple[int, int]] = []
    start = 0
    for i, w in enumerate(words):
        sent_of.append(len(bounds))
        if w in _SENTENCE_END or gaps[i].count("\n") > 1:
            bounds.append((start, i + 1))
            start = i + 1
    if start < len(words):
        bounds.append((start, len(words)))
    return sent_of, bounds


def _anatomy_runs(words: list[str], lo: int, hi: int) -> list[frozenset[str]]:
    """Anatomy phrases (token sets) among ``words[lo:hi]``; "of the" glues a phrase together and
    two adjacent words forming a two-word rule token ("cavoatrial junction") become that token,
    and "left side" / "right side" stand for "left" / "right"."""
    runs: list[frozenset[str]] = []
    current: list[str] = []
    i = lo
    while i < hi:
        w = words[i]
        pair = f"{w} {words[i + 1]}" if i + 1 < hi else ""
        if pair in _TWO_WORD_TOKENS or pair in ANATOMY_PAIR_ALIASES:
            current.append(ANATOMY_PAIR_ALIASES.get(pair, pair))
            i += 1
        elif w in ANATOMY_WORDS:
            current.extend(ANATOMY_SPLITS.get(w, (w,)))
        elif not (current and (w in _PHRASE_GLUE or _ORDINAL.match(w))):
            if current:
                runs.append(frozenset(current))
            current = []
        i += 1
    if current:
        runs.append(frozenset(current))
    return runs


def _modifies_another(observations: list[_Obs], k: int, words: list[str]) -> bool:
    """Whether observation ``k`` is an ``excluded_obs`` word (severity, comparison: "small",
    "unchanged") modifying another observation of its clause. The official preprocessing drops
    RadGraph's observation modifiers (``obs_modify``); a standalone one ("interval improvement")
    stays."""
    obs = observations[k]
    if obs.entity != "excluded_obs":
        return False
    for other in observations:
        if other is obs or other.entity == "excluded_obs":
            continue
        lo, hi = (obs.end, other.start) if other.start >= obs.end else (other.end, obs.start)
        if not any(w in _RIGHT_BOUNDARIES for w in words[lo:hi]):
            return True
    return False


def _linked(gap: list[str], normal: bool) -> bool:
    """Whether the words between two observations make the second share the first's anatomy:
    a diagnosis linked to a located finding ("opacity, likely atelectasis", "opacity consistent
    with pneumonia") or coordinated normal predicates ("well expanded and clear")."""
    words = set(gap)
    if words <= _LINK_WORDS and words & _STRONG_LINKS:
        return True
    return normal and words <= {"and", ","}


def _left_window(observations: list[_Obs], k: int, words: list[str], normal: bool) -> int:
    """Start of observation ``k``'s left window: back to a clause boundary or to a separate
    observation; adjacent or linked observations ("calcified granuloma") form one chain."""
    left_lo = chain_lo = observations[k].start
    j = k - 1
    while left_lo > 0:
        if j >= 0 and observations[j].end == left_lo:
            if left_lo != chain_lo and not _linked(words[left_lo:chain_lo], normal):
                break  # a separate observation: what lies beyond it is its own
            left_lo = chain_lo = observations[j].start
            j -= 1
            continue
        w = words[left_lo - 1]
        if w in _BOUNDARIES:
            after_anatomy = w == "and" and left_lo > 1 and words[left_lo - 2] in ANATOMY_WORDS
            before_obs = j >= 0 and observations[j].end == left_lo - 1
            gap = words[left_lo:chain_lo]
            linkable = (w in _LINK_WORDS or before_obs) and _linked([w, *gap], normal)
            if not (after_anatomy or linkable):
                break
        left_lo -= 1
    return left_lo


def _right_window(observations: list[_Obs], k: int, words: list[str], device: bool) -> int:
    """End of observation ``k``'s right window: up to a clause boundary or a separate
    observation; a device's window runs on through other device words ("line with tip in")."""
    right_hi, j, adjacent = observations[k].end, k + 1, True
    while right_hi < len(words) and words[right_hi] not in _RIGHT_BOUNDARIES:
        if j < len(observations) and observations[j].start == right_hi:
            if not (adjacent or (device and observations[j].lemma in DEVICE_LEMMAS)):
                break
            right_hi, j = observations[j].end, j + 1
            continue
        right_hi, adjacent = right_hi + 1, False
    return right_hi


def _anatomy_phrases(observations: list[_Obs], k: int, words: list[str]) -> list[frozenset[str]]:
    """Anatomy phrases of observation ``k`` (see module docstring); ``[∅]`` when none."""
    obs = observations[k]
    inside = _anatomy_runs(words, obs.start, obs.end)
    if inside:
        return [frozenset().union(*inside)]
    normal = obs.entity in _NORMALS
    device = obs.lemma in DEVICE_LEMMAS
    left = _anatomy_runs(words, _left_window(observations, k, words, normal), obs.start)
    right_hi = _right_window(observations, k, words, device)
    right = _anatomy_runs(words, obs.end, right_hi)
    located = [run for run in right if run & RULE_TOKENS]
    if device:  # located where its tip lies; its own laterality does not locate it
        own = [run for run in left if not run <= _DEVICE_SIDE_WORDS]
        return located + own if located else own or [frozenset()]
    locative_next = any(w in LOCATIVES for w in words[obs.end : min(obs.end + 3, right_hi)])
    if locative_next and located:
        return right
    return left or right or [frozenset()]


@lru_cache(maxsize=1)
def default_parser() -> ReportParser:
    """The process-wide parser (building the matcher takes ~0.5 s)."""
    return ReportParser()


def parse_report(text: str) -> list[Triplet]:
    """Triplets of one radiology report (see the module docstring)."""
    return default_parser().parse(text)
