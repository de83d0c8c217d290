"""Pretraining: the report x image join, the seeded resumable loop, checkpoints, benchmark."""
