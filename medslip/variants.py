"""The registry of model variants: every pretrained model of the workflow and its traits.

One entry per variant (the ``{variant}`` wildcard). Model, training, evaluation, figures and tables
read the traits here; none of them compares variant names. The schema's variant enums are tied to
this registry by ``tests/test_variants.py``. Adding a variant takes one entry (and, for a new
architecture, its ``family`` in :func:`medslip.model.factory.create_model`). A variant with a
``source`` is a published checkpoint that the workflow imports (``medslip import-checkpoint``)
instead of training.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from medslip.errors import MedslipError

Family = Literal["medslip", "medklip", "global_clip"]
Task = Literal["zeroshot", "grounding"]


@dataclass(frozen=True)
class Variant:
    """One pretrained model of the workflow.

    ``family``: the architecture ``create_model`` builds (MeDSLIP's two streams, MedKLIP's
    pathology stream, or a global CLIP image embedding). ``switches``: MeDSLIP's loss and
    architecture switches (``disentangle``, ``protocl``, ``icl``; MeDSLIP family only).
    ``trained``: False for a model evaluated at its initialisation. ``not_applicable``: tasks the
    variant cannot do, with the reason the tables print (reported n/a, never faked). ``source``:
    where the weights of an imported variant come from (shown in every table row and model card);
    None for a model this workflow trains.
    """

    name: str
    family: Family
    description: str
    trained: bool = True
    switches: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    not_applicable: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    source: str | None = None

    @property
    def imported(self) -> bool:
        """Whether the weights are a published checkpoint (imported, never trained here); such a
        model reads the official text books (:data:`medslip.settings.OFFICIAL_TEXT`)."""
        return self.source is not None

    @property
    def weights(self) -> str:
        """Where the weights come from, as the tables and model cards say it."""
        return f"published: {self.source}" if self.imported else "trained by this workflow"

    @property
    def streams(self) -> tuple[str, ...]:
        """The token streams the image side has: pathology and anatomy, pathology, or none."""
        return {"medslip": ("pathology", "anatomy"), "medklip": ("pathology",)}.get(self.family, ())

    @property
    def has_anatomy_stream(self) -> bool:
        """Whether grounding can weight pathology maps by the anatomy stream (``use_ws_p``)."""
        return "anatomy" in self.streams

    @property
    def needs_report_embeddings(self) -> bool:
        """Whether pretraining contrasts images with whole-report embeddings (global CLIP)."""
        return self.family == "global_clip"

    @property
    def scores_by_similarity(self) -> bool:
        """Whether zero-shot scores are image-prompt similarities, not existence probabilities."""
        return self.family == "global_clip"

    def does(self, task: Task) -> bool:
        """Whether the variant can be evaluated on ``task`` (else ``not_applicable[task]``)."""
        return task not in self.not_applicable


def _switches(disentangle: bool = True, protocl: bool = True, icl: bool = True) -> MappingProxyType:
    return MappingProxyType({"disentangle": disentangle, "protocl": protocl, "icl": icl})


_NO_MAPS = "a global image embedding has no attention maps to ground with"
_REGISTRY = (
    Variant("medslip", "medslip", "MeDSLIP (dual stream, ProtoCL, ICL)", switches=_switches()),
    Variant(
        "medslip_no_protocl",
        "medslip",
        "MeDSLIP without prototypical contrastive learning",
        switches=_switches(protocl=False),
    ),
    Variant(
        "medslip_no_icl",
        "medslip",
        "MeDSLIP without intra-image contrastive learning",
        switches=_switches(icl=False),
    ),
    Variant(
        "medslip_no_disentangle",
        "medslip",
        "MeDSLIP with one shared stream for pathology and anatomy",
        switches=_switches(disentangle=False),
    ),
    Variant("medklip", "medklip", "MedKLIP (pathology stream only)"),
    Variant(
        "global_clip",
        "global_clip",
        "global CLIP baseline (image embedding vs report embedding)",
        not_applicable=MappingProxyType({"grounding": _NO_MAPS}),
    ),
    Variant(
        "random_init",
        "medslip",
        "the MeDSLIP architecture at its random initialisation (never trained)",
        trained=False,
        switches=_switches(),
        not_applicable=MappingProxyType(
            {"zeroshot": "an untrained model has no zero-shot head (reported n/a, not faked)"}
        ),
    ),
    Variant(
        "medslip_official",
        "medslip",
        "MeDSLIP, the authors' published checkpoint (imported)",
        switches=_switches(),
        source="Shef-AIRE/MeDSLIP release 7cfceb1 (weights: Hugging Face pykale/MeDSLIP)",
    ),
    Variant(
        "medklip_official",
        "medklip",
        "MedKLIP, the authors' published checkpoint (imported)",
        source="MediaBrain-SJTU/MedKLIP checkpoint_final.pth (its checkpoints/README.md)",
    ),
)

VARIANTS: MappingProxyType = MappingProxyType({v.name: v for v in _REGISTRY})
"""Every variant by name, in the workflow's order (tables, figures, colours)."""

VARIANT_NAMES: tuple[str, ...] = tuple(VARIANTS)


def variant(name: str) -> Variant:
    """The registry entry of ``name``; an unknown name is an error listing the known ones."""
    try:
        return VARIANTS[name]
    except KeyError:
        raise MedslipError(
            f"unknown model variant {name!r} (known: {', '.join(VARIANT_NAMES)})"
        ) from None


def variant_rank(name: str) -> int:
    """Sort key: registry order, unknown names after every known one."""
    return VARIANT_NAMES.index(name) if name in VARIANTS else len(VARIANT_NAMES)
