"""Pure pooling functions: (N, C, H, W) feature map -> (N, C) descriptor.

Each function returns an *unnormalised* descriptor except where the method itself normalises
parts (R-MAC regions); ``pool`` applies the final L2 normalisation, so every descriptor that
leaves this module through ``pool`` is a unit vector. Follows cirtorch's ``layers/functional.py``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache

import torch
import torch.nn.functional as F

from imgsearch_gui.base import registry

Region = tuple[int, int, int, int]  # (top, left, height, width) in feature-map cells


def l2n(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """L2-normalise along dim 1."""
    return x / (torch.linalg.vector_norm(x, ord=2, dim=1, keepdim=True) + eps)


def mac(x: torch.Tensor) -> torch.Tensor:
    """Maximum activation of convolutions (Tolias et al.): max over all positions."""
    return x.amax(dim=(-2, -1))


def sum_pool(x: torch.Tensor) -> torch.Tensor:
    """Sum over all positions (after L2 normalisation it points the same way as SPoC)."""
    return x.sum(dim=(-2, -1))


def spoc(x: torch.Tensor) -> torch.Tensor:
    """Sum-pooled convolutional features (Babenko & Lempitsky), as an average."""
    return x.mean(dim=(-2, -1))


def gem(x: torch.Tensor, p: float | torch.Tensor = 3.0, eps: float = 1e-6) -> torch.Tensor:
    """Generalised mean (Radenovic et al.): p=1 is SPoC, p -> inf approaches MAC."""
    if not isinstance(p, torch.Tensor):
        p = torch.tensor(float(p), device=x.device, dtype=x.dtype)
    return x.clamp(min=eps).pow(p).mean(dim=(-2, -1)).pow(1.0 / p)


@lru_cache(maxsize=256)
def rmac_regions(height: int, width: int, levels: int = 3, overlap: float = 0.4) -> tuple[Region, ...]:
    """Square regions of R-MAC (Tolias et al. 2016) for an ``height`` x ``width`` map.

    At level l the region side is ``floor(2 * min(H, W) / (l + 1))``; regions are spread evenly so
    that consecutive ones overlap by about ``overlap``; the longer side gets extra regions chosen so
    the overlap is closest to ``overlap``. Identical to cirtorch's ``rmac``.
    """
    w = min(height, width)
    long_side = max(height, width)
    extra = 0
    if height != width:
        steps = range(2, 8)  # possible number of regions along the long side
        costs = [abs((w * w - w * ((long_side - w) / (s - 1))) / (w * w) - overlap) for s in steps]
        extra = costs.index(min(costs)) + 1
    extra_w = extra if height < width else 0
    extra_h = extra if height > width else 0

    regions: list[Region] = []
    for level in range(1, levels + 1):
        side = math.floor(2 * w / (level + 1))
        if side == 0:
            continue
        half = math.floor(side / 2 - 1)

        def centres(n_extra: int, extent: int, level: int = level, side: int = side,
                    half: int = half) -> list[int]:
            count = level + n_extra
            step = 0.0 if count == 1 else (extent - side) / (count - 1)
            return [int(math.floor(half + i * step) - half) for i in range(count)]

        for top in centres(extra_h, height):
            for left in centres(extra_w, width):
                regions.append((top, left, side, side))
    return tuple(regions)


#: feature maps of at most this many cells read R-MAC's regions off max poolings (faster there,
#: slower on big maps, where the pooling computes many windows no region uses): measured on 2
#: cores, Lite0 16x1280x9x12 42 -> 18 ms, VGG16 1x512x64x48 25 -> 85 ms
RMAC_POOLED_CELLS = 256


def rmac(x: torch.Tensor, levels: int = 3, eps: float = 1e-6) -> torch.Tensor:
    """Regional MAC: global MAC plus the L2-normalised MAC of every R-MAC region, summed.

    On a small map the regions of one side are read off one stride-1 max pooling of that size
    on the channels_last map (a region's MAC is the window's max at its corner: oneDNN's pooling
    instead of a reduction per region); on a big one, region by region. The maxima are the same
    numbers either way."""
    total = l2n(mac(x), eps)
    regions = rmac_regions(x.shape[-2], x.shape[-1], levels)
    if x.shape[-2] * x.shape[-1] > RMAC_POOLED_CELLS:
        for top, left, h, w in regions:
            total = total + l2n(mac(x[..., top : top + h, left : left + w]), eps)
        return total
    corners: dict[int, list[tuple[int, int]]] = {}
    for top, left, side, _ in regions:
        corners.setdefault(side, []).append((top, left))
    x = x.contiguous(memory_format=torch.channels_last)
    for side, where in corners.items():
        windows = F.max_pool2d(x, kernel_size=side, stride=1)  # (N, C, H - side + 1, W - side + 1)
        tops = torch.tensor([t for t, _ in where], device=x.device)
        lefts = torch.tensor([l for _, l in where], device=x.device)
        total = total + l2n(windows[:, :, tops, lefts], eps).sum(dim=-1)
    return total


def crow(x: torch.Tensor, a: float = 2.0, b: float = 2.0, eps: float = 1e-6) -> torch.Tensor:
    """Cross-dimensional weighting (Kalantidis et al. 2016).

    Spatial weight: per-position sum over channels, power-normalised (a, b). Channel weight:
    IDF-like log(sum_k Q_k / Q_k) of each channel's fraction Q_k of non-zero positions.
    """
    x = x.clamp(min=0)
    s = x.sum(dim=1, keepdim=True)  # (N, 1, H, W)
    norm = s.pow(a).sum(dim=(-2, -1), keepdim=True).pow(1.0 / a)
    spatial = (s / (norm + eps)).pow(1.0 / b)
    weighted = (x * spatial).sum(dim=(-2, -1))  # (N, C)
    q = (x > 0).float().mean(dim=(-2, -1))  # (N, C)
    channel = torch.log(q.sum(dim=1, keepdim=True) / (q + eps) + eps)
    channel = torch.where(q > 0, channel, torch.zeros_like(channel))
    return weighted * channel


POOLINGS: dict[str, Callable[..., torch.Tensor]] = {
    "mac": mac,
    "sum": sum_pool,
    "spoc": spoc,
    "gem": gem,
    "rmac": rmac,
    "crow": crow,
}

#: Default parameters of each pooling (recorded in ModelMeta.pooling_params).
DEFAULT_PARAMS: dict[str, dict[str, float]] = {
    name: dict(info.params) for name, info in registry.POOLINGS.items() if info.params
}


def pool(x: torch.Tensor, method: str, **params: float) -> torch.Tensor:
    """Pool with ``method`` and L2-normalise: the one entry point the embedder uses."""
    registry.check_pooling(method)  # UnknownChoiceError naming the choices
    fn = POOLINGS[method]
    if method == "rmac" and "levels" in params:
        params = {**params, "levels": int(params["levels"])}
    return l2n(fn(x.float(), **params))


def pad_to_min_side(x: torch.Tensor, min_side: int) -> torch.Tensor:
    """Pad an image batch with zeros (after normalisation: the mean colour) at the bottom and the
    right, so that both sides are at least ``min_side``; a batch that is large enough is returned
    as it is. A 1-px-thin photo then still fits every trunk and every scale."""
    h, w = x.shape[-2:]
    if h >= min_side and w >= min_side:
        return x
    return F.pad(x, (0, max(0, min_side - w), 0, max(0, min_side - h)))


def interpolate_scale(x: torch.Tensor, scale: float) -> torch.Tensor:
    """Resize an image batch by ``scale`` (multi-scale extraction)."""
    if scale == 1.0:
        return x
    return F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False, antialias=True)
