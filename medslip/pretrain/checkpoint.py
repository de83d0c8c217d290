"""Atomic per-epoch checkpoints and the final model files of a pretraining run.

Run directory layout (``results/models/{variant}/seed{seed}/``, names in :data:`RUN_FILES`):

* ``checkpoints/epoch-XXXX/``: ``weights.safetensors`` (model), ``state.pt`` (optimizer state,
  read back with ``weights_only=True``) and ``meta.json`` (epoch, fingerprint). Each directory is
  written under a temporary name and renamed when complete; the last two are kept.
* ``metrics/steps.csv`` and ``metrics/epochs.csv``: every loss term, lr, img/s, validation loss.
* ``model.safetensors`` + ``model.json`` (variant, settings, seeds, git commit, input hashes).

A checkpoint whose fingerprint (variant, settings, seeds, input hashes) differs from the run's is
refused with a message naming what differs; an unreadable one is skipped with a warning in favour
of the previous one. Nothing is ever deleted that has not been superseded by a complete newer one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_model, save_model

from medslip.atomic import atomic_path, follow_umask, write_bytes_atomic
from medslip.errors import MedslipError
from medslip.layout import RUN_FILES, text_books_path

log = logging.getLogger(__name__)

KEEP = 2


def git_commit() -> str:
    """The source tree's git commit (with ``-dirty`` when it has changes), or ``unknown``."""
    root = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "medslip"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("-dirty" if dirty else "")


def _epoch_dir(run_dir: Path, epoch: int) -> Path:
    return run_dir / RUN_FILES["checkpoints"] / f"epoch-{epoch:04d}"


def save_checkpoint(
    run_dir: Path,
    epoch: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    fingerprint: dict[str, Any],
) -> Path:
    """Write the checkpoint after ``epoch`` (0-based) atomically; prune to the last two."""
    final = _epoch_dir(run_dir, epoch)
    tmp = final.with_name(f".{final.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_model(model, str(tmp / "weights.safetensors"))
    follow_umask(tmp / "weights.safetensors")
    torch.save({"optimizer": optimizer.state_dict(), "epoch": epoch}, tmp / "state.pt")
    meta = {"epoch": epoch, "fingerprint": fingerprint}
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True))
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    for old in complete_checkpoints(run_dir)[:-KEEP]:
        shutil.rmtree(old)
    return final


def complete_checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoint directories, oldest first."""
    root = run_dir / RUN_FILES["checkpoints"]
    return sorted(root.glob("epoch-[0-9][0-9][0-9][0-9]")) if root.is_dir() else []


def _differences(saved: Any, current: Any, prefix: str = "") -> list[str]:
    if isinstance(saved, dict) and isinstance(current, dict):
        keys = sorted(set(saved) | set(current))
        return [
            d for k in keys for d in _differences(saved.get(k), current.get(k), f"{prefix}{k}.")
        ]
    return [] if saved == current else [prefix.rstrip(".")]


def resume(
    run_dir: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    fingerprint: dict[str, Any],
) -> int:
    """Load the newest usable checkpoint into ``model``/``optimizer``; returns the next epoch.

    A foreign checkpoint (another fingerprint) is an error naming the differing keys; a corrupt
    one is skipped (with a warning) for the one before it; 0 when there is none.
    """
    for ckpt in reversed(complete_checkpoints(run_dir)):
        try:
            meta = json.loads((ckpt / "meta.json").read_text())
            saved = meta["fingerprint"]
        except (OSError, ValueError, KeyError) as exc:
            log.warning("%s: unreadable checkpoint (%s); trying the previous one", ckpt, exc)
            continue
        differs = _differences(saved, json.loads(json.dumps(fingerprint)))
        if differs:
            raise MedslipError(
                f"{ckpt}: checkpoint of another run (differs in {', '.join(differs)}); "
                f"move {run_dir / RUN_FILES['checkpoints']} away to start afresh"
            )
        try:
            state = torch.load(ckpt / "state.pt", map_location="cpu", weights_only=True)
            missing, unexpected = load_model(model, str(ckpt / "weights.safetensors"))
            if missing or unexpected:
                raise ValueError(f"missing {missing[:3]}, unexpected {unexpected[:3]}")
            optimizer.load_state_dict(state["optimizer"])
        except Exception as exc:  # any failure to read means a corrupt file
            log.warning("%s: corrupt checkpoint (%s); trying the previous one", ckpt, exc)
            continue
        log.info("resuming from %s", ckpt)
        return int(state["epoch"]) + 1
    return 0


META_HASH_KEY = "model_json_sha256"
"""Key of the ``model.safetensors`` metadata holding :func:`meta_sha256` of its ``model.json``."""


def meta_sha256(meta: dict[str, Any]) -> str:
    """Hex sha256 of a ``model.json`` dict in canonical form (sorted keys, no spaces)."""
    text = json.dumps(meta, sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(text.encode()).hexdigest()


def save_final(run_dir: Path, model: torch.nn.Module, meta: dict[str, Any]) -> None:
    """Write ``model.safetensors`` (its metadata holds :func:`meta_sha256` of ``meta``, which
    binds the two files) and ``model.json`` atomically (weights first); both follow the umask."""
    with atomic_path(run_dir / RUN_FILES["weights"]) as tmp:
        save_model(model, str(tmp), metadata={META_HASH_KEY: meta_sha256(meta)})
        follow_umask(tmp)
    write_bytes_atomic(run_dir / RUN_FILES["meta"], json.dumps(meta, indent=1).encode())


def read_run_meta(run_dir: Path) -> dict[str, Any]:
    """``model.json`` of a finished run, checked against the hash its ``model.safetensors``
    was saved with: an edited or swapped file of the pair, or a run saved before the two were
    bound, is an error naming both files."""
    meta_path, weights = run_dir / RUN_FILES["meta"], run_dir / RUN_FILES["weights"]
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as exc:
        raise MedslipError(f"{meta_path}: cannot read the model description ({exc})") from None
    if not isinstance(meta, dict):
        raise MedslipError(f"{meta_path}: not a JSON object")
    try:
        with safe_open(str(weights), "pt") as handle:
            saved = (handle.metadata() or {}).get(META_HASH_KEY)
    except Exception as exc:
        reason = "missing" if not weights.is_file() else f"not a readable safetensors file ({exc})"
        raise MedslipError(f"{weights}: {reason}") from None
    redo = (
        f"remove {weights.name} and rerun the run's pretraining (it resumes from its last "
        "checkpoint and writes both files again)"
    )
    if saved is None:
        raise MedslipError(
            f"{weights}: saved without the hash of {meta_path} (a run older than this check), "
            f"so the settings cannot be checked against the weights; {redo}"
        )
    if saved != meta_sha256(meta):
        raise MedslipError(
            f"{meta_path} is not the description {weights} was saved with (edited, or the "
            f"files of two runs mixed); restore it, or {redo}"
        )
    return meta


def load_pretrained(run_dir: Path, books_path: Path | None = None) -> torch.nn.Module:
    """The model of a finished run (``model.json`` + ``model.safetensors``) with its text books,
    in eval mode; books other than the ones it was trained with are refused. ``books_path``
    None: the run's books beside its variant folder (``results/models/``; the official books
    for an imported checkpoint)."""
    from medslip.model import create_model
    from medslip.model.text_books import load_books
    from medslip.settings import ModelSettings
    from medslip.variants import variant

    run_dir = Path(run_dir)
    meta = read_run_meta(run_dir)
    entry = variant(meta["variant"])
    known = [f.name for f in fields(ModelSettings)]
    absent = [name for name in known if name not in meta["model"]]
    if absent:
        raise MedslipError(
            f"{run_dir / RUN_FILES['meta']}: no model settings {absent} (a run of an older "
            "medslip): rerun its pretraining"
        )
    unknown = sorted(set(meta["model"]) - set(known))
    if unknown:
        raise MedslipError(
            f"{run_dir / RUN_FILES['meta']}: model settings {unknown} that this medslip does not "
            "know (a run of a newer medslip): load it with that version"
        )
    if books_path is None:
        books_path = Path(text_books_path(entry.imported, str(run_dir.parent.parent)))
    books = load_books(books_path)
    if books.meta.get("books_sha256") != meta["text_books"].get("books_sha256"):
        raise MedslipError(f"{run_dir}: trained with other text books than {books_path}")
    model = create_model(
        ModelSettings(**{**meta["model"], "trunk_layers": tuple(meta["model"]["trunk_layers"])}),
        books.dim,
        books.pathology_eval,
        books.anatomy_eval,
        clip_temperature=meta["train"]["clip_temperature"]
        if entry.needs_report_embeddings
        else None,
    )
    missing, unexpected = load_model(model, str(run_dir / RUN_FILES["weights"]))
    if missing or unexpected:
        raise MedslipError(f"{run_dir}: weights do not fit {meta['variant']}: {missing[:3]}")
    return model.eval()
