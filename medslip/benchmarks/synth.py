"""``medslip bench synth``: SynthCXR generation speed on one core.

Measures, side by side in one run, median images/s over repeats of
- ``render``: sampling a study + building its anatomy + rendering pixels and finding masks;
- ``render+report``: the same plus the MIMIC-style report and its triplets;
- ``generate:<dataset>``: the whole ``medslip.synth.generate`` of each dataset, encoding and
  writing its official-format files and ground truth included.
Writes ``results/benchmarks/synthcxr_speed.csv``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from medslip.atomic import atomic_path


def _rate(fn, n: int, repeats: int) -> tuple[float, list[float]]:
    rates = []
    for r in range(repeats):
        t0 = time.perf_counter()
        fn(r)
        rates.append(n / (time.perf_counter() - t0))
    return statistics.median(rates), rates


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="medslip bench synth", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--size", type=int, default=256, help="image side in pixels")
    parser.add_argument("--n", type=int, default=300, help="images per repeat")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default="results/benchmarks/synthcxr_speed.csv")
    args = parser.parse_args(argv)

    from medslip.synth import anatomy as an
    from medslip.synth.generator import DATASETS, generate
    from medslip.synth.render import Renderer
    from medslip.synth.report_text import write_report
    from medslip.synth.sample import sample_study

    renderer = Renderer(args.size, seed=0)

    def render(r: int, report: bool = False) -> None:
        for i in range(args.n):
            rng = np.random.default_rng([r, i])
            study = sample_study(i, i, rng, 0.65)
            anat = an.build_anatomy(an.AnatomyParams(**study.anatomy), args.size)
            renderer.render(anat, study.findings, rng)
            if report:
                write_report(study, rng)

    rows = []
    for name, fn in (("render", render), ("render+report", lambda r: render(r, True))):
        med, rates = _rate(fn, args.n, args.repeats)
        rows.append({"stage": name, "images": args.n, "median_images_per_s": med, "runs": rates})
    n_small = max(args.n // 3, 20)
    config = {
        "synthcxr": {
            "image_size": args.size,
            "mimic_patients": n_small // 2,
            "mimic_max_studies_per_patient": 3,
            "nih_images": n_small,
            "rsna_images": n_small,
            "siim_images": n_small,
        }
    }
    with tempfile.TemporaryDirectory() as tmp:
        for ds in DATASETS:
            counts: list[int] = []

            def gen(r: int, ds: str = ds, counts: list[int] = counts) -> None:
                generate(config, Path(tmp) / str(r), [ds])
                images = pd.read_parquet(
                    Path(tmp) / str(r) / "ground_truth" / ds / "images.parquet"
                )
                counts.append(len(images))

            times = []
            for r in range(max(args.repeats // 2, 1)):
                t0 = time.perf_counter()
                gen(r)
                times.append(counts[-1] / (time.perf_counter() - t0))
            rows.append(
                {
                    "stage": f"generate:{ds}",
                    "images": counts[-1],
                    "median_images_per_s": statistics.median(times),
                    "runs": times,
                }
            )
    df = pd.DataFrame(rows)
    df["size"] = args.size
    df["runs"] = df["runs"].map(lambda xs: ";".join(f"{x:.1f}" for x in xs))
    with atomic_path(args.out) as tmp:
        df.to_csv(tmp, index=False)
    print(df.to_string(index=False))
    return 0
