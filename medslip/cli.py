"""The ``medslip`` command line: one subcommand per module in :mod:`medslip.commands`.

Each command module defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``
and keeps heavy imports inside ``run`` so that ``medslip --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

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
    "medslip.commands.import_checkpoint",
    "medslip.commands.evaluate",
    "medslip.commands.finetune",
    "medslip.commands.figure",
    "medslip.commands.table",
    "medslip.commands.dvc_metrics",
    "medslip.commands.model_card",
    "medslip.commands.predict",
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
        outputs = (getattr(module, "OUTPUT_DIRS", ()), getattr(module, "OUTPUT_EITHER", ()))
        cmd.set_defaults(_run=module.run, _outputs=outputs)
    return parser


def revision() -> str:
    """``git describe --always --dirty`` of the checkout medslip runs from, or ``unknown``
    (installed from a wheel, no git); takes no index lock, so it never blocks a user's git."""
    repo = Path(__file__).resolve().parent.parent
    if not (repo / ".git").exists():
        return "unknown"
    command = ["git", "--no-optional-locks", "-C", str(repo), "describe", "--always", "--dirty"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return done.stdout.strip() if done.returncode == 0 else "unknown"


def _os_error(exc: OSError) -> str:
    """One line naming the path(s) an OSError is about."""
    if exc.filename is None:
        return str(exc)
    also = f" -> {exc.filename2}" if exc.filename2 is not None else ""
    return f"{exc.filename}{also}: {exc.strerror or exc}"


OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
"""Environment every command runs in (unless already set): the Hugging Face libraries read
local files only and never reach for the network (a job has none, or should not use it)."""


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``medslip`` console script: logs the version, git revision and every
    option (defaults filled in) first; output paths are checked before the command runs; an
    input or output error is one line, exit code 2."""
    for key, value in OFFLINE.items():
        os.environ.setdefault(key, value)
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("fontTools").setLevel(logging.WARNING)  # ~100 lines per PDF otherwise
    from medslip.errors import MedslipError
    from medslip.flags import check_outputs

    log = logging.getLogger("medslip")
    options = {k: v for k, v in sorted(vars(args).items()) if not k.startswith("_")}
    log.info("medslip %s (git %s): %s", __version__, revision(), json.dumps(options, default=str))
    try:
        check_outputs(args, *args._outputs)
        return int(args._run(args) or 0)
    except MedslipError as exc:
        log.error("%s", exc)
    except OSError as exc:  # a path the command cannot read or write
        log.debug("traceback", exc_info=True)
        log.error("%s", _os_error(exc))
    return 2


def run() -> None:
    """The ``medslip`` program: :func:`main`, then exit at once with its code, every output
    already written (atomically) and the logs flushed. Skipping the interpreter's teardown avoids
    a C++ runtime abort ("terminate called without an active exception") that native thread
    pools can raise while they are torn down on a loaded machine, which would fail a finished
    job."""
    code = main()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
