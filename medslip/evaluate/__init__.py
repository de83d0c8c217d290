"""Evaluations of the pretrained models: zero-shot classification (:mod:`.zeroshot`), zero-shot
grounding (:mod:`.grounding`) and the disentanglement probe (:mod:`.probe`) on the published
splits, their scores and intervals (:mod:`.scores`), inputs (:mod:`.inputs`, :mod:`.truth`) and
outputs (:mod:`.report`; names in :mod:`medslip.layout`)."""
