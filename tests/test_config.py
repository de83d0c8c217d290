"""Config validation: the same schema for Snakemake and `medslip check-config`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
import yaml

from medslip.config import ConfigError, load_config, validate_config
from medslip.datasets import DATASETS, SYNTHCXR_DATASETS
from medslip.synth.generator import DATASETS as SYNTH_BUILDS
from tests.conftest import REPO


@pytest.mark.parametrize("path", ["config/config.yaml", ".test/config.yaml"])
def test_shipped_configs_are_valid_and_defaults_filled(path):
    config = load_config(REPO / path)
    assert config["synthcxr"]["findings_rate"] == 0.65  # a default the files do not set
    assert set(config["datasets"]) == {*DATASETS, "mimic_cxr_reports"}


def test_config_file_and_schema_agree():
    """config/config.yaml sets nothing but the schema's own defaults (their one owner)."""
    shipped = yaml.safe_load((REPO / "config/config.yaml").read_text())
    defaults = validate_config({})

    def walk(node, default, key=""):
        for name, value in node.items():
            if isinstance(value, dict) and value:
                yield from walk(value, default[name], f"{key}{name}.")
            else:
                yield f"{key}{name}", value, default[name]

    differ = [(k, v, d) for k, v, d in walk(shipped, defaults) if v != d]
    assert not differ, f"config/config.yaml differs from the schema defaults: {differ}"


def test_one_registry_of_datasets():
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    assert set(schema["properties"]["datasets"]["properties"]) == {*DATASETS, "mimic_cxr_reports"}
    assert SYNTH_BUILDS == SYNTHCXR_DATASETS  # SynthCXR builds exactly the registry's ones


def test_check_config_shows_the_schema_defaults(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("synthcxr: {seed: 3}\n")
    cmd = [sys.executable, "-m", "medslip.cli", "check-config", str(cfg)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    shown = yaml.safe_load(res.stdout)
    assert shown["synthcxr"]["seed"] == 3
    assert shown["synthcxr"]["image_size"] == validate_config({})["synthcxr"]["image_size"]
    assert shown["data"]["splits"]["subset_fractions"] == [0.01, 0.1, 1.0]


def test_unknown_key_is_named():
    with pytest.raises(ConfigError, match=r"synthcxr: .*'imagesize' was unexpected"):
        validate_config({"synthcxr": {"imagesize": 10}})


def test_wrong_type_is_named():
    with pytest.raises(ConfigError, match=r"synthcxr\.image_size: 'big' is not of type 'integer'"):
        validate_config({"synthcxr": {"image_size": "big"}})


def test_missing_input_path_is_named(tmp_path):
    with pytest.raises(
        ConfigError, match=r"datasets\.nih_cxr14: input path .*nope.* does not exist"
    ):
        validate_config({"datasets": {"nih_cxr14": str(tmp_path / "nope")}})
    assert validate_config({"datasets": {"nih_cxr14": str(tmp_path)}})["datasets"]["nih_cxr14"]


def test_check_config_cli_reports_file_and_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"seed": -3}))
    cmd = [sys.executable, "-m", "medslip.cli", "check-config", str(bad)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 2
    assert str(bad) in res.stderr and "seed: -3 is less than the minimum of 0" in res.stderr
    good = subprocess.run(
        cmd[:-1] + [str(REPO / "config/config.yaml")], capture_output=True, text=True
    )
    assert good.returncode == 0, good.stderr


def test_snakemake_rejects_bad_config_before_any_rule(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"synthcxr": {"image_size": 8}}))
    res = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--configfile", str(bad)],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert res.returncode != 0
    assert "synthcxr.image_size: 8 is less than the minimum of 64" in res.stdout + res.stderr


def test_every_schema_key_documented():
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    readme = (REPO / "config/README.md").read_text()

    def walk(node, prefix=""):
        for name, sub in node.get("properties", {}).items():
            key = f"{prefix}{name}"
            assert "description" in sub and "default" in sub, key
            yield key
            yield from walk(sub, f"{key}.")

    missing = [k for k in walk(schema) if f"`{k}`" not in readme]
    assert not missing, f"keys not documented in config/README.md: {missing}"


def test_real_dataset_root_replaces_its_synthcxr_tree(tmp_path):
    cfg = tmp_path / "real.yaml"
    (tmp_path / "nih").mkdir()
    cfg.write_text(yaml.safe_dump({"datasets": {"nih_cxr14": str(tmp_path / "nih")}}))
    dry = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "-p", "--configfile", str(cfg)],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert dry.returncode == 0, dry.stderr[-2000:]
    assert "results/synthcxr/nih_cxr14" not in dry.stdout
    assert "results/synthcxr/siim_acr" in dry.stdout


def test_non_editable_install_checks_configs(tmp_path):
    """A wheel carries the schema: check-config of an installed (not editable) medslip, run away
    from the checkout, validates and fills defaults."""
    source = tmp_path / "source"
    skip = shutil.ignore_patterns(".git", ".venv", "results", ".snakemake", "*.egg-info", "build")
    shutil.copytree(REPO, source, symlinks=True, ignore=skip)
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    wheels, site = tmp_path / "wheels", tmp_path / "site"
    build = [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", wheels, source]
    subprocess.run(build, check=True, capture_output=True)
    (wheel,) = wheels.glob("medslip-*.whl")
    subprocess.run([*pip, "install", "--no-deps", "--target", site, wheel], check=True)
    shutil.rmtree(source)
    (tmp_path / "my.yaml").write_text("seed: 7\n")
    cli = "import medslip, runpy; print(medslip.__file__, flush=True); "
    cli += "runpy.run_module('medslip.cli', run_name='__main__')"
    res = subprocess.run(
        [sys.executable, "-c", cli, "check-config", "my.yaml"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(site)},
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.startswith(str(site))  # the installed copy, not this checkout
    effective = yaml.safe_load(res.stdout.split("\n", 1)[1])
    assert effective["seed"] == 7 and effective["data"]["n_shards"] >= 1  # defaults filled in


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "empty config file"), ("seed: [1,\n", "not valid YAML")],
)
def test_run_script_names_a_broken_configfile(tmp_path, text, message):
    """Snakemake reads ``--configfile`` before the workflow starts and does not name a file it
    cannot parse; ``scripts/run.sh`` checks each one first, naming it and the problem."""
    bad = tmp_path / "broken.yaml"
    bad.write_text(text)
    for args in (["-n", "--configfile", str(bad)], ["-n", f"--configfile={bad}"]):
        done = subprocess.run(
            ["bash", str(REPO / "scripts" / "run.sh"), *args],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode != 0
        assert f"{bad}: {message}" in done.stdout + done.stderr
