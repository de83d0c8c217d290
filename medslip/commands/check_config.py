"""``medslip check-config``: validate a config file with the workflow's JSON Schema and show the
effective configuration (every key; those the file leaves out at the schema's defaults)."""

from __future__ import annotations

import argparse

NAME = "check-config"
HELP = "validate a workflow config file against workflow/schemas/config.schema.yaml"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="YAML config file")


def run(args: argparse.Namespace) -> int:
    import sys

    import yaml

    from medslip.config import load_config

    config = load_config(args.config)
    print(f"# {args.config}: OK; the effective configuration (defaults from the schema):")
    print(yaml.safe_dump(config, sort_keys=False), end="")
    print(f"{args.config}: OK", file=sys.stderr)
    return 0
