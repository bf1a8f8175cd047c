"""The real path, end to end: the shipped defaults (bundled Lite0 weights, DBA, rotations) find
sideways and edited copies of real photos first, as the same photo."""

from __future__ import annotations

import pytest
from PIL import Image, ImageOps

from imgsearch_gui.app.library import ImageLibrary
from imgsearch_gui.app.search import QuerySettings
from imgsearch_gui.base.bands import Band
from imgsearch_gui.base.config import EmbedderConfig
from imgsearch_gui.ml.embedder import load_embedder

pytestmark = pytest.mark.slow

TURNS = (Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_180, Image.Transpose.ROTATE_270)


def test_turned_and_edited_copies_are_found_first_and_banded(real_photos, tmp_path):
    config = EmbedderConfig()
    for name, image in real_photos.items():
        (tmp_path / "lib").mkdir(exist_ok=True)
        image.save(tmp_path / "lib" / f"{name}.jpg", quality=92)
    embedder = load_embedder(config)
    close = (Band.SAME_PHOTO, Band.VERY_SIMILAR)
    with ImageLibrary.for_config(tmp_path / "data", embedder, config) as lib:
        list(lib.index_library(tmp_path / "lib"))
        for name, image in real_photos.items():
            itself = lib.search(tmp_path / "lib" / f"{name}.jpg", k=1)[0]
            assert itself.path.endswith(f"{name}.jpg") and itself.score > 0.9999
            assert itself.band == Band.SAME_PHOTO  # with DBA and QE on, still 1
            for turn in TURNS:  # the PNG turned: a re-saved, sideways copy
                hits = lib.search(image.transpose(turn), k=3)
                assert hits[0].path.endswith(f"{name}.jpg"), (name, turn, hits)
                assert hits[0].band in close and hits[0].score > 0.99, (name, turn, hits[0])
            grey = lib.search(ImageOps.grayscale(image.transpose(TURNS[0])).convert("RGB"), k=1)
            assert grey[0].path.endswith(f"{name}.jpg"), (name, grey)
        # without the turned views a sideways copy scores as a photo merely like it (all but
        # the textures, a star field and a brick wall, which look much the same sideways)
        gains = {}
        for name, image in real_photos.items():
            sideways = image.transpose(TURNS[0])
            without = {h.path: h.score for h in lib.search(
                sideways, k=8, settings=QuerySettings(rotations=False))}
            found = lib.search(sideways, k=1)[0]
            gains[name] = found.score - without[found.path]
        assert sum(g > 0.02 for g in gains.values()) >= len(gains) - 2, gains
