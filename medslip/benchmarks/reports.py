"""``medslip bench reports``: report-labelling accuracy (IU X-ray, SynthCXR) and parsing speed.

Writes under ``results/benchmarks/``:

* ``report_labeling_iu.csv``: per ChestX-ray14 class, F1 (and precision, recall, support) of our
  labels against NegBio's gold standard (``openi_gld_std14.csv``) on the chosen ids (``--split
  test``: the 771 ids of ``openi-testset.txt``; ``dev``: all others), with the CheXpert labeler's
  output (present-only) beside it on the 7 classes it shares; rows ``macro_shared7`` and
  ``macro_with_positives`` summarise. Every F1 has a 95% bootstrap interval over reports
  (``*_ci_low``/``*_ci_high``; 1000 resamples, seed 0).
* ``report_labeling_synthcxr.csv``: triplet-level precision/recall/F1 against SynthCXR's ground
  truth.
* ``report_parsing_speed.csv``: reports/s of ``parse_report`` and of a plain ``nlp.pipe``
  tokenisation pass over the same IU reports, on one core, median of repeats.
"""

from __future__ import annotations

import argparse
import csv
import re
import statistics
import time
from pathlib import Path

import numpy as np

from medslip.atomic import atomic_path
from medslip.config import defaults
from medslip.labels import PRESENCE_RANK, chestxray14_from_triplets
from medslip.reports.parse import ReportParser, default_parser
from medslip.reports.readers import Report, read_iu_csv
from medslip.vocab import CHESTXRAY14_CLASSES

SHARED_WITH_CHEXPERT: dict[str, str] = {
    "Atelectasis": "Atelectasis",
    "Cardiomegaly": "Cardiomegaly",
    "Effusion": "Pleural Effusion",
    "Pneumonia": "Pneumonia",
    "Pneumothorax": "Pneumothorax",
    "Consolidation": "Consolidation",
    "Edema": "Edema",
}
"""ChestX-ray14 class → CheXpert labeler column, for the 7 classes both label."""


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text or "").strip().lower()


def iu_reports(iu_dir: Path) -> dict[str, Report]:
    """IU reports by id (``CXR<uid>``) from ``indiana_reports.csv``."""
    return {
        r.report_id: r for r in read_iu_csv(iu_dir / "indiana_reports.csv") if isinstance(r, Report)
    }


def iu_gold(iu_dir: Path) -> dict[str, dict[str, int]]:
    """NegBio gold labels: id → class → 0/1."""
    with open(iu_dir / "openi_gld_std14.csv", newline="") as fh:
        return {
            row["filename"]: {c: int(row[c]) for c in CHESTXRAY14_CLASSES}
            for row in csv.DictReader(fh)
        }


def chexpert_peer(iu_dir: Path) -> dict[str, dict[str, int]]:
    """The CheXpert labeler's present-only labels by IU id (its rows are matched by text).

    The peer's ``Reports`` column is ``impression + "\\n" + findings`` of ``indiana_reports.csv``;
    reports with identical text get the same labels.
    """
    by_text: dict[str, list[str]] = {}
    with open(iu_dir / "indiana_reports.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            key = _norm(f"{row['impression'] or ''} {row['findings'] or ''}")
            by_text.setdefault(key, []).append(f"CXR{row['uid']}")
    out: dict[str, dict[str, int]] = {}
    with open(iu_dir / "chexpert_labeler_output_iu_all_data.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            labels = {
                cls: int(row[col] in ("1.0", "1")) for cls, col in SHARED_WITH_CHEXPERT.items()
            }
            for rid in by_text.get(_norm(row["Reports"].strip('"')), []):
                out.setdefault(rid, labels)  # identical texts share the labeler's output
    return out


def prf(tp, fp, fn) -> tuple:
    """Precision, recall and F1 (0.0 where undefined) from true-positive, false-positive and
    false-negative counts: floats from numbers, elementwise arrays from arrays."""
    tp, fp, fn = (np.asarray(x, dtype=float) for x in (tp, fp, fn))

    def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
        return np.divide(num, den, out=np.zeros(np.shape(den)), where=den > 0)

    out = ratio(tp, tp + fp), ratio(tp, tp + fn), ratio(2 * tp, 2 * tp + fp + fn)
    return tuple(float(x) for x in out) if tp.ndim == 0 else out


def _f1(pred: list[int], gold: list[int]) -> tuple[float, float, float]:
    pairs = list(zip(pred, gold, strict=True))
    tp = sum(p and g for p, g in pairs)
    return prf(tp, sum(p and not g for p, g in pairs), sum(g and not p for p, g in pairs))


def bootstrap_f1(pred: np.ndarray, gold: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """F1 per class of ``n_boot`` bootstrap resamples of the reports: (n_boot, C) from 0/1
    (N, C) predictions and gold labels (F1 is 0 where a resample has no positives)."""
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(len(pred), np.full(len(pred), 1 / len(pred)), size=n_boot)
    pred, gold = pred.astype(bool), gold.astype(bool)
    return prf(weights @ (pred & gold), weights @ (pred & ~gold), weights @ (~pred & gold))[2]


def _ci(samples: np.ndarray) -> tuple[float, float]:
    """95% percentile interval."""
    low, high = np.percentile(samples, [2.5, 97.5])
    return float(low), float(high)


def score_iu(iu_dir: Path, split: str, n_boot: int = 1000, seed: int = 0) -> list[dict]:
    """Per-class rows (and two macro rows) of the IU accuracy table, each F1 with a 95%
    bootstrap interval over reports (``n_boot`` resamples, ``seed``)."""
    test_ids = set((iu_dir / "openi-testset.txt").read_text().split())
    reports = iu_reports(iu_dir)
    gold = iu_gold(iu_dir)
    peer = chexpert_peer(iu_dir)
    ids = sorted(rid for rid in gold if (rid in test_ids) == (split == "test"))
    parser = default_parser()
    ours = {
        rid: chestxray14_from_triplets(parser.parse(reports[rid].text) if rid in reports else [])
        for rid in ids
    }
    peer_ids = [rid for rid in ids if rid in peer]
    classes = list(CHESTXRAY14_CLASSES)
    shared = [c in SHARED_WITH_CHEXPERT for c in classes]

    def matrix(labels: dict, rids: list[str], cols: list[str]) -> np.ndarray:
        return np.array([[labels[r][c] for c in cols] for r in rids])

    boot = bootstrap_f1(matrix(ours, ids, classes), matrix(gold, ids, classes), n_boot, seed)
    peer_cols = [c for c, s in zip(classes, shared, strict=True) if s]
    peer_gold = matrix(gold, peer_ids, peer_cols)
    peer_boot = bootstrap_f1(matrix(peer, peer_ids, peer_cols), peer_gold, n_boot, seed)
    rows = []
    for j, cls in enumerate(classes):
        g = [gold[r][cls] for r in ids]
        p, r, f = _f1([ours[i][cls] for i in ids], g)
        low, high = _ci(boot[:, j])
        row = {
            "class": cls,
            "support": sum(g),
            "n_reports": len(ids),
            "precision": p,
            "recall": r,
            "f1": f,
            "f1_ci_low": low,
            "f1_ci_high": high,
            "peer_f1": "",
            "peer_f1_ci_low": "",
            "peer_f1_ci_high": "",
            "peer_n_reports": "",
        }
        if cls in SHARED_WITH_CHEXPERT:
            gp = [gold[i][cls] for i in peer_ids]
            row["peer_f1"] = _f1([peer[i][cls] for i in peer_ids], gp)[2]
            k = peer_cols.index(cls)
            row["peer_f1_ci_low"], row["peer_f1_ci_high"] = _ci(peer_boot[:, k])
            row["ours_f1_on_peer_ids"] = _f1([ours[i][cls] for i in peer_ids], gp)[2]
            row["peer_n_reports"] = len(peer_ids)
        rows.append(row)
    with_pos = [row["support"] > 0 for row in rows]
    macro_with_pos = statistics.mean(row["f1"] for row in rows if row["support"] > 0)
    shared_rows = [row for row, s in zip(rows, shared, strict=True) if s]
    low, high = _ci(boot[:, shared].mean(axis=1))
    peer_low, peer_high = _ci(peer_boot.mean(axis=1))
    rows.append(
        {
            "class": "macro_shared7",
            "f1": statistics.mean(r["f1"] for r in shared_rows),
            "f1_ci_low": low,
            "f1_ci_high": high,
            "peer_f1": statistics.mean(r["peer_f1"] for r in shared_rows),
            "peer_f1_ci_low": peer_low,
            "peer_f1_ci_high": peer_high,
            "n_reports": len(ids),
            "peer_n_reports": len(peer_ids),
        }
    )
    low, high = _ci(boot[:, with_pos].mean(axis=1))
    rows.append(
        {
            "class": "macro_with_positives",
            "f1": macro_with_pos,
            "f1_ci_low": low,
            "f1_ci_high": high,
            "n_reports": len(ids),
        }
    )
    return rows


def _report_facts(triplets) -> set[tuple[str, str, str]]:
    """Report-level (pathology, anatomy, presence) facts: present > uncertain > absent per cell."""
    best: dict[tuple[str, str], str] = {}
    for t in triplets:
        cell = (t.pathology, t.anatomy)
        if cell not in best or PRESENCE_RANK[t.presence] > PRESENCE_RANK[best[cell]]:
            best[cell] = t.presence
    return {(p, a, presence) for (p, a), presence in best.items()}


def score_synthcxr(n_reports: int, seed: int) -> list[dict]:
    """Triplet-level precision/recall/F1 of ``parse_report`` against SynthCXR's ground truth.

    Reports come from ``medslip.synth.sample.demo_reports(n, seed)``. Facts
    (pathology, anatomy, presence) are compared per report after report-level aggregation
    (present > uncertain > absent per cell) and micro-averaged. Scope ``without excluded_obs``
    drops the ``excluded_obs`` entity, which the writer never declares (severity and comparison
    words such as "small" or "unchanged" yield no triplet by its convention).
    """
    from medslip.synth.sample import demo_reports

    parser = default_parser()
    counts: dict[str, list[int]] = {}  # scope -> [tp, fp, fn]
    for text, truth in demo_reports(n_reports, seed):
        gold, ours = _report_facts(truth), _report_facts(parser.parse(text))
        for scope, drop in (("without excluded_obs", "excluded_obs"), ("all", None)):
            g = {f for f in gold if f[0] != drop}
            o = {f for f in ours if f[0] != drop}
            c = counts.setdefault(scope, [0, 0, 0])
            c[0] += len(g & o)
            c[1] += len(o - g)
            c[2] += len(g - o)
    rows = []
    for scope, (tp, fp, fn) in counts.items():
        precision, recall, f1 = prf(tp, fp, fn)
        rows.append(
            {
                "scope": scope,
                "n_reports": n_reports,
                "seed": seed,
                "tp": tp,
                "fp": fp,
                "fn": fn,
                "precision": precision,
                "recall": recall,
                "f1": f1,
            }
        )
    return rows


def speed(iu_dir: Path, repeats: int) -> list[dict]:
    """Reports/s of the full parse, of plain ``nlp.pipe`` tokenisation, and of tokenisation plus
    scispaCy's pysbd sentence splitter (which ``parse_report`` replaces by a rule on
    sentence-final punctuation), side by side on the same reports."""
    import scispacy.custom_sentence_segmenter  # noqa: F401  (registers pysbd_sentencizer)

    texts = [r.text for r in iu_reports(iu_dir).values()]
    parser = default_parser()
    pysbd_nlp = ReportParser().nlp
    pysbd_nlp.add_pipe("pysbd_sentencizer")

    def run_parse() -> None:
        for text in texts:
            parser.parse(text)

    def run_pipe(nlp) -> None:
        for _doc in nlp.pipe(texts, batch_size=256):
            pass

    methods = {
        "parse_report": run_parse,
        "nlp.pipe tokenisation": lambda: run_pipe(parser.nlp),
        "nlp.pipe tokenisation + pysbd sentences": lambda: run_pipe(pysbd_nlp),
    }
    runs: dict[str, list[float]] = {name: [] for name in methods}
    for _ in range(repeats):
        for name, fn in methods.items():
            t0 = time.perf_counter()
            fn()
            runs[name].append(len(texts) / (time.perf_counter() - t0))
    return [
        {
            "method": name,
            "n_reports": len(texts),
            "repeats": repeats,
            "median_reports_per_s": statistics.median(v),
            "min_reports_per_s": min(v),
            "max_reports_per_s": max(v),
            "ratio_to_tokenisation": statistics.median(v)
            / statistics.median(runs["nlp.pipe tokenisation"]),
        }
        for name, v in runs.items()
    ]


def _write_csv(rows: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fields: list[str] = []
    for row in rows:
        fields += [k for k in row if k not in fields]
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def _print(rows: list[dict]) -> None:
    for row in rows:
        print(
            "  ".join(
                f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()
            )
        )


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="medslip bench reports", description=__doc__)
    ap.add_argument("--iu-dir", type=Path, default=Path("../shared/data/real/iu_xray"))
    ap.add_argument("--split", choices=["test", "dev"], default="test")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out-dir", type=Path, default=Path("results/benchmarks"))
    ap.add_argument("--synth-reports", type=int, default=2000, help="SynthCXR reports to score")
    ap.add_argument(
        "--seed",
        type=int,
        default=defaults()["synthcxr"]["seed"],
        help="SynthCXR seed (default: config synthcxr.seed)",
    )
    ap.add_argument("--only", choices=["iu", "speed", "synthcxr"], action="append")
    args = ap.parse_args(argv)
    only = set(args.only or ["iu", "speed", "synthcxr"])
    if "iu" in only:
        rows = score_iu(args.iu_dir, args.split)
        suffix = "" if args.split == "test" else "_dev"
        _write_csv(rows, args.out_dir / f"report_labeling_iu{suffix}.csv")
        _print(rows)
    if "synthcxr" in only:
        rows = score_synthcxr(args.synth_reports, args.seed)
        _write_csv(rows, args.out_dir / "report_labeling_synthcxr.csv")
        _print(rows)
    if "speed" in only:
        rows = speed(args.iu_dir, args.repeats)
        _write_csv(rows, args.out_dir / "report_parsing_speed.csv")
        _print(rows)
    return 0
