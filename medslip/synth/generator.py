"""Generate SynthCXR: render studies and write each dataset in its official format plus the
ground truth the generator knows, as Parquet.

Layout under ``out_dir`` (one tree per dataset, each written to a temporary sibling and renamed
into place when complete)::

    <dataset>/                 official layout of MIMIC-CXR-JPG / NIH ChestX-ray14 / RSNA / SIIM
    ground_truth/<dataset>/    images.parquet, findings.parquet[, studies.parquet, triplets.parquet]

The Parquet files are documented in ``config/README.md``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medslip.config import load_config, validate_config
from medslip.labels import Triplet
from medslip.progress import Progress, progress
from medslip.rle import encode_siim
from medslip.synth import anatomy as an
from medslip.synth.lateral import render_lateral
from medslip.synth.render import Renderer
from medslip.synth.report_text import write_report
from medslip.synth.sample import sample_study
from medslip.synth.spec import FINDING_KINDS, StudySpec, rng_for
from medslip.vocab import CHESTXRAY14_CLASSES

log = logging.getLogger(__name__)

DATASETS: tuple[str, ...] = ("mimic_cxr_jpg", "nih_cxr14", "rsna_pneumonia", "siim_acr")
_DATASET_KEY = {name: i + 1 for i, name in enumerate(DATASETS)}
NIH_BOX_CLASSES = set(CHESTXRAY14_CLASSES[:8])  # the 8 classes of BBox_List_2017.csv


def _settings(config_or_path: dict[str, Any] | str | os.PathLike) -> dict[str, Any]:
    if isinstance(config_or_path, dict):
        config = validate_config(json.loads(json.dumps(config_or_path)))
    else:
        config = load_config(config_or_path)
    return config["synthcxr"]


def nih_labels(findings) -> list[str]:
    """Sorted ChestX-ray14 classes of a study's findings."""
    return sorted({n for f in findings if (n := FINDING_KINDS[f.kind].nih)})


def bbox(mask: np.ndarray) -> tuple[float, float, float, float]:
    """Tight ``(x, y, w, h)`` pixel box of an (H, W) bool mask; all zeros for an empty one."""
    ys = np.flatnonzero(mask.any(axis=1))
    xs = np.flatnonzero(mask.any(axis=0))
    if len(ys) == 0:
        return (0.0, 0.0, 0.0, 0.0)
    return (float(xs[0]), float(ys[0]), float(xs[-1] - xs[0] + 1), float(ys[-1] - ys[0] + 1))


class _Truth:
    """Collects ground-truth rows and writes them as Parquet."""

    def __init__(self) -> None:
        self.images: list[dict[str, Any]] = []
        self.findings: list[dict[str, Any]] = []
        self.studies: list[dict[str, Any]] = []
        self.triplets: list[dict[str, Any]] = []

    def add_image(
        self,
        image_id: str,
        path: str,
        study: StudySpec,
        masks: list[np.ndarray] | None,
        size: int,
        view: str | None = None,
    ) -> None:
        """One image; ``masks`` (one per finding) is None for a lateral, which has no masks."""
        self.images.append(
            {
                "image_id": image_id,
                "path": path,
                "study_id": str(study.study_id),
                "patient_id": study.patient_id,
                "view": view or study.view,
                "size": size,
                "kinds": sorted({f.kind for f in study.findings}),
                "chestxray14": nih_labels(study.findings),
                "anatomy": json.dumps(study.anatomy, sort_keys=True),
            }
        )
        for i, (f, m) in enumerate(zip(study.findings, masks or [], strict=masks is not None)):
            x, y, w, h = bbox(m)
            self.findings.append(
                {
                    "image_id": image_id,
                    "finding": i,
                    "kind": f.kind,
                    "entity": f.entity,
                    "landmark": f.landmark,
                    "severity": f.severity,
                    "uncertain": f.uncertain,
                    "x": x,
                    "y": y,
                    "w": w,
                    "h": h,
                    "area": int(m.sum()),
                    "mask_rle": encode_siim(m),
                }
            )

    def write(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        tables = {"images": self.images, "findings": self.findings}
        if self.studies:
            tables |= {"studies": self.studies, "triplets": self.triplets}
        for name, rows in tables.items():
            pd.DataFrame(rows).to_parquet(folder / f"{name}.parquet", index=False)


def _render(renderer: Renderer, study: StudySpec, rng: np.random.Generator):
    anat = an.build_anatomy(an.AnatomyParams(**study.anatomy), renderer.size)
    return renderer.render(anat, study.findings, rng)


def _dicom_id(rng: np.random.Generator) -> str:
    """A MIMIC-CXR-JPG style dicom_id: five dash-separated 8-digit hex groups."""
    return "-".join(f"{int(x):08x}" for x in rng.integers(0, 2**32, size=5))


def _age_sex(rng: np.random.Generator) -> tuple[int, str]:
    return int(np.clip(rng.normal(60, 16), 18, 95)), str(rng.choice(["M", "F"]))


def _single_image_study(
    cfg: dict[str, Any],
    renderer: Renderer,
    seed: int,
    dataset: str,
    i: int,
    boost: dict[str, float],
):
    """Image ``i`` of a one-image-per-patient dataset (RSNA, SIIM): its rng, a study with fewer
    findings (0.6 x ``findings_rate``) and the ``boost``ed target finding, and its rendering."""
    srng = rng_for(seed, _DATASET_KEY[dataset], i)
    study = sample_study(i, i, srng, cfg["findings_rate"] * 0.6, boost=boost, seed=seed)
    return srng, study, _render(renderer, study, srng)


@dataclass
class MimicStudy:
    """One study of the MIMIC-CXR-JPG tree before rendering: its report and the ground truth it
    states. ``rng`` is the study's generator, drawn up to the report; rendering continues it."""

    study: StudySpec
    text: str
    triplets: list[Triplet]
    rng: np.random.Generator


@dataclass
class MimicPatient:
    """One patient of the MIMIC-CXR-JPG tree: ``split`` is the official name (``train``,
    ``validate``, ``test``); ``first`` the date of the first study."""

    subject_id: int
    split: str
    first: datetime
    studies: list[MimicStudy]


def mimic_patients(config_or_path: dict[str, Any] | str | os.PathLike) -> Iterator[MimicPatient]:
    """The patients, studies and reports of the MIMIC-CXR-JPG tree of a config, without
    rendering a pixel (the tree's text is these reports, byte for byte)."""
    cfg = _settings(config_or_path)
    return _mimic_patients(cfg, cfg["seed"])


def _mimic_patients(cfg: dict[str, Any], seed: int) -> Iterator[MimicPatient]:
    key = _DATASET_KEY["mimic_cxr_jpg"]
    n_val = cfg["mimic_split_fractions"]["validate"]
    n_test = cfg["mimic_split_fractions"]["test"]
    for p in range(cfg["mimic_patients"]):
        prng = rng_for(seed, key, p)
        subject_id = 10000000 + int(prng.integers(0, 9_000_000)) // 100 * 100 + p % 100
        r = prng.random()
        split = "test" if r < n_test else "validate" if r < n_test + n_val else "train"
        patient_anatomy = an.sample_params(prng)
        first = datetime(2150, 1, 1) + timedelta(days=int(prng.integers(0, 3000)))
        studies = []
        for k in range(int(prng.integers(1, cfg["mimic_max_studies_per_patient"] + 1))):
            srng = rng_for(seed, key, p, k)
            study_id = 50000000 + int(srng.integers(0, 9_999_999))
            study = sample_study(
                study_id,
                subject_id,
                srng,
                cfg["findings_rate"],
                has_prior=k > 0,
                seed=seed,
                patient_anatomy=patient_anatomy,
            )
            text, triplets = write_report(study, srng)
            studies.append(MimicStudy(study, text, triplets, srng))
        yield MimicPatient(subject_id, split, first, studies)


def _mimic(cfg: dict[str, Any], tree: Path, truth: _Truth, renderer: Renderer, seed: int) -> None:
    from medslip.labels import chexpert_from_triplets
    from medslip.synth.formats import MimicCxrJpgWriter

    writer = MimicCxrJpgWriter(tree)
    split: dict[int, str] = {}
    patients = progress(
        _mimic_patients(cfg, seed),
        "SynthCXR mimic_cxr_jpg",
        total=cfg["mimic_patients"],
        unit="patient",
        logger=log,
    )
    for patient in patients:
        subject_id, when = patient.subject_id, patient.first
        split[subject_id] = patient.split
        for s in patient.studies:
            study, srng, study_id = s.study, s.rng, s.study.study_id
            rendered = _render(renderer, study, srng)
            images = [(_dicom_id(srng), rendered.pixels, study.view)]
            if study.view == "PA":  # PA studies are "PA and lateral", as their reports say
                params = an.AnatomyParams(**study.anatomy)
                lateral = render_lateral(
                    params, study.findings, renderer.size, srng, renderer.cloud
                )
                images.append((_dicom_id(srng), lateral, "LATERAL"))
            paths = writer.add_study(
                subject_id, study_id, s.text, chexpert_from_triplets(s.triplets), images, when
            )
            when += timedelta(days=int(srng.integers(1, 400)), minutes=int(srng.integers(0, 1440)))
            truth.add_image(images[0][0], paths[0], study, rendered.masks, renderer.size)
            if len(images) > 1:
                truth.add_image(images[1][0], paths[1], study, None, renderer.size, "LATERAL")
            truth.studies.append(
                {
                    "study_id": str(study_id),
                    "patient_id": subject_id,
                    "split": patient.split,
                    "view": study.view,
                    "has_prior": study.has_prior,
                    "report": s.text,
                }
            )
            truth.triplets.extend(
                {
                    "study_id": str(study_id),
                    "pathology": t.pathology,
                    "anatomy": t.anatomy,
                    "presence": t.presence,
                    "sentence": t.sentence,
                }
                for t in s.triplets
            )
    writer.close(split)


def _nih(cfg: dict[str, Any], tree: Path, truth: _Truth, renderer: Renderer, seed: int) -> None:
    from medslip.synth.formats import NihCxr14Writer

    writer = NihCxr14Writer(tree)
    key = _DATASET_KEY["nih_cxr14"]
    test_patients: set[int] = set()
    i = patient = 0
    bar = Progress("SynthCXR nih_cxr14", cfg["nih_images"], unit="image", logger=log)
    while i < cfg["nih_images"]:
        patient += 1
        prng = rng_for(seed, key, patient)
        if prng.random() < cfg["nih_test_fraction"]:
            test_patients.add(patient)
        age, sex = _age_sex(prng)
        patient_anatomy = an.sample_params(prng)
        for follow_up in range(min(int(prng.integers(1, 4)), cfg["nih_images"] - i)):
            srng = rng_for(seed, key, patient, follow_up)
            study = sample_study(
                patient * 1000 + follow_up,
                patient,
                srng,
                cfg["findings_rate"],
                boost={"nodule": 0.04, "mass": 0.03, "emphysema": 0.03},
                seed=seed,
                patient_anatomy=patient_anatomy,
            )
            rendered = _render(renderer, study, srng)
            labels = nih_labels(study.findings)
            boxes = [
                (FINDING_KINDS[f.kind].nih, *bbox(m))
                for f, m in zip(study.findings, rendered.masks, strict=True)
                if FINDING_KINDS[f.kind].nih in NIH_BOX_CLASSES
                and patient in test_patients
                and m.any()
            ]
            image_index = writer.add(
                patient, follow_up, rendered.pixels, labels, study.view, age, sex, boxes
            )
            truth.add_image(
                image_index, f"images/{image_index}", study, rendered.masks, renderer.size
            )
            i += 1
            bar.update()
    bar.close()
    writer.close(test_patients)


def _rsna(cfg: dict[str, Any], tree: Path, truth: _Truth, renderer: Renderer, seed: int) -> None:
    from medslip.synth.formats import RsnaPneumoniaWriter

    writer = RsnaPneumoniaWriter(tree)
    images = range(cfg["rsna_images"])
    for i in progress(images, "SynthCXR rsna_pneumonia", unit="image", logger=log):
        srng, study, rendered = _single_image_study(
            cfg, renderer, seed, "rsna_pneumonia", i, {"pneumonia": 0.25}
        )
        opacity = [
            m
            for f, m in zip(study.findings, rendered.masks, strict=True)
            if f.kind in ("pneumonia", "consolidation") and not f.uncertain
        ]
        boxes = [bbox(m) for m in opacity if m.any()]
        other = bool(study.findings) and not boxes
        age, sex = _age_sex(srng)
        pid = writer.add(rendered.pixels, study.view, age, sex, boxes, bool(boxes), other, srng)
        truth.add_image(
            pid, f"stage_2_train_images/{pid}.dcm", study, rendered.masks, renderer.size
        )
    writer.close()


def _siim(cfg: dict[str, Any], tree: Path, truth: _Truth, renderer: Renderer, seed: int) -> None:
    from medslip.synth.formats import SiimAcrWriter

    writer = SiimAcrWriter(tree)
    for i in progress(range(cfg["siim_images"]), "SynthCXR siim_acr", unit="image", logger=log):
        srng, study, rendered = _single_image_study(
            cfg, renderer, seed, "siim_acr", i, {"pneumothorax": 0.3}
        )
        ptx = np.zeros((renderer.size, renderer.size), bool)
        for f, m in zip(study.findings, rendered.masks, strict=True):
            if f.kind == "pneumothorax":
                ptx |= m
        age, sex = _age_sex(srng)
        image_id = writer.add(
            rendered.pixels, ptx if ptx.any() else None, study.view, age, sex, srng
        )
        truth.add_image(image_id, writer.paths[image_id], study, rendered.masks, renderer.size)
    writer.close()


_BUILDERS: dict[str, Callable[..., None]] = {
    "mimic_cxr_jpg": _mimic,
    "nih_cxr14": _nih,
    "rsna_pneumonia": _rsna,
    "siim_acr": _siim,
}


def generate(
    config_or_path: dict[str, Any] | str | os.PathLike,
    out_dir: str | os.PathLike,
    datasets: Iterable[str] | None = None,
) -> dict[str, Path]:
    """Generate the SynthCXR datasets into ``out_dir``; returns dataset name -> tree root.

    ``config_or_path`` is a workflow config (dict or YAML path; its ``synthcxr`` section is used).
    The same config gives byte-identical output. Each tree is written to a temporary directory
    and renamed into place only when complete.
    """
    cfg = _settings(config_or_path)
    out = Path(out_dir)
    names = list(datasets) if datasets is not None else list(DATASETS)
    unknown = sorted(set(names) - set(DATASETS))
    if unknown:
        raise ValueError(f"unknown SynthCXR dataset(s) {unknown}; known: {list(DATASETS)}")
    renderer = Renderer(cfg["image_size"], seed=cfg["seed"])
    roots = {}
    for name in names:
        tree, truth_dir = out / name, out / "ground_truth" / name
        tmp_tree, tmp_truth = out / f".{name}.tmp", out / "ground_truth" / f".{name}.tmp"
        for p in (tmp_tree, tmp_truth):
            shutil.rmtree(p, ignore_errors=True)
        tmp_tree.mkdir(parents=True)
        truth = _Truth()
        log.info("SynthCXR %s: rendering into %s", name, tree)
        _BUILDERS[name](cfg, tmp_tree, truth, renderer, cfg["seed"])
        truth.write(tmp_truth)
        for tmp, final in ((tmp_tree, tree), (tmp_truth, truth_dir)):
            shutil.rmtree(final, ignore_errors=True)
            os.replace(tmp, final)
        log.info(
            "SynthCXR %s: %d images, %d findings", name, len(truth.images), len(truth.findings)
        )
        roots[name] = tree
    return roots
