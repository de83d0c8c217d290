"""``medslip import-checkpoint``: a published MeDSLIP or MedKLIP checkpoint -> a run directory
(``model.safetensors`` + ``model.json``) that every evaluation reads."""

from __future__ import annotations

import argparse

NAME = "import-checkpoint"
HELP = "import a published MeDSLIP/MedKLIP checkpoint as a run directory"


def _imported() -> dict[str, str]:
    """Accepted ``--variant`` values: each imported variant, and its family as an alias."""
    from medslip.variants import VARIANTS

    names = {v.name: v.name for v in VARIANTS.values() if v.imported}
    return names | {VARIANTS[n].family: n for n in names}


OUTPUT_DIRS = ("out",)
"""Output options that name a directory (checked before the command runs)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from medslip.layout import text_books_path

    parser.add_argument("checkpoint", help="the published checkpoint (a torch file)")
    parser.add_argument(
        "--variant",
        required=True,
        choices=sorted(_imported()),
        help="the imported variant (medslip = medslip_official, medklip = medklip_official)",
    )
    parser.add_argument(
        "--books",
        default=text_books_path(imported=True),
        help="the official text books (medslip text-books --official)",
    )
    parser.add_argument("--out", required=True, help="run directory to write")


def run(args: argparse.Namespace) -> int:
    from medslip.pretrain.import_checkpoint import import_checkpoint

    import_checkpoint(args.checkpoint, _imported()[args.variant], args.books, args.out)
    return 0
