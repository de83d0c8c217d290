"""``grounding_overlays``: a fixed, seeded sample of positive test pairs of one grounding
dataset, each as the image with its ground truth outlined, the pathology-stream map and the
anatomy-weighted map (``use_ws_p``), with the evaluation's validation τ drawn as the contour of
``map > τ`` on the map the evaluation scored.

The maps are made by the evaluation's own functions (:mod:`medslip.evaluate.grounding`:
``attention_maps``, ``normalise``, ``upsample``) from the model, data and ground truth the
evaluation reads (:mod:`medslip.evaluate.inputs`, :mod:`medslip.evaluate.truth`), normalised per
image (the default protocol).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from medslip.data.shards import GATHERED, ShardReader
from medslip.errors import MedslipError
from medslip.evaluate.grounding import attention_maps, normalise, upsample
from medslip.evaluate.inputs import (
    EvalSet,
    image_batches,
    load_eval_set,
    load_model,
)
from medslip.evaluate.truth import Masks, official_truth, shard_geometry
from medslip.figures.inputs import read_json, require
from medslip.figures.style import (
    TAU_COLOUR,
    TRUTH_COLOUR,
    footnote,
    message_figure,
    save,
    styled,
    title,
)
from medslip.layout import RUN_FILES
from medslip.pretrain.checkpoint import read_run_meta
from medslip.settings import EvalSettings, OverlaySettings
from medslip.variants import variant as get_variant
from medslip.vocab import ENTITY_INDEX

ROWS = ("image", "pathology", "anatomy")
ROW_NAMES = {
    "image": "image",
    "pathology": "pathology-stream map",
    "anatomy": "anatomy-weighted map\n(use_ws_p)",
}
HEADING = "Zero-shot grounding: attention maps of a seeded sample of positive test images"


def positive_test_pairs(data: EvalSet, truths: Masks) -> list[tuple[int, int]]:
    """(row, class) of every positive test pair with ground truth, sorted."""
    split = data.frame["split"].to_numpy()
    return sorted(key for key in truths if split[key[0]] == "test")


def overlay_sample(pairs: list[tuple[int, int]], count: int, seed: int) -> list[tuple[int, int]]:
    """``count`` of ``pairs`` (all when fewer) drawn without replacement with ``seed``, in the
    pairs' order: the same pairs and seed always give the same sample."""
    if count >= len(pairs):
        return list(pairs)
    chosen = np.random.default_rng(seed).choice(len(pairs), size=count, replace=False)
    return [pairs[i] for i in sorted(chosen.tolist())]


@torch.no_grad()
def overlay_maps(
    model: torch.nn.Module,
    data: EvalSet,
    pairs: list[tuple[int, int]],
    image_size: int,
    settings: EvalSettings,
    device: torch.device,
) -> dict[str, np.ndarray | None]:
    """Per ``pairs`` (row, class): the pathology-stream map and (None for a model without an
    anatomy stream) the anatomy-weighted map, each normalised by its own maximum and upsampled
    (``evaluate.grounding.upsample``) to the shard resolution: float (N, S, S) in [0, 1]."""
    size, _ = shard_geometry(data)
    mode = settings.grounding["upsample"]
    entities = torch.tensor([ENTITY_INDEX[e] for e in data.entities], device=device)
    rows = sorted({r for r, _ in pairs})
    keys = data.frame["image_id"].iloc[rows].tolist()
    maps: dict[str, dict[str, torch.Tensor]] = {"pathology": {}, "anatomy": {}}
    batches = image_batches(data, keys, image_size, settings.batch_size, 0, device, "overlays")
    for ids, images in batches:
        out = model(images, return_attention=True)
        if not out.attn_p:
            raise MedslipError("the model gives no attention maps to draw")
        kinds = {"pathology": False} | ({"anatomy": True} if out.attn_a else {})
        for kind, use_ws_p in kinds.items():
            batch = normalise(attention_maps(out, entities, use_ws_p), batch_max=False)
            maps[kind] |= dict(zip(ids, batch, strict=True))
    result: dict[str, np.ndarray | None] = {}
    for kind, by_id in maps.items():
        if not by_id:
            result[kind] = None
            continue
        tokens = torch.stack([by_id[data.frame["image_id"].iloc[r]][k] for r, k in pairs])
        result[kind] = upsample(tokens, size, mode).clamp(0, 1).cpu().numpy()
    return result


def _row_label(kind: str, scored: str, tau: float) -> str:
    """The row's name, with its outline colours: green truth, dashed cyan ``map > τ``."""
    label = ROW_NAMES[kind] + ("\ngreen: ground truth" if kind == "image" else "")
    if kind == scored and np.isfinite(tau):
        label += f"\ncyan dashed: map > τ_val = {tau:.2f}"
    return label


def _evaluation_tau(metrics: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    official = metrics.get("truths", {}).get("official", {})
    tau = official.get("tau_val")
    return (float(tau) if tau is not None else float("nan")), metrics.get("protocol", {})


def draw_grounding_overlays(
    config: dict[str, Any],
    run_dir: str | Path,
    books: str | Path,
    data_dir: str | Path,
    dataset: str,
    metrics_path: str | Path,
    out: str | Path,
    device: torch.device,
):
    """Draw the overlays of the model of ``run_dir`` on ``dataset`` (data stage ``data_dir``)
    with the τ of the grounding ``metrics_path`` into ``out`` (PNG) and its PDF twin."""
    run_dir, data_dir, books = Path(run_dir), Path(data_dir), Path(books)
    shards = data_dir / "shards"
    require(
        [
            run_dir / RUN_FILES["meta"],
            run_dir / RUN_FILES["weights"],
            books,
            data_dir / "manifest.parquet",
            data_dir / "splits.csv",
            shards / GATHERED["summary"],
            shards / GATHERED["index"],
            metrics_path,
        ]
    )
    settings = EvalSettings.from_config(config, (dataset,), grounding=True)
    overlay = OverlaySettings.from_config(config)
    meta = read_run_meta(run_dir)
    variant, seed = meta["variant"], meta["seed"]
    entry = get_variant(variant)
    if not entry.does("grounding"):
        raise MedslipError(f"grounding_overlays: {variant}: {entry.not_applicable['grounding']}")
    tau, protocol = _evaluation_tau(read_json(metrics_path))
    data = load_eval_set(data_dir, dataset, settings)
    truths = official_truth(data)
    pairs = positive_test_pairs(data, truths)
    where = f"{variant} seed {seed}, {dataset}"
    if not pairs:
        return message_figure(HEADING, f"no positive test image with ground truth ({where})", out)
    chosen = overlay_sample(pairs, overlay.count, overlay.seed)
    model = load_model(run_dir, books, device)
    maps = overlay_maps(model, data, chosen, meta["model"]["image_size"], settings, device)
    scored = "anatomy" if protocol.get("use_ws_p") else "pathology"
    reader = ShardReader(shards)
    n = len(chosen)
    with styled() as plt:
        fig, axes = plt.subplots(
            3, n, figsize=(2.25 * n + 1.6, 7.4), layout="constrained", squeeze=False
        )
        image = None
        for j, (row, k) in enumerate(chosen):
            image_id = str(data.frame["image_id"].iloc[row])
            pixels = reader[image_id]
            truth = truths[(row, k)].astype(float)
            short = image_id if len(image_id) <= 22 else image_id[:10] + "…" + image_id[-10:]
            for i, kind in enumerate(ROWS):
                ax = axes[i, j]
                heat = maps[kind][j] if kind != "image" and maps[kind] is not None else None
                drawn = _panel(ax, kind, pixels, truth, heat, tau if kind == scored else None)
                image = drawn if drawn is not None else image
                if kind != "image" and heat is None:
                    ax.text(
                        0.5,
                        0.5,
                        f"n/a: {variant} has\nno anatomy stream",
                        transform=ax.transAxes,
                        ha="center",
                        va="center",
                        color="white",
                        fontsize=8,
                    )
                if i == 0:
                    ax.set_title(f"{short}\n{data.classes[k]}", fontsize=8)
                if j == 0:
                    ax.set_ylabel(_row_label(kind, scored, tau), fontsize=9)
        if image is not None:
            fig.colorbar(
                image,
                ax=axes.ravel().tolist(),
                shrink=0.8,
                label="attention, normalised per image (0–1)",
            )
        title(fig, f"{HEADING}\n{where}")
        lines = _caption(n, len(pairs), overlay.seed, data, settings, tau, protocol, scored)
        footnote(fig, lines)
        return save(fig, out)


def _panel(ax, kind: str, pixels: np.ndarray, truth: np.ndarray, heat, tau: float | None):
    """One panel: the image, the map ``heat`` (S, S) over it (none for the image row; greyed out
    when the model has no such map), the prediction contour at ``tau`` (the scored row only) and
    the truth contour; returns the map's image (for the colour bar) or None."""
    ax.set_xticks([])
    ax.set_yticks([])
    ax.imshow(pixels, cmap="gray", vmin=0, vmax=255, interpolation="bilinear")
    shown = None
    if kind != "image" and heat is None:
        ax.imshow(np.zeros_like(pixels), cmap="gray", alpha=0.6, vmin=0, vmax=1)
    elif kind != "image":
        shown = ax.imshow(heat, cmap="inferno", vmin=0, vmax=1, alpha=0.6, interpolation="bilinear")
        predicted = heat > tau if tau is not None else None
        if predicted is not None and np.isfinite(tau) and 0 < predicted.mean() < 1:
            ax.contour(
                predicted.astype(float),
                levels=[0.5],
                colors=TAU_COLOUR,
                linewidths=1.2,
                linestyles="--",
            )
    if kind == "image" or heat is not None:
        ax.contour(truth, levels=[0.5], colors=TRUTH_COLOUR, linewidths=1.2)
    return shown


def _caption(
    n: int,
    n_pairs: int,
    seed: int,
    data,
    settings: EvalSettings,
    tau: float,
    protocol: dict,
    scored: str,
) -> list[str]:
    """The footnote lines: the sample, how the maps are made, and the τ contour."""
    lines = [
        f"{n} of {n_pairs} positive (image, class) pairs of the test split with ground "
        f"truth, drawn with seed {seed} (figures.overlay_seed); image at "
        f"the shard resolution ({shard_geometry(data)[0]} px square).",
        "Pathology-stream map: the pathology decoder's cross-attention of the class entity, "
        "mean over heads and layers. Anatomy-weighted map (use_ws_p): that map × the mean "
        "over layers and the 51 landmark queries of the anatomy decoder's attention. Both "
        "normalised by their own maximum, upsampled "
        f"{settings.grounding['upsample']} from the token grid.",
    ]
    if not np.isfinite(tau):
        return [*lines, "No τ_val: the evaluation chose none (no validation positive)."]
    tau_line = (
        f"Dashed: P = map > τ_val = {tau:.2f}, the τ the evaluation chose "
        f"({protocol.get('tau_val', 'on validation positives')}), drawn on the "
        f"{scored}{'-weighted' if scored == 'anatomy' else '-stream'} map it scored "
        f"(evaluate.grounding.use_ws_p = {bool(protocol.get('use_ws_p'))})."
    )
    if str(protocol.get("normalisation", "")).startswith("batch"):
        tau_line += (
            " The evaluation normalised by the batch maximum, these maps by their own:"
            " the contour is indicative only."
        )
    return [*lines, tau_line]
