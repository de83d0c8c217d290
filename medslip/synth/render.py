"""SynthCXR renderer: a frontal chest radiograph phantom with findings drawn at landmarks.

Intensity model (bright = dense, as on a radiograph): soft tissue, aerated lung, heart and
mediastinum form a blurred base layer; bones (ribs, clavicles, spine) and lung vessel markings add
on top; findings add fluid/soft-tissue density (or remove it: pneumothorax, emphysema) inside their
own mask; devices are sharp radio-opaque lines. Exposure, gamma and quantum noise vary per image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from medslip.synth import anatomy as an
from medslip.synth.spec import FAINT, Finding, side_of


@dataclass
class Rendered:
    """One rendered image: ``pixels`` (S, S) uint8 and one (S, S) bool mask per finding."""

    pixels: np.ndarray
    masks: list[np.ndarray]


def _soften(im: Image.Image, radius: float) -> Image.Image:
    """One box-blur pass (a third of the cost of PIL's Gaussian; edges stay soft enough)."""
    return im.filter(ImageFilter.BoxBlur(max(radius * 1.2, 0.5)))


def _blur(mask: np.ndarray, radius: float) -> np.ndarray:
    """Blurred float32 copy of a bool/uint8 (S, S) mask, values in [0, 1]."""
    im = Image.fromarray((mask.astype(np.uint8) * 255) if mask.dtype == bool else mask)
    return np.asarray(_soften(im, radius), dtype=np.float32) / 255.0


class Renderer:
    """Draws phantoms at ``size`` pixels; holds the precomputed texture and noise banks."""

    def __init__(self, size: int, seed: int = 0) -> None:
        self.size = size
        # white noise (2S, 2S) for quantum mottle, and a smooth field (S, S) for lesion margins
        rng = np.random.default_rng(seed)
        self._noise = rng.standard_normal((2 * size, 2 * size)).astype(np.float32)
        smooth = Image.fromarray(
            ((rng.standard_normal((size, size)) * 40 + 128).clip(0, 255)).astype(np.uint8)
        ).filter(ImageFilter.GaussianBlur(size / 40))
        self.cloud = (np.asarray(smooth, dtype=np.float32) - 128) / 16.0
        self._markings = [self._vessel_texture(rng) for _ in range(4)]

    # --- textures -------------------------------------------------------------------------
    def _vessel_texture(self, rng: np.random.Generator) -> np.ndarray:
        """Branching vessel trees from both hila of the template anatomy, (S, S) float32."""
        s = self.size
        anat = an.build_anatomy(an.AnatomyParams(), s)
        im = Image.new("L", (s, s), 0)
        draw = ImageDraw.Draw(im)

        def branch(p, angle, length, width, depth):
            if depth == 0 or length < 0.01:
                return
            q = (p[0] + length * np.cos(angle), p[1] + length * np.sin(angle))
            a, b = anat.to_px(np.array([p, q]))
            draw.line([tuple(a), tuple(b)], fill=int(70 + 25 * depth), width=max(1, int(width * s)))
            for turn in (-1, 1):
                branch(
                    q,
                    angle + turn * rng.uniform(0.2, 0.6),
                    length * rng.uniform(0.6, 0.8),
                    width * 0.7,
                    depth - 1,
                )

        for side, (hu, hv) in zip((-1, 1), anat.hila, strict=True):
            for k in range(7):
                base_angle = np.pi / 2 - side * np.pi / 2  # pointing laterally
                ang = base_angle + side * (-1.3 + k * 0.42) + rng.normal(0, 0.08)
                branch((hu, hv), ang, rng.uniform(0.07, 0.1), 0.012, 5)
        return np.asarray(im.filter(ImageFilter.GaussianBlur(0.9)), dtype=np.float32) / 255.0

    # --- public -----------------------------------------------------------------------------
    def render(
        self, anat: an.Anatomy, findings: list[Finding], rng: np.random.Generator
    ) -> Rendered:
        """Render ``anat`` with ``findings``; deterministic given ``rng``'s state."""
        s = self.size
        lung_r, lung_l = anat.lung_masks
        lungs = lung_r | lung_l
        masks: list[np.ndarray] = []
        # emphysema darkens the lungs and thins their markings, less when faint
        emphysema = [FAINT if f.uncertain else 1.0 for f in findings if f.kind == "emphysema"]
        dark = max(emphysema, default=0.0)

        base = Image.new("L", (s, s), 6)
        d = ImageDraw.Draw(base)
        for poly, val in ((anat.body, 120), (anat.neck, 125)):
            d.polygon(anat.px(poly), fill=val)
        lung_val = round(42 - 14 * dark)
        for poly in anat.lungs():
            d.polygon(anat.px(poly), fill=lung_val)
        d.polygon(anat.px(anat.gastric_bubble), fill=55)
        for poly, val in ((anat.mediastinum, 175), (anat.heart, 182), (anat.aortic_knob, 185)):
            d.polygon(anat.px(poly), fill=val)
        d.polygon(anat.px(an.strip(anat.trachea, 0.016)), fill=120)
        for br in anat.bronchi:
            d.line(anat.px(br), fill=130, width=max(1, int(0.015 * s)))

        extra = np.zeros((s, s), np.float32)  # additive density of findings (blurred)
        sharp = Image.new("L", (s, s), 0)  # devices and fracture lines (unblurred)
        ds = ImageDraw.Draw(sharp)
        no_markings = np.zeros((s, s), bool)
        for f in findings:
            m = self._draw_finding(
                f, anat, lungs, lung_r, lung_l, base, extra, ds, no_markings, rng
            )
            masks.append(m)

        img = np.asarray(_soften(base, s / 180), dtype=np.float32) / 255.0

        bones = Image.new("L", (s, s), 0)
        db = ImageDraw.Draw(bones)
        w = max(1, round(0.017 * s))
        v = np.arange(0.0, 1.0, 0.045)
        corners = np.stack(  # vertebral bodies as quadrilaterals, (n, 4, 2) in pixels
            [
                np.stack([np.full_like(v, u), v + dv], -1)
                for u, dv in ((0.468, 0.0), (0.532, 0.0), (0.532, 0.037), (0.468, 0.037))
            ],
            1,
        )
        for quad in anat.to_px(corners).reshape(len(v), 8).tolist():
            db.polygon(quad, fill=38)
        for r in anat.posterior_ribs:
            db.line(anat.px(r), fill=95, width=w, joint="curve")
        for r in anat.anterior_ribs:
            db.line(anat.px(r), fill=45, width=w, joint="curve")
        for c in anat.clavicles:
            db.line(anat.px(c), fill=120, width=round(w * 1.3), joint="curve")
        for f, m in zip(findings, masks, strict=True):
            if f.kind == "rib_fracture":  # a gap across the rib
                ys, xs = np.nonzero(m)
                cy, cx = ys.mean(), xs.mean()
                gap = max(1.0, 0.006 * s)
                db.line(
                    [(cx - gap, cy - 2 * w), (cx + gap, cy + 2 * w)], fill=0, width=max(1, int(gap))
                )
        bone = np.asarray(_soften(bones, s / 300), dtype=np.float32) / 255.0

        inner = _blur(lungs & ~no_markings, s / 120)
        marking_gain = 0.2 - 0.1 * dark
        tex = self._markings[int(rng.integers(len(self._markings)))]
        sh = (int(rng.integers(-2, 3)), int(rng.integers(-2, 3)))
        img += marking_gain * np.roll(tex, sh, axis=(0, 1)) * inner
        img += 0.45 * bone * (1.0 - 0.75 * (img > 0.6))  # ribs fade over heart and mediastinum
        img += _blurred(extra, s / 90)
        img += 0.8 * np.asarray(sharp, dtype=np.float32) / 255.0

        # Exposure: global contrast/brightness, smooth heel effect, gamma and quantum noise.
        contrast = rng.uniform(0.85, 1.15)
        bright = rng.uniform(-0.06, 0.06)
        k = int(rng.integers(0, s))
        heel = np.linspace(-1, 1, s, dtype=np.float32)[:, None] * rng.uniform(-0.05, 0.05)
        img = img * contrast + bright + heel + 0.01 * np.roll(self.cloud, k, axis=0)
        np.clip(img, 0.0, 1.0, out=img)
        img **= rng.uniform(0.8, 1.2)
        oy, ox = rng.integers(0, s, size=2)
        img += rng.uniform(0.01, 0.035) * self._noise[oy : oy + s, ox : ox + s]
        pixels = (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        return Rendered(pixels=pixels, masks=masks)

    # --- findings -----------------------------------------------------------------------------
    def _draw_finding(self, f, anat, lungs, lung_r, lung_l, base, extra, ds, no_markings, rng):
        """Draw one finding into the layers; returns its (S, S) bool mask."""
        s = self.size
        sev = f.drawn_severity
        side = side_of(f.landmark) or 1
        lung = lung_r if side < 0 else lung_l
        u, v = anat.uv
        kind = f.kind
        if kind == "effusion":
            cu, cv = anat.costophrenic[side > 0]
            height = 0.04 + 0.28 * sev
            lateral = np.clip((u - 0.5) * side - 0.1, 0, None)
            m = lung & (v > cv - height + 0.25 * height - 0.9 * lateral * height * 2.5)
            m |= lung & (v > cv - 0.045)  # blunts the costophrenic angle
            base.paste(118, mask=Image.fromarray(m.astype(np.uint8) * 255))
            no_markings |= m
            return m
        if kind == "pneumothorax":
            hu, hv = anat.hila[side > 0]
            shrink = 0.12 + 0.3 * sev
            poly = anat.lung_right if side < 0 else anat.lung_left
            inner_poly = (poly - (hu, hv)) * (1 - shrink) + (hu, hv)
            m = lung & ~an.fill(anat, [inner_poly])
            if "apical" in f.landmark:
                m &= v < anat.apex_v + 0.22
            m = _drop_specks(m, max(4, s * s // 2000))
            base.paste(20, mask=Image.fromarray(m.astype(np.uint8) * 255))
            no_markings |= m
            edge = m & ~np.roll(m, 1, 1) | m & ~np.roll(m, -1, 1) | m & ~np.roll(m, 1, 0)
            edge &= an.fill(anat, [(poly - (hu, hv)) * (1 - shrink * 0.9) + (hu, hv)])
            extra[edge] += 0.5
            return m
        if kind == "cardiomegaly":
            return an.landmark_mask(anat, "heart_size")
        if kind == "emphysema":
            m = lungs.copy()
            for _ in range(int(1 + 3 * sev)):  # apical bullae
                sd = int(rng.choice([-1, 1]))
                c = (0.5 + sd * rng.uniform(0.12, 0.28), anat.apex_v + rng.uniform(0.03, 0.12))
                r = rng.uniform(0.02, 0.045)
                ds.ellipse(_box(anat, c, r), outline=40, width=1)
                bulla = an.fill(anat, [an.ellipse(*c, r, r)]) & lungs
                no_markings |= bulla
            return m
        if kind == "edema":
            m = np.zeros_like(lungs)
            for hu, hv in anat.hila:
                m |= ((u - hu) / 0.17) ** 2 + ((v - hv - 0.04) / 0.2) ** 2 < 1
            m &= lungs
            haze = _blur(m, s / 25) * (0.14 + 0.22 * sev)
            extra += haze
            for _ in range(int(4 + 8 * sev)):  # Kerley B lines at the lateral bases
                sd = int(rng.choice([-1, 1]))
                cu, cv = anat.costophrenic[sd > 0]
                vv = cv - rng.uniform(0.02, 0.12)
                uu = cu - sd * rng.uniform(0.0, 0.02)
                a, b = anat.to_px(np.array([(uu, vv), (uu - sd * 0.035, vv)]))
                ds.line([tuple(a), tuple(b)], fill=35, width=1)
            return m
        if kind == "rib_fracture":
            rib = anat.posterior_ribs[int(rng.integers(4, 16))]
            p = rib[int(rng.integers(len(rib) // 3, 2 * len(rib) // 3))]
            m = an.fill(anat, [an.ellipse(p[0], p[1], 0.022, 0.022)])
            callus = an.fill(anat, [an.ellipse(p[0], p[1], 0.012, 0.009)])
            extra += 0.25 * (FAINT if f.uncertain else 1.0) * _blur(callus, 1.0)
            return m
        if kind in ("endotracheal_tube", "chest_tube", "central_line", "picc", "pacemaker"):
            return self._draw_device(kind, f, anat, ds, rng)
        # Opacities placed inside the landmark: consolidation, pneumonia, atelectasis, nodule, mass;
        # drawn on lung or on the landmark itself (a retrocardiac opacity projects over the heart).
        region = an.landmark_mask(anat, f.landmark)
        allowed = lungs | region
        ys, xs = np.nonzero(region)
        if len(ys) == 0:
            return region
        i = int(rng.integers(len(ys)))
        cx, cy = xs[i], ys[i]
        dist2 = ((np.arange(s)[None, :] - cx) ** 2 + (np.arange(s)[:, None] - cy) ** 2) / s**2
        if kind in ("nodule", "mass"):
            r = (0.012 + 0.016 * sev) if kind == "nodule" else (0.04 + 0.035 * sev)
            lob = (
                0.15
                * self.cloud[(cy + np.arange(s)[:, None]) % s, (cx + np.arange(s)[None, :]) % s]
                if kind == "mass"
                else 0
            )
            m = (np.sqrt(dist2) / r + lob < 1) & allowed
            extra += m * (0.35 + 0.25 * sev)
            return m
        if kind == "atelectasis":
            ang = rng.uniform(-0.35, 0.35)
            dx = (np.arange(s)[None, :] - cx) / s
            dy = (np.arange(s)[:, None] - cy) / s
            along = dx * np.cos(ang) + dy * np.sin(ang)
            across = -dx * np.sin(ang) + dy * np.cos(ang)
            m = (
                (np.abs(along) < 0.07 + 0.05 * sev)
                & (np.abs(across) < 0.008 + 0.02 * sev)
                & allowed
            )
            extra += m * (0.3 + 0.2 * sev)
            return m
        # Airspace opacity: confluent (consolidation) or patchy (pneumonia).
        r = 0.06 + 0.07 * sev
        noise = self.cloud[(cy + np.arange(s)[:, None]) % s, (cx + np.arange(s)[None, :]) % s]
        patch = 0.35 if kind == "consolidation" else 0.7
        m = (np.sqrt(dist2) / r + patch * noise < 1) & region
        dens = (0.3 if kind == "consolidation" else 0.22) + 0.2 * sev
        bronchogram = _air_bronchograms(m, rng) if kind == "consolidation" and sev > 0.4 else 0
        extra += m * dens - 0.12 * bronchogram
        return m

    def _draw_device(self, kind, f, anat, ds, rng):
        s = self.size
        w_tube = max(2, round(0.011 * s))
        w_line = max(1, round(0.005 * s))
        if kind == "endotracheal_tube":
            carina_v = anat.trachea[-1][1]
            tip = carina_v - rng.uniform(0.03, 0.07)
            pts = np.array([(0.5, -0.02), (0.5 + rng.normal(0, 0.004), tip)])
            width = w_tube
        elif kind == "chest_tube":
            side = side_of(f.landmark) or 1
            cu, cv = anat.costophrenic[side > 0]
            pts = an._spline(
                [
                    (0.5 + side * 0.5, cv + 0.05),
                    (cu + side * 0.01, cv - 0.06),
                    (cu - side * 0.03, cv - 0.3),
                    (0.5 + side * 0.2, anat.apex_v + 0.04),
                ],
                6,
            )
            width = w_tube
        elif kind == "central_line":
            end = an.svc_curve(anat)[1] if f.landmark == "svc" else an.cavoatrial_point(anat)
            pts = an._spline([(0.4, -0.02), (0.43, 0.12), end], 6)
            width = w_line
        elif kind == "picc":
            end = (
                an.cavoatrial_point(anat)
                if f.landmark == "cavoatrial_junction"
                else an.svc_curve(anat)[1]
            )
            pts = an._spline([(-0.02, 0.2), (0.2, 0.16), (0.38, 0.17), end], 6)
            width = w_line
        else:  # pacemaker: generator in the left upper chest, leads to the right heart
            gen = (0.76, 0.17)
            ds.rounded_rectangle(_box(anat, gen, 0.05), radius=max(1, s // 60), fill=230)
            targets = [an.right_atrium_point(anat), an.right_ventricle_point(anat)]
            if f.landmark == "right_atrium":
                targets = targets[:1]
            for t in targets:
                pts = an._spline([gen, (0.62, 0.2), (0.5, 0.3), t], 6)
                ds.line(anat.px(pts), fill=220, width=w_line, joint="curve")
            im = Image.new("L", (s, s), 0)
            d = ImageDraw.Draw(im)
            d.rounded_rectangle(_box(anat, gen, 0.05), radius=max(1, s // 60), fill=1)
            for t in targets:
                pts = an._spline([gen, (0.62, 0.2), (0.5, 0.3), t], 6)
                d.line(anat.px(pts), fill=1, width=w_line + 2)
            return np.asarray(im, dtype=bool)
        px = anat.px(pts)
        ds.line(px, fill=210, width=width, joint="curve")
        im = Image.new("L", (s, s), 0)
        ImageDraw.Draw(im).line(px, fill=1, width=width + 2, joint="curve")
        return np.asarray(im, dtype=bool)


def _drop_specks(mask: np.ndarray, min_px: int) -> np.ndarray:
    """``mask`` without its 8-connected components smaller than ``min_px`` pixels."""
    from scipy import ndimage

    labels, n = ndimage.label(mask, structure=np.ones((3, 3)))
    if n == 0:
        return mask
    sizes = np.bincount(labels.ravel())
    keep = sizes >= min_px
    keep[0] = False
    return keep[labels]


def _box(anat: an.Anatomy, c: tuple[float, float], r: float) -> list[tuple[float, float]]:
    a, b = anat.to_px(np.array([(c[0] - r, c[1] - r), (c[0] + r, c[1] + r)]))
    return [(min(a[0], b[0]), min(a[1], b[1])), (max(a[0], b[0]), max(a[1], b[1]))]


def _blurred(x: np.ndarray, radius: float) -> np.ndarray:
    """Box blur (:func:`_soften`) of a non-negative float (S, S) layer, through 8 bits scaled
    to its peak."""
    if not x.any():
        return x
    peak = float(x.max())
    im = Image.fromarray((x * (255.0 / peak)).astype(np.uint8))
    return np.asarray(_soften(im, radius), dtype=np.float32) * (peak / 255.0)


def _air_bronchograms(m: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A few thin branching lucencies inside a consolidation mask ``m``; (S, S) float32."""
    s = m.shape[0]
    ys, xs = np.nonzero(m)
    im = Image.new("L", (s, s), 0)
    d = ImageDraw.Draw(im)
    cy, cx = ys.mean(), xs.mean()
    for _ in range(3):
        ang = rng.uniform(0, 2 * np.pi)
        ln = rng.uniform(0.3, 0.8) * np.sqrt(len(ys) / np.pi)
        d.line([(cx, cy), (cx + ln * np.cos(ang), cy + ln * np.sin(ang))], fill=255, width=1)
    return (np.asarray(im, dtype=np.float32) / 255.0) * m
