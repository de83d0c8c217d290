"""Load and validate workflow configuration against ``workflow/schemas/config.schema.yaml``.

The same schema file is used by Snakemake (``workflow/rules/common.smk``) and by
``medslip check-config``, so the two can never disagree.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from medslip.datasets import data_sources
from medslip.errors import MedslipError
from medslip.settings import official_text_problems
from medslip.variants import VARIANTS

SCHEMA_PATH = Path(__file__).parent / "schemas" / "config.schema.yaml"
"""The schema: in a checkout a link to ``workflow/schemas/config.schema.yaml``, in a wheel the file
itself (pyproject.toml's package data), so a non-editable install validates configs too."""


class ConfigError(MedslipError, ValueError):
    """A configuration that fails validation; the message names the key and the problem."""


def load_schema() -> dict[str, Any]:
    """The config JSON Schema as a dict."""
    with open(SCHEMA_PATH) as fh:
        return yaml.safe_load(fh)


def _with_defaults(validator_class: type) -> type:
    """Extend a jsonschema validator so it fills ``default`` values into the instance."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if "default" in subschema and name not in instance:
                    instance[name] = _copy(subschema["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


def _copy(value: Any) -> Any:
    return yaml.safe_load(yaml.safe_dump(value))


def _key(path: Iterator[Any]) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


def _input_path_keys(schema: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> Iterator[tuple]:
    for name, sub in schema.get("properties", {}).items():
        if sub.get("x-input-path"):
            yield (*prefix, name)
        yield from _input_path_keys(sub, (*prefix, name))


def _pct(fraction: float) -> str:
    return f"{fraction * 100:g}"


def cross_key_errors(config: dict[str, Any]) -> list[str]:
    """What the schema cannot say of a whole (validated) config: keys that must agree with each
    other. One line per problem, naming the key; empty when the config is consistent."""
    errors = []
    if config["preset"] not in config["presets"]:
        known = ", ".join(sorted(config["presets"]))
        errors.append(f"preset: {config['preset']!r} is not defined under presets (known: {known})")
    trained = config["pretrain"]["variants"]
    errors += _external_errors(config)
    evaluated = config["evaluate"]["variants"] or trained
    for key, chosen in (("evaluate", evaluated), ("finetune", config["finetune"]["variants"])):
        missing = [v for v in chosen or () if v not in trained]
        if missing:
            errors.append(f"{key}.variants: {missing} are not in pretrain.variants {trained}")
    published = {_pct(f) for f in config["data"]["splits"]["subset_fractions"]}
    unpublished = [f for f in config["finetune"]["fractions"] if _pct(f) not in published]
    if unpublished:
        errors.append(f"finetune.fractions: {unpublished} are not in data.splits.subset_fractions")
    parts = config["evaluate"]["probe"]["fractions"]
    if not math.isclose(sum(parts.values()), 1.0, abs_tol=1e-6):
        errors.append(
            f"evaluate.probe.fractions: train + val + test must be 1, got {sum(parts.values()):g}"
        )
    read = data_sources(config)
    evaluate, finetune, figures = config["evaluate"], config["finetune"], config["figures"]
    for key in ("zeroshot_datasets", "grounding_datasets"):
        unmapped = [d for d in evaluate[key] if d in read and d not in evaluate["entity_maps"]]
        if unmapped:
            errors.append(f"evaluate.entity_maps: no class -> entity map for {unmapped} ({key})")
    no_classes = [d for d in finetune["cls_datasets"] if d in read and d not in finetune["classes"]]
    if no_classes:
        errors.append(f"finetune.classes: no classes for {no_classes} (finetune.cls_datasets)")
    overlay = figures["overlay_variant"]
    if overlay not in evaluated:
        errors.append(
            f"figures.overlay_variant: {overlay!r} is not evaluated "
            f"(evaluate.variants: {evaluated})"
        )
    elif not VARIANTS[overlay].does("grounding"):
        reason = VARIANTS[overlay].not_applicable["grounding"]
        errors.append(f"figures.overlay_variant: {overlay}: {reason}")
    grounded = [d for d in evaluate["grounding_datasets"] if d in read]
    if grounded and figures["overlay_dataset"] not in grounded:
        errors.append(
            f"figures.overlay_dataset: {figures['overlay_dataset']!r} is not a grounding dataset "
            f"of this run {grounded}"
        )
    return errors


def _external_errors(config: dict[str, Any]) -> list[str]:
    """Imported checkpoints: every imported variant of ``pretrain.variants`` has a path under
    ``pretrain.external`` and every path a listed variant; their text side can be built."""
    listed = config["pretrain"]["variants"]
    paths = config["pretrain"]["external"]
    errors = [
        f"pretrain.external.{name}: no checkpoint path, but pretrain.variants lists {name} "
        f"(imported from {VARIANTS[name].source}, never trained here)"
        for name in listed
        if VARIANTS[name].imported and paths.get(name) is None
    ]
    errors += [
        f"pretrain.external.{name}: a checkpoint is given but pretrain.variants does not list "
        f"{name}"
        for name, path in paths.items()
        if path is not None and name not in listed
    ]
    if any(VARIANTS[name].imported for name in listed):
        errors += official_text_problems(config)
    return errors


def validate_config(
    config: dict[str, Any], base_dir: str | os.PathLike = ".", whole: bool = True
) -> dict[str, Any]:
    """Validate ``config`` in place (filling defaults) and return it.

    Raises :class:`ConfigError` naming the offending key for unknown keys, wrong types, values out
    of range, input paths (keys marked ``x-input-path`` in the schema) that do not exist
    relative to ``base_dir`` (every one, a line each), and, for a ``whole`` config (not the part
    a workflow job is handed), keys that disagree with each other (:func:`cross_key_errors`).
    ``medslip check-config`` and the Snakefile both call this.
    """
    schema = load_schema()
    cls = _with_defaults(jsonschema.validators.validator_for(schema))
    errors = sorted(cls(schema).iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        lines = []
        for err in errors:
            where = _key(err.absolute_path)
            if err.validator == "additionalProperties":
                known = ", ".join(sorted(err.schema.get("properties", {})))
                lines.append(f"{where}: {err.message} (known keys: {known})")
            else:
                lines.append(f"{where}: {err.message}")
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines))
    missing = []
    for key in _input_path_keys(schema):
        node: Any = config
        for part in key:
            node = node.get(part) if isinstance(node, dict) else None
        if node == "":  # Path("") is the working directory, which always exists
            raise ConfigError(f'{".".join(key)}: empty path; write null (not "") to leave it unset')
        if node is not None and not (Path(base_dir) / node).exists():
            missing.append(f"{'.'.join(key)}: input path {node!r} does not exist")
    if missing:
        raise ConfigError("input paths that do not exist:\n  " + "\n  ".join(missing))
    problems = cross_key_errors(config) if whole else []
    if problems:
        raise ConfigError("inconsistent configuration:\n  " + "\n  ".join(problems))
    return config


def defaults() -> dict[str, Any]:
    """The configuration every key of which is left out: the schema's defaults (their one owner;
    commands whose flags are not given take their values from here)."""
    return validate_config({})


def load_config(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML config file, validate it and fill in defaults."""
    path = Path(path)
    try:
        with open(path) as fh:
            config = yaml.safe_load(fh)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if config is None:  # Snakemake refuses an empty --configfile too
        raise ConfigError(f"{path}: empty config file; write {{}} to take every default")
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(config).__name__}")
    try:
        return validate_config(config)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def config_from_arg(value: str) -> dict[str, Any]:
    """A validated config from a command-line value: a YAML file path, or an inline JSON object
    (how workflow rules pass the part of the effective config a job depends on)."""
    if not value.lstrip().startswith("{"):
        return load_config(value)
    try:
        config = json.loads(value)
    except ValueError as exc:
        raise ConfigError(f"--config: not a JSON object: {exc}") from exc
    return validate_config(config, whole=False)
