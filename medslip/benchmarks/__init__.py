"""Benchmarks and scores that need more than one of ``synth``, ``reports`` and ``data`` (which
never import each other): the layer above them, below the commands.

``reports``: report-labelling accuracy (IU X-ray, SynthCXR) and parsing speed.
"""
