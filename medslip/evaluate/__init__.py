"""Evaluations of the pretrained models: zero-shot classification (:mod:`.zeroshot`) and
zero-shot grounding (:mod:`.grounding`) on the published splits, their metrics
(:mod:`.metrics`), inputs (:mod:`.data`, :mod:`.truth`), outputs (:mod:`.report`, names in
:mod:`.files`) and speed (:mod:`.bench`)."""
