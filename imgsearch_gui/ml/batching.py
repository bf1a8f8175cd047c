"""Shape-batched embedding: decoded images of equal shape share a batch (no padding, no crops).

Images keep their aspect ratio (longest side = the model's size), so a library has a few
shapes, not one. The one implementation behind indexing (``Embedder.embed_files``), search and
evaluation (through the Embedder) and fine-tuning's validation embedding.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np
import torch

from imgsearch_gui.base.types import CancelToken


def shape_batches(shapes: Iterable[Sequence[int]], batch_size: int) -> list[list[int]]:
    """Positions grouped by shape (shapes in order of first appearance, positions in order),
    each group cut into batches of at most ``batch_size``."""
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for i, shape in enumerate(shapes):
        by_shape.setdefault(tuple(shape), []).append(i)
    return [idx[start : start + batch_size]
            for idx in by_shape.values() for start in range(0, len(idx), batch_size)]


def embed_by_shape(images: Sequence[torch.Tensor], embed_batch: Callable[[torch.Tensor], np.ndarray],
                   batch_size: int, cancel: CancelToken | None = None) -> np.ndarray | None:
    """(n, dim) float32 descriptors of ``images`` (CHW tensors, any sizes), row i for image i.

    ``embed_batch`` maps a stacked (N, C, H, W) batch of one shape to (N, dim). None when
    ``cancel`` is set (checked before every batch); (0, 0) for no images.
    """
    out: np.ndarray | None = None
    for part in shape_batches((t.shape for t in images), batch_size):
        if cancel is not None and cancel.cancelled:
            return None
        vectors = embed_batch(torch.stack([images[i] for i in part]))
        if out is None:
            out = np.zeros((len(images), vectors.shape[1]), dtype=np.float32)
        out[part] = vectors
    return out if out is not None else np.zeros((0, 0), dtype=np.float32)
