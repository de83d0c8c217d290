"""The fine-tuning segmentation network (the official `Sample_Finetuning_SIIMACR/I2_segmentation/`):
a U-Net over the ResNet encoder truncated after ``layer3``, as the official ``models/resunet.py``
(after kevinlu1211's pytorch-unet-resnet-50-encoder, with the layer4 stage removed).

With stem width w (64 = ResNet-50): skips are the input (3 ch, 1/1), the ReLU after conv1
(w, 1/2), layer1 (4w, 1/4) and layer2 (8w, 1/8); layer3 (16w, 1/16) feeds the bridge, two
Conv3x3-BN-ReLU at 16w. Four up-blocks (ConvTranspose 2x2 stride 2, concatenation with the
skip, two Conv3x3-BN-ReLU) give 8w, 4w, 2w, w channels at 1/8, 1/4, 1/2, 1/1; dropout and a
1x1 convolution give full-resolution logits (B, classes, H, W). H and W must be multiples of 16.
The encoder is a :class:`~medslip.model.trunk.ResNetTrunk` named ``encoder`` (torchvision
names below it), so a pretrained trunk loads as ``res_features.X -> encoder.X``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from medslip.errors import MedslipError
from medslip.model.trunk import ResNetTrunk
from medslip.settings import STRIDE


class ConvBlock(nn.Sequential):
    """Conv3x3 (padding 1) - BatchNorm - ReLU."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(
            nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
        )


class UpBlock(nn.Module):
    """ConvTranspose(up_in -> up_out, 2, stride 2), concat with the skip (skip channels), then
    ConvBlock(up_out + skip -> out), ConvBlock(out -> out)."""

    def __init__(self, up_in: int, up_out: int, skip: int, out: int) -> None:
        super().__init__()
        self.upsample = nn.ConvTranspose2d(up_in, up_out, 2, stride=2)
        self.conv_block_1 = ConvBlock(up_out + skip, out)
        self.conv_block_2 = ConvBlock(out, out)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        x = self.upsample(x)
        return self.conv_block_2(self.conv_block_1(torch.cat([x, skip], dim=1)))


class ResUNet(nn.Module):
    """U-Net on the ResNet-to-layer3 encoder (see module docstring)."""

    def __init__(
        self, layers: Sequence[int], width: int, n_classes: int = 1, dropout: float = 0.1
    ) -> None:
        super().__init__()
        self.encoder = ResNetTrunk(layers, width)
        w = width
        self.bridge = nn.Sequential(ConvBlock(16 * w, 16 * w), ConvBlock(16 * w, 16 * w))
        self.up_blocks = nn.ModuleList(
            [
                UpBlock(16 * w, 8 * w, 8 * w, 8 * w),  # 1/16 -> 1/8, skip layer2
                UpBlock(8 * w, 4 * w, 4 * w, 4 * w),  # 1/8 -> 1/4, skip layer1
                UpBlock(4 * w, 2 * w, w, 2 * w),  # 1/4 -> 1/2, skip relu(conv1)
                UpBlock(2 * w, w, 3, w),  # 1/2 -> 1/1, skip the input
            ]
        )
        self.dropout = nn.Dropout2d(dropout)
        self.out = nn.Conv2d(w, n_classes, 1)

    def forward(self, images: Tensor) -> Tensor:
        """(B, 3, H, W) -> logits (B, n_classes, H, W)."""
        if images.shape[-1] % STRIDE or images.shape[-2] % STRIDE:
            raise MedslipError(f"U-Net input {tuple(images.shape[-2:])}: sides must divide by 16")
        e = self.encoder
        stem = e.relu(e.bn1(e.conv1(images)))
        l1 = e.layer1(e.maxpool(stem))
        l2 = e.layer2(l1)
        x = self.bridge(e.layer3(l2))
        for block, skip in zip(self.up_blocks, (l2, l1, stem, images), strict=True):
            x = block(x, skip)
        return self.out(self.dropout(x))
