"""The ``medslip`` command line: one subcommand per module in :mod:`medslip.commands`.

Each command module defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``
and keeps heavy imports inside ``run`` so that ``medslip --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from medslip import __version__

COMMAND_MODULES: tuple[str, ...] = (
    "medslip.commands.check_config",
    "medslip.commands.synth",
    "medslip.commands.contact_sheet",
    "medslip.commands.bench",
    "medslip.commands.parse_reports",
    "medslip.commands.manifest",
    "medslip.commands.splits",
    "medslip.commands.preprocess",
    "medslip.commands.text_books",
    "medslip.commands.pretrain_data",
    "medslip.commands.pretrain",
    "medslip.commands.evaluate",
    "medslip.commands.finetune",
)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every subcommand registered."""
    parser = argparse.ArgumentParser(prog="medslip", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"medslip {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        module = importlib.import_module(name)
        cmd = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(cmd)
        cmd.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``medslip`` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    from medslip.errors import MedslipError

    try:
        return int(args._run(args) or 0)
    except MedslipError as exc:
        logging.getLogger("medslip").error("%s", exc)
        return 2


if __name__ == "__main__":
    sys.exit(main())
