"""The part of the config each workflow job reads, derived from the settings objects it builds.

A rule hands its job exactly what the job's settings constructors read (``JOB_READERS``), as
inline JSON in Snakemake ``params``: the job validates it (the schema fills nothing it uses), and
a changed key reruns exactly the jobs that read it. Nothing here is a hand-kept key list: the
readers run on a recording view of the config, and the keys they touch are the hand-off.

Standard library only: the Snakefile imports it without medslip's dependencies.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from typing import Any

from medslip.settings import (
    EvalSettings,
    FinetuneSettings,
    ModelSettings,
    OverlaySettings,
    ProbeSettings,
    TextSettings,
    TrainSettings,
)

JOB_READERS: dict[str, Callable[..., Any]] = {
    "synth": lambda config: dict(config["synthcxr"]),
    "text_books": TextSettings.from_config,
    "text_books_official": TextSettings.official,
    "pretrain": lambda config, variant: (
        config["seed"],
        ModelSettings.from_config(config, variant),
        TrainSettings.from_config(config),
        TextSettings.from_config(config),
    ),
    "evaluate_zeroshot": lambda config, dataset: EvalSettings.from_config(config, (dataset,)),
    "evaluate_grounding": lambda config, dataset: EvalSettings.from_config(
        config, (dataset,), grounding=True
    ),
    "evaluate_grounding_controls": lambda config, dataset: (
        EvalSettings.from_config(config, (dataset,), grounding=True),
        ModelSettings.from_config(config, "medslip").image_size,
        TrainSettings.from_config(config),  # a preset is handed whole (the schema needs both)
    ),
    "evaluate_probe": lambda config: (
        EvalSettings.from_config(config),
        ProbeSettings.from_config(config),
    ),
    "finetune": FinetuneSettings.from_config,
    "figure_grounding_overlays": lambda config, dataset: (
        EvalSettings.from_config(config, (dataset,), grounding=True),
        OverlaySettings.from_config(config),
    ),
}
"""Per job kind: what the job builds from its config (the settings its command constructs),
called with the config and the job's wildcards (``variant``, ``dataset``)."""

_WHOLE = "whole"


class _Recording(dict):
    """A view of a config mapping that logs, by key path, what a reader reads: a leaf value, or
    a whole mapping when it is iterated (``dict(view)``, ``.items()``, ...)."""

    def __init__(self, data: dict, path: tuple, log: dict[tuple, str]) -> None:
        super().__init__(data)
        self._path, self._log = path, log

    def __getitem__(self, key: Any) -> Any:
        value = super().__getitem__(key)
        path = (*self._path, key)
        if isinstance(value, dict):
            self._log.setdefault(path, "touched")
            return _Recording(value, path, self._log)
        self._log[path] = _WHOLE
        return value

    def get(self, key: Any, default: Any = None) -> Any:
        return self[key] if key in self else default  # noqa: SIM401 - self[key] records

    def _whole(self) -> None:
        self._log[self._path] = _WHOLE

    def __iter__(self) -> Iterator:
        self._whole()
        return super().__iter__()

    def keys(self):
        self._whole()
        return super().keys()

    def items(self):
        self._whole()
        return super().items()

    def values(self):
        self._whole()
        return super().values()


def _lookup(config: dict, path: tuple) -> Any:
    node = config
    for key in path:
        node = node[key]
    return node


def job_config(config: dict[str, Any], job: str, **wildcards: str) -> dict[str, Any]:
    """The part of the validated ``config`` that job kind ``job`` reads for ``wildcards``: every
    value its reader read, and every mapping it iterated (a mapping only passed through, or
    only asked whether it holds a key, is not handed on: the job's schema defaults fill it)."""
    log: dict[tuple, str] = {}
    JOB_READERS[job](_Recording(config, (), log), **wildcards)
    out: dict[str, Any] = {}
    read = sorted((path for path, how in log.items() if how == _WHOLE), key=len)
    for path in read:
        node = out
        for key in path[:-1]:
            node = node.setdefault(key, {})
        if path[-1] not in node:  # else inside a mapping already handed on whole
            node[path[-1]] = copy.deepcopy(_lookup(config, path))
    return out


def job_config_json(config: dict[str, Any], job: str, **wildcards: str) -> str:
    """:func:`job_config` as the JSON object a command's ``--config`` takes (sorted keys)."""
    return json.dumps(job_config(config, job, **wildcards), sort_keys=True)
