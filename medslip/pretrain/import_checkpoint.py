"""``medslip import-checkpoint``: a published checkpoint -> a run directory every evaluation reads.

The file is read with ``torch.load(weights_only=True)`` (tensors and plain containers only; a
file needing more pickle is refused, since unpickling can run arbitrary code). Its keys are
mapped onto ours by :mod:`medslip.model.official`; a missing or unexpected key, a checkpoint of
the other family, or an architecture other than the ``paper`` preset's is an error naming what
differs. The architecture comes from the tensor shapes (trunk, widths, layers) and the
checkpoint's ``config`` (heads, dropout, image size). The run directory gets ``model.safetensors``
and ``model.json`` (the source file's sha256, the architecture check and the load report), as a
pretraining run does, at the seed level :data:`~medslip.layout.IMPORTED_SEED`.
"""

from __future__ import annotations

import json
import logging
import pickle
import re
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from medslip.config import defaults
from medslip.errors import MedslipError
from medslip.hashing import sha256_file
from medslip.layout import IMPORTED_SEED
from medslip.model import create_model
from medslip.model.official import (
    CHECKPOINT_KEYS,
    DDP_PREFIX,
    FAMILY_KEYS,
    RENAMES,
    SHARED,
    family_of,
    map_state,
    to_official,
    to_ours,
)
from medslip.model.text_books import load_books
from medslip.pretrain.checkpoint import git_commit, save_final
from medslip.settings import ModelSettings
from medslip.variants import variant as get_variant

log = logging.getLogger(__name__)

CONFIG_KEYS = {"n_heads": "H", "dropout": "dropout", "image_size": "image_res"}
"""Settings the shapes do not hold, by their key in the official config."""
ASSUMED = {
    "mask_activation": "none",
    "memory_norm": False,
    "init_std": 0.02,
    "trunk_init": "random",
    "positions": "none",
}
"""Settings of the official code itself: the mask generator has no activation, the decoders'
memory is not normalised and has no positions; the initial weights (trunk and N(0, 0.02)) are
replaced by the checkpoint's."""
RECORDED_CONFIG = ("res_base_model", "d_model", "N", "H", "dropout", "image_res", "text_encoder")
"""Entries of the checkpoint's config copied into model.json."""
_DECODER = {"medslip": "decoder_pathology.layers.", "medklip": "decoder.layers."}
_STREAM = {"medslip": "res_l2_pathology.weight", "medklip": "res_l2.weight"}


def read_checkpoint(path: Path) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """(state dict, the other entries) of an official checkpoint, read with
    ``weights_only=True``; a bare state dict is accepted too (no other entries)."""
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"Unsupported global: ([^\n]+)", str(exc))
        what = found.group(1).strip() if found else str(exc).splitlines()[0]
        raise MedslipError(
            f"{path}: refused: it needs pickle beyond tensors and plain containers ({what}), "
            "and unpickling can run arbitrary code. Only if you trust the file and its source, "
            "re-save its state dict alone (tensors under 'model') and import that file"
        ) from None
    except Exception as exc:  # any reader failure: truncated, not a torch file, unreadable
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise MedslipError(
            f"{path}: not a readable torch checkpoint (truncated?): {first}"
        ) from None
    if isinstance(data, dict) and isinstance(data.get("model"), dict):
        return data["model"], {k: v for k, v in data.items() if k != "model"}
    if isinstance(data, dict) and data and all(isinstance(v, Tensor) for v in data.values()):
        return data, {}
    found = sorted(data)[:8] if isinstance(data, dict) else type(data).__name__
    raise MedslipError(
        f"{path}: not a checkpoint: expected a dict with {', '.join(CHECKPOINT_KEYS)} "
        f"(or a state dict), found {found}"
    )


def _official_name(key: str, family: str) -> str:
    """The official key of one of our keys (the first alias of a shared module)."""
    return next(iter(to_official({key: torch.empty(0)}, family)))


def _shape(state: dict[str, Tensor], key: str, family: str, path: Path) -> torch.Size:
    if key not in state:
        raise MedslipError(f"{path}: missing key {_official_name(key, family)}")
    return state[key].shape


def _count(state: dict[str, Tensor], prefix: str) -> int:
    """Distinct indices directly below ``prefix`` (``layers.3.`` -> 4 blocks)."""
    return len({k[len(prefix) :].split(".")[0] for k in state if k.startswith(prefix)})


def architecture(
    state: dict[str, Tensor], config: dict[str, Any], family: str, path: Path
) -> tuple[dict[str, Any], int, dict[str, Any]]:
    """(model settings without the variant, text dimension, where each value came from) of a
    state dict under our names; a config value that contradicts the shapes is an error."""
    stem = _shape(state, "res_features.conv1.weight", family, path)
    decoder = _DECODER[family]
    shapes = {
        "trunk_width": stem[0],
        "trunk_layers": [_count(state, f"res_features.layer{i}.") for i in (1, 2, 3)],
        "d_model": _shape(state, _STREAM[family], family, path)[0],
        "n_layers": _count(state, decoder),
        "d_ffn": _shape(state, f"{decoder}0.linear1.weight", family, path)[0],
    }
    text_dim = _shape(state, FAMILY_KEYS[family], family, path)[1]
    for name, key in (("d_model", "d_model"), ("n_layers", "N")):
        if key in config and config[key] != shapes[name]:
            raise MedslipError(
                f"{path}: config {key} = {config[key]!r}, but the weights have {name} "
                f"{shapes[name]}"
            )
    paper = defaults()["presets"]["paper"]["model"]
    from_config = {name: config[key] for name, key in CONFIG_KEYS.items() if key in config}
    missing = {name: paper[name] for name in CONFIG_KEYS if name not in from_config}
    settings = {**shapes, **from_config, **missing, **ASSUMED}
    provenance = {
        "from_shapes": shapes | {"text_dim": text_dim},
        "from_config": from_config,
        "not_in_config_paper_value": missing,
        "official_code": ASSUMED,
    }
    return settings, text_dim, provenance


def check_paper_preset(settings: dict[str, Any], path: Path) -> dict[str, Any]:
    """The ``paper`` preset of the schema (its one owner); any setting that differs is an error
    naming it."""
    paper = defaults()["presets"]["paper"]["model"]
    differs = [
        f"{k} {settings[k]!r} (paper {paper[k]!r})" for k in paper if settings[k] != paper[k]
    ]
    if differs:
        raise MedslipError(
            f"{path}: architecture differs from presets.paper: {'; '.join(differs)} (only "
            "checkpoints of the published recipe are imported)"
        )
    return {"preset": "paper", "matches": True, "settings": paper}


def load_mapped(
    model: torch.nn.Module, state: dict[str, Tensor], official: list[str], family: str, what: str
) -> None:
    """Load ``state`` (official tensors under our names) into ``model``; a missing or
    unexpected key or a wrong shape is an error naming the official keys."""
    own = model.state_dict()
    missing = sorted(_official_name(k, family) for k in own if k not in state)
    unexpected = sorted(k for k in official if to_ours(k, family) not in own)
    if missing or unexpected:
        raise MedslipError(
            f"{what} do not fit: missing {len(missing)} {missing[:8]}; "
            f"unexpected {len(unexpected)} {unexpected[:8]}"
        )
    wrong = [
        f"{_official_name(k, family)} {tuple(state[k].shape)} (expected {tuple(v.shape)})"
        for k, v in own.items()
        if state[k].shape != v.shape
    ]
    if wrong:
        raise MedslipError(f"{what}: shapes do not fit: {'; '.join(wrong[:8])}")
    model.load_state_dict({k: state[k].to(v.dtype) for k, v in own.items()}, strict=True)


def _json_safe(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def import_checkpoint(
    path: str | Path, variant: str, books_path: str | Path, out_dir: str | Path
) -> dict[str, Any]:
    """Import the published checkpoint ``path`` as ``variant`` into ``out_dir`` (with the
    official text books ``books_path``); returns the model.json dict."""
    path, books_path, out_dir = Path(path), Path(books_path), Path(out_dir)
    entry = get_variant(variant)
    if not entry.imported:
        raise MedslipError(f"{variant}: trained by this workflow (medslip pretrain), not imported")
    if not path.is_file():
        raise MedslipError(f"{path}: checkpoint not found")
    official, rest = read_checkpoint(path)
    family = family_of(list(official))
    if family != entry.family:
        found = "neither MeDSLIP nor MedKLIP" if family is None else f"a {family} checkpoint"
        wanted = DDP_PREFIX + FAMILY_KEYS[entry.family]
        raise MedslipError(
            f"{path}: {found} (no {wanted}), not {entry.family}: refused for {variant}"
        )
    state = map_state(official, family, str(path))
    config = rest.get("config") if isinstance(rest.get("config"), dict) else {}
    settings, text_dim, provenance = architecture(state, config, family, path)
    books = load_books(books_path)
    if books.dim != text_dim:
        raise MedslipError(
            f"{books_path}: text books of dimension {books.dim}, but the checkpoint's query "
            f"projection takes {text_dim}: build the official books from the text encoder the "
            "checkpoint was trained with (text.encoder)"
        )
    model_settings = ModelSettings(
        variant=variant, **{**settings, "trunk_layers": tuple(settings["trunk_layers"])}
    )
    model = create_model(model_settings, text_dim, books.pathology_eval, books.anatomy_eval)
    load_mapped(model, state, list(official), family, f"{path}: keys of {variant}")
    preset = check_paper_preset(settings, path)
    meta = {
        "variant": variant,
        "seed": IMPORTED_SEED,
        "imported": {
            "source": entry.source,
            "file": str(path),
            "sha256": sha256_file(path),
            "bytes": path.stat().st_size,
            "epoch": rest.get("epoch"),
            "entries": sorted(str(k) for k in rest) + ["model"],
            "config": _json_safe({k: config[k] for k in RECORDED_CONFIG if k in config}),
        },
        "architecture": preset | provenance,
        "load_report": {
            "official_keys": len(official),
            "loaded_tensors": len(state),
            "renamed_prefixes": RENAMES[family],
            "shared_module_aliases": list(SHARED[family]),
            "ddp_prefix_stripped": all(k.startswith(DDP_PREFIX) for k in official),
            "missing": [],
            "unexpected": [],
            "not_loaded": sorted(str(k) for k in rest),
        },
        "model": model_settings.to_dict(),
        "text_books": books.meta,
        "git_commit": git_commit(),
    }
    save_final(out_dir, model, meta)
    log.info(
        "%s: %s checkpoint (epoch %s, %d tensors) -> %s",
        path,
        family,
        rest.get("epoch"),
        len(state),
        out_dir,
    )
    return meta
