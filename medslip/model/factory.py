"""Build the model of a variant from :class:`~medslip.settings.ModelSettings`."""

from __future__ import annotations

from torch import Tensor

from medslip.errors import MedslipError
from medslip.model.streams import BookModel, GlobalCLIP, MedKLIP, MeDSLIP
from medslip.settings import VARIANTS, ModelSettings

MEDSLIP_SWITCHES: dict[str, dict[str, bool]] = {
    "medslip": {"disentangle": True, "protocl": True, "icl": True},
    "random_init": {"disentangle": True, "protocl": True, "icl": True},
    "medslip_no_protocl": {"disentangle": True, "protocl": False, "icl": True},
    "medslip_no_icl": {"disentangle": True, "protocl": True, "icl": False},
    "medslip_no_disentangle": {"disentangle": False, "protocl": True, "icl": True},
}
"""The MeDSLIP-architecture variants and their switches (``random_init`` is never trained)."""


def create_model(
    settings: ModelSettings,
    text_dim: int,
    pathology_books: Tensor,
    anatomy_books: Tensor,
    clip_temperature: float | None = None,
) -> BookModel:
    """The model of ``settings.variant``; books: pathology (75, text_dim), anatomy (51,
    text_dim). ``clip_temperature`` (config ``train.clip_temperature``) is required by
    ``global_clip`` only. Initialisation draws from torch's global RNG: seed it first.
    """
    variant = settings.variant
    if variant in MEDSLIP_SWITCHES:
        switches = MEDSLIP_SWITCHES[variant]
        return MeDSLIP(settings, text_dim, pathology_books, anatomy_books, **switches)
    if variant == "medklip":
        return MedKLIP(settings, text_dim, pathology_books, anatomy_books)
    if variant == "global_clip":
        if clip_temperature is None:
            raise MedslipError("global_clip: create_model needs clip_temperature (train config)")
        return GlobalCLIP(settings, text_dim, pathology_books, anatomy_books, clip_temperature)
    raise MedslipError(f"unknown model variant {variant!r} (known: {', '.join(VARIANTS)})")
