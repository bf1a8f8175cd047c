"""Training mode as fine-tuning means it: dropout on, BatchNorm statistics frozen (as cirtorch
does: small class-balanced batches would otherwise overwrite the ImageNet statistics)."""

from __future__ import annotations

from torch import nn


def freeze_batchnorm(module: nn.Module) -> int:
    """Put every BatchNorm layer in eval mode (running statistics frozen); returns how many."""
    n = 0
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()
            n += 1
    return n


def train_mode(net: nn.Module) -> None:
    net.train()
    freeze_batchnorm(net)
