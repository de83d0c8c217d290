"""The torch device a command's ``--device`` names, checked before any work (kept apart from
:mod:`medslip.flags` so that commands that run no model need no torch)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from medslip.errors import MedslipError
from medslip.flags import flag_name

if TYPE_CHECKING:
    import torch


def torch_device(value: str, dest: str = "device") -> torch.device:
    """The torch device a ``--device`` value names: ``auto`` is CUDA when there is one, else the
    CPU; a CUDA device on a machine without it, or a name torch does not know, is an error."""
    import torch

    if value == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(value)
    except (RuntimeError, ValueError):
        raise MedslipError(
            f"{flag_name(dest)} {value}: not a device (cpu, cuda, cuda:N or auto)"
        ) from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise MedslipError(
                f"{flag_name(dest)} {value}: this machine has no CUDA device torch can use; "
                "use --device cpu (or auto)"
            )
        if device.index is not None and device.index >= count:
            raise MedslipError(
                f"{flag_name(dest)} {value}: this machine has {count} CUDA device(s)"
            )
    elif device.type != "cpu":
        raise MedslipError(f"{flag_name(dest)} {value}: not a device (cpu, cuda, cuda:N or auto)")
    return device
