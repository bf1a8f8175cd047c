"""The real path: bundled Lite0 weights find edited copies of real photos at rank 1."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageEnhance

from imgsearch_gui.base.config import EmbedderConfig
from imgsearch_gui.ml import functional as LF
from imgsearch_gui.ml.backbones import load_backbone
from imgsearch_gui.ml.embedder import Embedder

pytestmark = pytest.mark.slow


def _edits(image: Image.Image) -> list[Image.Image]:
    w, h = image.size
    crop = image.crop((int(0.1 * w), int(0.12 * h), int(0.9 * w), int(0.85 * h)))
    rotated = image.rotate(12, resample=Image.Resampling.BILINEAR, expand=False)
    recoloured = ImageEnhance.Color(ImageEnhance.Brightness(image).enhance(1.3)).enhance(0.4)
    flipped_small = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT).resize((w // 3, h // 3))
    return [crop, rotated, recoloured, flipped_small]


@pytest.fixture(scope="module")
def lite0():
    return load_backbone("efficientnet_lite0")


@pytest.mark.parametrize("pooling", sorted(LF.POOLINGS))
def test_edited_copies_find_their_original_first(pooling, lite0, real_photos):
    embedder = Embedder(EmbedderConfig(pooling=pooling, size=256), lite0)
    names = list(real_photos)
    database = np.stack([embedder.embed_image(real_photos[n]) for n in names])
    for truth, name in enumerate(names):
        for k, edited in enumerate(_edits(real_photos[name])):
            scores = database @ embedder.embed_image(edited)
            assert int(np.argmax(scores)) == truth, (pooling, name, k, scores.round(3).tolist())
