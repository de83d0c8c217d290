"""The image trunk: a plain-torch ResNet-50 truncated after ``layer3`` (the official
`PreTrain_MeDSLIP/models/model_MeDSLIP.py`, ``res_features``).

Parameter and buffer names are torchvision's (``conv1``, ``bn1``, ``layer1.0.conv1``, ...,
``layer1.0.downsample.0``), so torchvision/timm ResNet-50 state dicts load by name with
:func:`load_trunk_weights`. ``layer4``, ``avgpool`` and ``fc`` do not exist here, as in the
official ``children()[:-3]``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import Tensor, nn

from medslip.errors import MedslipError
from medslip.settings import ModelSettings

log = logging.getLogger(__name__)

EXPANSION = 4
KEY_PREFIXES = ("module.", "model.", "backbone.", "encoder.", "res_features.")
"""Prefixes stripped (repeatedly) from state-dict keys: DDP/DataParallel wrappers, common
checkpoint layouts, and the trunk of this project's own models (``res_features``)."""


class Bottleneck(nn.Module):
    """torchvision's ResNet v1.5 bottleneck (stride on the 3x3 conv), expansion 4."""

    def __init__(self, inplanes: int, planes: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * EXPANSION, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * EXPANSION)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or inplanes != planes * EXPANSION:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes * EXPANSION, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * EXPANSION),
            )

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + identity)


class ResNetTrunk(nn.Module):
    """conv1 .. layer3 of a ResNet with Bottleneck blocks.

    ``layers`` = blocks of layer1..3 ((3, 4, 6) = ResNet-50), ``width`` = stem channels
    (64 = ResNet-50). (B, 3, H, W) -> (B, 16 * width, H / 16, W / 16). Random init as
    torchvision: Kaiming-normal (fan-out) convolutions, BatchNorm weight 1 and bias 0.
    """

    def __init__(self, layers: Sequence[int], width: int) -> None:
        super().__init__()
        if len(layers) != 3:
            raise MedslipError(f"model.trunk_layers: expected 3 block counts, got {list(layers)}")
        self.conv1 = nn.Conv2d(3, width, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        inplanes = width
        stages = []
        for index, (blocks, stride) in enumerate(zip(layers, (1, 2, 2), strict=True)):
            planes = width * 2**index
            stage = [Bottleneck(inplanes, planes, stride)]
            stage += [Bottleneck(planes * EXPANSION, planes, 1) for _ in range(blocks - 1)]
            stages.append(nn.Sequential(*stage))
            inplanes = planes * EXPANSION
        self.layer1, self.layer2, self.layer3 = stages
        self.out_channels = inplanes
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, images: Tensor) -> Tensor:
        """(B, 3, H, W) -> feature map (B, out_channels, H / 16, W / 16), channels-last.

        The images are made channels-last (NHWC), the native layout of oneDNN and cuDNN
        convolutions, so every activation after them is too; in NCHW each convolution and batch
        norm copies between layouts, which FLOPs do not count (`medslip bench train`). The
        weights stay NCHW (a plain state dict); the values are the same, only the strides."""
        images = images.contiguous(memory_format=torch.channels_last)
        x = self.maxpool(self.relu(self.bn1(self.conv1(images))))
        return self.layer3(self.layer2(self.layer1(x)))


@dataclass(frozen=True)
class TrunkLoadReport:
    """Outcome of :func:`load_trunk_weights`. Key names are the file's (prefixes kept)."""

    path: Path
    loaded: tuple[str, ...]
    missing: tuple[str, ...]
    """Trunk keys that received nothing (they keep their random init)."""
    unexpected: tuple[str, ...]
    """File keys not loaded: no trunk key of that name, or a shape mismatch."""
    mismatched: tuple[str, ...]
    """The subset of ``unexpected`` whose name matched but whose shape did not."""

    def summary(self, limit: int = 8) -> str:
        def names(keys: tuple[str, ...]) -> str:
            more = f", ... (+{len(keys) - limit} more)" if len(keys) > limit else ""
            return f" ({', '.join(keys[:limit])}{more})" if keys else ""

        return (
            f"{self.path}: loaded {len(self.loaded)} trunk tensors; "
            f"missing {len(self.missing)}{names(self.missing)}; "
            f"unexpected {len(self.unexpected)}{names(self.unexpected)}; "
            f"shape mismatch {len(self.mismatched)}{names(self.mismatched)}"
        )


def _read_state_dict(path: Path) -> dict[str, Tensor]:
    """The tensors of a .safetensors file or of a torch file (``weights_only=True``).

    A torch checkpoint that wraps its weights under ``state_dict`` or ``model`` is unwrapped.
    """
    if not path.is_file():
        raise MedslipError(f"model.trunk_init: {path} does not exist")
    try:
        if path.suffix == ".safetensors":
            state = load_file(path, device="cpu")
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any reader failure is a bad input file
        raise MedslipError(f"{path}: cannot read a state dict ({exc})") from exc
    for wrapper in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict):
        raise MedslipError(f"{path}: not a state dict (found {type(state).__name__})")
    return {k: v for k, v in state.items() if isinstance(k, str) and isinstance(v, Tensor)}


def _strip_prefixes(key: str) -> str:
    while True:
        prefix = next((p for p in KEY_PREFIXES if key.startswith(p)), None)
        if prefix is None:
            return key
        key = key[len(prefix) :]


def load_trunk_weights(trunk: ResNetTrunk, path: str | Path) -> TrunkLoadReport:
    """Load a torchvision/timm-format ResNet-50 state dict into ``trunk`` by name.

    Keys lose any :data:`KEY_PREFIXES`; tensors whose name and shape match are copied, the rest
    is reported (and logged). Raises :class:`MedslipError` naming the file if no trunk
    parameter loads (matching BatchNorm counters alone do not count).
    """
    path = Path(path)
    state = _read_state_dict(path)
    own = trunk.state_dict()
    matched: dict[str, Tensor] = {}
    loaded, unexpected, mismatched = [], [], []
    for key, tensor in state.items():
        name = _strip_prefixes(key)
        if name in own and own[name].shape == tensor.shape:
            matched[name] = tensor
            loaded.append(key)
        else:
            unexpected.append(key)
            if name in own:
                mismatched.append(key)
    if not any(name in matched for name, _ in trunk.named_parameters()):
        hint = (
            f"{len(mismatched)} names match with other shapes, e.g. {mismatched[0]}: is "
            "model.trunk_layers/trunk_width that of the file?"
            if mismatched
            else f"expected torchvision names such as 'layer1.0.conv1.weight', found e.g. "
            f"{sorted(state)[:3]}"
        )
        raise MedslipError(f"{path}: no key matches the ResNet trunk ({hint})")
    trunk.load_state_dict(matched, strict=False)
    report = TrunkLoadReport(
        path=path,
        loaded=tuple(loaded),
        missing=tuple(k for k in own if k not in matched),
        unexpected=tuple(unexpected),
        mismatched=tuple(mismatched),
    )
    log.info("%s", report.summary())
    return report


def build_trunk(settings: ModelSettings) -> ResNetTrunk:
    """The trunk of ``settings``: random init, or weights from the file ``trunk_init``."""
    trunk = ResNetTrunk(settings.trunk_layers, settings.trunk_width)
    if settings.trunk_init != "random":
        load_trunk_weights(trunk, settings.trunk_init)
    return trunk
