"""The descriptor network: uint8 images -> L2-normalised descriptors, for inference and training.

The one implementation of "normalise, trunk, pool + L2" that the Embedder (indexing, search,
evaluation) and fine-tuning both run. ``forward`` is one scale, differentiable (training, and
fine-tuning's val mAP); ``describe`` is what the Embedder stores: the unit descriptors of every
scale summed and L2-normalised again (also with one scale, as the Embedder always has).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from imgsearch_gui.ml import functional as LF
from imgsearch_gui.ml.backbones import DeferredBackbone, LoadedBackbone

#: The shortest side every trunk is fed, at every scale: VGG16's four poolings need 16 px (the
#: others run on 1 px); images below it are padded (:func:`~.functional.pad_to_min_side`), so a
#: photo of a usual shape is fed exactly as before (with multi-scale: a side under 32 px).
MIN_SIDE = 16


class RetrievalNet(nn.Module):
    """A backbone's trunk and a pooling module (whose output is L2-normalised)."""

    def __init__(self, backbone: LoadedBackbone | DeferredBackbone, pooling: nn.Module,
                 scales: Sequence[float] = (1.0,)) -> None:
        super().__init__()
        self.backbone = backbone
        self.pool = pooling
        self.scales = tuple(scales)
        #: images are padded to this side, so that the smallest scale still has MIN_SIDE
        self.min_side = math.ceil(MIN_SIDE / min(self.scales))
        spec = backbone.spec
        self.register_buffer("mean", torch.tensor(spec.mean).view(1, 3, 1, 1) * 255, persistent=False)
        self.register_buffer("std", torch.tensor(spec.std).view(1, 3, 1, 1) * 255, persistent=False)

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 (or float 0..255) images -> the backbone's input, channels_last; a side under
        ``min_side`` is padded with the mean colour. In place on one fresh copy: measured on a
        batch of 16 at 384x288, 37 ms out of place (fresh buffers, page faults), 4 ms so."""
        x = x.to(torch.float32, memory_format=torch.channels_last, copy=True)
        x = LF.pad_to_min_side(x.sub_(self.mean).div_(self.std), self.min_side)
        return x.contiguous(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor, train_trunk: bool = True) -> torch.Tensor:
        """One scale. ``train_trunk=False``: no graph through the trunk (only the pooling learns)."""
        x = self.normalise(x)
        if train_trunk:
            return self.pool(self.backbone(x).float())
        with torch.no_grad():
            fmap = self.backbone(x)
        return self.pool(fmap.float())

    def describe(self, x: torch.Tensor, trunk: Callable[[torch.Tensor], torch.Tensor] | None = None
                 ) -> torch.Tensor:
        """Every scale of ``self.scales`` (multi-scale extraction), summed, L2-normalised.
        ``trunk`` runs the backbone (another runtime, ``ml/runtime.py``); default: torch."""
        return self.describe_pools(x, (self.pool,), trunk)[0]

    def describe_pools(self, x: torch.Tensor, pools: Sequence[nn.Module],
                       trunk: Callable[[torch.Tensor], torch.Tensor] | None = None
                       ) -> list[torch.Tensor]:
        """:meth:`describe` with each of ``pools`` on the same feature maps (one trunk pass per
        scale): what ``bench/`` uses to compare poolings on identical features."""
        x = self.normalise(x)
        trunk = trunk or self.backbone
        totals: list[torch.Tensor | None] = [None] * len(pools)
        for scale in self.scales:
            fmap = trunk(LF.interpolate_scale(x, scale)).float()
            for i, pool in enumerate(pools):
                desc = pool(fmap)
                totals[i] = desc if totals[i] is None else totals[i] + desc
        return [LF.l2n(t) for t in totals if t is not None]

    def probe_dim(self, trunk: Callable[[torch.Tensor], torch.Tensor] | None = None) -> int:
        """The descriptor's length, from one small forward pass (through ``trunk`` if given)."""
        with torch.inference_mode():
            zeros = torch.zeros(1, 3, 64, 64, dtype=torch.uint8, device=self.mean.device)
            return int(self.describe(zeros, trunk).shape[1])

    def pooling_params(self) -> dict[str, float]:
        if hasattr(self.pool, "p"):
            return {"p": float(self.pool.p.detach().item())}
        return dict(getattr(self.pool, "params", {}))


def infer(fn: Callable[[torch.Tensor], torch.Tensor], batch: torch.Tensor, device: torch.device
          ) -> np.ndarray:
    """``fn`` (a RetrievalNet's ``forward`` or ``describe``) on a uint8 batch moved to ``device``,
    under inference mode, with fp16 autocast on CUDA -> (N, dim) float32 on the CPU."""
    x = batch.to(device, non_blocking=True)
    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.float16,
                                                enabled=device.type == "cuda"):
        return fn(x).float().cpu().numpy()
