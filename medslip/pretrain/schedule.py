"""The official effective learning-rate schedule (the official `Pretrain_MeDSLIP.yaml`,
`train_MeDSLIP.py` and `scheduler/`) and AdamW groups.

Epoch 0: warm-up from ``warmup_lr`` to ``lr`` over ``warmup_steps`` iterations in 5 equal stairs
(officially ``scheduler.step(i // 100)`` for i < 500), then ``lr`` for the rest of the epoch.
Epoch e >= 1: per-epoch cosine ``min_lr + (lr - min_lr) (1 + cos(pi e / epochs)) / 2``.
"""

from __future__ import annotations

import math

import torch

from medslip.settings import TrainSettings

WARMUP_STAIRS = 5


def learning_rate(settings: TrainSettings, epoch: int, step: int) -> float:
    """Learning rate of iteration ``step`` (0-based, within the epoch) of ``epoch``."""
    if epoch == 0:
        if step >= settings.warmup_steps:
            return settings.lr
        stair = step * WARMUP_STAIRS // settings.warmup_steps
        return settings.warmup_lr + (settings.lr - settings.warmup_lr) * stair / WARMUP_STAIRS
    cosine = 0.5 * (1 + math.cos(math.pi * epoch / settings.epochs))
    return settings.min_lr + (settings.lr - settings.min_lr) * cosine


def adamw(model: torch.nn.Module, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW with no weight decay on biases and other 1-D parameters (timm add_weight_decay)."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (no_decay if param.ndim <= 1 or name.endswith(".bias") else decay).append(param)
    groups = [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=lr)
