"""SIIM-ACR relative column-major RLE: against the real train-rle.csv and as a round trip."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from medslip.errors import MedslipError
from medslip.rle import decode_siim, encode_siim

SIZE = 1024  # the real SIIM masks live on the 1024x1024 DICOM grid


@pytest.fixture(scope="module")
def real_rle(real_data) -> pd.DataFrame:
    return pd.read_csv(real_data / "siim_acr_pneumothorax" / "siim-pneumothorax-train-rle.csv.gz")


def _components(mask: np.ndarray) -> int:
    return ndimage.label(mask, structure=np.ones((3, 3)))[1]


def test_real_rows_decode_and_reencode_to_the_same_string(real_rle):
    column = real_rle.columns[1]
    positives = real_rle[real_rle[column].str.strip() != "-1"].head(60)
    exact = 0
    for rle in positives[column]:
        mask = decode_siim([rle], SIZE, SIZE)
        assert mask.shape == (SIZE, SIZE) and mask.any()
        encoded = encode_siim(mask)
        assert decode_siim(encoded, SIZE, SIZE).tolist() == mask.tolist()
        if _components(mask) == 1:
            assert encoded == [rle.strip()]
            exact += 1
    assert exact > 40  # most annotated rows are single components


def test_empty_mask_is_minus_one_with_or_without_space(real_rle):
    assert encode_siim(np.zeros((7, 5), dtype=bool)) == ["-1"]
    assert not decode_siim([" -1"], 7, 5).any()
    first = real_rle.iloc[0]
    assert first.iloc[1].strip() == "-1"
    assert not decode_siim([first.iloc[1]], SIZE, SIZE).any()


def test_encoding_is_relative_and_column_major():
    mask = np.zeros((4, 3), dtype=bool)
    mask[1:3, 0] = True  # column 0, rows 1-2 -> flat 1, 2
    mask[0, 1] = True  # column 1, row 0 -> flat 4 (touches the first run at a corner)
    mask[3, 2] = True  # column 2, row 3 -> flat 11, a separate component
    assert encode_siim(mask) == ["1 2 1 1", "11 1"]
    assert decode_siim(["1 2 1 1", "11 1"], 4, 3).tolist() == mask.tolist()


def test_round_trip_random_masks():
    rng = np.random.default_rng(0)
    for _ in range(30):
        h, w = rng.integers(1, 40, size=2)
        mask = rng.random((h, w)) < rng.uniform(0.05, 0.6)
        encoded = encode_siim(mask)
        assert decode_siim(encoded, h, w).tolist() == mask.tolist()
        if mask.any():
            assert len(encoded) == _components(mask)
            for part in encoded:  # each string is one 8-connected component
                assert _components(decode_siim([part], h, w)) == 1


@pytest.mark.parametrize("bad", ["1 2 3", "a b", "5 -1", "0 13"])
def test_malformed_rle_is_rejected(bad):
    with pytest.raises(MedslipError, match="SIIM RLE"):
        decode_siim([bad], 3, 4)
