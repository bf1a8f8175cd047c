"""Turned views of a query: the same pixels as the photo turned, embedded in shape batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from imgsearch_gui.base.config import EmbedderConfig
from imgsearch_gui.ml.embedder import load_embedder
from imgsearch_gui.ml.views import QUARTER_TURNS, mirror, turn


def test_turn_matches_pil_rotation_and_mirror_flips():
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, (5, 7, 3), dtype=np.uint8)
    tensor = torch.from_numpy(pixels).permute(2, 0, 1)
    for quarters, pil in ((1, Image.Transpose.ROTATE_90), (2, Image.Transpose.ROTATE_180),
                          (3, Image.Transpose.ROTATE_270)):
        want = np.asarray(Image.fromarray(pixels).transpose(pil))
        assert np.array_equal(turn(tensor, quarters).permute(1, 2, 0).numpy(), want)
    assert turn(tensor, 0) is tensor and torch.equal(turn(tensor, 4), tensor)
    assert np.array_equal(mirror(tensor).permute(1, 2, 0).numpy(), pixels[:, ::-1])


def test_embed_views_equals_embedding_each_turned_photo():
    embedder = load_embedder(EmbedderConfig(backbone="tiny", size=48))
    rng = np.random.default_rng(1)
    image = Image.fromarray(rng.integers(0, 255, (30, 48, 3), dtype=np.uint8))
    views = embedder.embed_views(image, QUARTER_TURNS)
    assert views.shape == (4, embedder.meta.dim)
    for quarters, pil in ((0, None), (1, Image.Transpose.ROTATE_90),
                          (2, Image.Transpose.ROTATE_180), (3, Image.Transpose.ROTATE_270)):
        alone = embedder.embed_image(image if pil is None else image.transpose(pil))
        assert np.allclose(views[quarters], alone, atol=1e-5)
    assert not np.allclose(views[0], views[1], atol=1e-3)  # a turn is another view
    assert np.allclose(np.linalg.norm(views, axis=1), 1, atol=1e-5)


@pytest.mark.parametrize("power", [0.5, 1.0])
def test_partial_whitening_power(power):
    from imgsearch_gui.ml.whitening import learn_pca_whitening

    rng = np.random.default_rng(2)
    x = rng.normal(size=(200, 6)) * np.array([10, 5, 2, 1, 0.5, 0.2])
    w = learn_pca_whitening(x, floor=0.0, power=power)
    y = (x - w.mean) @ w.projection.T
    variances = np.sort(y.var(axis=0))[::-1]
    if power == 1.0:  # full whitening: every axis at unit variance
        assert np.allclose(variances, 1.0, rtol=0.05)
    else:  # half-way: the spread of the variances is the square root of the original's
        assert variances[0] / variances[-1] == pytest.approx(50.0, rel=0.1)
