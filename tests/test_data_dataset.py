"""The torch Dataset over shards (multi-worker) and the batch pretraining augmentation."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from medslip.data.dataset import IMAGENET_MEAN, IMAGENET_STD, PretrainAugment, ShardDataset
from medslip.data.shards import ShardWriter


@pytest.fixture(params=["lmdb", "parquet"])
def shard(tmp_path, request):
    rng = np.random.default_rng(0)
    images = {f"img{i:02d}": rng.integers(0, 256, (32, 32), dtype=np.uint8) for i in range(10)}
    path = tmp_path / f"shard-00000.{request.param}"
    with ShardWriter(path) as writer:
        for i, (key, pixels) in enumerate(images.items()):
            writer.add(key, pixels, (pixels > 128).astype(np.uint8) if i % 2 else None)
    return path, images


def test_dataloader_with_two_workers_returns_the_stored_pixels(shard):
    path, images = shard
    dataset = ShardDataset(path, with_masks=True)
    assert pickle.loads(pickle.dumps(dataset)).reader["img03"].tolist() == images["img03"].tolist()
    loader = torch.utils.data.DataLoader(dataset, batch_size=4, num_workers=2)
    seen = 0
    for batch in loader:
        assert batch["image"].dtype == torch.uint8 and batch["image"].shape[1:] == (1, 32, 32)
        for image, mask, index in zip(batch["image"], batch["mask"], batch["index"], strict=True):
            want = images[dataset.keys[int(index)]]
            assert np.array_equal(image[0].numpy(), want)
            assert mask.sum() == ((want > 128).sum() if int(index) % 2 else 0)
            seen += 1
    assert seen == len(images)


def test_augment_identity_settings_reproduce_the_image():
    images = torch.randint(0, 256, (3, 1, 64, 64), dtype=torch.uint8)
    identity = PretrainAugment(
        size=64, scale=(1.0, 1.0), ratio=(1.0, 1.0), flip=False, randaug_ops=0, channels=1
    )
    out = identity(images, torch.Generator().manual_seed(0))
    back = (out * IMAGENET_STD[0] + IMAGENET_MEAN[0]) * 255
    assert (back - images.float()).abs().max() < 0.01


def test_augment_is_seeded_and_varies():
    images = torch.randint(
        0, 256, (6, 1, 96, 96), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )
    augment = PretrainAugment(size=64, scale=(0.2, 1.0))
    first = augment(images, torch.Generator().manual_seed(1))
    assert first.shape == (6, 3, 64, 64) and first.dtype == torch.float32
    assert torch.equal(first, augment(images, torch.Generator().manual_seed(1)))
    assert not torch.equal(first, augment(images, torch.Generator().manual_seed(2)))
    flipped = PretrainAugment(size=96, scale=(1.0, 1.0), ratio=(1.0, 1.0), randaug_ops=0)
    out = flipped(images, torch.Generator().manual_seed(3))[:, 0]
    straight = ((images[:, 0].float() / 255) - IMAGENET_MEAN[0]) / IMAGENET_STD[0]
    is_flip = [torch.allclose(o, straight[i].flip(-1), atol=1e-3) for i, o in enumerate(out)]
    is_same = [torch.allclose(o, straight[i], atol=1e-3) for i, o in enumerate(out)]
    assert all(a != b for a, b in zip(is_flip, is_same, strict=True))  # each one or the other
    assert any(is_flip) and any(is_same)


def test_photometric_ops_change_only_the_images_that_drew_them():
    from medslip.data.dataset import _OPS, _photometric

    images = torch.rand(4, 1, 16, 16) * 255
    params = {name: torch.zeros(4) for name in _OPS}
    params["factor"] = torch.full((4,), 1.5)
    params["brightness"][1] = 1
    params["sharpness"][2] = 2  # drawn twice: applied twice
    out = _photometric(images, params)
    assert torch.equal(out[[0, 3]], images[[0, 3]])
    assert torch.allclose(out[1], (images[1] * 1.5).clamp(0, 255))
    factor = torch.full((1, 1, 1, 1), 1.5)
    twice = _OPS["sharpness"](_OPS["sharpness"](images[2:3], factor), factor)
    assert torch.allclose(out[2:3], twice)


@pytest.mark.parametrize("backend", ["lmdb", "parquet"])
def test_shards_past_one_row_group_read_back_and_reads_are_private_copies(tmp_path, backend):
    from medslip.data import ShardReader

    path = tmp_path / f"shard-00000.{backend}"
    n = 4096 + 300  # more than one Parquet row group
    with ShardWriter(path) as writer:
        for i in range(n):
            writer.add(f"k{i}", np.full((2, 3), i % 251, dtype=np.uint8))
    (tmp_path / "shard-00000.index.parquet").write_bytes(b"sidecar, not a shard")
    reader = ShardReader(tmp_path)  # directory without summary.json: shard files only
    assert len(reader) == n
    for i in (0, 4095, 4096, n - 1):
        assert reader[f"k{i}"].tolist() == [[i % 251] * 3] * 2
    first = reader["k7"]
    first[:] = 0  # a caller may write into what it got
    assert reader["k7"].tolist() == [[7] * 3] * 2
