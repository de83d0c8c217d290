"""A run's model on a user's images: ``medslip predict`` and ``medslip.load_pretrained``.

Images (PNG, JPEG, DICOM; files or folders) are decoded by the preprocessing decoders
(:mod:`medslip.data.decode`, stretched to the model's input side as the official test
transform) and normalised by :func:`~medslip.data.dataset.eval_transform`, as every evaluation
does. The result is a long table, one row per (image, finding):

- ``view`` ``entity``: the existence probability of each of the 75 entities (pathology stream);
- ``view`` ``chestxray14``: the 14 ChestX-ray14 classes, each scored by its entity
  (``evaluate.entity_maps.nih_cxr14``, the official zero-shot map, or the map the run's
  evaluation used);
- ``view`` ``chexpert``: the CheXpert classes, each the highest probability of the entities its
  labelling rules name (:func:`medslip.labels.class_entities`; ``No Finding`` has none).

Where the run's zero-shot evaluation chose thresholds on validation
(``results/eval/zeroshot/{dataset}/{variant}/seed{seed}/metrics.json``), its classes carry the
binary ``call`` at that ``threshold`` and ``threshold_source`` names the file. Overlays: per
image, a PNG of the grounding maps (:func:`~medslip.evaluate.grounding.attention_maps`,
normalised per map and upsampled as the evaluation does) of its top ChestX-ray14 findings.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image, ImageDraw

from medslip.atomic import atomic_path, write_bytes_atomic
from medslip.config import defaults
from medslip.data.dataset import eval_transform
from medslip.data.decode import BadImage, decode, resize
from medslip.data.preprocess import IMAGE_SUFFIXES
from medslip.errors import MedslipError
from medslip.evaluate.grounding import attention_maps, normalise, upsample
from medslip.labels import CHEXPERT_RULES, class_entities
from medslip.layout import EVAL_FILES, eval_dir
from medslip.model.streams import ModelOutput
from medslip.pretrain.checkpoint import load_pretrained as load_model
from medslip.pretrain.checkpoint import read_run_meta
from medslip.progress import progress
from medslip.variants import variant as get_variant
from medslip.vocab import ENTITIES, ENTITY_INDEX

log = logging.getLogger(__name__)

COLUMNS = [
    "image",
    "view",
    "finding",
    "entity",
    "probability",
    "threshold",
    "call",
    "threshold_source",
    "overlay",
]
OVERLAY_VIEW = "chestxray14"
"""The class view whose top findings the overlays show."""
THRESHOLDS = ("chestxray14", "nih_cxr14")
"""The class view whose findings carry validation thresholds, and the dataset whose zero-shot
evaluation chose them."""
ASPECT = "stretch"
"""Source image -> model input: each axis to the side (the official test transform)."""


def image_paths(items: Iterable[str | Path]) -> list[Path]:
    """Files as given, and every image file below each folder (sorted; by suffix as
    preprocessing reads them); a path that does not exist is an error naming it."""
    out: list[Path] = []
    for item in map(Path, items):
        if item.is_dir():
            found = sorted(p for p in item.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
            out += [p for p in found if p.is_file()]
        elif item.is_file():
            out.append(item)
        else:
            raise MedslipError(f"{item}: no such image file or folder")
    if not out:
        raise MedslipError("no image to predict on (no image file in the folders given)")
    return out


class ImageFiles(torch.utils.data.Dataset):
    """Items ``{"image": uint8 (1, size, size), "index": int}`` of image files, decoded and
    resized as preprocessing does; an unreadable file is an error naming it."""

    def __init__(self, paths: list[Path], size: int) -> None:
        self.paths, self.size = paths, size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, Any]:
        path = self.paths[index]
        try:
            pixels, width, height = decode(path.read_bytes(), str(path), self.size)
        except OSError as exc:
            raise MedslipError(f"{path}: cannot read ({exc.strerror or exc})") from None
        except BadImage as exc:
            raise MedslipError(str(exc)) from None
        image, _ = resize(pixels, self.size, ASPECT, width, height)
        return {"image": torch.from_numpy(np.array(image))[None], "index": index}


@dataclass(frozen=True)
class Threshold:
    """A validation-chosen threshold of one class view finding, and the file it comes from."""

    value: float
    source: str


def class_views(entity_maps: dict[str, str]) -> dict[str, dict[str, tuple[str, ...]]]:
    """view -> class -> the entities that score it (ChestX-ray14: one; CheXpert: several)."""
    return {
        THRESHOLDS[0]: {cls: (entity,) for cls, entity in entity_maps.items()},
        "chexpert": class_entities(CHEXPERT_RULES),
    }


def read_thresholds(path: Path) -> tuple[dict[str, Threshold], dict[str, str]]:
    """(class -> validation threshold, class -> entity) of a zero-shot ``metrics.json``;
    classes without a threshold (no validation positive) are left out."""
    try:
        metrics = json.loads(path.read_text())
        classes = metrics["classes"]
    except (OSError, ValueError, KeyError) as exc:
        raise MedslipError(f"{path}: not a zero-shot metrics file ({exc})") from None
    source = f"{path} (max-F1 on the {metrics.get('dataset')} validation split)"
    thresholds = {
        name: Threshold(float(c["threshold"]), source)
        for name, c in classes.items()
        if c.get("threshold") is not None
    }
    return thresholds, {name: c["entity"] for name, c in classes.items() if c.get("entity")}


_LEVELS = np.arange(256) / 255.0
_HOT = np.clip(_LEVELS[:, None] * 3.0 - np.array([0.0, 1.0, 2.0]), 0.0, 1.0) * 255.0
OVERLAY_WEIGHT = np.rint(0.6 * _LEVELS * 256).astype(np.uint32)
"""Weight (of 256) of the map's colour at each of 256 map levels: 0.6 x the map."""
OVERLAY_COLOUR = np.rint(OVERLAY_WEIGHT[:, None] * _HOT).astype(np.uint32)
"""Weighted "hot" colour (black, red, yellow, white) at each map level, (256, 3)."""


def overlay_panels(image: np.ndarray, maps: np.ndarray) -> np.ndarray:
    """uint8 grey image (S, S) and maps (K, S, S) in [0, 1] -> uint8 RGB panels
    (S, (K + 1) S, 3): the image, then the image blended with each map's colours
    (:data:`OVERLAY_WEIGHT`, :data:`OVERLAY_COLOUR`; integer arithmetic over 256 map levels)."""
    level = np.clip(np.rint(maps * 255.0), 0, 255).astype(np.uint8)
    grey = image.astype(np.uint32)[None, :, :, None]
    blended = (grey * (256 - OVERLAY_WEIGHT[level])[..., None] + OVERLAY_COLOUR[level]) >> 8
    plain = np.repeat(image[None, :, :, None], 3, axis=-1)
    panels = np.concatenate([plain, blended.astype(np.uint8)])  # (K + 1, S, S, 3)
    return panels.transpose(1, 0, 2, 3).reshape(image.shape[0], -1, 3)


def overlay_png(panels: np.ndarray, titles: list[str]) -> bytes:
    """PNG bytes of one image's panels (S, (K + 1) S, 3) uint8, each titled at its top left
    (``image``, then ``titles``)."""
    canvas = Image.fromarray(panels)
    draw = ImageDraw.Draw(canvas)
    size = panels.shape[0]
    for k, title in enumerate(["image", *titles]):
        draw.text((k * size + 4, 4), title, fill=(0, 255, 255))
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


@dataclass
class Predictor:
    """The model of a run directory with what it needs to predict: its ``meta`` (model.json),
    the class views and the validation thresholds found for it. ``model.predict(images)``."""

    model: torch.nn.Module
    meta: dict[str, Any]
    device: torch.device
    views: dict[str, dict[str, tuple[str, ...]]]
    thresholds: dict[tuple[str, str], Threshold] = field(default_factory=dict)

    @property
    def image_size(self) -> int:
        return int(self.meta["model"]["image_size"])

    @classmethod
    def load(
        cls,
        run_dir: str | Path,
        books: str | Path | None = None,
        device: str = "cpu",
        thresholds: str | Path | None = None,
    ) -> Predictor:
        """The predictor of ``run_dir`` (``results/models/{variant}/seed{seed}``) on
        ``device``; ``books`` None: the run's text books beside it; ``thresholds``: a zero-shot
        ``metrics.json`` (None: the run's own evaluation on each view's dataset, if there)."""
        run_dir = Path(run_dir)
        meta = read_run_meta(run_dir)
        entry = get_variant(meta["variant"])
        if not entry.does("zeroshot"):
            raise MedslipError(f"{run_dir}: {entry.name}: {entry.not_applicable['zeroshot']}")
        model = load_model(run_dir, None if books is None else Path(books)).to(device)
        view, dataset = THRESHOLDS
        maps = dict(defaults()["evaluate"]["entity_maps"][dataset])
        path = Path(thresholds) if thresholds is not None else _run_metrics(run_dir, meta)
        found: dict[tuple[str, str], Threshold] = {}
        if path is not None:  # the map and thresholds the run's evaluation used
            values, entities = read_thresholds(path)
            maps |= {name: entity for name, entity in entities.items() if name in maps}
            found = {(view, name): t for name, t in values.items() if name in maps}
        return cls(model.eval(), meta, torch.device(device), class_views(maps), found)

    def batches(
        self, paths: list[Path], batch_size: int, workers: int
    ) -> Iterator[tuple[list[int], torch.Tensor]]:
        """(indices, uint8 (B, 1, S, S)) batches of ``paths`` in order, with progress lines."""
        loader = torch.utils.data.DataLoader(
            ImageFiles(paths, self.image_size), batch_size=batch_size, num_workers=workers
        )
        what = f"predicting {len(paths)} images"
        for batch in progress(loader, what, unit="batch", logger=log):
            yield batch["index"].tolist(), batch["image"]

    @torch.no_grad()
    def run(
        self, images: torch.Tensor, top: int
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """uint8 (B, 1, S, S) -> probabilities (B, 75), the grounding maps (B, top, S, S) of
        each image's ``top`` ChestX-ray14 findings and their class indices (B, top) (None for a
        model without maps, or ``top`` 0)."""
        x = eval_transform(images.to(self.device), self.image_size)
        if top == 0 or not get_variant(self.meta["variant"]).does("grounding"):
            return self.model.existence_probability(x).float().cpu(), None, None
        probs, attention = self.model.existence(x, return_attention=True)
        classes = self.views[OVERLAY_VIEW]
        entities = torch.tensor([ENTITY_INDEX[e[0]] for e in classes.values()], device=x.device)
        chosen = probs[:, entities].topk(min(top, len(entities)), dim=1).indices  # (B, top)
        maps = attention_maps(ModelOutput(attn_p=attention), entities, use_ws_p=False)
        maps = maps.gather(1, chosen.unsqueeze(-1).expand(-1, -1, maps.shape[-1]))
        return probs.float().cpu(), normalise(maps, batch_max=False), chosen.cpu()

    def predict(
        self,
        images: Iterable[str | Path] | str | Path,
        batch_size: int = 16,
        overlays: str | Path | None = None,
        top: int = 3,
        workers: int = 0,
    ) -> pd.DataFrame:
        """The long table of ``images`` (files or folders; see the module docstring); with
        ``overlays`` (a folder), a PNG per image of its ``top`` findings' grounding maps."""
        if isinstance(images, str | Path):
            images = [images]
        paths = image_paths(images)
        out_dir = Path(overlays) if overlays is not None else None
        names = _overlay_names(paths)
        probs = np.zeros((len(paths), len(ENTITIES)), dtype=np.float32)
        written = [""] * len(paths)
        for index, batch in self.batches(paths, batch_size, workers):
            p, maps, chosen = self.run(batch, top if out_dir is not None else 0)
            probs[index] = p.numpy()
            if maps is not None:
                files = [out_dir / names[i] for i in index]
                self._write_overlays(files, batch, p, maps, chosen)
                for i, file in zip(index, files, strict=True):
                    written[i] = str(file)
        return self.table(paths, probs, written)

    def _write_overlays(
        self,
        files: list[Path],
        batch: torch.Tensor,
        probs: torch.Tensor,
        maps: torch.Tensor,
        chosen: torch.Tensor,
    ) -> None:
        """One overlay PNG per image of ``batch`` (uint8 (B, 1, S, S)): its maps (B, K, T) of
        the classes ``chosen`` (B, K), titled with their probabilities (from ``probs``)."""
        files[0].parent.mkdir(parents=True, exist_ok=True)
        size = self.image_size
        up = upsample(maps.flatten(0, 1), size, "bilinear").unflatten(0, maps.shape[:2])
        up = up.float().cpu().numpy()
        classes = list(self.views[OVERLAY_VIEW])
        for b, file in enumerate(files):
            titles = []
            for k in chosen[b].tolist():
                entity = self.views[OVERLAY_VIEW][classes[k]][0]
                titles.append(f"{classes[k]} {probs[b, ENTITY_INDEX[entity]]:.2f}")
            panels = overlay_panels(batch[b, 0].numpy(), up[b])
            write_bytes_atomic(file, overlay_png(panels, titles))

    def table(self, paths: list[Path], probs: np.ndarray, overlays: list[str]) -> pd.DataFrame:
        """The long table (:data:`COLUMNS`) of per-image entity probabilities (N, 75)."""
        frames = [_frame("entity", list(ENTITIES), [(e,) for e in ENTITIES], probs)]
        for view, classes in self.views.items():
            frame = _frame(view, list(classes), list(classes.values()), probs)
            found = [self.thresholds.get((view, c)) for c in frame["finding"]]
            frame["threshold"] = [t.value if t else np.nan for t in found]
            frame["threshold_source"] = [t.source if t else "" for t in found]
            frames.append(frame)
        table = pd.concat(frames, ignore_index=True)
        order = np.argsort(table["row"].to_numpy(), kind="stable")
        table = table.iloc[order].reset_index(drop=True)
        table["image"] = [str(paths[i]) for i in table["row"]]
        table["overlay"] = [overlays[i] for i in table["row"]]
        table["threshold_source"] = table["threshold_source"].fillna("")
        call = (table["probability"] >= table["threshold"]).astype("boolean")
        table["call"] = call.mask(table["threshold"].isna())
        return table[COLUMNS]


def _frame(
    view: str, findings: list[str], entities: list[tuple[str, ...]], probs: np.ndarray
) -> pd.DataFrame:
    """Rows (image ``row``, ``view``, finding, entity, probability) of one view: a finding
    scores the highest probability of its entities."""
    columns = [[ENTITY_INDEX[e] for e in group] for group in entities]
    scores = np.stack([probs[:, c].max(axis=1) for c in columns], axis=1)  # (N, F)
    n, f = scores.shape
    return pd.DataFrame(
        {
            "row": np.repeat(np.arange(n), f),
            "view": view,
            "finding": np.tile(findings, n),
            "entity": np.tile([" ".join(group) for group in entities], n),
            "probability": scores.reshape(-1).astype(float),
        }
    )


def _overlay_names(paths: list[Path]) -> list[str]:
    """``{stem}.png`` per image, ``{stem}_{k}.png`` for the k-th repeat of a stem."""
    seen: dict[str, int] = {}
    names = []
    for path in paths:
        k = seen.get(path.stem, 0)
        seen[path.stem] = k + 1
        names.append(f"{path.stem}.png" if k == 0 else f"{path.stem}_{k}.png")
    return names


def _run_metrics(run_dir: Path, meta: dict[str, Any]) -> Path | None:
    """The run's zero-shot metrics file of the :data:`THRESHOLDS` dataset, where the workflow
    writes it (``results/eval/...`` beside ``results/models/{variant}/seed{seed}``); None when
    it is not there or not ``ok``."""
    parents = run_dir.resolve().parents
    if len(parents) < 4:
        return None
    run = eval_dir("zeroshot", THRESHOLDS[1], meta["variant"], meta["seed"])
    path = parents[3] / run / EVAL_FILES["metrics"]
    if not path.is_file() or json.loads(path.read_text()).get("status") != "ok":
        return None
    return path


def write_table(table: pd.DataFrame, out: Path) -> None:
    """``table`` as CSV or (``.parquet``) Parquet at ``out``, atomically."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        if out.suffix == ".parquet":
            table.to_parquet(tmp, index=False)
        else:
            table.to_csv(tmp, index=False)
