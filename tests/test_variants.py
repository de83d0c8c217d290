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


def test_default_pretrains_every_variant():
    assert validate_config({})["pretrain"]["variants"] == list(VARIANT_NAMES)


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
