"""Build the model of a variant from :class:`~medslip.settings.ModelSettings`."""

from __future__ import annotations

from torch import Tensor

from medslip.errors import MedslipError
from medslip.model.streams import BookModel, GlobalCLIP, MedKLIP, MeDSLIP
from medslip.settings import ModelSettings
from medslip.variants import variant


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
    entry = variant(settings.variant)
    if entry.family == "medslip":
        return MeDSLIP(settings, text_dim, pathology_books, anatomy_books, **entry.switches)
    if entry.family == "medklip":
        return MedKLIP(settings, text_dim, pathology_books, anatomy_books)
    if clip_temperature is None:
        raise MedslipError(f"{entry.name}: create_model needs clip_temperature (train config)")
    return GlobalCLIP(settings, text_dim, pathology_books, anatomy_books, clip_temperature)
