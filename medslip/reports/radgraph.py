"""RadGraph annotations (``MIMIC-CXR_graphs.json`` layout) → triplets, by the official
preprocessing's rules.

Layout: ``{"pXX/pXXXXXXXX/sXXXXXXXX.txt": {"text": "...", "entities": {"1": {"tokens": "lungs",
"label": "ANAT-DP", "start_ix": 5, "end_ix": 5, "relations": [["located_at", "2"], ...]}, ...}},
...}``; ``start_ix``/``end_ix`` index the whitespace tokens of ``text``.

Rules (the official `PreTrain_MeDSLIP/data_file/preprocessing/` scripts, ``radgraph_parsed.py`` and
``adj_matrix.py``), per sentence:

* anatomy = an ``ANAT-DP`` entity without relations (a head) joined with the ``ANAT-DP`` entities
  that ``modify`` it, as ``"lobe|left|lower"``, then mapped to a landmark by the ordered rules;
* observations = ``OBS-DP`` / ``OBS-DA`` / ``OBS-U`` entities ``located_at`` an anatomy entity
  (a modifier stands for its head); an observation with no relation gets ``unspecified``;
  observations whose only relations are ``modify`` / ``suggestive_of`` (modifiers) are not used;
* presence: ``OBS-DP`` present, ``OBS-DA`` absent, ``OBS-U`` uncertain; ``OBS-NA`` is dropped;
* the observation tokens are lemmatised through the lexicon, normalised and grouped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

from medslip.errors import MedslipError
from medslip.labels import Triplet
from medslip.reports.landmarks import landmark_for
from medslip.reports.lexicon import SURFACE_LEMMAS, entity_for_lemma
from medslip.reports.readers import Skipped
from medslip.vocab import ABSENT, PRESENT, UNCERTAIN

PRESENCE = {"OBS-DP": PRESENT, "OBS-DA": ABSENT, "OBS-U": UNCERTAIN}
_STUDY = re.compile(r"s(\d+)\.txt$")  # MIMIC study id as the manifest spells it: digits


def lemma_of(tokens: str) -> str:
    """Lemma of an observation's tokens via the lexicon (crude plural stripping otherwise)."""
    phrase = " ".join(tokens.lower().split())
    if phrase in SURFACE_LEMMAS:
        return SURFACE_LEMMAS[phrase]
    last = phrase.split(" ")[-1] if phrase else phrase
    if last in SURFACE_LEMMAS:
        return SURFACE_LEMMAS[last]
    return last[:-1] if last.endswith("s") and not last.endswith("ss") else last


def graph_triplets(text: str, entities: dict) -> list[Triplet]:
    """Triplets of one annotated report."""
    words = text.split(" ")
    sentence_of, offsets, sentence, pos = [], [], 0, 0
    for w in words:
        sentence_of.append(sentence)
        offsets.append(pos)
        pos += len(w) + 1
        if w in (".", "?", "!") or w.endswith("."):
            sentence += 1

    def sent(e: dict) -> int:
        return sentence_of[min(int(e["start_ix"]), len(words) - 1)] if words else 0

    head_of: dict[str, str] = {}
    parts: dict[str, list[str]] = {}
    for key, e in entities.items():
        if e.get("label") == "ANAT-DP" and not e.get("relations"):
            head_of[key] = key
            parts[key] = [e["tokens"].lower()]
    for key, e in entities.items():
        if e.get("label") == "ANAT-DP":
            for rel, target in e.get("relations") or []:
                if rel == "modify" and target in parts and key not in head_of:
                    head_of[key] = target
                    parts[target].append(e["tokens"].lower())
                    break
    out: list[Triplet] = []
    for e in entities.values():
        presence = PRESENCE.get(e.get("label"))
        if presence is None:
            continue
        relations = e.get("relations") or []
        anchors = [head_of[t] for rel, t in relations if rel == "located_at" and t in head_of]
        if relations and not anchors:
            continue  # an observation modifier (modify / suggestive_of): not used
        anatomies = ["|".join(parts[a]) for a in anchors] or ["unspecified"]
        lemma = lemma_of(e["tokens"])
        i, j = int(e["start_ix"]), int(e["end_ix"])
        start = offsets[i] if i < len(offsets) else 0
        end = offsets[j] + len(words[j]) if j < len(offsets) else start
        for anatomy in anatomies:
            out.append(
                Triplet(
                    entity_for_lemma(lemma),
                    landmark_for(anatomy),
                    presence,
                    sent(e),
                    start,
                    end,
                    lemma,
                )
            )
    out.sort(key=lambda t: (t.sentence, t.start, t.anatomy))
    return out


def read_radgraph(path: str | Path) -> Iterator[tuple[str, list[Triplet]] | Skipped]:
    """(study id, triplets) per report of a RadGraph JSON, or ``Skipped`` for a bad entry."""
    path = Path(path)
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise MedslipError(f"{path}: cannot read RadGraph JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise MedslipError(f"{path}: expected a JSON object keyed by report path")
    for key in sorted(data):
        match = _STUDY.search(key)
        rid = match.group(1) if match else key
        entry = data[key]
        try:
            yield rid, graph_triplets(entry["text"], entry["entities"])
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            yield Skipped(rid, f"{path}:{key}", f"malformed RadGraph entry ({exc!r})")
