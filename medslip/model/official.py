"""The state-dict layout of the published MeDSLIP and MedKLIP checkpoints, mapped onto ours.

Read from the official model files (facts, no code): MeDSLIP
``PreTrain_MeDSLIP/models/model_MeDSLIP.py`` (Shef-AIRE/MeDSLIP @ 7cfceb1), MedKLIP
``PreTrain_MedKLIP/models/model_MedKLIP.py`` (MediaBrain-SJTU/MedKLIP @ 8e60b03), and the DETR
decoder ``models/transformer.py`` of both (``nn.MultiheadAttention`` parameters, as ours). The
checkpoint of ``train_MeDSLIP.py`` / ``train_MedKLIP.py`` is a dict with ``model`` (the
DistributedDataParallel state dict), ``optimizer``, ``lr_scheduler``, ``config`` (the YAML config)
and ``epoch``. Differences from :mod:`medslip.model.streams` (:data:`RENAMES`, :data:`SHARED`):

- every key starts with ``module.`` (DDP);
- ``res_features`` is ``nn.Sequential(*list(resnet50.children())[:-3])``, so the trunk's
  children are numbered: 0 conv1, 1 bn1, 4 layer1, 5 layer2, 6 layer3 (2 relu and 3 maxpool
  have no parameters);
- MeDSLIP builds its two decoders with one LayerNorm object, so its state dict holds that norm
  twice, as ``decoder_pathology.norm.*`` and ``decoder_anatomy.norm.*`` (equal tensors); ours
  holds it once, as ``decoder_norm.*``.

Every other key has the same name and shape in both layouts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from medslip.errors import MedslipError
from medslip.settings import ModelSettings

DDP_PREFIX = "module."
"""Prefix of every key of a state dict saved from a DistributedDataParallel model."""

_TRUNK = {
    "res_features.0.": "res_features.conv1.",
    "res_features.1.": "res_features.bn1.",
    "res_features.4.": "res_features.layer1.",
    "res_features.5.": "res_features.layer2.",
    "res_features.6.": "res_features.layer3.",
}
RENAMES: dict[str, dict[str, str]] = {
    "medslip": _TRUNK
    | {"decoder_pathology.norm.": "decoder_norm.", "decoder_anatomy.norm.": "decoder_norm."},
    "medklip": dict(_TRUNK),
}
"""Per family, official key prefix (after ``module.``) -> our prefix; unlisted keys keep their
name."""

SHARED: dict[str, tuple[str, ...]] = {
    "medslip": ("decoder_pathology.norm.", "decoder_anatomy.norm."),
    "medklip": (),
}
"""Per family, official prefixes that alias one module of ours (the shared final LayerNorm):
they must hold equal tensors."""

FAMILY_KEYS: dict[str, str] = {
    "medslip": "pathology_embedding_layer.weight",
    "medklip": "disease_embedding_layer.weight",
}
"""A key (after ``module.``) that only the family's checkpoints hold: the query projection."""

CHECKPOINT_KEYS = ("model", "optimizer", "lr_scheduler", "config", "epoch")
"""Entries of an official training checkpoint."""


def strip_ddp(key: str) -> str:
    """``module.res_l1.weight`` -> ``res_l1.weight`` (a key without the prefix is kept)."""
    return key.removeprefix(DDP_PREFIX)


def to_ours(key: str, family: str) -> str:
    """Our name of an official key (with or without ``module.``)."""
    key = strip_ddp(key)
    for official, ours in RENAMES[family].items():
        if key.startswith(official):
            return ours + key[len(official) :]
    return key


def to_official(state: Mapping[str, Tensor], family: str) -> dict[str, Tensor]:
    """Our state dict in the official layout: ``module.`` keys, the numbered trunk, and the
    shared norm under each of its official names (the inverse of :func:`to_ours`)."""
    out: dict[str, Tensor] = {}
    for key, tensor in state.items():
        names = [
            official + key[len(ours) :]
            for official, ours in RENAMES[family].items()
            if key.startswith(ours)
        ]
        for name in names or [key]:
            out[DDP_PREFIX + name] = tensor
    return out


def family_of(keys: list[str]) -> str | None:
    """The family whose :data:`FAMILY_KEYS` entry the (official) keys hold, None for neither."""
    stripped = {strip_ddp(k) for k in keys}
    found = [family for family, key in FAMILY_KEYS.items() if key in stripped]
    return found[0] if len(found) == 1 else None


def map_state(state: Mapping[str, Tensor], family: str, path: str) -> dict[str, Tensor]:
    """An official state dict under our names; the aliases of a shared module must be equal
    (an error naming them otherwise)."""
    out: dict[str, Tensor] = {}
    source: dict[str, str] = {}
    for key, tensor in state.items():
        name = to_ours(key, family)
        if name in out and not out[name].equal(tensor):
            raise MedslipError(
                f"{path}: {source[name]} and {key} differ, but the official model shares one "
                f"module there ({', '.join(SHARED[family])})"
            )
        out[name], source[name] = tensor, key
    return out


def official_checkpoint(
    model: nn.Module, family: str, settings: ModelSettings, epoch: int = 99
) -> dict[str, Any]:
    """A training checkpoint of ``model`` as the official scripts save it (for tests and
    benchmarks): ``model`` in the official layout (:func:`to_official`), an AdamW ``optimizer``
    state with moments of every parameter, an ``lr_scheduler`` state, the architecture entries
    of the official ``config`` (``Pretrain_MeDSLIP.yaml`` names) and ``epoch``."""
    generator = torch.Generator().manual_seed(epoch)
    params = list(model.parameters())
    moments = {
        i: {
            "step": torch.tensor(float(epoch + 1)),
            "exp_avg": torch.randn(p.shape, generator=generator) * 1e-3,
            "exp_avg_sq": torch.rand(p.shape, generator=generator) * 1e-6,
        }
        for i, p in enumerate(params)
    }
    group = {"lr": 1e-5, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.02}
    config = {
        "image_res": settings.image_size,
        "d_model": settings.d_model,
        "res_base_model": "resnet50",
        "dropout": settings.dropout,
        "attribute_set_size": 2,
        "N": settings.n_layers,
        "H": settings.n_heads,
        "text_encoder": "emilyalsentzer/Bio_ClinicalBERT",
        "optimizer": {"opt": "adamW", "lr": 1e-4, "weight_decay": 0.02},
    }
    return {
        "model": to_official(model.state_dict(), family),
        "optimizer": {
            "state": moments,
            "param_groups": [group | {"amsgrad": False, "params": list(range(len(params)))}],
        },
        "lr_scheduler": {"t_initial": 100, "lr_min": 1e-5, "warmup_t": 5, "base_values": [1e-4]},
        "config": config,
        "epoch": epoch,
    }
