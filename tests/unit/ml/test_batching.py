"""Shape-batched embedding: the one path of indexing, search, eval and fine-tuning's val mAP."""

from __future__ import annotations

import numpy as np
import torch

from imgsearch_gui.base.types import CancelToken
from imgsearch_gui.ml.batching import embed_by_shape, shape_batches


def test_shape_batches_group_by_first_appearance_and_cut_at_batch_size():
    shapes = [(3, 4, 5), (3, 5, 4), (3, 4, 5), (3, 4, 5), (3, 5, 4), (3, 4, 5)]
    assert shape_batches(shapes, 3) == [[0, 2, 3], [5], [1, 4]]
    assert shape_batches(shapes, 1) == [[0], [2], [3], [5], [1], [4]]
    assert shape_batches([], 4) == []


def _images() -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    sizes = [(6, 4), (4, 6), (6, 4), (6, 4), (4, 6), (5, 5), (6, 4)]
    return [torch.randint(0, 256, (3, h, w), generator=gen, dtype=torch.uint8) for h, w in sizes]


def _mean_colour(batch: torch.Tensor) -> np.ndarray:
    assert len({tuple(t.shape) for t in batch}) == 1  # one shape a batch
    return batch.float().mean(dim=(2, 3)).numpy()


def test_rows_follow_the_images_whatever_the_batches():
    images = _images()
    calls: list[int] = []

    def embed(batch: torch.Tensor) -> np.ndarray:
        calls.append(len(batch))
        return _mean_colour(batch)

    out = embed_by_shape(images, embed, batch_size=2)
    expected = np.stack([_mean_colour(t[None])[0] for t in images])
    assert out.dtype == np.float32 and out.shape == (7, 3)
    np.testing.assert_array_equal(out, expected)
    assert calls == [2, 2, 2, 1]  # (6, 4) x4, (4, 6) x2, (5, 5) x1


def test_cancel_is_checked_before_every_batch():
    token = CancelToken()
    seen = []

    def embed(batch: torch.Tensor) -> np.ndarray:
        seen.append(len(batch))
        token.cancel()
        return _mean_colour(batch)

    assert embed_by_shape(_images(), embed, batch_size=2, cancel=token) is None
    assert seen == [2]


def test_no_images():
    out = embed_by_shape([], _mean_colour, batch_size=4)
    assert out is not None and out.shape == (0, 0)
