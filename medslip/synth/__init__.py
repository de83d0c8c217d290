"""SynthCXR: deterministic synthetic chest radiographs with reports, in official dataset formats."""

from medslip.synth.generate import generate

__all__ = ["generate"]
