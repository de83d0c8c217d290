"""Models of the pipeline: image trunk, query decoders, MeDSLIP/MedKLIP/global-CLIP and losses.

Entry point: :func:`create_model` (``factory``); every model returns a :class:`ModelOutput`.
"""

from medslip.model.factory import create_model
from medslip.model.streams import ModelOutput

__all__ = ["ModelOutput", "create_model"]
