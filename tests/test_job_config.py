"""Every setting a job builds reaches it through the rule's ``--config`` hand-off, and a config
that the workflow would reject is refused by ``medslip check-config`` too."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from medslip.cli import main
from medslip.config import ConfigError, config_from_arg, load_schema, validate_config
from medslip.job_config import JOB_READERS, job_config, job_config_json
from tests.conftest import REPO

DESCRIPTIONS = REPO / "medslip" / "model" / "entity_descriptions.json"

WILDCARDS = {
    "synth": [{}],
    "text_books": [{}],
    "text_books_official": [{}],
    "pretrain": [{"variant": "medslip"}, {"variant": "global_clip"}],
    "evaluate_zeroshot": [{"dataset": "nih_cxr14"}, {"dataset": "siim_acr"}],
    "evaluate_grounding": [{"dataset": "rsna_pneumonia"}],
    "evaluate_grounding_controls": [{"dataset": "rsna_pneumonia"}],
    "evaluate_probe": [{}],
    "finetune": [{"dataset": "rsna_pneumonia"}, {"dataset": "siim_acr"}],
    "figure_grounding_overlays": [{"dataset": "rsna_pneumonia"}],
}


def _leaves(node: Any, schema: dict, path: tuple = ()) -> Iterator[tuple[tuple, Any, dict]]:
    """(key path, value, schema) of every scalar of a validated config."""
    if isinstance(node, dict):
        for key, value in node.items():
            props = schema.get("properties", {})
            sub = props.get(key) or schema.get("additionalProperties") or {}
            yield from _leaves(value, sub if isinstance(sub, dict) else {}, (*path, key))
    elif not isinstance(node, list):
        yield path, node, schema


def _other(value: Any, schema: dict) -> list[Any]:
    """Candidate values different from ``value`` that the schema may accept."""
    if "enum" in schema:
        return [v for v in schema["enum"] if v != value]
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return [value + 1, value - 1]
    if isinstance(value, float):
        return [value * 0.5, value * 1.5, value + 1.0]
    return []


def perturbed() -> dict[str, Any]:
    """The default config with every scalar the schema lets change (one at a time, keeping the
    whole config valid) set to a non-default value."""
    config = validate_config({})
    schema = load_schema()
    for path, value, sub in list(_leaves(copy.deepcopy(config), schema)):
        for candidate in _other(value, sub):
            trial = copy.deepcopy(config)
            node = trial
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = candidate
            try:
                config = validate_config(trial)
                break
            except ConfigError:
                continue
    return config


@pytest.fixture(scope="module")
def changed() -> dict[str, Any]:
    """:func:`perturbed`, with the text encoder and descriptions set (paths, which the
    perturbation leaves null; the official text books need both)."""
    config = perturbed()
    config["text"] |= {"encoder": "/models/Bio_ClinicalBERT", "descriptions": str(DESCRIPTIONS)}
    return validate_config(config)


def test_perturbation_changes_most_settings(changed):
    base = validate_config({})
    differ = [p for p, v, _ in _leaves(changed, {}) if _get(base, p) != v]
    assert len(differ) > 60, differ


def _get(config: dict, path: tuple) -> Any:
    for key in path:
        config = config.get(key) if isinstance(config, dict) else None
    return config


def test_every_job_kind_has_wildcards_here():
    assert set(WILDCARDS) == set(JOB_READERS)


@pytest.mark.parametrize(("job", "wildcards"), [(j, w) for j, ws in WILDCARDS.items() for w in ws])
def test_every_setting_reaches_its_job(changed, job, wildcards):
    """What the job builds from the JSON the rule hands it equals what it would build from the
    whole (non-default) config, so no setting silently falls back to its default."""
    handed = config_from_arg(job_config_json(changed, job, **wildcards))
    reader = JOB_READERS[job]
    assert reader(handed, **wildcards) == reader(changed, **wildcards)


def test_a_job_gets_only_what_it_reads():
    config = validate_config({})
    zeroshot = job_config(config, "evaluate_zeroshot", dataset="nih_cxr14")
    assert set(zeroshot["evaluate"]["entity_maps"]) == {"nih_cxr14"}
    assert "grounding" not in zeroshot["evaluate"] and "finetune" not in zeroshot
    assert "grounding" in job_config(config, "evaluate_grounding", dataset="nih_cxr14")["evaluate"]
    finetune = job_config(config, "finetune", dataset="rsna_pneumonia")
    assert set(finetune["finetune"]["classes"]) == {"rsna_pneumonia"}
    pretrain = job_config(config, "pretrain", variant="medslip")
    assert set(pretrain["presets"]) == {config["preset"]} and "evaluate" not in pretrain


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("preset: papr\n", "preset: 'papr' is not defined under presets"),
        (
            "pretrain: {variants: [medslip]}\nevaluate: {variants: [medklip]}\n",
            "evaluate.variants: ['medklip'] are not in pretrain.variants",
        ),
        ("finetune: {fractions: [0.5]}\n", "finetune.fractions: [0.5] are not in"),
        (
            "figures: {overlay_dataset: covid_chestxray}\n",
            "figures.overlay_dataset: 'covid_chestxray'",
        ),
        (
            "datasets: {iu_xray: ROOT}\nevaluate: {zeroshot_datasets: [iu_xray]}\n",
            "evaluate.entity_maps: no class -> entity map for ['iu_xray']",
        ),
    ],
)
def test_check_config_refuses_what_the_workflow_rejects(tmp_path, caplog, text, message):
    path = tmp_path / "my.yaml"
    path.write_text(text.replace("ROOT", str(tmp_path)))
    assert main(["check-config", str(path)]) != 0
    assert message in caplog.text and str(path) in caplog.text


def test_job_configs_are_not_checked_as_whole_configs():
    """A job's part (finetune fractions without the split's subsets) is valid on its own."""
    part = {"finetune": {"fractions": [0.5]}, "data": {"splits": {"subset_fractions": [0.5]}}}
    whole = validate_config(copy.deepcopy(part))
    handed = job_config(whole, "finetune", dataset="rsna_pneumonia")
    assert config_from_arg(json.dumps(handed))["finetune"]["epochs"] == whole["finetune"]["epochs"]
    yaml.safe_dump(handed)  # plain data, no recording views
