"""A photo's thumbprint: its 16x16 grey thumbnail, stored with its vector in the catalog.

The duplicate finder (app/duplicates) compares all eight orientations of every photo (turned by
quarter turns, mirrored) without decoding any photo again: turning a thumbnail is turning the
photo, whereas the CNN descriptor of a turned photo must be computed anew. The whole frame is
squeezed into the square, so a turned photo's thumbprint is the turned thumbprint.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

SIDE = 16
SIZE = SIDE * SIDE  # bytes


def thumbprint(image: Image.Image) -> bytes:
    """The 16x16 grey thumbnail of ``image`` (any mode), row by row: 256 bytes."""
    grey = image.convert("L") if image.mode != "L" else image
    small = grey.resize((SIDE, SIDE), Image.Resampling.BOX)
    return small.tobytes()


def thumbprint_of_array(pixels: np.ndarray) -> bytes:
    """:func:`thumbprint` of an RGB uint8 array, (H, W, 3) or (3, H, W) as the embedder holds it."""
    arr = np.asarray(pixels, dtype=np.uint8)
    if arr.ndim == 3 and arr.shape[0] == 3 and arr.shape[-1] != 3:
        arr = arr.transpose(1, 2, 0)
    return thumbprint(Image.fromarray(np.ascontiguousarray(arr)))


def orientations(thumb: bytes) -> np.ndarray:
    """The eight orientations of a thumbprint, (8, 16, 16) uint8: quarter turns 0-3 of the photo,
    then of its mirror image."""
    grid = np.frombuffer(thumb, dtype=np.uint8).reshape(SIDE, SIDE)
    turns = [np.rot90(grid, k) for k in range(4)]
    return np.stack(turns + [np.rot90(grid[:, ::-1], k) for k in range(4)])


def features(grids: np.ndarray) -> np.ndarray:
    """Zero-mean, unit-length float32 rows of thumbprint grids (..., 16, 16): their dot product is
    the normalised cross-correlation of the two thumbnails (flat grids give zero rows)."""
    x = np.asarray(grids, dtype=np.float32).reshape(-1, SIZE)
    x = x - x.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms < 1e-6, 1.0, norms)
