"""Generated test photos (importable from any test: pytest puts tests/ on sys.path)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def make_photo(path: Path, seed: int, size: tuple[int, int] = (96, 72)) -> Path:
    """A small deterministic image with structure (blobs + stripes), distinct per seed."""
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.zeros((h, w, 3), dtype=np.float32)
    for _ in range(4):
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(5, 25)
        colour = rng.uniform(0, 255, 3)
        mask = ((xx - cx) ** 2 + (yy - cy) ** 2) < r * r
        img[mask] = colour
    img += 40 * np.sin(xx / rng.uniform(2, 9))[..., None]
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(path)
    return path


def stripes(path: Path, horizontal: bool, seed: int, noise: float = 0.0) -> Path:
    """A two-colour sine grating, horizontal or vertical: two visibly different classes."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:56, 0:72].astype(np.float32)
    v = np.sin((yy if horizontal else xx) * 2 * np.pi / rng.uniform(10, 18) + rng.uniform(0, 6))
    a, b = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    img = a + (b - a) * ((v[..., None] + 1) / 2)
    if noise:
        img = img + rng.normal(0, noise, img.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(path)
    return path


def labelled_folder(root: Path, per_class: int, noise: float = 0.0) -> Path:
    """``root/horizontal`` and ``root/vertical`` gratings, plus one unreadable file."""
    for i in range(per_class):
        stripes(root / "horizontal" / f"h{i}.png", True, i, noise)
        stripes(root / "vertical" / f"v{i}.png", False, 100 + i, noise)
    (root / "vertical" / "broken.jpg").write_bytes(b"not an image")
    return root
