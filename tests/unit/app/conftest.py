"""Fixtures for the library tests: the real ``tiny`` embedder, wrapped to count embeddings."""

from __future__ import annotations

import collections
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imgsearch_gui.base.meta import ModelMeta
from imgsearch_gui.base.types import CancelToken


def write_image(path: Path, seed: int, size: int = 64, fmt: str | None = None) -> Path:
    """A small image, distinct per seed: coarse random blocks upsampled (smooth, compressible)."""
    rng = np.random.default_rng(seed)
    coarse = (rng.random((8, 8, 3)) * 255).astype(np.uint8)
    img = Image.fromarray(coarse).resize((size, size), Image.BILINEAR)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format=fmt)
    return path


class CountingEmbedder:
    """Wraps an Embedder (same contract) and counts how often each path is embedded."""

    def __init__(self, inner, meta: ModelMeta | None = None) -> None:
        self.inner = inner
        self.config = inner.config
        self.meta = meta or inner.meta
        self.calls: collections.Counter[str] = collections.Counter()
        #: (token, n): cancel ``token`` once n results were produced (a user pressing Cancel)
        self.cancel_after: tuple[CancelToken, int] | None = None

    def reset(self) -> None:
        self.calls.clear()

    def embedded(self) -> set[str]:
        return set(self.calls)

    def embed_image(self, image):
        return self.inner.embed_image(image)

    def embed_path(self, path):
        return self.inner.embed_path(path)

    def embed_views(self, image, quarters=(0,)):
        return self.inner.embed_views(image, quarters)

    def embed_files(
        self, paths: Sequence[str | os.PathLike[str]], cancel: CancelToken | None = None
    ) -> Iterator:
        for res in self.inner.embed_files(paths, cancel=cancel):
            self.calls[res.path] += 1
            if self.cancel_after and sum(self.calls.values()) >= self.cancel_after[1]:
                self.cancel_after[0].cancel()
            yield res


@pytest.fixture(scope="session")
def tiny_embedder():
    from imgsearch_gui.base.config import EmbedderConfig
    from imgsearch_gui.ml.embedder import load_embedder

    return load_embedder(EmbedderConfig(backbone="tiny", size=64, batch_size=16, workers=2))


@pytest.fixture
def embedder(tiny_embedder) -> CountingEmbedder:
    return CountingEmbedder(tiny_embedder)


@pytest.fixture
def counting_embedder() -> type[CountingEmbedder]:
    """The wrapper class (tests build one with another ModelMeta)."""
    return CountingEmbedder


@pytest.fixture(name="write_image")
def write_image_fixture():
    """``write_image(path, seed, size=64, fmt=None) -> path`` (a fixture: conftest modules
    cannot be imported by name when several test folders have one)."""
    return write_image
