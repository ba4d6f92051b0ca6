"""The study's classifiers in plain PyTorch (there is no CPU build of torchvision here).

VGG16: 13 convolutions in 5 blocks and 3 fully connected layers, as in the study. A
MobileNetV2 and a ResNet-50 repeat its comparison. Every net takes N x C x S x S and ends
in 7 logits; the exported ONNX appends the softmax.
"""

from __future__ import annotations

import torch
from torch import nn

VGG16_BLOCKS = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))


class VGG16(nn.Module):
    def __init__(self, channels: int = 3, classes: int = 7, width: float = 1.0,
                 hidden: int = 4096) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        inputs = channels
        for block in VGG16_BLOCKS:
            for filters in block:
                outputs = max(8, int(filters * width))
                layers += [nn.Conv2d(inputs, outputs, 3, padding=1), nn.BatchNorm2d(outputs),
                           nn.ReLU(inplace=True)]
                inputs = outputs
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        hidden = max(16, int(hidden * width))
        self.pool = nn.AdaptiveAvgPool2d(1)  # any input size from 32 px up
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(inputs, hidden), nn.ReLU(inplace=True), nn.Dropout(0.5),
            nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Dropout(0.5),
            nn.Linear(hidden, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(x)))


class _InvertedResidual(nn.Module):
    def __init__(self, inputs: int, outputs: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = inputs * expand
        self.residual = stride == 1 and inputs == outputs
        self.block = nn.Sequential(
            nn.Conv2d(inputs, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(True),
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden), nn.ReLU6(True),
            nn.Conv2d(hidden, outputs, 1, bias=False), nn.BatchNorm2d(outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x) if self.residual else self.block(x)


class MobileNetV2(nn.Module):
    SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                (6, 160, 3, 2), (6, 320, 1, 1))

    def __init__(self, channels: int = 3, classes: int = 7, width: float = 1.0) -> None:
        super().__init__()
        first = max(8, int(32 * width))
        layers: list[nn.Module] = [nn.Conv2d(channels, first, 3, 2, 1, bias=False),
                                   nn.BatchNorm2d(first), nn.ReLU6(True)]
        inputs = first
        for expand, filters, repeats, stride in self.SETTINGS:
            outputs = max(8, int(filters * width))
            for index in range(repeats):
                layers.append(_InvertedResidual(inputs, outputs, stride if index == 0 else 1,
                                                expand))
                inputs = outputs
        last = max(16, int(1280 * width))
        layers += [nn.Conv2d(inputs, last, 1, bias=False), nn.BatchNorm2d(last), nn.ReLU6(True)]
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2),
                                  nn.Linear(last, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class _Bottleneck(nn.Module):
    def __init__(self, inputs: int, middle: int, stride: int) -> None:
        super().__init__()
        outputs = middle * 4
        self.block = nn.Sequential(
            nn.Conv2d(inputs, middle, 1, bias=False), nn.BatchNorm2d(middle), nn.ReLU(True),
            nn.Conv2d(middle, middle, 3, stride, 1, bias=False), nn.BatchNorm2d(middle),
            nn.ReLU(True), nn.Conv2d(middle, outputs, 1, bias=False), nn.BatchNorm2d(outputs))
        self.shortcut = (nn.Identity() if stride == 1 and inputs == outputs else nn.Sequential(
            nn.Conv2d(inputs, outputs, 1, stride, bias=False), nn.BatchNorm2d(outputs)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.block(x) + self.shortcut(x))


class ResNet50(nn.Module):
    STAGES = ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2))

    def __init__(self, channels: int = 3, classes: int = 7, width: float = 1.0) -> None:
        super().__init__()
        stem = max(8, int(64 * width))
        layers: list[nn.Module] = [nn.Conv2d(channels, stem, 7, 2, 3, bias=False),
                                   nn.BatchNorm2d(stem), nn.ReLU(True), nn.MaxPool2d(3, 2, 1)]
        inputs = stem
        for middle, repeats, stride in self.STAGES:
            middle = max(4, int(middle * width))
            for index in range(repeats):
                layers.append(_Bottleneck(inputs, middle, stride if index == 0 else 1))
                inputs = middle * 4
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(inputs,
                                                                                   classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


ARCHITECTURES = {"vgg16": VGG16, "mobilenet": MobileNetV2, "resnet50": ResNet50}


def build(architecture: str, channels: int, classes: int, width: float = 1.0) -> nn.Module:
    return ARCHITECTURES[architecture](channels=channels, classes=classes, width=width)


def count_layers(model: nn.Module) -> tuple[int, int]:
    """(convolutions, fully connected layers): VGG16 must be (13, 3)."""
    return (sum(isinstance(m, nn.Conv2d) for m in model.modules()),
            sum(isinstance(m, nn.Linear) for m in model.modules()))
