"""torchvision's ResNet BasicBlock, written here (torchvision's wheel does not import against
the CPU torch of this machine): the tests' model of a shared module and in-place ops."""

from __future__ import annotations

import torch
from torch import nn


class Block(nn.Module):
    """conv-bn-relu(inplace), conv-bn, ``out += identity``, relu(inplace): one ReLU module
    called twice. ``inplace=False`` computes the same function out of place: a reference."""

    def __init__(self, c: int = 4, inplace: bool = True) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.relu = nn.ReLU(inplace=inplace)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.inplace = inplace

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.inplace:
            out += identity
        else:
            out = out + identity
        return self.relu(out)
