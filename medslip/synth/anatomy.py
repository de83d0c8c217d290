"""SynthCXR anatomy: a parametric frontal chest phantom and its landmark masks.

All geometry is built in a *patient frame* of normalised coordinates ``(u, v)`` in [0, 1]
(``u`` to the image right, which is the patient's LEFT, as on a radiograph viewed normally;
``v`` downwards), then mapped to pixels by one global similarity transform per image (scale,
rotation, shift). Patient variation enters through :class:`AnatomyParams`; findings that change
anatomy (cardiomegaly, emphysema, volume loss) act on those parameters before the geometry is
built.

Every landmark the renderer uses is one of the 51 MeDSLIP landmarks
(:data:`medslip.vocab.LANDMARKS`); :func:`landmark_mask` rasterises any of :data:`LANDMARK_NAMES`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import cached_property, lru_cache
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageDraw

from medslip.synth.spec import side_of
from medslip.vocab import LANDMARKS

Polygon = np.ndarray  # (N, 2) float, pixel (x, y)


@dataclass
class AnatomyParams:
    """Per-image anatomy parameters (all dimensionless, 1.0 / 0.0 = template)."""

    scale: float = 1.0  # global size of the thorax in the field of view
    rotation_deg: float = 0.0  # global in-plane rotation
    shift_u: float = 0.0
    shift_v: float = 0.0
    lung_width: float = 1.0
    lung_height: float = 1.0  # inspiration depth: pushes the hemidiaphragms down
    heart_width: float = 1.0  # cardiothoracic ratio scales with this
    heart_height: float = 1.0
    dome_right: float = 0.0  # extra elevation (+) of the right hemidiaphragm, in v units
    dome_left: float = 0.0
    dome_curvature: float = 1.0  # < 1 flattens the domes (hyperinflation)
    mediastinum_width: float = 1.0
    ap: bool = False  # AP projection: magnified heart, horizontal clavicles

    def as_dict(self) -> dict[str, float | bool]:
        return {k: v if isinstance(v, bool) else float(v) for k, v in asdict(self).items()}


def similarity(p: AnatomyParams, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Patient frame -> pixels of a ``size`` image: ``x_px = A @ x + b`` with (2, 2) ``A`` (scale,
    rotation about the centre) and (2,) ``b`` (shift)."""
    theta = np.deg2rad(p.rotation_deg)
    c, s_ = np.cos(theta), np.sin(theta)
    A = size * p.scale * np.array([[c, -s_], [s_, c]])
    centre = np.array([0.5, 0.5])
    return A, size * (centre + np.array([p.shift_u, p.shift_v])) - A @ centre


def sample_params(rng: np.random.Generator) -> AnatomyParams:
    """Draw a normal patient's anatomy (PA; :func:`medslip.synth.sample.anatomy_for` makes an
    AP view of it)."""
    return AnatomyParams(
        scale=float(rng.uniform(0.90, 1.04)),
        rotation_deg=float(rng.normal(0.0, 2.0)),
        shift_u=float(rng.uniform(-0.03, 0.03)),
        shift_v=float(rng.uniform(-0.03, 0.03)),
        lung_width=float(rng.uniform(0.93, 1.06)),
        lung_height=float(rng.uniform(0.92, 1.06)),
        heart_width=float(rng.uniform(0.90, 1.06)),
        heart_height=float(rng.uniform(0.93, 1.05)),
        dome_curvature=float(rng.uniform(0.85, 1.15)),
        mediastinum_width=float(rng.uniform(0.9, 1.1)),
    )


def _spline(points, n: int = 10) -> np.ndarray:
    """Open Catmull-Rom curve(s) through ``points`` (..., K, 2), ``n`` samples per segment.

    Returns (..., (K - 1) * n + 1, 2); leading dimensions batch several curves at once.
    """
    p = np.asarray(points, dtype=np.float64)
    p = np.concatenate(
        [2 * p[..., :1, :] - p[..., 1:2, :], p, 2 * p[..., -1:, :] - p[..., -2:-1, :]], -2
    )
    t = _SPLINE_T.get(n)
    if t is None:
        t = _SPLINE_T.setdefault(n, np.linspace(0.0, 1.0, n, endpoint=False)[:, None])
    k = p.shape[-2]
    p0, p1, p2, p3 = (p[..., i : k - 3 + i, None, :] for i in range(4))
    seg = 0.5 * (
        2 * p1
        + (p2 - p0) * t
        + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2
        + (3 * p1 - p0 - 3 * p2 + p3) * t**3
    )
    seg = seg.reshape(*p.shape[:-2], -1, 2)
    return np.concatenate([seg, p[..., -2:-1, :]], -2)


_SPLINE_T: dict[int, np.ndarray] = {}


def strip(curve: np.ndarray, width: float) -> np.ndarray:
    """A closed polygon of half-width ``width`` around an open polyline ``curve`` (M, 2)."""
    d = np.gradient(curve, axis=0)
    nrm = np.stack([-d[:, 1], d[:, 0]], axis=1)
    nrm /= np.linalg.norm(nrm, axis=1, keepdims=True) + 1e-12
    return np.vstack([curve + width * nrm, (curve - width * nrm)[::-1]])


def ellipse(cu: float, cv: float, ru: float, rv: float, n: int = 24) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([cu + ru * np.cos(t), cv + rv * np.sin(t)], axis=1)


@dataclass
class Anatomy:
    """The geometry of one phantom, in the patient frame (normalised units).

    Lungs are listed right then left (patient side). ``transform`` maps patient-frame points to
    pixels: ``pixel = A @ (u, v) + b``.
    """

    params: AnatomyParams
    size: int
    body: np.ndarray
    neck: np.ndarray
    lung_right: np.ndarray
    lung_left: np.ndarray
    heart: np.ndarray
    mediastinum: np.ndarray
    aortic_knob: np.ndarray
    trachea: np.ndarray  # centre line, carina last
    bronchi: tuple[np.ndarray, np.ndarray]
    clavicles: tuple[np.ndarray, np.ndarray]
    posterior_ribs: list[np.ndarray]
    anterior_ribs: list[np.ndarray]
    gastric_bubble: np.ndarray
    hila: tuple[tuple[float, float], tuple[float, float]]
    costophrenic: tuple[tuple[float, float], tuple[float, float]]
    cardiophrenic: tuple[tuple[float, float], tuple[float, float]]
    apex_v: float
    dome_v: tuple[float, float]  # lowest lung v (right, left): the costophrenic level
    A: np.ndarray
    b: np.ndarray

    def to_px(self, pts: np.ndarray) -> np.ndarray:
        """Patient-frame points (N, 2) to pixel coordinates (N, 2)."""
        return np.asarray(pts) @ self.A.T + self.b

    def px(self, pts: np.ndarray) -> list[float]:
        """Patient-frame points (N, 2) as the flat pixel list ``[x0, y0, x1, ...]`` PIL draws."""
        return self.to_px(pts).ravel().tolist()

    @cached_property
    def uv(self) -> tuple[np.ndarray, np.ndarray]:
        """Patient-frame coordinates (u, v) of every pixel centre, two (S, S) float32 arrays."""
        inv = np.linalg.inv(self.A)
        ys, xs = _pixel_grid(self.size)
        x = xs - self.b[0]
        y = ys - self.b[1]
        return (inv[0, 0] * x + inv[0, 1] * y, inv[1, 0] * x + inv[1, 1] * y)

    def lungs(self) -> tuple[np.ndarray, np.ndarray]:
        return self.lung_right, self.lung_left

    @cached_property
    def lung_masks(self) -> tuple[np.ndarray, np.ndarray]:
        """Rasterised right and left lung, two (S, S) bool masks."""
        return fill(self, [self.lung_right]), fill(self, [self.lung_left])


@lru_cache(maxsize=8)
def _pixel_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    return ys, xs


_Point = tuple[float, float]

_TOP = 0.13
"""Level (v) of the lung apices."""


class _Heart(NamedTuple):
    """The cardiac outline and the frame it is drawn in (patient-frame units)."""

    outline: np.ndarray
    cu: float  # centre, slightly to the patient's left
    cv: float  # centre level, just above the right hemidiaphragm
    height: float
    r_ext: float  # reach of the right border from the centre
    l_ext: float  # reach of the left border from the centre


def _lung_bases(p: AnatomyParams) -> tuple[float, float]:
    """Level (v) of the right and left lung bases (inspiration depth less dome elevation)."""
    lh = p.lung_height
    base_r = _TOP + (0.74 - _TOP) * lh - p.dome_right
    base_l = _TOP + (0.765 - _TOP) * lh - p.dome_left
    return base_r, base_l


def _heart(p: AnatomyParams, base_r: float) -> _Heart:
    """Heart: centre slightly to the patient's left; borders scale with heart_width."""
    hw, mw = p.heart_width, p.mediastinum_width
    hc_u, hc_v = 0.535, base_r - 0.02
    heart_h = 0.27 * p.heart_height
    r_ext, l_ext = 0.125 * hw, 0.165 * hw
    outline = _spline(
        [
            (hc_u - 0.075 * mw, hc_v - heart_h),
            (hc_u - r_ext * 0.85, hc_v - heart_h * 0.62),
            (hc_u - r_ext, hc_v - heart_h * 0.25),
            (hc_u - r_ext * 0.7, hc_v + 0.005),
            (hc_u + l_ext * 0.4, hc_v + 0.02),
            (hc_u + l_ext * 0.95, hc_v - heart_h * 0.1),
            (hc_u + l_ext, hc_v - heart_h * 0.4),
            (hc_u + l_ext * 0.7, hc_v - heart_h * 0.8),
            (hc_u + 0.075 * mw, hc_v - heart_h),
            (hc_u - 0.075 * mw, hc_v - heart_h),
        ],
        6,
    )
    return _Heart(outline, hc_u, hc_v, heart_h, r_ext, l_ext)


def _cardiophrenic(heart: _Heart, base_r: float, base_l: float) -> tuple[_Point, _Point]:
    """Right and left cardiophrenic angles, kept just above their lung bases."""
    h = heart
    cp_r = (h.cu - h.r_ext * 0.8, min(h.cv, base_r - 0.01))
    cp_l = (h.cu + h.l_ext * 0.88, min(h.cv - h.height * 0.05, base_l - 0.01))
    return cp_r, cp_l


def _hila(p: AnatomyParams) -> tuple[_Point, _Point]:
    """Right and left hilar points."""
    mw, lh = p.mediastinum_width, p.lung_height
    return (0.5 - 0.085 * mw, _TOP + 0.30 * lh), (0.5 + 0.085 * mw, _TOP + 0.28 * lh)


def _mediastinal_edges(p: AnatomyParams) -> tuple[float, float]:
    """Right and left edge (u) of the upper mediastinum."""
    mw = p.mediastinum_width
    return 0.5 - 0.055 * mw, 0.5 + 0.06 * mw


def _widen(u: float, side: int, lw: float) -> float:
    """Lateral position scaled by lung width about the midline (side -1 right, +1 left)."""
    return 0.5 + side * (abs(u - 0.5) * lw)


def _apex(side: int) -> _Point:
    """Apex of one lung (side -1 right, +1 left)."""
    return (0.5 + side * 0.17, _TOP)


def _costophrenic(p: AnatomyParams, side: int, base: float) -> _Point:
    """Costophrenic angle of one lung: the lateral end of its base."""
    return (_widen(0.5 + side * 0.38, side, p.lung_width), base)


def _lung_lateral(p: AnatomyParams, side: int, base: float) -> np.ndarray:
    """Lateral border of one lung, from the apex down the chest wall to the base."""
    s, lw, lh = side, p.lung_width, p.lung_height
    return _spline(
        [
            _apex(s),
            (_widen(0.5 + s * 0.27, s, lw), _TOP + 0.05),
            (_widen(0.5 + s * 0.35, s, lw), _TOP + 0.22 * lh),
            (_widen(0.5 + s * 0.385, s, lw), _TOP + 0.45 * lh),
            (_widen(0.5 + s * 0.38, s, lw), base),
        ],
        8,
    )


def _hemidiaphragm(p: AnatomyParams, side: int, base: float, cp: _Point) -> np.ndarray:
    """Diaphragmatic border of one lung, from the costophrenic to the cardiophrenic angle."""
    s, lw = side, p.lung_width
    dome_depth = 0.075 * p.dome_curvature
    return _spline(
        [
            _costophrenic(p, s, base),
            (_widen(0.5 + s * 0.30, s, lw), base - dome_depth * 0.8),
            (_widen(0.5 + s * 0.20, s, lw), base - dome_depth),
            (cp[0] + s * 0.03, cp[1] - dome_depth * 0.3),
            cp,
        ],
        6,
    )


def _lung_medial(side: int, heart: _Heart, cp: _Point, hil: _Point, med_u: float) -> np.ndarray:
    """Medial border of one lung: heart border (bottom to top), hilum, mediastinum, apex."""
    outline = heart.outline
    heart_side = outline[:, 0] < heart.cu if side < 0 else outline[:, 0] > heart.cu
    hb = outline[heart_side & (outline[:, 1] > hil[1] + 0.05)]
    hb = hb[np.argsort(-hb[:, 1])]  # bottom to top
    upper = _spline([tuple(hb[-1]) if len(hb) else cp, hil, (med_u, _TOP + 0.12), _apex(side)], 6)
    return np.vstack([hb, upper])


def _lung(
    p: AnatomyParams,
    side: int,
    base: float,
    cp: _Point,
    hil: _Point,
    med_u: float,
    heart: _Heart,
) -> tuple[np.ndarray, _Point]:
    """Outline of one lung (side -1 right, +1 left) and its costophrenic angle."""
    outline = np.vstack(
        [
            _lung_lateral(p, side, base),
            _hemidiaphragm(p, side, base, cp)[1:],
            _lung_medial(side, heart, cp, hil, med_u),
        ]
    )
    return outline, _costophrenic(p, side, base)


def _body() -> np.ndarray:
    """Body outline: a superellipse with square shoulders and rounded flanks."""
    t = np.linspace(0, 2 * np.pi, 64, endpoint=False)
    return np.stack(
        [
            0.5 + 0.5 * np.sign(np.cos(t)) * np.abs(np.cos(t)) ** 0.6,
            0.64 + 0.6 * np.sign(np.sin(t)) * np.abs(np.sin(t)) ** 0.75,
        ],
        axis=1,
    )


def _neck() -> np.ndarray:
    """Neck outline above the thorax."""
    return np.array([(0.36, -0.05), (0.64, -0.05), (0.66, 0.12), (0.34, 0.12)])


def _mediastinum(p: AnatomyParams, heart: _Heart, med_r: float, med_l: float) -> np.ndarray:
    """Upper mediastinum: from the thoracic inlet down to the top of the heart."""
    mw, h = p.mediastinum_width, heart
    return np.array(
        [
            (0.5 - 0.045 * mw, 0.0),
            (0.5 + 0.045 * mw, 0.0),
            (med_l + 0.01, _TOP + 0.12),
            (h.cu + 0.075 * mw, h.cv - h.height * 0.9),
            (h.cu - 0.075 * mw, h.cv - h.height * 0.9),
            (med_r - 0.01, _TOP + 0.12),
        ]
    )


def _aortic_knob(p: AnatomyParams, med_l: float) -> np.ndarray:
    """Aortic knob, just lateral to the left upper mediastinal edge."""
    return ellipse(med_l + 0.025, _TOP + 0.17 * p.lung_height, 0.035, 0.03, 16)


def _airways(
    p: AnatomyParams, hilum_r: _Point, hilum_l: _Point
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Trachea centre line (carina last) and the right and left main bronchi to the hila."""
    carina = (0.5, _TOP + 0.21 * p.lung_height)
    trachea = np.array([(0.5, 0.0), (0.5, _TOP * 0.6), carina])
    bronchi = (
        _spline([carina, (0.46, carina[1] + 0.04), hilum_r], 4),
        _spline([carina, (0.54, carina[1] + 0.05), hilum_l], 4),
    )
    return trachea, bronchi


def _clavicles(p: AnatomyParams) -> tuple[np.ndarray, np.ndarray]:
    """Right and left clavicle centre lines (higher and more horizontal on an AP view)."""
    clav_v = 0.11 if p.ap else 0.14
    clav_r = _spline(
        [
            (0.47, clav_v + 0.02),
            (0.38, clav_v - 0.005),
            (0.25, clav_v + 0.01),
            (0.12, clav_v - 0.04),
        ],
        6,
    )
    clav_l = clav_r * np.array([-1, 1]) + np.array([1, 0])
    return clav_r, clav_l


def _rib_points(
    v0: np.ndarray, lw: float, lat: float, dv: float, scaled: bool = True
) -> np.ndarray:
    """One control point per rib level and side, ``lat`` from the midline: (10, 2, 1, 2)."""
    sides = np.array([-1.0, 1.0])[None, :, None]  # (1, 2, 1)
    u = 0.5 + sides * (lat * (lw if scaled else 1.0))
    return np.stack(np.broadcast_arrays(u, v0 + dv), -1)  # (10, 2, 1, 2)


def _ribs(p: AnatomyParams) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Posterior (10 per side) and anterior (7 per side) rib centre lines."""
    lw = p.lung_width
    v0 = _TOP - 0.015 + np.arange(10)[:, None, None] * 0.062 * p.lung_height  # (10, 1, 1)
    post = np.concatenate(
        [
            _rib_points(v0, lw, 0.035, 0.0, False),
            _rib_points(v0, lw, 0.12, -0.022, False),
            _rib_points(v0, lw, 0.28, 0.005),
            _rib_points(v0, lw, 0.39, 0.06),
            _rib_points(v0, lw, 0.43, 0.13),
        ],
        axis=2,
    )
    ant = np.concatenate(
        [
            _rib_points(v0, lw, 0.40, 0.09),
            _rib_points(v0, lw, 0.30, 0.14),
            _rib_points(v0, lw, 0.17, 0.2, False),
        ],
        axis=2,
    )
    post_ribs = list(_spline(post.reshape(20, 5, 2), 5))
    ant_ribs = list(_spline(ant[:7].reshape(14, 3, 2), 5))
    return post_ribs, ant_ribs


def _gastric_bubble(base_l: float) -> np.ndarray:
    """Gastric air bubble under the left hemidiaphragm."""
    return ellipse(0.65, base_l + 0.045, 0.05, 0.028, 16)


def build_anatomy(p: AnatomyParams, size: int) -> Anatomy:
    """Construct the phantom geometry for parameters ``p`` at ``size`` pixels."""
    base_r, base_l = _lung_bases(p)
    heart = _heart(p, base_r)
    cp_r, cp_l = _cardiophrenic(heart, base_r, base_l)
    hilum_r, hilum_l = _hila(p)
    med_r, med_l = _mediastinal_edges(p)
    lung_right, cpa_r = _lung(p, -1, base_r, cp_r, hilum_r, med_r, heart)
    lung_left, cpa_l = _lung(p, +1, base_l, cp_l, hilum_l, med_l, heart)
    trachea, bronchi = _airways(p, hilum_r, hilum_l)
    post_ribs, ant_ribs = _ribs(p)
    A, b = similarity(p, size)
    return Anatomy(
        params=p,
        size=size,
        body=_body(),
        neck=_neck(),
        lung_right=lung_right,
        lung_left=lung_left,
        heart=heart.outline,
        mediastinum=_mediastinum(p, heart, med_r, med_l),
        aortic_knob=_aortic_knob(p, med_l),
        trachea=trachea,
        bronchi=bronchi,
        clavicles=_clavicles(p),
        posterior_ribs=post_ribs,
        anterior_ribs=ant_ribs,
        gastric_bubble=_gastric_bubble(base_l),
        hila=(hilum_r, hilum_l),
        costophrenic=(cpa_r, cpa_l),
        cardiophrenic=(cp_r, cp_l),
        apex_v=_TOP,
        dome_v=(base_r, base_l),
        A=A,
        b=b,
    )


def fill(anat: Anatomy, polygons: list[np.ndarray]) -> np.ndarray:
    """Rasterise patient-frame polygons into a (S, S) bool mask."""
    im = Image.new("L", (anat.size, anat.size), 0)
    draw = ImageDraw.Draw(im)
    for poly in polygons:
        draw.polygon(anat.px(poly), fill=1)
    return np.asarray(im, dtype=bool)


def _zone(anat: Anatomy, lung_mask: np.ndarray, side: int, lo: float, hi: float) -> np.ndarray:
    """Part of one lung between fractions ``lo``..``hi`` of its height (apex 0, base 1)."""
    _, v = anat.uv
    base = anat.dome_v[0 if side < 0 else 1]
    f = (v - anat.apex_v) / (base - anat.apex_v)
    return lung_mask & (f >= lo) & (f < hi)


def _lobes(anat: Anatomy, side: int, lung_mask: np.ndarray) -> dict[str, np.ndarray]:
    """Lobes projected on the frontal view: fissures as straight lines in the patient frame."""
    u, v = anat.uv
    hu, hv = anat.hila[0 if side < 0 else 1]
    base = anat.dome_v[0 if side < 0 else 1]
    lateral = (u - 0.5) * side  # > 0 towards the chest wall of that side
    # Oblique fissure: from high at the lateral wall down to the medial base.
    oblique = v > hv - 0.03 + (base - hv) * np.clip(0.6 - 1.6 * (lateral - abs(hu - 0.5)), 0, 1)
    if side < 0:
        minor = v > hv - 0.01
        return {
            "upper_right_lobe": lung_mask & ~minor,
            "middle_right_lobe": lung_mask & minor & ~oblique,
            "lower_right_lobe": lung_mask & oblique & minor,
        }
    return {"upper_left_lobe": lung_mask & ~oblique, "lower_left_lobe": lung_mask & oblique}


LANDMARK_NAMES: tuple[str, ...] = tuple(n for n in LANDMARKS if n not in ("unspecified", "other"))
"""The 49 landmarks SynthCXR draws (all but the ``unspecified`` / ``other`` fallbacks)."""


def svc_curve(anat: Anatomy) -> np.ndarray:
    hu, hv = anat.hila[0]
    return np.array([(hu + 0.035, 0.08), (hu + 0.04, hv + 0.03)])


def cavoatrial_point(anat: Anatomy) -> tuple[float, float]:
    hu, hv = anat.hila[0]
    return (hu + 0.045, hv + 0.07)


def right_atrium_point(anat: Anatomy) -> tuple[float, float]:
    cu, cv = anat.cardiophrenic[0]
    return (cu + 0.04, cv - 0.07)


def right_ventricle_point(anat: Anatomy) -> tuple[float, float]:
    cu, cv = anat.cardiophrenic[1]
    return (cu - 0.06, cv - 0.03)


def landmark_mask(anat: Anatomy, name: str) -> np.ndarray:
    """Rasterise landmark ``name`` (one of :data:`LANDMARK_NAMES`) as a (S, S) bool mask."""
    lr, ll = anat.lung_masks
    side = side_of(name) or 1
    lung = lr if side < 0 else ll
    both = lr | ll
    zones = {
        "lower": (2 / 3, 9.0),
        "mid": (1 / 3, 2 / 3),
        "upper": (-1.0, 1 / 3),
        "apical": (-1.0, 0.15),
    }
    parts = name.split("_")
    if name in ("left_lung_unspec", "right_lung_unspec"):
        return lung
    if parts[0] in ("left", "right") and len(parts) == 3 and parts[2] == "lung":
        return _zone(anat, lung, side, *zones[parts[1]])
    if name.endswith("_lobe"):
        return _lobes(anat, side, lung)[name]
    if name in ("pulmonary", "interstitium", "parenchymal", "lung_volumes"):
        return both
    if name == "lung_bases":
        return _zone(anat, lr, -1, *zones["lower"]) | _zone(anat, ll, 1, *zones["lower"])
    if name == "lung_apices":
        return _zone(anat, lr, -1, *zones["apical"]) | _zone(anat, ll, 1, *zones["apical"])
    if name == "cardiopulmonary":
        return both | fill(anat, [anat.heart])
    if name == "heart_size":
        return fill(anat, [anat.heart])
    if name == "heart_border":
        return fill(anat, [strip(anat.heart, 0.012)])
    if name == "retrocardiac":
        return (
            fill(anat, [anat.heart])
            & _lobes(anat, 1, ll | fill(anat, [anat.heart]))["lower_left_lobe"]
        )
    if name.endswith("_pleural") or name == "pleural_unspec":
        sides = [(-1, anat.lung_right), (1, anat.lung_left)]
        if name != "pleural_unspec":
            sides = [s for s in sides if s[0] == side]
        return fill(anat, [strip(_lateral_and_base(poly), 0.018) for _, poly in sides])
    if name.endswith("_costophrenic") or name == "costophrenic_unspec":
        pts = anat.costophrenic if name == "costophrenic_unspec" else [anat.costophrenic[side > 0]]
        return fill(anat, [ellipse(u, v - 0.02, 0.04, 0.035) for u, v in pts])
    if name.endswith("_diaphragm") or name == "diaphragm_unspec":
        polys = []
        for s, poly in ((-1, anat.lung_right), (1, anat.lung_left)):
            if name == "diaphragm_unspec" or s == side:
                polys.append(strip(_dome(anat, poly, s), 0.012))
        return fill(anat, polys)
    if name.endswith("_hilar") or name == "hilar_unspec":
        pts = anat.hila if name == "hilar_unspec" else [anat.hila[side > 0]]
        return fill(anat, [ellipse(u, v + 0.02, 0.045, 0.06) for u, v in pts])
    if name == "cardiophrenic_sulcus":
        return fill(anat, [ellipse(u, v - 0.015, 0.03, 0.03) for u, v in anat.cardiophrenic])
    simple = {
        "trachea": lambda: [strip(anat.trachea, 0.02)],
        "mediastinal": lambda: [anat.mediastinum],
        "spine": lambda: [np.array([(0.465, 0.0), (0.535, 0.0), (0.535, 1.0), (0.465, 1.0)])],
        "clavicle": lambda: [strip(c, 0.014) for c in anat.clavicles],
        "rib": lambda: [strip(r, 0.011) for r in anat.posterior_ribs],
        "stomach": lambda: [anat.gastric_bubble],
        "aorta": lambda: [anat.aortic_knob],
        "svc": lambda: [strip(svc_curve(anat), 0.02)],
        "cavoatrial_junction": lambda: [ellipse(*cavoatrial_point(anat), 0.02, 0.02)],
        "right_atrium": lambda: [ellipse(*right_atrium_point(anat), 0.05, 0.06)],
        "right_ventricle": lambda: [ellipse(*right_ventricle_point(anat), 0.06, 0.045)],
    }
    if name in simple:
        return fill(anat, simple[name]())
    raise KeyError(f"SynthCXR does not draw landmark {name!r}")


def _lateral_and_base(poly: np.ndarray) -> np.ndarray:
    """The lateral wall and base of a lung outline (the pleural surfaces seen on a PA film)."""
    lat = np.abs(poly[:, 0] - 0.5)
    keep = lat > np.quantile(lat, 0.35)
    idx = np.flatnonzero(keep)
    return poly[idx[0] : idx[-1] + 1]


def _dome(anat: Anatomy, poly: np.ndarray, side: int) -> np.ndarray:
    """The hemidiaphragm: lower boundary of a lung outline between its two basal corners."""
    base = anat.dome_v[0 if side < 0 else 1]
    low = poly[:, 1] > base - 0.11
    idx = np.flatnonzero(low)
    seg = poly[idx]
    return seg[np.argsort(seg[:, 0])]
