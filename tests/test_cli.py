"""The `medslip` console script lists every subcommand."""

from __future__ import annotations

import subprocess
import sys

from medslip.cli import COMMAND_MODULES, build_parser


def test_help_lists_every_command():
    out = subprocess.run(
        [sys.executable, "-m", "medslip.cli", "--help"], capture_output=True, text=True, check=True
    ).stdout
    parser = build_parser()
    names = parser._subparsers._group_actions[0].choices  # noqa: SLF001
    assert len(names) == len(COMMAND_MODULES)
    for name in names:
        assert name in out
