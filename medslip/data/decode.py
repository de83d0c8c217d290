"""Decoding source images to 8-bit grayscale, and resizing with an aspect policy.

- JPEG: PIL draft mode, so the DCT decoder itself scales by 1/2, 1/4 or 1/8 while staying at
  least as large as the target; then one resize.
- PNG: 8-bit L/RGB/RGBA/P/LA (colour to luma, ITU-R 601-2); 16-bit (``I;16``, ``I``) min-max
  stretched to 0..255.
- DICOM: modality LUT (RescaleSlope/Intercept), then the first VOI window (WindowCenter/Width,
  linear function of PS3.3 C.11.2.1.2.1) or VOI LUT sequence, else min-max; MONOCHROME1
  inverted; BitsStored up to 16.

Anything else raises :class:`BadImage` (quarantined by preprocessing).
"""

from __future__ import annotations

import io
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from medslip.errors import MedslipError

ASPECT_POLICIES = ("stretch", "pad", "crop")
_LUMA_MODES = {"L", "RGB", "RGBA", "P", "LA", "1", "PA"}


class BadImage(MedslipError):
    """An image that cannot be decoded into 8-bit grayscale (reason in the message)."""


@dataclass(frozen=True)
class Geometry:
    """Source -> output pixel coordinates: ``x' = x * sx + ox``, ``y' = y * sy + oy``."""

    src_width: int
    src_height: int
    sx: float
    sy: float
    ox: float
    oy: float


def _pil_to_gray(image: Image.Image, what: str) -> np.ndarray:
    """(H, W) uint8 from a PIL image in a supported mode."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        return _stretch(np.asarray(image, dtype=np.float64))
    if image.mode not in _LUMA_MODES:
        raise BadImage(f"{what}: unexpected image mode {image.mode}")
    if image.mode in ("P", "PA"):
        image = image.convert("RGBA")
    return np.asarray(image.convert("L"))


def _stretch(values: np.ndarray, present: np.ndarray | None = None) -> np.ndarray:
    """Min-max stretch of a numeric array to uint8; min and max over ``values[present]`` when
    a boolean ``present`` (same shape) is given."""
    chosen = values if present is None else values[present]
    lo, hi = float(chosen.min()), float(chosen.max())
    if hi <= lo:
        return np.zeros(values.shape, dtype=np.uint8)
    return np.round(np.clip((values - lo) * (255.0 / (hi - lo)), 0, 255)).astype(np.uint8)


def window(values: np.ndarray, center: float, width: float) -> np.ndarray:
    """DICOM linear VOI window (PS3.3 C.11.2.1.2.1) of modality values to uint8, shape kept."""
    width = max(float(width), 1.0)
    scaled = ((values - (center - 0.5)) / (width - 1.0) + 0.5) * 255.0
    return np.round(np.clip(scaled, 0, 255)).astype(np.uint8)


def _first(value) -> float:
    """First value of a possibly multi-valued DICOM element."""
    try:
        return float(value[0])
    except TypeError:
        return float(value)


def decode_dicom(data: bytes, what: str) -> np.ndarray:
    """(H, W) uint8 display image of a DICOM (see module docstring)."""
    import pydicom

    try:
        with warnings.catch_warnings():  # malformed headers are reported as BadImage below
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(io.BytesIO(data))
            raw = ds.pixel_array
    except Exception as exc:  # any decoder failure means "unreadable DICOM"
        raise BadImage(f"{what}: unreadable DICOM ({type(exc).__name__}: {exc})") from None
    photometric = str(ds.get("PhotometricInterpretation", ""))
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise BadImage(f"{what}: unexpected PhotometricInterpretation {photometric!r}")
    bits = int(ds.get("BitsStored", 0) or 0)
    if not 1 <= bits <= 16 or raw.ndim != 2:
        raise BadImage(f"{what}: unexpected bit depth {bits} / pixel shape {raw.shape}")
    if raw.dtype.kind not in "ui":
        return _display(raw, ds, None)
    # Every step is a function of the stored value alone: compute it once per value present
    # (at most 2^16 of them) and look the image up in that table.
    low, high = int(raw.min()), int(raw.max())
    lo = min(low, 0)
    index = raw if lo == 0 else raw.astype(np.int64) - lo
    levels = np.arange(lo, high + 1, dtype=np.int64)
    if "ModalityLUTSequence" in ds or "VOILUTSequence" in ds:  # tables: any shape
        present = np.bincount(index.ravel(), minlength=levels.size) > 0
    else:  # linear rescale: the extremes are those of the lowest and highest stored value
        present = np.zeros(levels.size, dtype=bool)
        present[[low - lo, high - lo]] = True
    return np.take(_display(levels, ds, present), index)


def _display(raw: np.ndarray, ds, present: np.ndarray | None) -> np.ndarray:
    """uint8 display values of stored DICOM values ``raw`` (any shape): modality LUT, VOI
    window / LUT or min-max (over ``raw[present]``, or all of ``raw``), MONOCHROME1 inversion."""
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    values = np.asarray(apply_modality_lut(raw, ds), dtype=np.float64)
    if "WindowCenter" in ds and "WindowWidth" in ds:
        out = window(values, _first(ds.WindowCenter), _first(ds.WindowWidth))
    elif "VOILUTSequence" in ds:
        out = _stretch(np.asarray(apply_voi_lut(raw, ds), dtype=np.float64), present)
    else:
        out = _stretch(values, present)
    return 255 - out if ds.PhotometricInterpretation == "MONOCHROME1" else out


def read_source(root: Path, rel: str) -> bytes:
    """Bytes of ``rel`` below ``root``; ``archive.zip!member`` reads a zip member."""
    what = rel or "(no path)"
    if not rel:
        raise BadImage(f"{what}: no file on disk for this manifest entry")
    try:
        if "!" in rel:
            archive, member = rel.split("!", 1)
            with zipfile.ZipFile(root / archive) as zf:
                return zf.read(member)
        data = (root / rel).read_bytes()
    except (FileNotFoundError, KeyError):
        raise BadImage(f"{rel}: listed in the manifest but missing on disk") from None
    except (OSError, zipfile.BadZipFile) as exc:
        raise BadImage(f"{rel}: unreadable ({exc})") from None
    if not data:
        raise BadImage(f"{rel}: zero-byte file")
    return data


def decode(data: bytes, what: str, target: int | None = None) -> tuple[np.ndarray, int, int]:
    """Decode image bytes to ((h, w) uint8, source width, source height).

    With ``target`` set, JPEGs are decoded in draft mode to the smallest 1/2^k scale whose
    shorter side is still >= ``target``, so h, w may be smaller than the source size.
    """
    if data[128:132] == b"DICM" or what.lower().endswith(".dcm"):
        pixels = decode_dicom(data, what)
        return pixels, pixels.shape[1], pixels.shape[0]
    try:
        image = Image.open(io.BytesIO(data))
        width, height = image.size
        if image.format == "JPEG" and target is not None:
            scale = min(width, height) / target
            image.draft(
                "L", (max(1, int(np.ceil(width / scale))), max(1, int(np.ceil(height / scale))))
            )
        image.load()
    except UnidentifiedImageError:  # its message holds the address of a BytesIO
        raise BadImage(f"{what}: not an image in a format PIL reads") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise BadImage(f"{what}: corrupt or truncated image ({exc})") from None
    return _pil_to_gray(image, what), width, height


def resize(
    pixels: np.ndarray, size: int, policy: str, src_w: int, src_h: int
) -> tuple[np.ndarray, Geometry]:
    """Resize an (h, w) uint8 image (a possibly draft-reduced decode of a src_w x src_h
    source) to (size, size) with ``policy``; returns the image and the source->output geometry.

    - ``stretch``: scale each axis to ``size`` (the official test transform);
    - ``pad``: scale the longer side to ``size``, centre, pad with 0;
    - ``crop``: scale the shorter side to ``size``, centre-crop.
    """
    if policy not in ASPECT_POLICIES:
        raise MedslipError(f"aspect policy {policy!r} is not one of {ASPECT_POLICIES}")
    image = Image.fromarray(pixels)
    if policy == "stretch":
        out = image.resize((size, size), Image.BILINEAR)
        return np.asarray(out), Geometry(src_w, src_h, size / src_w, size / src_h, 0.0, 0.0)
    scale = size / (max if policy == "pad" else min)(src_w, src_h)
    new_w, new_h = max(1, round(src_w * scale)), max(1, round(src_h * scale))
    scaled = np.asarray(image.resize((new_w, new_h), Image.BILINEAR))
    ox, oy = (size - new_w) // 2, (size - new_h) // 2
    canvas = np.zeros((size, size), dtype=np.uint8)
    dst_x, dst_y = max(ox, 0), max(oy, 0)
    src_x, src_y = max(-ox, 0), max(-oy, 0)
    w, h = min(new_w, size), min(new_h, size)
    canvas[dst_y : dst_y + h, dst_x : dst_x + w] = scaled[src_y : src_y + h, src_x : src_x + w]
    sx, sy = new_w / src_w, new_h / src_h
    return canvas, Geometry(src_w, src_h, sx, sy, float(ox), float(oy))


def resize_mask(mask: np.ndarray, size: int, policy: str) -> np.ndarray:
    """Resize a bool (H, W) source-resolution mask like the image: uint8 {0, 1} (size, size)."""
    soft, _ = resize(mask.astype(np.uint8) * 255, size, policy, mask.shape[1], mask.shape[0])
    return (soft >= 128).astype(np.uint8)


def transform_boxes(boxes: list, geometry: Geometry, size: int) -> list:
    """``[label, x, y, w, h]`` source boxes in output pixels, clipped to the image; boxes that
    end up empty (cropped away) are dropped."""
    out = []
    for label, x, y, w, h in boxes:
        x0 = min(max(x * geometry.sx + geometry.ox, 0.0), size)
        y0 = min(max(y * geometry.sy + geometry.oy, 0.0), size)
        x1 = min(max((x + w) * geometry.sx + geometry.ox, 0.0), size)
        y1 = min(max((y + h) * geometry.sy + geometry.oy, 0.0), size)
        if x1 > x0 and y1 > y0:
            out.append([label, x0, y0, x1 - x0, y1 - y0])
    return out
