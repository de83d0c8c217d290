"""SIIM-ACR Pneumothorax competition run-length encoding (``train-rle.csv``'s ``EncodedPixels``).

The encoding of the competition's ``mask_functions.py``:

- pixels are visited column by column (the pixel order of the transposed image, Fortran order of a
  ``(H, W)`` array: flat index ``x * H + y``);
- the string alternates ``start length`` pairs where each start is *relative*: the number of
  background pixels since the end of the previous run (the first start counts from pixel 0);
- ``-1`` means no mask. The Kaggle original writes it as `` -1`` (leading space); decoding accepts
  surrounding whitespace.

The official file has one row per connected component of an image's pneumothorax mask. Here a
component is 8-connected (pixels touching at an edge or a corner belong together), and components
are ordered by their first pixel in the column-major order above.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from scipy import ndimage

from medslip.errors import MedslipError

EMPTY = "-1"
_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


def _encode_positions(positions: np.ndarray) -> str:
    """Relative RLE of sorted flat (column-major) pixel positions, shape (N,), N > 0."""
    breaks = np.flatnonzero(np.diff(positions) != 1) + 1
    starts = positions[np.r_[0, breaks]]
    ends = positions[np.r_[breaks - 1, positions.size - 1]] + 1  # exclusive
    relative = starts.copy()
    relative[1:] -= ends[:-1]
    pairs = np.empty(2 * starts.size, dtype=np.int64)
    pairs[0::2] = relative
    pairs[1::2] = ends - starts
    return " ".join(map(str, pairs.tolist()))


def encode_siim(mask: np.ndarray) -> list[str]:
    """Encode a boolean mask, shape (H, W), as one SIIM RLE string per 8-connected component.

    Returns ``["-1"]`` when the mask is empty.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise MedslipError(f"SIIM RLE: mask must be 2-D (H, W), got shape {mask.shape}")
    # Labelling the transposed mask numbers components by their first column-major pixel.
    labels, count = ndimage.label(mask.T.astype(bool), structure=_EIGHT_CONNECTED)
    if count == 0:
        return [EMPTY]
    flat = labels.ravel()
    positions = np.flatnonzero(flat)
    by_label = positions[np.argsort(flat[positions], kind="stable")]
    sizes = np.bincount(flat[positions], minlength=count + 1)[1:]
    return [_encode_positions(group) for group in np.split(by_label, np.cumsum(sizes)[:-1])]


def decode_siim(rles: Iterable[str], height: int, width: int) -> np.ndarray:
    """Decode SIIM RLE strings of one image into the union of their masks, bool (height, width).

    Each string is either ``-1`` (no mask, surrounding whitespace allowed) or relative
    ``start length`` pairs; a string that is malformed or runs past the image raises MedslipError.
    """
    flat = np.zeros(height * width, dtype=bool)
    for rle in rles:
        text = rle.strip()
        if text == EMPTY:
            continue
        try:
            values = np.array(text.split(), dtype=np.int64)
        except ValueError:
            raise MedslipError(f"SIIM RLE: not integers: {text[:60]!r}") from None
        if values.size == 0 or values.size % 2:
            raise MedslipError(f"SIIM RLE: expected start/length pairs, got {values.size} numbers")
        if (values < 0).any():
            raise MedslipError(f"SIIM RLE: negative start or length in {text[:60]!r}")
        lengths = values[1::2]
        starts = np.cumsum(values[0::2]) + np.r_[0, np.cumsum(lengths)[:-1]]
        ends = starts + lengths
        if ends[-1] > flat.size:
            raise MedslipError(
                f"SIIM RLE: run ends at pixel {ends[-1]}, past the {height}x{width} image"
            )
        # Mark runs with a +1/-1 difference array, then integrate (fast for many runs).
        edges = np.zeros(flat.size + 1, dtype=np.int32)
        np.add.at(edges, starts, 1)
        np.add.at(edges, ends, -1)
        flat |= np.cumsum(edges[:-1]) > 0
    return flat.reshape(width, height).T
