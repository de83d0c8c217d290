"""Typed settings objects built from a validated config (the schema owns every default).

Modules take these objects; none of their fields has a default of its own. ``from_config``
resolves the selected preset (``config["preset"]`` in ``config["presets"]``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from medslip.errors import MedslipError
from medslip.variants import variant as get_variant

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
    memory_norm: bool
    init_std: float
    positions: str

    @classmethod
    def from_config(cls, config: dict[str, Any], variant: str) -> ModelSettings:
        get_variant(variant)
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
    exclude_class: bool
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


OFFICIAL_TEXT: dict[str, Any] = {
    "pooling": "cls",
    "max_length": 128,
    "eval_max_length": 64,
    "anatomy_template": "It is located at {landmark}. ",
}
"""The text side the published checkpoints were trained and tested with (Shef-AIRE/MeDSLIP
``PreTrain_MeDSLIP/train_MeDSLIP.py`` and ``models/model_MeDSLIP.py``: the [CLS] vector of
Bio_ClinicalBERT, prompts tokenized to 128; the zero-shot test scripts: 64). MedKLIP's anatomy
prompts lack the trailing ". ", but only its training loss reads them, so one set of books
serves both imported families. Encoder and descriptions come from ``text.encoder`` and
``text.descriptions``."""

BIO_CLINICALBERT = "emilyalsentzer/Bio_ClinicalBERT"
"""The text encoder of both papers (Hugging Face hub name)."""


def official_text_problems(config: dict[str, Any]) -> list[str]:
    """Why the official text books cannot be built from ``config`` (one line each; empty when
    they can): the published weights need a local Bio_ClinicalBERT and the official entity
    descriptions, and nothing is downloaded at run time."""
    problems = []
    if config["text"]["encoder"] is None:
        problems.append(
            f"text.encoder: imported checkpoints need the [CLS] embeddings of {BIO_CLINICALBERT}, "
            "and text.encoder is null (the bundled all-MiniLM-L6-v2). On a machine with internet "
            f"run `hf download {BIO_CLINICALBERT} --local-dir DIR`, copy DIR here and set "
            "text.encoder: DIR"
        )
    if config["text"]["descriptions"] is None:
        problems.append(
            "text.descriptions: imported checkpoints need the official entity descriptions; set "
            "it to `observation explanation.json` of Shef-AIRE/MeDSLIP "
            "(PreTrain_MeDSLIP/data_file/) or MediaBrain-SJTU/MedKLIP (PreTrain_MedKLIP/data_file/)"
        )
    return problems


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

    @classmethod
    def official(cls, config: dict[str, Any]) -> TextSettings:
        """The books imported checkpoints read: ``text.encoder`` and ``text.descriptions`` of
        ``config`` with :data:`OFFICIAL_TEXT`; an error saying what to set when they are null."""
        problems = official_text_problems(config)
        if problems:
            raise MedslipError("; ".join(problems))
        text = config["text"]
        return cls(encoder=text["encoder"], descriptions=text["descriptions"], **OFFICIAL_TEXT)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class EvalSettings:
    """Config ``evaluate`` as one evaluation job reads it (the schema owns every default).

    ``seed``: the bootstrap seed (``evaluate.seed``, else the top-level ``seed``).
    ``entity_maps``: class -> entity of the datasets asked for only; ``grounding``:
    ``evaluate.grounding`` when asked for, else empty (so a job depends on what it uses).
    """

    bootstrap: int
    seed: int
    batch_size: int
    workers: int
    entity_maps: dict[str, dict[str, str]]
    grounding: dict[str, Any]

    @classmethod
    def from_config(
        cls, config: dict[str, Any], datasets: tuple[str, ...] = (), grounding: bool = False
    ) -> EvalSettings:
        block = config["evaluate"]
        seed = block["seed"] if block["seed"] is not None else config["seed"]
        maps = block["entity_maps"]
        return cls(
            bootstrap=block["bootstrap"],
            seed=seed,
            batch_size=block["batch_size"],
            workers=block["workers"],
            entity_maps={d: dict(maps[d]) for d in datasets if d in maps},
            grounding=dict(block["grounding"]) if grounding else {},
        )


PROBE_PARTS = ("train", "val", "test")
"""The three parts of the probe's patients (config ``evaluate.probe.fractions``)."""


@dataclass(frozen=True)
class ProbeSettings:
    """Config ``evaluate.probe`` (the schema owns every default)."""

    fractions: tuple[float, float, float]  # probe train, val, test (of the patients)
    c_grid: tuple[float, ...]  # ascending
    min_positives: int

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ProbeSettings:
        block = config["evaluate"]["probe"]
        fractions = tuple(float(block["fractions"][p]) for p in PROBE_PARTS)
        return cls(fractions, tuple(sorted(block["c_grid"])), int(block["min_positives"]))


@dataclass(frozen=True)
class FinetuneSettings:
    """Config ``finetune`` (the schema owns every default) plus the bootstrap of ``evaluate``;
    ``classes`` holds the class list of the dataset asked for only."""

    epochs: int
    patience: int | None
    batch_size: int
    lr: float
    weight_decay: float
    image_size: int | None
    use_base: bool
    augment: bool
    crop_scale: tuple[float, float]
    seg_dropout: float
    seg_threshold: float
    classes: dict[str, list[str]]
    workers: int
    bootstrap: int
    bootstrap_seed: int
    master_seed: int

    @classmethod
    def from_config(cls, config: dict[str, Any], dataset: str) -> FinetuneSettings:
        block, evaluate = config["finetune"], config["evaluate"]
        classes = block["classes"]
        return cls(
            epochs=block["epochs"],
            patience=block["patience"],
            batch_size=block["batch_size"],
            lr=block["lr"],
            weight_decay=block["weight_decay"],
            image_size=block["image_size"],
            use_base=block["use_base"],
            augment=block["augment"],
            crop_scale=tuple(block["crop_scale"]),
            seg_dropout=block["seg_dropout"],
            seg_threshold=block["seg_threshold"],
            classes={dataset: list(classes[dataset])} if dataset in classes else {},
            workers=block["workers"],
            bootstrap=evaluate["bootstrap"],
            bootstrap_seed=evaluate["seed"] if evaluate["seed"] is not None else config["seed"],
            master_seed=config["seed"],
        )


@dataclass(frozen=True)
class OverlaySettings:
    """Config ``figures`` as the grounding-overlays figure reads it."""

    count: int
    seed: int

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> OverlaySettings:
        block = config["figures"]
        return cls(count=block["overlay_count"], seed=block["overlay_seed"])
