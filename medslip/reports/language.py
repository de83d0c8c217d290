"""A cheap check that a report is written in English (the parser reads English only).

Three signals on the words of the sections the parser reads, with no language model: the share
of letters that are not ASCII (Japanese, Greek, Cyrillic ... and accent-heavy text), function
words of other European languages (``der``, ``und``, ``avec``, ``con`` ...) outnumbering the
English words, and too few words that are English function words or words the parser knows
(its observation lexicon, anatomy and context cues). A report it flags is skipped with the
reason, never labelled.
"""

from __future__ import annotations

import re
from functools import cache

_WORD = re.compile(r"[^\W\d_]+")
MIN_ASCII_SHARE = 0.9
"""Below this share of ASCII letters among a report's letters it is not English."""
MIN_KNOWN_SHARE = 0.25
"""Below this share of English words among a report's words (of 3 or more) it is not English."""

_ENGLISH_WORDS = """
    a about above after again along also an and any are as at be been being below beneath
    between both but by can cannot could did does during each either for from had has have
    here however if in into is it its may might more most much near new no none nor not now
    of off old on one only or other otherwise over per prior since so some still such than
    that the their there these this those through to too two under unchanged up upon very
    was were what when where whereas which while with within without yet
    abdomen apparent appearance appears artifact bilateral body bones cardiomediastinal
    change changes chest compared comparison contour contours demonstrate demonstrated exam
    examination film frontal heart image interval lateral left limits lung lungs mild
    minimal moderate noted patient portable position pulmonary radiograph right seen severe
    silhouette size slightly small stable study suggest suggests tissue upright vascular
    vascularity view views visualized volume volumes well within
"""
ENGLISH_WORDS = frozenset(_ENGLISH_WORDS.split())
"""English function words and common words of chest X-ray reports (with :func:`known_words`
the parser's own vocabulary)."""

_OTHER_WORDS = """
    der das und ist im mit nicht kein keine keiner eine einer eines dem den zu von vom zum zur
    bei auf aus sind wird wurde links rechts beidseits oder ohne
    les une est du au aux avec sans dans pour pas sur leur sont ni ou
    los las del una con sin para por sobre muy también
    il della delle degli nel nella di sono senza
    het een van geen niet zijn
    não com sem uma
"""
OTHER_FUNCTION_WORDS = frozenset(_OTHER_WORDS.split())
"""Function words of German, French, Spanish, Italian, Dutch and Portuguese that are not
English words (``la``, ``de``, ``et``, ``non`` are left out: radiology English uses them)."""


@cache
def known_words() -> frozenset[str]:
    """:data:`ENGLISH_WORDS` and every word of the parser's lexicon, anatomy and cue lists."""
    from medslip.reports.context import COPULAS, CUES, TERMINATORS
    from medslip.reports.lexicon import SURFACE_LEMMAS
    from medslip.reports.parse import ANATOMY_WORDS

    words = set(ENGLISH_WORDS) | ANATOMY_WORDS | TERMINATORS | COPULAS
    for phrase in [*SURFACE_LEMMAS, *(p for cue in CUES.values() for p in cue)]:
        words.update(_WORD.findall(phrase.lower()))
    return frozenset(words - OTHER_FUNCTION_WORDS)


def not_english(text: str) -> str | None:
    """Why ``text`` (the sections the parser reads) is not English, or None when it may be."""
    letters = [c for c in text if c.isalpha()]
    if len(letters) >= 8:
        foreign = sum(not c.isascii() for c in letters)
        if foreign > (1 - MIN_ASCII_SHARE) * len(letters):
            return f"not English: {foreign} of its {len(letters)} letters are not ASCII"
    words = [w for w in _WORD.findall(text.lower()) if len(w) > 1]
    english = sum(w in known_words() for w in words)
    other = [w for w in words if w in OTHER_FUNCTION_WORDS]
    if len(other) >= 2 and len(other) >= english:
        shown = ", ".join(sorted(set(other))[:4])
        return f"not English: {len(other)} words of another language ({shown}), {english} English"
    if len(words) >= 3 and english < MIN_KNOWN_SHARE * len(words):
        return f"not English: {english} of its {len(words)} words are English words"
    return None
