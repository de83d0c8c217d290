"""The `medslip` console script lists every subcommand, and each one answers --help."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from medslip.cli import COMMAND_MODULES, main


def test_help_lists_every_command():
    out = subprocess.run(
        [sys.executable, "-m", "medslip.cli", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for module in COMMAND_MODULES:
        assert importlib.import_module(module).NAME in out, module


@pytest.mark.parametrize("module", COMMAND_MODULES)
def test_every_command_answers_help(module, capsys):
    name = importlib.import_module(module).NAME
    with pytest.raises(SystemExit) as exit_info:
        main([name, "--help"])
    assert exit_info.value.code == 0
    assert f"medslip {name}" in capsys.readouterr().out
