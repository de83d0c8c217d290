"""``medslip check-config``: validate a config file with the workflow's JSON Schema."""

from __future__ import annotations

import argparse

NAME = "check-config"
HELP = "validate a workflow config file against workflow/schemas/config.schema.yaml"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="YAML config file")


def run(args: argparse.Namespace) -> int:
    from medslip.config import load_config

    load_config(args.config)
    print(f"{args.config}: OK")
    return 0
