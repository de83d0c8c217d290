"""SynthCXR: deterministic synthetic chest radiographs with reports, in official dataset formats.

Public API: :func:`medslip.synth.generate` (``generate(config_or_path, out_dir)``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["generate"]


def __getattr__(name: str) -> Any:  # lazy, so submodules import without the whole generator
    if name == "generate":
        from medslip.synth.generator import generate

        return generate
    raise AttributeError(name)
