"""Typed settings objects built from a validated config (the schema owns every default).

Modules take these objects; none of their fields has a default of its own. ``from_config``
resolves the selected preset (``config["preset"]`` in ``config["presets"]``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from medslip.errors import MedslipError

VARIANTS: tuple[str, ...] = (
    "medslip",
    "medslip_no_protocl",
    "medslip_no_icl",
    "medslip_no_disentangle",
    "medklip",
    "global_clip",
    "random_init",
)
"""Every pretrained model of the workflow (the ``{variant}`` wildcard)."""


STRIDE = 16
"""Output stride of the image trunk: one visual token per 16 × 16 pixels of the model input
((B, 3, H, W) -> (B, C, H / 16, W / 16))."""


def preset(config: dict[str, Any]) -> dict[str, Any]:
    """The selected preset block ``{"model": {...}, "train": {...}}`` of a validated config."""
    name = config["preset"]
    if name not in config["presets"]:
        known = ", ".join(sorted(config["presets"]))
        raise MedslipError(f"preset: {name!r} is not defined under presets (known: {known})")
    return config["presets"][name]


@dataclass(frozen=True)
class ModelSettings:
    """Architecture of one variant (config ``presets.<preset>.model`` plus the variant)."""

    variant: str
    image_size: int
    trunk_layers: tuple[int, int, int]
    trunk_width: int
    trunk_init: str
    d_model: int
    n_layers: int
    n_heads: int
    d_ffn: int
    dropout: float
    mask_activation: str

    @classmethod
    def from_config(cls, config: dict[str, Any], variant: str) -> ModelSettings:
        if variant not in VARIANTS:
            raise MedslipError(f"unknown model variant {variant!r} (known: {', '.join(VARIANTS)})")
        block = dict(preset(config)["model"])
        block["trunk_layers"] = tuple(block["trunk_layers"])
        return cls(variant=variant, **block)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TrainSettings:
    """Pretraining recipe (config ``presets.<preset>.train``)."""

    batch_size: int
    grad_accum: int
    epochs: int
    lr: float
    min_lr: float
    warmup_lr: float
    warmup_steps: int
    weight_decay: float
    alpha: float
    beta: float
    n_negatives: int
    clip_temperature: float
    uncertain: str
    flip_swaps_laterality: bool
    crop_scale: tuple[float, float]
    compile: bool
    cpu_threads: int
    workers: int
    gpus: int
    mem_mb: int
    runtime_min: int

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> TrainSettings:
        block = dict(preset(config)["train"])
        block["crop_scale"] = tuple(block["crop_scale"])
        return cls(**block)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TextSettings:
    """The frozen text encoder and prompts (config ``text``)."""

    encoder: str | None
    pooling: str
    max_length: int
    eval_max_length: int | None
    descriptions: str | None
    anatomy_template: str

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> TextSettings:
        return cls(**config["text"])

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
