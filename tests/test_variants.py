"""The variant registry is the one list of variants: the schema's enums, the model factory and the
code that branches on a variant all follow it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from medslip.config import ConfigError, load_schema, validate_config
from medslip.errors import MedslipError
from medslip.variants import VARIANT_NAMES, VARIANTS, variant

REPO = Path(__file__).resolve().parent.parent


def _enum(*path: str) -> list[str]:
    node = load_schema()
    for part in path:
        node = node["properties"][part]
    return node.get("items", node)["enum"]


@pytest.mark.parametrize(
    "key", [("pretrain", "variants"), ("evaluate", "variants"), ("finetune", "variants")]
)
def test_schema_variant_enums_are_the_registry(key):
    assert _enum(*key) == list(VARIANT_NAMES), ".".join(key)


def test_overlay_variants_are_those_with_maps():
    with_maps = [v.name for v in VARIANTS.values() if v.does("grounding")]
    assert _enum("figures", "overlay_variant") == with_maps


def test_default_pretrains_every_variant_it_trains():
    trained_here = [v.name for v in VARIANTS.values() if not v.imported]
    assert validate_config({})["pretrain"]["variants"] == trained_here


def test_external_checkpoint_keys_are_the_imported_variants():
    external = load_schema()["properties"]["pretrain"]["properties"]["external"]["properties"]
    assert list(external) == [v.name for v in VARIANTS.values() if v.imported]
    assert all(entry["x-input-path"] for entry in external.values())


def test_imported_variants_need_a_path_and_the_official_text_side(tmp_path):
    with pytest.raises(ConfigError) as info:
        validate_config({"pretrain": {"variants": ["medslip", "medklip_official"]}})
    message = str(info.value)
    assert "pretrain.external.medklip_official: no checkpoint path" in message
    assert "hf download emilyalsentzer/Bio_ClinicalBERT --local-dir" in message
    assert "text.descriptions: imported checkpoints need the official entity" in message
    checkpoint = tmp_path / "MedKLIP.pth"
    checkpoint.touch()
    config = {
        "pretrain": {"variants": ["medslip"], "external": {"medklip_official": str(checkpoint)}},
        "finetune": {"variants": ["medslip"]},
    }
    with pytest.raises(ConfigError, match="a checkpoint is given but pretrain.variants"):
        validate_config(config)
    config["pretrain"]["variants"].append("medklip_official")
    config["text"] = {"encoder": str(tmp_path), "descriptions": str(checkpoint)}
    assert validate_config(config)["pretrain"]["external"]["medklip_official"] == str(checkpoint)
    config["pretrain"]["external"]["medklip_official"] = str(tmp_path / "absent.pth")
    with pytest.raises(ConfigError, match="external.medklip_official: input path .* not exist"):
        validate_config(config)


def test_unknown_variant_is_refused_naming_the_known_ones():
    with pytest.raises(MedslipError, match="unknown model variant 'medslap'.*medklip"):
        variant("medslap")
    with pytest.raises(ConfigError, match="pretrain.variants"):
        validate_config({"pretrain": {"variants": ["medslap"]}})


def test_traits():
    assert not variant("random_init").trained and not variant("random_init").does("zeroshot")
    assert not variant("global_clip").does("grounding")
    assert variant("global_clip").needs_report_embeddings
    assert variant("medklip").streams == ("pathology",)
    assert variant("medslip_no_icl").switches["icl"] is False
    assert all(v.not_applicable.keys() <= {"zeroshot", "grounding"} for v in VARIANTS.values())
    official = variant("medslip_official")
    assert official.imported and official.trained and official.family == "medslip"
    assert official.weights.startswith("published: Shef-AIRE/MeDSLIP")
    assert variant("medslip").weights == "trained by this workflow"


_NAMES = "|".join(re.escape(n) for n in VARIANT_NAMES)
_COMPARISON = re.compile(rf"""[=!]=\s*["'](?:{_NAMES})["']|["'](?:{_NAMES})["']\s*[=!]=""")


def test_no_code_compares_variant_names():
    """Branching on a variant reads a trait of the registry (the factory branches on the
    architecture family), so a new variant takes one entry."""
    found = []
    for path in [*REPO.glob("medslip/**/*.py"), *REPO.glob("workflow/**/*.smk")]:
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if _COMPARISON.search(line) and "family ==" not in line:
                found.append(f"{path.relative_to(REPO)}:{n}: {line.strip()}")
    assert not found, "\n".join(found)
