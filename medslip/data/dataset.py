"""PyTorch side of the shards: a multi-worker-safe Dataset and batch augmentation on any device.

:class:`ShardDataset` yields uint8 tensors (1, H, W) straight from the shards (LMDB environments
are opened lazily in each worker process). :class:`PretrainAugment` runs MeDSLIP's pretraining
augmentation on a whole uint8 batch (B, 1, H, W) on the batch's device (CPU or GPU):
RandomResizedCrop(scale 0.2-1, ratio 3/4-4/3, bicubic), horizontal flip (p 0.5), RandAugment
(2 ops with replacement, each with p 0.5, level 7: rotate +-21 deg, shear +-0.21, translate
+-7 px, brightness and sharpness x1.36, autocontrast, equalize; fill grey 128), then ImageNet
normalisation, giving float32 (B, channels, size, size). The geometric parts are composed into
one sampling grid per image, so each image is interpolated once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from medslip.data.shards import ShardReader

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RANDAUG_OPS = (
    "identity",
    "autocontrast",
    "equalize",
    "brightness",
    "sharpness",
    "shear_x",
    "shear_y",
    "translate_x",
    "translate_y",
    "rotate",
)


class ShardDataset(torch.utils.data.Dataset):
    """Items ``{"image": uint8 (1, H, W), "index": int}`` (+ ``"mask"`` uint8 (1, H, W) when
    ``with_masks``) for ``keys`` (default: every key) of the shards at ``path``."""

    def __init__(
        self, path: str | Path, keys: list[str] | None = None, with_masks: bool = False
    ) -> None:
        self.reader = ShardReader(path)
        self.keys = list(keys) if keys is not None else self.reader.keys()
        missing = [k for k in self.keys if k not in self.reader]
        if missing:
            from medslip.errors import MedslipError

            raise MedslipError(f"{path}: {len(missing)} requested keys missing, e.g. {missing[0]}")
        self.with_masks = with_masks

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, index: int) -> dict:
        key = self.keys[index]
        item = {"image": torch.from_numpy(self.reader[key])[None], "index": index}
        if self.with_masks:
            mask = self.reader.mask(key)
            shape = item["image"].shape[1:]
            item["mask"] = (
                torch.zeros(shape, dtype=torch.uint8) if mask is None else torch.from_numpy(mask)
            )[None]
        return item


@dataclass(frozen=True)
class PretrainAugment:
    """MeDSLIP pretraining augmentation on uint8 batches (see module docstring)."""

    size: int  # config presets.<preset>.model.image_size (or finetune.image_size)
    scale: tuple[float, float]  # config presets.<preset>.train.crop_scale (or finetune.crop_scale)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip: bool = True
    randaug_ops: int = 2
    randaug_level: float = 7.0
    channels: int = 3

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """uint8 (B, 1, H, W) on any device -> normalised float32 (B, channels, size, size).

        Random numbers come from the CPU ``generator``, so a seed gives the same batch on CPU
        and GPU (up to interpolation rounding).
        """
        return self.apply(images, generator)[0]

    def apply(
        self, images: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Like ``__call__``, also returning which images were flipped horizontally (bool (B,)
        on the CPU), so that laterality labels can follow the flip."""
        batch, _, height, width = images.shape
        device = images.device
        params = self._sample(batch, height, width, generator)
        flipped = params.pop("flipped")
        theta = params["theta"].to(device)
        grid = F.affine_grid(theta, (batch, 1, self.size, self.size), align_corners=False)
        centred = images.float() - 128.0  # zero padding == fill grey 128
        out = (
            F.grid_sample(centred, grid, mode="bicubic", padding_mode="zeros", align_corners=False)
            + 128.0
        )
        out = out.clamp(0, 255)
        out = _photometric(out, {k: v.to(device) for k, v in params.items() if k != "theta"})
        out = out / 255.0
        mean = torch.tensor(IMAGENET_MEAN[: self.channels], device=device).view(1, -1, 1, 1)
        std = torch.tensor(IMAGENET_STD[: self.channels], device=device).view(1, -1, 1, 1)
        return (out.expand(-1, self.channels, -1, -1) - mean) / std, flipped

    def _sample(self, batch: int, height: int, width: int, gen: torch.Generator) -> dict:
        """Per-image affine (B, 2, 3) in normalised coordinates and photometric switches."""
        u = lambda *shape: torch.rand(*shape, generator=gen, dtype=torch.float64)  # noqa: E731
        area = u(batch) * (self.scale[1] - self.scale[0]) + self.scale[0]
        log_r = torch.log(torch.tensor(self.ratio, dtype=torch.float64))
        aspect = torch.exp(u(batch) * (log_r[1] - log_r[0]) + log_r[0])
        # crop width/height as fractions of the image (torchvision's RandomResizedCrop, clamped)
        cw = torch.sqrt(area * aspect * height / width).clamp(max=1.0)
        ch = torch.sqrt(area / aspect * width / height).clamp(max=1.0)
        cx = (u(batch) * 2 - 1) * (1 - cw)
        cy = (u(batch) * 2 - 1) * (1 - ch)
        sign = torch.where(u(batch) < 0.5, -1.0, 1.0) if self.flip else torch.ones(batch)
        crop = torch.zeros(batch, 3, 3, dtype=torch.float64)
        crop[:, 0, 0], crop[:, 0, 2] = cw * sign, cx
        crop[:, 1, 1], crop[:, 1, 2] = ch, cy
        crop[:, 2, 2] = 1.0
        # RandAugment: op choice with replacement, each applied with p = 0.5
        ops = torch.randint(len(RANDAUG_OPS), (batch, self.randaug_ops), generator=gen)
        on = u(batch, self.randaug_ops) < 0.5
        sign_op = torch.where(u(batch, self.randaug_ops) < 0.5, -1.0, 1.0)
        level = self.randaug_level / 10.0
        warp = torch.eye(3, dtype=torch.float64).repeat(batch, 1, 1)
        photometric = {name: torch.zeros(batch) for name in RANDAUG_OPS[1:5]}
        for slot in range(self.randaug_ops):
            for b in range(batch):
                if not on[b, slot]:
                    continue
                name, s = RANDAUG_OPS[int(ops[b, slot])], float(sign_op[b, slot])
                if name in photometric:
                    photometric[name][b] += 1
                    continue
                step = torch.eye(3, dtype=torch.float64)
                if name == "rotate":
                    a = math.radians(30 * level * s)
                    step[:2, :2] = torch.tensor(
                        [[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]]
                    )
                elif name == "shear_x":
                    step[0, 1] = 0.3 * level * s
                elif name == "shear_y":
                    step[1, 0] = 0.3 * level * s
                elif name == "translate_x":
                    step[0, 2] = 2 * 10 * level * s / self.size  # 7 px at level 7
                elif name == "translate_y":
                    step[1, 2] = 2 * 10 * level * s / self.size
                warp[b] = step @ warp[b]
        theta = (crop @ warp)[:, :2, :].float()
        factor = torch.full((batch,), 1.8 * level + 0.1)
        return {"theta": theta, "factor": factor, "flipped": sign < 0} | photometric


def eval_transform(images: torch.Tensor, size: int, channels: int = 3) -> torch.Tensor:
    """The official test transform on a uint8 batch (B, 1, H, W): bilinear resize to
    (size, size), ImageNet normalisation -> float32 (B, channels, size, size)."""
    out = images.float() / 255.0
    if out.shape[-2:] != (size, size):
        out = F.interpolate(out, size=(size, size), mode="bilinear", align_corners=False)
    mean = torch.tensor(IMAGENET_MEAN[:channels], device=images.device).view(1, -1, 1, 1)
    std = torch.tensor(IMAGENET_STD[:channels], device=images.device).view(1, -1, 1, 1)
    return (out.expand(-1, channels, -1, -1) - mean) / std


def _photometric(images: torch.Tensor, params: dict) -> torch.Tensor:
    """Apply the photometric RandAugment ops drawn for each image (an op drawn twice is applied
    twice); float (B, 1, S, S) in 0..255."""
    factor = params["factor"].view(-1, 1, 1, 1)
    for name in ("autocontrast", "equalize", "brightness", "sharpness"):
        for repeat in range(int(params[name].max().item())):
            chosen = (params[name] > repeat).nonzero().flatten()
            changed = _OPS[name](images[chosen], factor[chosen])
            images = images.index_copy(0, chosen, changed)
    return images


def _autocontrast(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    lo = images.amin(dim=(2, 3), keepdim=True)
    hi = images.amax(dim=(2, 3), keepdim=True)
    return torch.where(hi > lo, (images - lo) * 255.0 / (hi - lo).clamp(min=1e-6), images)


def _equalize(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    batch = images.shape[0]
    levels = images.round().clamp(0, 255).long().view(batch, -1)
    hist = torch.zeros(batch, 256, device=images.device).scatter_add_(
        1, levels, torch.ones_like(levels, dtype=torch.float32)
    )
    cdf = hist.cumsum(1)
    cdf_min = torch.where(hist > 0, cdf, cdf[:, -1:]).amin(1, keepdim=True)
    lut = ((cdf - cdf_min) * 255.0 / (cdf[:, -1:] - cdf_min).clamp(min=1)).clamp(0, 255)
    return lut.gather(1, levels).view_as(images)


def _brightness(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return (images * factor).clamp(0, 255)


def _sharpness(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    kernel = (
        torch.tensor(
            [[1, 1, 1], [1, 5, 1], [1, 1, 1]], dtype=images.dtype, device=images.device
        ).view(1, 1, 3, 3)
        / 13.0
    )
    blurred = F.conv2d(F.pad(images, (1, 1, 1, 1), mode="replicate"), kernel)
    return (blurred + factor * (images - blurred)).clamp(0, 255)


_OPS = {
    "autocontrast": _autocontrast,
    "equalize": _equalize,
    "brightness": _brightness,
    "sharpness": _sharpness,
}
