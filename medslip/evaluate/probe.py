"""Disentanglement probe: does the pathology stream carry *what* is in an image and the anatomy
stream *where* it is, as MeDSLIP claims?

Features: per token and stream, the stream's decoder memory res_l2(ReLU(res_l1 x)) at that
token (``model.stream_tokens``), so the spatial information the anatomy stream is meant to carry
is kept; MedKLIP has a pathology stream only, ``global_clip`` has no streams (reported n/a);
``random_init`` is probed (its random features are the baseline).

Rows: the tokens a SynthCXR finding covers, from the exact finding masks of the published test
split's images that are in the shards: a finding covers the tokens whose cell (as the grounding
upsampling draws it, :func:`~medslip.evaluate.grounding.pooled`) it fills to at least
:data:`COVER`, and always its most-covered token, so a nodule smaller than a token still has
one. Targets per row: ``presence``, one column per finding kind covering the token (what);
``landmark``, one column per landmark of those findings (where). A column is kept when each
probe part has ``min_positives`` positive and ``min_positives`` negative tokens.

Protocol: the test split's patients are split (seeded, by patient) into probe train/val/test.
Per stream and target, one L2 logistic regression per column (one-vs-rest) on features
standardised on probe train; C is chosen on the probe-val macro AUC, and the train fit with it is
scored on probe test: macro AUC over the kept columns with a 95 % patient-bootstrap interval, and
the paired difference own stream − other stream (presence: pathology − anatomy; landmark:
anatomy − pathology) under the same resamples, with its minimal detectable difference (the
difference a two-sided 5 % test would detect with 80 % power at the bootstrap's standard error,
:data:`MDD_FACTOR` × SE), so "no stream better" can be told from "too few tokens to tell".
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from medslip.data.decode import resize_mask
from medslip.data.shards import GATHERED
from medslip.data.splits import read_split_table
from medslip.errors import MedslipError
from medslip.evaluate.grounding import pooled
from medslip.evaluate.inputs import (
    EvalSet,
    image_batches,
    load_model,
)
from medslip.evaluate.report import not_applicable, write_outputs
from medslip.evaluate.scores import auc, bootstrap_counts, classification_draws, interval
from medslip.evaluate.truth import eval_image_id, shard_geometry
from medslip.pretrain.checkpoint import read_run_meta
from medslip.progress import Progress
from medslip.rle import decode_siim
from medslip.settings import PROBE_PARTS as PARTS
from medslip.settings import STRIDE, EvalSettings, ProbeSettings

log = logging.getLogger(__name__)
OWN_STREAM = {"presence": ("pathology", "anatomy"), "landmark": ("anatomy", "pathology")}
"""Per target: (the stream it should be read from, the stream it is compared with)."""
PREDICTION_COLUMNS = [
    "image_id",
    "patient_id",
    "token",
    "probe_split",
    "stream",
    "target",
    "column",
    "label",
    "score",
]
COVER = 0.25
"""Share of a token's cell a finding must fill to cover the token (its most-covered token is
always covered)."""
MDD_FACTOR = 2.8
"""z(0.975) + z(0.80): the minimal detectable difference is this many standard errors."""
MAX_ITER = 5000
"""lbfgs iterations of each logistic regression (a fit that does not converge is noted)."""
PHRASES = {
    "better": "is better than",
    "worse": "is worse than",
    "not distinguishable": "is not distinguishable from",
    "undetermined": "cannot be compared with",
}


@dataclass(frozen=True)
class Target:
    """0/1 ``labels`` (n, K) of ``columns`` for the rows ``rows`` (n,) of the probe frame."""

    rows: np.ndarray
    columns: list[str]
    labels: np.ndarray


def _read(path: Path, columns: list[str]) -> pd.DataFrame:
    """``columns`` of a Parquet or CSV file; a missing or unreadable file is an error naming it."""
    try:
        if path.suffix == ".csv":
            return pd.read_csv(path, usecols=columns, dtype=str).fillna("")
        return pd.read_parquet(path, columns=columns)
    except (OSError, ValueError, KeyError) as exc:
        raise MedslipError(f"{path}: cannot read columns {columns} ({exc})") from None


def indicator(rows: np.ndarray, values: np.ndarray, n: int) -> tuple[list[str], np.ndarray]:
    """0/1 float (n, K) marking each (row, value) pair; columns = the sorted distinct values."""
    columns = sorted(set(values.tolist()))
    index = {c: k for k, c in enumerate(columns)}
    out = np.zeros((n, len(columns)))
    out[rows, [index[v] for v in values]] = 1.0
    return columns, out


def load_probe_set(data_dir: Path, truth_dir: Path) -> tuple[EvalSet, pd.DataFrame, list[str]]:
    """The test-split images of ``data_dir`` in the shards and in the ground truth (image-id
    order; an :class:`EvalSet` without classes, for :func:`image_batches`), their findings
    (``row`` of the image, ``kind``, ``landmark``, ``mask_rle``, source ``size``) and notes on
    the images left out."""
    splits = read_split_table(data_dir / "splits.csv")
    test = splits[splits["split"] == "test"]
    shards = data_dir / "shards"
    stored = set(_read(shards / GATHERED["index"], ["image_id"])["image_id"])
    images = _read(truth_dir / "images.parquet", ["image_id", "size"])
    findings = _read(truth_dir / "findings.parquet", ["image_id", "kind", "landmark", "mask_rle"])
    ids = set(splits["image_id"])  # the manifest's ids (NIH's truth keeps the .png suffix)
    size_of = dict(zip(images["image_id"], images["size"], strict=True))
    findings["size"] = findings["image_id"].map(size_of)
    for table in (images, findings):
        table["image_id"] = [eval_image_id(i, ids) for i in table["image_id"]]
    in_shards = test["image_id"].isin(stored)
    in_truth = test["image_id"].isin(set(images["image_id"]))
    frame = test[in_shards & in_truth].sort_values("image_id").reset_index(drop=True)
    if len(test) and not in_truth.any():
        raise MedslipError(
            f"{truth_dir}: none of the {len(test)} test images of {data_dir / 'splits.csv'} is "
            "in this ground truth (is the dataset served by SynthCXR?)"
        )
    frame["patient_id"] = frame["patient_id"].where(frame["patient_id"] != "", frame["image_id"])
    notes = [] if len(frame) else ["no test image to probe"]
    if (~in_shards).any():
        notes.append(f"{int((~in_shards).sum())} test images are not in the shards (quarantined)")
    if (~in_truth).any():
        notes.append(f"{int((~in_truth).sum())} test images are not in the ground truth")
    row_of = pd.Series(np.arange(len(frame)), index=frame["image_id"])
    sites = findings[findings["image_id"].isin(row_of.index)].copy()
    sites["row"] = row_of[sites["image_id"]].to_numpy()
    data = EvalSet(
        frame=frame[["image_id", "patient_id", "split"]],
        classes=[],
        entities=[],
        labels=np.zeros((len(frame), 0)),
        shards=shards,
        missing=int((~in_shards).sum()),
    )
    return data, sites.reset_index(drop=True), notes


def covered_tokens(sites: pd.DataFrame, grid: int, size: int, aspect: str) -> pd.DataFrame:
    """One row per (finding, token it covers): ``row``, ``token``, ``kind``, ``landmark``. Masks
    are resized like the images (shard ``size``, ``aspect``) and pooled to the ``grid``."""
    out = []
    for site in sites.itertuples(index=False):
        mask = decode_siim(list(site.mask_rle), int(site.size), int(site.size))
        shard_mask = torch.from_numpy(resize_mask(mask, size, aspect))[None]
        cover = pooled(shard_mask, grid, "bilinear")[0]
        if float(cover.max()) <= 0:
            continue
        tokens = set((cover >= COVER).nonzero().flatten().tolist()) | {int(cover.argmax())}
        out += [(site.row, t, site.kind, site.landmark) for t in sorted(tokens)]
    return pd.DataFrame(out, columns=["row", "token", "kind", "landmark"])


def token_targets(
    data: EvalSet, covered: pd.DataFrame
) -> tuple[pd.DataFrame, np.ndarray, dict[str, Target]]:
    """The probe frame (one row per covered token: image_id, patient_id, token), the image row
    and token of each, and the ``presence`` (kinds) and ``landmark`` targets over every row."""
    keys = covered[["row", "token"]].drop_duplicates().sort_values(["row", "token"])
    keys = keys.reset_index(drop=True)
    index = pd.Series(np.arange(len(keys)), index=pd.MultiIndex.from_frame(keys))
    at = index[pd.MultiIndex.from_frame(covered[["row", "token"]])].to_numpy()
    frame = data.frame.iloc[keys["row"]][["image_id", "patient_id"]].reset_index(drop=True)
    frame["token"] = keys["token"].to_numpy()
    targets = {}
    for name, column in (("presence", "kind"), ("landmark", "landmark")):
        columns, labels = indicator(at, covered[column].to_numpy(), len(keys))
        targets[name] = Target(np.arange(len(keys)), columns, labels)
    return frame, keys.to_numpy(), targets


@torch.no_grad()
def probe_features(
    model: torch.nn.Module,
    data: EvalSet,
    at: np.ndarray,
    image_size: int,
    settings: EvalSettings,
    device: torch.device,
) -> dict[str, np.ndarray]:
    """Token features of each of ``model.STREAMS`` at the (image row, token) pairs ``at``
    (n, 2): float64 (n, d_model)."""
    keys = data.frame["image_id"].tolist()
    chunks: dict[str, list[torch.Tensor]] = {stream: [] for stream in model.STREAMS}
    start = 0
    for _, images in image_batches(
        data, keys, image_size, settings.batch_size, settings.workers, device, "probe"
    ):
        mine = (at[:, 0] >= start) & (at[:, 0] < start + len(images))
        rows = torch.from_numpy(at[mine, 0] - start).to(device)
        tokens = torch.from_numpy(at[mine, 1]).to(device)
        for stream, features in model.stream_tokens(images).items():
            chunks[stream].append(features[rows, tokens].float().cpu())
        start += len(images)
    return {
        stream: torch.cat(c).double().numpy() if c else np.zeros((0, 0))
        for stream, c in chunks.items()
    }


def probe_parts(patients: np.ndarray, fractions: tuple[float, ...], seed: int) -> np.ndarray:
    """Probe part (0 train, 1 val, 2 test) of each row, by patient: the sorted distinct
    ``patients`` in a seeded random order, cut at the rounded cumulative ``fractions``."""
    unique, code = np.unique(patients, return_inverse=True)
    order = np.random.default_rng(seed).permutation(len(unique))
    bounds = np.round(np.cumsum(fractions) * len(unique)).astype(int)
    position_part = np.minimum(np.searchsorted(bounds, np.arange(len(unique)), "right"), 2)
    part = np.empty(len(unique), dtype=int)
    part[order] = position_part
    return part[code]


def kept_columns(labels: np.ndarray, part: np.ndarray, min_positives: int) -> np.ndarray:
    """bool (K,): columns of ``labels`` (n, K) with ``min_positives`` positives and negatives
    in every probe part of ``part`` (n,)."""
    keep = np.ones(labels.shape[1], dtype=bool)
    for p in range(len(PARTS)):
        positives = labels[part == p].sum(axis=0)
        keep &= (positives >= min_positives) & ((part == p).sum() - positives >= min_positives)
    return keep


def fit_scores(
    x: np.ndarray, labels: np.ndarray, train: np.ndarray, c: float
) -> tuple[np.ndarray, bool]:
    """One L2 logistic regression per column of ``labels`` (n, K) fitted on the ``train`` rows
    of ``x`` (n, d), standardised with the train rows' mean and SD -> P(positive) of every row
    (n, K) and whether every fit converged."""
    scaler = StandardScaler().fit(x[train])
    z = scaler.transform(x)
    scores = np.zeros(labels.shape)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        for k in range(labels.shape[1]):
            fit = LogisticRegression(C=c, max_iter=MAX_ITER).fit(z[train], labels[train, k])
            scores[:, k] = fit.predict_proba(z)[:, 1]
    return scores, not any(issubclass(w.category, ConvergenceWarning) for w in caught)


def macro_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Mean over the columns of ``labels`` (n, K) of the AUC of ``scores`` (n, K); NaN when
    K = 0 or no column has both classes."""
    values = [auc(labels[:, k], scores[:, k]) for k in range(labels.shape[1])]
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


@dataclass(frozen=True)
class StreamFit:
    """A stream's probe of a target: the chosen ``c``, val macro AUC per C, scores of the
    target's rows (n, K), test macro AUC ``point`` and its bootstrap ``draws`` (R,), per-column
    test metrics, and whether every fit at ``c`` converged."""

    c: float
    val_auc: dict[float, float]
    scores: np.ndarray
    point: float
    draws: np.ndarray
    columns: dict[str, Any]
    converged: bool


def fit_stream(
    x: np.ndarray,
    target: Target,
    part: np.ndarray,
    weights: np.ndarray,
    settings: ProbeSettings,
) -> StreamFit:
    """Choose C on probe val, score probe test: ``x`` (n, d) and ``part`` (n,) over the rows
    of ``target`` (at least one column), ``weights`` (R, n_test) the bootstrap counts of its
    probe-test rows."""
    train, val, test = (part == p for p in range(len(PARTS)))
    fits = {c: fit_scores(x, target.labels, train, c) for c in settings.c_grid}
    val_auc = {c: macro_auc(target.labels[val], s[val]) for c, (s, _) in fits.items()}
    best = max(settings.c_grid, key=lambda c: (val_auc[c], -c))  # ties: the smaller C
    scores, converged = fits[best]
    labels = target.labels[test]
    per_column: dict[str, Any] = {}
    draws = np.full((len(target.columns), len(weights)), np.nan)
    for k, name in enumerate(target.columns):
        draws[k] = classification_draws(labels[:, k], scores[test, k], np.nan, weights)[:, 0]
        per_column[name] = {
            "auc": auc(labels[:, k], scores[test, k]),
            "auc_ci": list(interval(draws[k])),
        } | {
            f"n_{name_p}_positive": int(target.labels[part == p, k].sum())
            for p, name_p in enumerate(PARTS)
        }
    with warnings.catch_warnings():  # resamples where every column lacks a class
        warnings.simplefilter("ignore", RuntimeWarning)
        macro_draws = np.nanmean(draws, axis=0)
    return StreamFit(
        c=best,
        val_auc=val_auc,
        scores=scores,
        point=macro_auc(labels, scores[test]),
        draws=macro_draws,
        columns=per_column,
        converged=converged,
    )


def minimal_detectable_difference(draws: np.ndarray) -> float:
    """:data:`MDD_FACTOR` × the bootstrap standard error of a paired difference (its
    resamples ``draws`` (R,)); NaN without two finite resamples."""
    finite = draws[np.isfinite(draws)]
    return float(MDD_FACTOR * finite.std(ddof=1)) if len(finite) > 1 else float("nan")


def judge(point: float, ci: tuple[float, float]) -> str:
    """better / worse (the interval of own − other excludes 0), not distinguishable, or
    undetermined (no finite difference)."""
    if not (np.isfinite(point) and np.isfinite(ci[0])):
        return "undetermined"
    return "better" if ci[0] > 0 else "worse" if ci[1] < 0 else "not distinguishable"


def verdict(table: dict[str, Any], differences: dict[str, Any]) -> str:
    """One sentence: is each stream better at its own target than the other stream?"""
    if not differences:
        streams = ", ".join(table)
        aucs = "; ".join(
            f"{t} AUC {_number(table[s][t]['auc'], '.3f')}" for s in table for t in table[s]
        )
        return f"Only a {streams} stream ({aucs}): no other stream to compare it with."
    parts = []
    for target, d in differences.items():
        lo, hi = d["auc_difference_ci"]
        numbers = (
            f" (ΔAUC {_number(d['auc_difference'], '+.3f')}, 95 % CI "
            f"[{_number(lo, '+.3f')}, {_number(hi, '+.3f')}], detectable "
            f"{_number(d['auc_difference_mdd'], '.3f')})"
            if d["judgement"] != "undetermined"
            else " (no column to score)"
        )
        parts.append(
            f"the {d['own']} stream {PHRASES[d['judgement']]} the {d['other']} stream at "
            f"finding {target}{numbers}"
        )
    sentence = "; ".join(parts)
    return sentence[0].upper() + sentence[1:] + "."


def _number(value: float | None, spec: str) -> str:
    return format(value, spec) if value is not None and np.isfinite(value) else "n/a"


def probe(
    frame: pd.DataFrame,
    features: dict[str, np.ndarray],
    targets: dict[str, Target],
    settings: ProbeSettings,
    bootstrap: int,
    seed: int,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Probe every stream of ``features`` ({stream: (N, d)} over the rows of ``frame``:
    image_id, patient_id) for each target -> predictions (:data:`PREDICTION_COLUMNS`) and the
    metrics body: table, differences, verdict, C, counts, notes."""
    patients = frame["patient_id"].to_numpy()
    part = probe_parts(patients, settings.fractions, seed)
    test_patients = np.unique(patients[part == 2])
    counts = bootstrap_counts(test_patients, bootstrap, seed)
    notes: list[str] = []
    table: dict[str, Any] = {stream: {} for stream in features}
    chosen: dict[str, Any] = {stream: {} for stream in features}
    draws: dict[tuple[str, str], np.ndarray] = {}
    rows_out: list[pd.DataFrame] = []
    image_counts, dropped = {}, {}
    bar = Progress("probe fits", len(targets) * len(features), unit="fit", logger=log)
    for name, target in targets.items():
        rows_part = part[target.rows]
        keep = kept_columns(target.labels, rows_part, settings.min_positives)
        names = np.array(target.columns, dtype=object)
        kept = Target(target.rows, names[keep].tolist(), target.labels[:, keep])
        image_counts[name] = {p: int((rows_part == k).sum()) for k, p in enumerate(PARTS)}
        dropped[name] = names[~keep].tolist()
        if not kept.columns:
            notes.append(
                f"{name}: no column has {settings.min_positives} positive and negative images "
                "in each probe part; nothing to score"
            )
        test_rows = target.rows[rows_part == 2]
        weights = counts[:, np.searchsorted(test_patients, patients[test_rows])]
        for stream, x in features.items():
            if not kept.columns:
                table[stream][name] = _empty_entry()
                chosen[stream][name] = None
                draws[stream, name] = np.full(bootstrap, np.nan)
                bar.update()
                continue
            fit = fit_stream(x[target.rows], kept, rows_part, weights, settings)
            if not fit.converged:
                notes.append(f"{stream}/{name}: a fit at C = {fit.c:g} did not converge")
            table[stream][name] = {
                "auc": fit.point,
                "auc_ci": list(interval(fit.draws)),
                "n_columns": len(kept.columns),
                "columns": fit.columns,
            }
            chosen[stream][name] = {
                "chosen": fit.c,
                "val_auc": {f"{c:g}": v for c, v in fit.val_auc.items()},
            }
            draws[stream, name] = fit.draws
            rows_out.append(_long(frame, kept, rows_part, stream, name, fit.scores))
            bar.update(target=name, stream=stream)
    bar.close()
    differences = {}
    if all(s in features for s in ("pathology", "anatomy")):
        for name in targets:
            own, other = OWN_STREAM[name]
            point = table[own][name]["auc"] - table[other][name]["auc"]
            paired = draws[own, name] - draws[other, name]
            ci = interval(paired)
            differences[name] = {
                "own": own,
                "other": other,
                "auc_difference": point,
                "auc_difference_ci": list(ci),
                "auc_difference_mdd": minimal_detectable_difference(paired),
                "judgement": judge(point, ci),
            }
    predictions = (
        pd.concat(rows_out, ignore_index=True)
        if rows_out
        else pd.DataFrame(columns=PREDICTION_COLUMNS)
    )
    body = {
        "table": table,
        "differences": differences,
        "verdict": verdict(table, differences),
        "C": chosen,
        "counts": {
            "patients": {p: int(len(np.unique(patients[part == k]))) for k, p in enumerate(PARTS)},
            "images": image_counts,
            "dropped_columns": dropped,
        },
        "notes": notes,
    }
    return predictions, body


def _empty_entry() -> dict[str, Any]:
    return {"auc": float("nan"), "auc_ci": [float("nan")] * 2, "n_columns": 0, "columns": {}}


def _long(
    frame: pd.DataFrame,
    target: Target,
    part: np.ndarray,
    stream: str,
    name: str,
    scores: np.ndarray,
) -> pd.DataFrame:
    """One row per (token of the target, kept column) with its label and probe score."""
    n, k = target.labels.shape
    out = frame.iloc[np.repeat(target.rows, k)][["image_id", "patient_id", "token"]]
    out = out.reset_index(drop=True)
    out["probe_split"] = np.repeat(np.array(PARTS)[part], k)
    out["stream"] = stream
    out["target"] = name
    out["column"] = np.tile(target.columns, n)
    out["label"] = target.labels.reshape(-1)
    out["score"] = scores.reshape(-1)
    return out[PREDICTION_COLUMNS]


def run_probe(
    config: dict[str, Any],
    run_dir: Path,
    books: Path,
    data_dir: Path,
    truth_dir: Path,
    dataset: str,
    out_dir: Path,
    device: torch.device,
) -> dict[str, Any]:
    """Probe the streams of the model of ``run_dir`` on the test split of ``dataset`` against
    the SynthCXR ground truth in ``truth_dir``; writes predictions + metrics under ``out_dir``
    and returns the metrics."""
    settings = EvalSettings.from_config(config)
    probe_settings = ProbeSettings.from_config(config)
    meta = read_run_meta(run_dir)
    data, sites, notes = load_probe_set(data_dir, truth_dir)
    head = {"task": "probe", "dataset": dataset, "variant": meta["variant"], "seed": meta["seed"]}
    model = load_model(run_dir, books, device)
    if not model.STREAMS:
        reason = f"{meta['variant']} has no pathology or anatomy stream (one global embedding)"
        metrics = not_applicable(head, reason)
        write_outputs(out_dir, pd.DataFrame(columns=PREDICTION_COLUMNS), metrics)
        return metrics
    image_size = meta["model"]["image_size"]
    grid = image_size // STRIDE
    covered = covered_tokens(sites, grid, *shard_geometry(data))
    frame, at, targets = token_targets(data, covered)
    features = probe_features(model, data, at, image_size, settings, device)
    predictions, body = probe(
        frame, features, targets, probe_settings, settings.bootstrap, settings.seed
    )
    metrics = head | {
        "status": "ok",
        "protocol": {
            "features": f"per stream, res_l2(ReLU(res_l1 x)) at each token ({grid}x{grid} grid)",
            "rows": f"the tokens a finding covers (>= {COVER:.0%} of the token's cell, and "
            "each finding's most-covered token), from the exact SynthCXR finding masks",
            "targets": {
                "presence": "finding kinds covering the token (one column per kind): what",
                "landmark": "landmarks of those findings (one column per landmark): where",
                "caveat": "a landmark column also says which kinds are likely (e.g. "
                "cardiomegaly lies at heart_size), so presence features help at landmark too",
            },
            "columns": f"kept when every probe part has >= {probe_settings.min_positives} "
            "positive and negative tokens",
            "mdd": f"minimal detectable difference: {MDD_FACTOR} x the bootstrap SE of the "
            "paired difference (two-sided 5 % test, 80 % power)",
            "split": "the published test split's patients, split seeded by patient into probe "
            f"train/val/test {list(probe_settings.fractions)}",
            "probe": "one L2 logistic regression per column on features standardised on probe "
            "train; C with the best probe-val macro AUC (ties: smaller C), the train fit "
            "scored on probe test",
            "metric": "macro AUC over the kept columns",
            "c_grid": list(probe_settings.c_grid),
            "differences": "own stream - other stream (presence: pathology - anatomy; "
            "landmark: anatomy - pathology), paired under the same resamples",
            "bootstrap": {
                "unit": "patient",
                "resamples": settings.bootstrap,
                "seed": settings.seed,
                "level": 0.95,
                "paired": "the same probe split and resamples for every model of a dataset",
                "held_fixed": "the probe split, the chosen C and the fitted probes (the "
                "intervals cover test-patient sampling only)",
            },
        },
        **body,
        "notes": notes + body["notes"],
    }
    write_outputs(out_dir, predictions, metrics)
    return metrics
