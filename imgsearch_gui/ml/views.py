"""Views of a photo for orientation-robust search: the photo turned by 0/90/180/270 degrees.

A photo stored sideways (a phone's, a scanner's, a lost EXIF orientation) matches its upright
copy only when the query is turned the same way, so a search embeds the query's turned views and
keeps each photo's best score (``app/search.py``). The turn happens on the decoded uint8 tensor,
so the query, ``eval`` and the benchmarks turn photos the same way.
"""

from __future__ import annotations

import torch

from imgsearch_gui.base.registry import QUARTER_TURNS

__all__ = ["QUARTER_TURNS", "mirror", "turn"]


def turn(image: torch.Tensor, quarters: int) -> torch.Tensor:
    """``image`` (C, H, W) turned ``quarters`` x 90 degrees counter-clockwise (a copy)."""
    if quarters % 4 == 0:
        return image
    return torch.rot90(image, k=quarters % 4, dims=(-2, -1)).contiguous()


def mirror(image: torch.Tensor) -> torch.Tensor:
    """``image`` (C, H, W) flipped left to right."""
    return torch.flip(image, dims=(-1,)).contiguous()
