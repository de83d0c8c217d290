"""Tables of the data and report stages for the HTML report: dataset sizes, quarantine and
published split sizes (``data_summary``), the report labels (``report_labels``) and the labels
every split of every dataset holds per entity (``label_statistics``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medslip.data.readers.mimic import NAME as MIMIC
from medslip.errors import MedslipError
from medslip.settings import STRIDE
from medslip.tables.paper import Table
from medslip.vocab import ENTITIES

SPLITS = ("train", "val", "test")
LABELS = ("positive", "negative", "uncertain", "unmentioned")
"""Label of an (image, entity) pair, in the order :func:`entity_labels` numbers them."""
_CLASS_LABEL = {1.0: 0, 0.0: 1, -1.0: 2}
_DRAWN = ("drawn", "drawn_below_token")


def _json(path: Path, keys: tuple[str, ...] = ()) -> dict[str, Any]:
    """A JSON object with ``keys`` (for ``train``/``val``/``test``: objects with ``images`` and
    ``patients``); anything else is an error naming the file."""
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise MedslipError(f"{path}: not a readable JSON file ({exc})") from None
    if not isinstance(value, dict):
        raise MedslipError(f"{path}: not a JSON object")
    for key in keys:
        entry = value.get(key)
        split_ok = isinstance(entry, dict) and {"images", "patients"} <= set(entry)
        if entry is None or (key in SPLITS and not split_ok):
            raise MedslipError(f"{path}: no {key!r} entry (or it lacks images/patients)")
    return value


def data_summary(data_dirs: list[Path], sources: dict[str, str]) -> Table:
    """One row per dataset of ``results/data/{dataset}``: images, quarantined, images and
    patients per published split, and the nested training subsets."""
    rows = []
    for path in data_dirs:
        counts = _json(path / "split_counts.json", (*SPLITS, "seed"))
        shards = _json(path / "shards" / "summary.json", ("images", "quarantined"))
        row = {"source": sources.get(path.name, "?"), "dataset": path.name}
        row |= {"images": shards["images"], "quarantined": shards["quarantined"]}
        for split in SPLITS:
            row |= {f"{split}_{k}": counts[split][k] for k in ("images", "patients")}
        row |= {k: v for k, v in counts.items() if k.startswith("subset_")}
        row["split_seed"] = counts["seed"]
        rows.append(row)
    caption = (
        "Datasets of this run: images in the shards, images quarantined (unreadable; listed "
        "in each dataset's shards/quarantine.csv), and the published splits "
        "(results/data/{dataset}/splits.csv) in images and patients, with the nested training "
        "subsets (`subset_*`, images) that fine-tuning uses. `source`: SynthCXR or real data."
    )
    return Table(pd.DataFrame(rows), "Data", caption, [])


def report_labels(reports_dir: Path) -> Table:
    """One row per pathology entity: reports in which it is present, uncertain, absent."""
    counts = _json(
        reports_dir / "counts.json",
        ("reports_read", "reports_parsed", "reports_skipped", "triplets"),
    )
    try:
        triplets = pd.read_parquet(reports_dir / "triplets.parquet")
    except (OSError, ValueError) as exc:
        raise MedslipError(f"{reports_dir / 'triplets.parquet'}: not readable ({exc})") from None
    per_report = triplets.drop_duplicates(["report_id", "pathology", "presence"])
    frame = (
        per_report.pivot_table(
            index="pathology", columns="presence", values="report_id", aggfunc="count"
        )
        .reindex(columns=["present", "uncertain", "absent"])
        .fillna(0)
        .astype(int)
        .sort_values("present", ascending=False)
        .reset_index()
    )
    caption = (
        f"Report labels: {counts['reports_read']} reports read, {counts['reports_parsed']} "
        f"parsed, {counts['reports_skipped']} skipped (reasons in skipped.csv), "
        f"{counts['triplets']} (pathology, anatomy, presence) triplets. Rows: reports in which "
        "each pathology entity is mentioned as present, uncertain or absent (a report can count "
        "in more than one column)."
    )
    return Table(frame, "Report labels", caption, [])


def entity_labels(matrix: np.ndarray, uncertain: np.ndarray) -> np.ndarray:
    """(N, 75) index into :data:`LABELS` of every report's entity labels, from its (N, 51, 75)
    label matrix and uncertain mask: positive where some landmark is 1, else negative where some
    is 0 (the existence label of the official pretraining ``dataset/dataset.py``; the torch
    version is :func:`medslip.model.losses.existence_labels`), else uncertain where some mention
    is uncertain (the official encoding leaves those -1), else unmentioned."""
    present = (matrix == 1).any(axis=1)
    absent = (matrix == 0).any(axis=1)
    return np.select([present, absent, uncertain.any(axis=1)], [0, 1, 2], 3)


def _read(path: Path, columns: list[str] | None = None) -> pd.DataFrame:
    try:
        if path.suffix == ".csv":
            return pd.read_csv(path, dtype=str, keep_default_na=False)
        return pd.read_parquet(path, columns=columns)
    except (OSError, ValueError) as exc:
        raise MedslipError(f"{path}: not readable ({exc})") from None


def _images(data_dir: Path) -> pd.DataFrame:
    """The manifest joined with its published split: image_id, study_id, path, labels, split."""
    columns = ["image_id", "study_id", "path", "labels"]
    manifest = _read(data_dir / "manifest.parquet", columns)
    splits = _read(data_dir / "splits.csv")[["image_id", "split"]]
    return manifest.merge(splits, on="image_id", how="inner", validate="one_to_one")


def _report_labels(images: pd.DataFrame, reports_dir: Path) -> tuple[np.ndarray, pd.DataFrame]:
    """Entity labels (n, 75) of the ``images`` whose study has a parsed report, and those images."""
    try:
        ids = (reports_dir / "report_ids.txt").read_text().split()
        matrix = np.load(reports_dir / "label_matrix.npy", mmap_mode="r")
        uncertain = np.load(reports_dir / "uncertain_mask.npy", mmap_mode="r")
    except (OSError, ValueError) as exc:
        raise MedslipError(f"{reports_dir}: not a report-stage output ({exc})") from None
    row = pd.Series(np.arange(len(ids)), index=ids)
    joined = images[images["study_id"].isin(row.index)]
    rows = row[joined["study_id"]].to_numpy()
    return entity_labels(matrix[rows], uncertain[rows]), joined


def _class_labels(images: pd.DataFrame, classes: list[str]) -> np.ndarray:
    """(n, len(classes)) index into :data:`LABELS` of the manifest's class labels."""
    values = [json.loads(text) for text in images["labels"]]
    out = [[_CLASS_LABEL.get(v.get(c), 3) for c in classes] for v in values]
    return np.asarray(out, dtype=np.int64).reshape(len(images), len(classes))


def _drawn(truth_dir: Path, images: pd.DataFrame, min_side: float) -> pd.DataFrame:
    """Drawn findings per (split, entity): ``drawn`` and ``drawn_below_token`` (tight box
    narrower or shorter than ``min_side`` of the image side), joined by image path."""
    written = _read(truth_dir / "images.parquet", ["image_id", "path", "size"])
    findings = _read(truth_dir / "findings.parquet")  # no columns when nothing was drawn
    findings = findings.reindex(columns=["image_id", "entity", "w", "h"])
    findings = findings.merge(written, on="image_id").merge(images[["path", "split"]], on="path")
    findings["below"] = np.minimum(findings["w"], findings["h"]) < min_side * findings["size"]
    return findings.groupby(["split", "entity"]).agg(
        drawn=("below", "size"), drawn_below_token=("below", "sum")
    )[list(_DRAWN)]


def label_statistics(
    data_dirs: list[Path],
    reports_dir: Path,
    entity_maps: dict[str, dict[str, str]],
    sources: dict[str, str],
    model_size: int,
    truth_dirs: Sequence[Path] = (),
) -> Table:
    """Per dataset × split × entity: images positive, negative, uncertain and unmentioned
    (MIMIC-CXR: the parsed reports' entity labels, entities never mentioned nor drawn left out;
    other datasets: the manifest's class labels of the classes ``entity_maps`` scores), and for
    the SynthCXR trees in ``truth_dirs`` the findings drawn and how many are smaller than one
    visual token of the ``model_size``-pixel model input."""
    truth = {path.name: path for path in truth_dirs}
    rows = []
    for path in data_dirs:
        dataset = path.name
        images = _images(path)
        if dataset == MIMIC:
            labels, images = _report_labels(images, reports_dir)
            pairs = [("", e) for e in ENTITIES]
        elif dataset in entity_maps:
            pairs = list(entity_maps[dataset].items())
            labels = _class_labels(images, [c for c, _ in pairs])
        else:
            continue
        drawn = _drawn(truth[dataset], images, STRIDE / model_size) if dataset in truth else None
        for split in SPLITS:
            part = labels[(images["split"] == split).to_numpy()]
            counts = np.stack([(part == k).sum(axis=0) for k in range(len(LABELS))], axis=1)
            for (cls, entity), n in zip(pairs, counts, strict=True):
                row = {"source": sources.get(dataset, "?"), "dataset": dataset, "split": split}
                row |= {"class": cls, "entity": entity, "images": len(part)}
                row |= dict(zip(LABELS, n.tolist(), strict=True))
                if drawn is not None:
                    got = drawn.reindex([(split, entity)], fill_value=0).iloc[0]
                    row |= {k: int(v) for k, v in got.items()}
                rows.append(row)
    columns = ["source", "dataset", "split", "class", "entity", "images", *LABELS]
    frame = pd.DataFrame(rows, columns=[*columns, *_DRAWN])
    frame[list(_DRAWN)] = frame[list(_DRAWN)].astype("Int64")
    said = frame[list(LABELS[:3])].sum(axis=1) + frame["drawn"].fillna(0)
    used = said.groupby([frame["dataset"], frame["entity"]]).transform("sum") > 0
    frame = frame[used | (frame["dataset"] != MIMIC)].reset_index(drop=True)
    caption = (
        "Labels per dataset, published split and entity, in images. MIMIC-CXR (pretraining): "
        "each image gets its study's report labels as pretraining reads them (the official "
        "existence labels): `positive` when the entity is present at some landmark, else "
        "`negative` when stated absent, else `uncertain` when only hedged (the official "
        "encoding leaves those unlabelled), else `unmentioned`; entities no report mentions and "
        "no image shows are left out. Other datasets: the class labels of the classes zero-shot "
        "scores, with the entity that scores each (`evaluate.entity_maps`). SynthCXR trees: "
        "`drawn` findings of the entity and how many have a tight box narrower or shorter than "
        "one visual token "
        f"(`drawn_below_token`: {STRIDE} px of the {model_size}-px model input, "
        f"{STRIDE / model_size:.1%} of the image side); empty for real data."
    )
    return Table(frame, "Label statistics", caption, [])
