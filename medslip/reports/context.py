"""Negation, uncertainty and resolution cues with NegEx/ConText-style scope.

A *pre* cue governs the observations after it up to the next scope terminator; a *post* cue
governs the observations before it, back to the previous terminator, comma or copula (normal
entities such as "clear" are outside post-cue scope: "lungs are clear and pneumothorax is not
seen"). Resolution cues ("has resolved", "interval resolution of") are negations. When several cues
cover one observation the nearest pre cue wins, else the nearest post cue; *both* cues act either
way ("difficult to exclude"). A *link* cue ("concerning for", "to suggest") hedges only what
follows ("opacity concerning for pneumonia": the opacity is present), unless a negation covers it
("no opacity to suggest pneumonia": absent). *Pseudo* cues ("no change in") are matched only so
that their words are not read as cues.
"""

from __future__ import annotations

from dataclasses import dataclass

from medslip.vocab import ABSENT, PRESENT, UNCERTAIN


def _phrases(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(",") if p.strip())


CUES: dict[str, tuple[str, ...]] = {
    "NEG_PRE": _phrases(
        "no, not, without, negative for, free of, no evidence of, no signs of, no sign of,"
        " absence of, never, nor, neither, no new, no definite, no definitive,"
        " no convincing, no focal, no acute, no large, no significant, no obvious, no gross,"
        " no radiographic evidence of, there is no, there are no, rather than,"
        " resolution of, interval resolution of, removal of, interval removal of,"
        " no longer, clearing of, clear of, without evidence of, no findings of,"
        " no findings to suggest"
    ),
    "NEG_POST": _phrases(
        "not seen, not identified, not present, not evident, not visualized, not demonstrated,"
        " not appreciated, not definitely seen, not definitely identified, not clearly seen,"
        " not visible, not detected, not noted, not apparent, are absent,"
        " is absent, has resolved, have resolved, has cleared, have cleared,"
        " no longer seen, no longer visualized, no longer present, no longer evident,"
        " no longer identified, no longer apparent, has been removed, have been removed,"
        " were removed, was removed, removed, is excluded, are excluded, ruled out"
    ),
    "UNC_PRE": _phrases(
        "may, might, could, possible, possibly, probable, probably, likely, suspect, suspected,"
        " suspicion of, question of, question, questionable, suggest, suggests, consider,"
        " considered,"
        " cannot exclude, can not exclude, cannot rule out, can not rule out,"
        " differential, differential diagnosis includes,"
        " equivocal, indeterminate, presumed, presumably, perhaps, potential,"
        " potentially, uncertain, either, may represent, could represent, may be, could be,"
        " raises the possibility of, may reflect"
    ),
    "UNC_POST": _phrases(
        "cannot be excluded, can not be excluded, not excluded, cannot be ruled out,"
        " can not be ruled out, not ruled out, is possible, are possible, is suspected,"
        " are suspected, is not excluded, is questioned,"
        " is questionable, not entirely excluded, unlikely, less likely,"
        " is unlikely, are unlikely"
    ),
    "PSEUDO": _phrases(
        "no change, no interval change, no significant change, no significant interval change,"
        " without change, no increase, not only, no further, gram negative,"
        " not change, without interval change"
    ),
    "UNC_LINK": _phrases(
        "concerning for, concern for, suspicious for, suspicion for, worrisome for,"
        " suggestive of, suggesting, to suggest"
    ),
    "NEG_BOTH": _phrases("resolved"),
    # NegBio has no "versus" uncertainty pattern
    "UNC_BOTH": _phrases("or possibly, difficult to exclude"),
}
"""Cue kind → lower-case cue phrases (matched on tokens, longest match wins)."""

_TERMINATOR_WORDS = (
    "; : but however although though except which whereas while aside apart yet there"
    " otherwise nevertheless"
)
TERMINATORS: frozenset[str] = frozenset(_TERMINATOR_WORDS.split())
"""Tokens that end every cue's scope (besides the sentence end)."""

_COPULA_WORDS = "is are was were be been has have"
COPULAS: frozenset[str] = frozenset(_COPULA_WORDS.split())


@dataclass(frozen=True)
class Cue:
    """A matched cue: its kind and token span ``[start, end)`` within a sentence."""

    kind: str
    start: int
    end: int


def _ends_scope(word: str) -> bool:
    return word in TERMINATORS


def presence_of(
    obs_start: int, obs_end: int, words: list[str], cues: list[Cue], is_normal: bool
) -> str:
    """Presence of the observation at tokens ``[obs_start, obs_end)`` of a sentence.

    ``words`` are the sentence's lower-case tokens, ``cues`` its matched cues.
    """
    best_pre: Cue | None = None
    best_post: Cue | None = None
    for cue in cues:
        if cue.kind == "PSEUDO":
            continue
        if cue.end <= obs_start and not cue.kind.endswith("_POST"):
            if any(_ends_scope(w) for w in words[cue.end : obs_start]):
                continue
            if best_pre is None or cue.end > best_pre.end:
                best_pre = cue
        elif cue.start >= obs_end and cue.kind.endswith(("_POST", "_BOTH")) and not is_normal:
            between = words[obs_end : cue.start]
            # skip one copula / auxiliary right before the cue ("effusion is not seen")
            while between and between[-1] in COPULAS:
                between = between[:-1]
            if any(_ends_scope(w) or w == "," or w in COPULAS for w in between):
                continue
            if best_post is None or cue.start < best_post.start:
                best_post = cue
    if best_pre is not None and best_pre.kind == "UNC_LINK":
        # "no opacity concerning for pneumonia": a link inside a negation's scope is negated
        for cue in cues:
            negates = cue.kind in ("NEG_PRE", "NEG_BOTH") and cue.end <= best_pre.start
            if negates and not any(_ends_scope(w) for w in words[cue.end : obs_start]):
                return ABSENT
    cue = best_pre or best_post
    if cue is None:
        return PRESENT
    return ABSENT if cue.kind.startswith("NEG") else UNCERTAIN
