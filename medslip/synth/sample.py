"""Sampling SynthCXR studies: which findings a study has, where, how severe, and its anatomy.

Findings co-occur as they do clinically (edema with cardiomegaly and effusions; ICU studies with
tubes and lines, more often AP), and each dataset can raise the prevalence of the findings it is
about (pneumonia for RSNA, pneumothorax for SIIM).
"""

from __future__ import annotations

import numpy as np

from medslip.labels import Triplet
from medslip.synth import anatomy as an
from medslip.synth.report_text import write_report
from medslip.synth.spec import FINDING_KINDS, Finding, StudySpec, rng_for

# Relative frequency of each kind among abnormal studies (roughly MIMIC-CXR's label frequencies).
KIND_WEIGHTS: dict[str, float] = {
    "effusion": 1.6,
    "consolidation": 0.8,
    "pneumonia": 1.0,
    "atelectasis": 1.4,
    "pneumothorax": 0.6,
    "cardiomegaly": 1.3,
    "edema": 0.9,
    "nodule": 0.6,
    "mass": 0.4,
    "emphysema": 0.5,
    "rib_fracture": 0.4,
    "endotracheal_tube": 0.5,
    "chest_tube": 0.3,
    "central_line": 0.5,
    "picc": 0.4,
    "pacemaker": 0.4,
}
UNCERTAIN_RATE = 0.15
"""Share of abnormal findings drawn faint and hedged in the report (devices are never hedged)."""


def _finding(kind: str, rng: np.random.Generator, landmark: str | None = None) -> Finding:
    spec = FINDING_KINDS[kind]
    return Finding(
        kind=kind,
        landmark=landmark or str(rng.choice(spec.landmarks)),
        severity=float(rng.uniform(0.3, 1.0)) if not spec.device else 1.0,
        uncertain=bool(not spec.device and rng.random() < UNCERTAIN_RATE),
    )


def sample_findings(
    rng: np.random.Generator, findings_rate: float, boost: dict[str, float] | None = None
) -> list[Finding]:
    """Findings of one study; ``boost`` maps kind -> extra probability of including it."""
    findings: list[Finding] = []
    for kind, p in (boost or {}).items():
        if rng.random() < p:
            findings.append(_finding(kind, rng))
    if rng.random() < findings_rate:
        kinds = list(KIND_WEIGHTS)
        w = np.array([KIND_WEIGHTS[k] for k in kinds])
        n = 1 + int(rng.random() < 0.45) + int(rng.random() < 0.2)
        for kind in rng.choice(kinds, size=n, replace=False, p=w / w.sum()):
            findings.append(_finding(str(kind), rng))
            if kind == "edema":  # heart failure pattern
                if rng.random() < 0.6:
                    findings.append(_finding("cardiomegaly", rng))
                if rng.random() < 0.5:
                    findings.append(_finding("effusion", rng, "left_pleural"))
                    findings.append(_finding("effusion", rng, "right_pleural"))
            if kind == "endotracheal_tube" and rng.random() < 0.6:
                findings.append(_finding("central_line", rng))
    seen: set[tuple[str, str]] = set()
    unique = []
    for f in findings:
        key = (f.kind, f.landmark)
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique


def anatomy_for(
    findings: list[Finding],
    rng: np.random.Generator,
    ap: bool,
    base: an.AnatomyParams | None = None,
) -> an.AnatomyParams:
    """Anatomy parameters of one image, with the anatomic effects of its findings applied.

    ``base`` is the patient's own anatomy (kept across that patient's studies); the pose and
    inspiration of this image are drawn fresh.
    """
    fresh = an.sample_params(rng)
    p = fresh if base is None else an.AnatomyParams(**base.as_dict())
    if base is not None:
        p.rotation_deg, p.shift_u, p.shift_v = fresh.rotation_deg, fresh.shift_u, fresh.shift_v
        p.lung_height = base.lung_height * float(rng.uniform(0.97, 1.03))
    if ap:  # AP projection magnifies the heart and mediastinum
        p.ap = True
        p.heart_width *= 1.08
        p.mediastinum_width *= 1.1
    for f in findings:
        sev = f.drawn_severity
        if f.kind == "cardiomegaly" and f.uncertain:
            # borderline: cardiothoracic ratio about 0.5 ("possible mild cardiomegaly")
            p.heart_width = max(p.heart_width, (1.28 + 0.15 * sev) * p.lung_width)
            p.heart_height *= 1.05 + 0.1 * sev
        elif f.kind == "cardiomegaly":
            # cardiothoracic ratio past 0.5 whatever the patient's own heart size
            p.heart_width = max(p.heart_width * (1.3 + 0.3 * sev), 1.45 * p.lung_width)
            p.heart_height *= 1.05 + 0.1 * sev
        elif f.kind == "emphysema":
            p.lung_height *= 1.06 + 0.08 * sev
            p.lung_width *= 1.03
            p.dome_curvature *= 0.65 - 0.3 * sev
        elif f.kind == "atelectasis" and not f.uncertain:  # volume loss: elevated hemidiaphragm
            if "left" in f.landmark or f.landmark == "retrocardiac":
                p.dome_left += 0.025 * sev
            elif "right" in f.landmark:
                p.dome_right += 0.025 * sev
    return p


def sample_study(
    study_id: int,
    patient_id: int,
    rng: np.random.Generator,
    findings_rate: float,
    boost: dict[str, float] | None = None,
    has_prior: bool = False,
    seed: int = 0,
    patient_anatomy: an.AnatomyParams | None = None,
) -> StudySpec:
    """One study: findings, projection (AP more likely with support devices) and anatomy."""
    findings = sample_findings(rng, findings_rate, boost)
    devices = any(FINDING_KINDS[f.kind].device for f in findings)
    view = "AP" if rng.random() < (0.7 if devices else 0.25) else "PA"
    params = anatomy_for(findings, rng, ap=view == "AP", base=patient_anatomy)
    return StudySpec(
        study_id=study_id,
        patient_id=patient_id,
        findings=findings,
        view=view,
        has_prior=has_prior,
        seed=seed,
        anatomy=params.as_dict(),
    )


def demo_reports(n: int, seed: int) -> list[tuple[str, list[Triplet]]]:
    """``n`` reports of random studies (0–3 findings of any kind at valid landmarks), seeded.

    For scoring a report parser (``medslip bench reports``) on many reports without rendering.
    """
    out = []
    kinds = list(FINDING_KINDS)
    for i in range(n):
        rng = rng_for(seed, i)
        findings: list[Finding] = []
        seen: set[tuple[str, str]] = set()
        for kind in rng.choice(kinds, size=int(rng.integers(0, 4)), replace=False):
            spec = FINDING_KINDS[str(kind)]
            landmark = str(rng.choice(spec.landmarks))
            if (spec.name, landmark) in seen:
                continue
            seen.add((spec.name, landmark))
            findings.append(
                Finding(
                    spec.name,
                    landmark,
                    float(rng.uniform(0.2, 1.0)),
                    uncertain=bool(not spec.device and rng.random() < 0.2),
                )
            )
        study = StudySpec(
            study_id=50000000 + i,
            patient_id=10000000 + i,
            findings=findings,
            view="AP" if rng.random() < 0.3 else "PA",
            has_prior=bool(rng.random() < 0.4),
            seed=seed,
        )
        out.append(write_report(study, rng))
    return out
