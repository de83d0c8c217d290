"""Pretraining: the report x image join (:mod:`.join`), the seeded resumable loop (:mod:`.loop`),
checkpoints and the learning-rate schedule."""
