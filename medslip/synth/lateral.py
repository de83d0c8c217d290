"""The lateral view of a SynthCXR study (patient facing the image left).

The lateral phantom shares the frontal one's patient parameters (heart and lung size,
inspiration, hyperinflation) and shows the findings that a lateral film shows: effusion in the
posterior costophrenic sulcus, lower/middle-lobe airspace opacity, nodules and masses, edema haze,
cardiomegaly, emphysema (flat domes, large retrosternal space) and radio-opaque devices. It carries
no finding masks: SynthCXR localises findings on the frontal image only.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from medslip.synth import anatomy as an
from medslip.synth.render import _soften
from medslip.synth.spec import Finding


def render_lateral(
    p: an.AnatomyParams,
    findings: list[Finding],
    size: int,
    rng: np.random.Generator,
    cloud: np.ndarray,
) -> np.ndarray:
    """A (size, size) uint8 lateral radiograph for anatomy ``p`` with ``findings``.

    ``cloud`` is a (size, size) smooth noise field (the renderer's) used for texture.
    """
    s = size
    A, b = an.similarity(p, s)

    def px(pts) -> list[float]:
        return (np.asarray(pts, dtype=float) @ A.T + b).ravel().tolist()

    kinds = {f.kind for f in findings}
    lh, hw = p.lung_height, p.heart_width
    top, base = 0.12, 0.12 + 0.66 * lh
    flat = 0.5 if "emphysema" in kinds else 1.0
    dome = 0.07 * p.dome_curvature * flat
    ant_cp, post_cp = (0.24, base - 0.08), (0.8, base + 0.04)
    lung = an._spline(
        [(0.52, top), (0.3, top + 0.08), (0.22, top + 0.3), (0.21, base - 0.2), ant_cp], 6
    )
    diaphragm = an._spline([ant_cp, (0.4, base - dome - 0.06), (0.62, base - dome), post_cp], 6)
    posterior = an._spline([post_cp, (0.8, base - 0.25), (0.74, top + 0.15), (0.52, top)], 6)
    outline = np.vstack([lung, diaphragm[1:], posterior[1:]])
    heart = an.ellipse(0.37, base - 0.17, 0.15 * hw, 0.15 * p.heart_height)

    im = Image.new("L", (s, s), 6)
    d = ImageDraw.Draw(im)
    d.polygon(px(an.ellipse(0.5, 0.6, 0.44, 0.62, 48)), fill=135)  # thorax and abdomen
    d.polygon(px(outline), fill=55 if "emphysema" in kinds else 68)
    d.line(px([(0.5, 0.0), (0.53, top + 0.25)]), fill=60, width=max(2, s // 40))  # trachea
    arch = an._spline(
        [(0.42, top + 0.22), (0.55, top + 0.1), (0.68, top + 0.2), (0.72, base - 0.1)], 6
    )
    d.line(px(arch), fill=95, width=max(2, s // 22), joint="curve")  # aortic arch, descending aorta
    for f in findings:
        _draw(f, d, px, post_cp, base, rng)
    d.polygon(px(heart), fill=165)  # last: the heart hides what projects behind it
    img = np.asarray(_soften(im, s / 150), dtype=np.float32) / 255.0

    bones = Image.new("L", (s, s), 0)
    db = ImageDraw.Draw(bones)
    for v in np.arange(0.02, 1.0, 0.048):  # vertebral bodies, posterior
        db.polygon(px([(0.82, v), (0.9, v + 0.005), (0.9, v + 0.04), (0.82, v + 0.035)]), fill=90)
    db.line(px([(0.15, 0.12), (0.13, 0.3), (0.14, 0.55)]), fill=110, width=max(2, s // 45))
    img += 0.35 * np.asarray(_soften(bones, s / 250), dtype=np.float32) / 255.0

    sharp = Image.new("L", (s, s), 0)
    ds = ImageDraw.Draw(sharp)
    w = max(1, round(0.006 * s))
    if "endotracheal_tube" in kinds:
        ds.line(px([(0.49, -0.02), (0.525, top + 0.18)]), fill=210, width=2 * w)
    if kinds & {"central_line", "picc"}:
        ds.line(px([(0.45, 0.0), (0.5, top + 0.2), (0.46, base - 0.3)]), fill=200, width=w)
    if "pacemaker" in kinds:
        ds.rounded_rectangle(_rect(px, (0.2, 0.15), 0.05), radius=max(1, s // 60), fill=230)
        ds.line(px([(0.2, 0.15), (0.4, top + 0.2), (0.36, base - 0.12)]), fill=220, width=w)
    if "chest_tube" in kinds:
        ds.line(
            px([(0.7, base + 0.1), (0.74, base - 0.2), (0.6, top + 0.05)]), fill=210, width=2 * w
        )
    img += 0.8 * np.asarray(sharp, dtype=np.float32) / 255.0

    img = img * rng.uniform(0.85, 1.15) + rng.uniform(-0.06, 0.06) + 0.01 * cloud
    np.clip(img, 0.0, 1.0, out=img)
    img **= rng.uniform(0.8, 1.2)
    img += rng.uniform(0.01, 0.035) * rng.standard_normal((s, s), dtype=np.float32)
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _rect(px, c: tuple[float, float], r: float) -> list[float]:
    x0, y0, x1, y1 = px([(c[0] - r, c[1] - r), (c[0] + r, c[1] + r)])
    return [min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)]


def _draw(f: Finding, d, px, post_cp, base: float, rng: np.random.Generator) -> None:
    """Draw one finding's lateral appearance into the base layer ``d``."""
    sev = f.drawn_severity
    if f.kind == "effusion":  # fluid layering in the posterior costophrenic sulcus
        h = 0.04 + 0.2 * sev
        u, v = post_cp
        d.polygon(
            px([(u, v), (u - 0.02, v - h), (u - 0.25, v - h * 0.3), (u - 0.3, v - 0.02)]), fill=125
        )
    elif f.kind in ("consolidation", "pneumonia", "atelectasis"):
        lower = "lower" in f.landmark or f.landmark in ("retrocardiac", "lung_bases")
        c = (
            (0.66, base - 0.12)
            if lower
            else (0.33, base - 0.22)
            if "middle" in f.landmark
            else (0.5, 0.3)
        )
        r = 0.05 + 0.06 * sev
        d.ellipse(_rect(px, c, r), fill=int(90 + 50 * sev))
    elif f.kind in ("nodule", "mass"):
        r = (0.012 + 0.015 * sev) if f.kind == "nodule" else (0.04 + 0.03 * sev)
        c = (rng.uniform(0.35, 0.7), rng.uniform(0.25, base - 0.15))
        d.ellipse(_rect(px, c, r), fill=150)
    elif f.kind == "edema":
        d.ellipse(_rect(px, (0.5, 0.42), 0.14 + 0.05 * sev), fill=int(80 + 30 * sev))
