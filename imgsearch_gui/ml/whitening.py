"""Whitening of descriptors: one :class:`Whitening` (centre, project, L2-normalise again) learned
two ways, and the one place that applies either.

- PCA-whitening (``pcaw``, Jégou & Chum 2012; Tolias et al.), learned without labels on the user's
  own library: rotate onto the principal axes, divide each axis by the square root of its variance
  (with a floor so that near-empty axes are not blown up), optionally keep only the top ``dim``.
- Supervised whitening (``lw``, Radenović et al.), learned by fine-tuning (``finetune --whiten``)
  on the labelled train split and stored in the checkpoint (``CHECKPOINT.pt#whitening``).

Its id travels in ModelMeta.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from imgsearch_gui.base.atomic import atomic_write
from imgsearch_gui.base.errors import CheckpointError

#: ``CHECKPOINT.pt#whitening``: the supervised whitening stored in a fine-tuned checkpoint
CHECKPOINT_REF = "#whitening"


def checkpoint_ref(checkpoint: str | os.PathLike[str]) -> str:
    return f"{checkpoint}{CHECKPOINT_REF}"


@dataclass(frozen=True, eq=False)
class Whitening:
    """``apply``: centre on ``mean``, project, L2-normalise; the same for every kind."""

    mean: np.ndarray  # (d_in,)
    projection: np.ndarray  # (d_out, d_in)
    kind: str = "pcaw"  # "pcaw": PCA on a library; "lw": supervised, learned in fine-tuning

    @property
    def id(self) -> str:
        h = hashlib.sha256()
        h.update(np.ascontiguousarray(self.mean, dtype=np.float32).tobytes())
        h.update(np.ascontiguousarray(self.projection, dtype=np.float32).tobytes())
        return f"{self.kind}{self.dim_out}-{h.hexdigest()[:12]}"

    @property
    def dim_in(self) -> int:
        return int(self.projection.shape[1])

    @property
    def dim_out(self) -> int:
        return int(self.projection.shape[0])

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Whiten rows of ``x`` (n, d_in) -> (n, d_out) unit vectors."""
        x = np.atleast_2d(np.asarray(x, dtype=np.float32))
        y = (x - self.mean) @ self.projection.T
        return (y / (np.linalg.norm(y, axis=1, keepdims=True) + 1e-12)).astype(np.float32)

    def state(self) -> dict[str, np.ndarray]:
        """``{"mean", "projection"}``: what a checkpoint stores (as tensors) under ``whitening``."""
        return {"mean": self.mean, "projection": self.projection}

    @classmethod
    def from_state(cls, state: Mapping[str, Any], kind: str) -> Whitening:
        """From :meth:`state` or a checkpoint's ``whitening`` dict (numpy arrays or tensors)."""
        return cls(mean=np.asarray(state["mean"], dtype=np.float32),
                   projection=np.asarray(state["projection"], dtype=np.float32), kind=kind)

    def save(self, path: str | os.PathLike[str]) -> Path:
        path = Path(path)
        return atomic_write(path, lambda fh: np.savez(fh, mean=self.mean, projection=self.projection))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Whitening:
        """From a file :meth:`save` wrote, or from a checkpoint: ``CHECKPOINT.pt#whitening``."""
        ref = str(path)
        if ref.endswith(CHECKPOINT_REF):
            from imgsearch_gui.ml.checkpoint import load_checkpoint

            checkpoint = ref[: -len(CHECKPOINT_REF)]
            stored = load_checkpoint(checkpoint).whitening
            if not stored:
                raise CheckpointError(f"{checkpoint} holds no whitening")
            return cls.from_state(stored, kind="lw")
        with np.load(path) as data:
            return cls.from_state(data, kind="pcaw")


def learn_pca_whitening(x: np.ndarray, dim: int | None = None, floor: float = 10.0,
                        power: float = 1.0) -> Whitening:
    """Learn from descriptors ``x`` (n, d); ``floor`` times the mean eigenvalue is added to
    every eigenvalue (shrinkage), so that weak, noisy axes are not blown up, and each axis is
    divided by its (floored) variance to the power ``power / 2`` (1: full whitening; below 1 a
    partial one, which keeps more of the strong axes' say). Measured
    (bench/quality.py data, R-MAC Lite0): floor 0.1 / 3 / 10 gave flowers17 mAP 18.4 / 40.4 /
    51.3 (58.0 unwhitened) and UKBench N-S 3.81 / 3.96 / 3.96 (3.95): whitening helps instance
    search a little and hurts class search, so it is an option, not a default."""
    x = np.asarray(x, dtype=np.float64)
    n, d = x.shape
    if n < 2:
        raise ValueError("whitening needs at least 2 descriptors")
    mean = x.mean(axis=0)
    centred = x - mean
    cov = centred.T @ centred / max(1, n - 1)
    eigval, eigvec = np.linalg.eigh(cov)
    order = np.argsort(eigval)[::-1]
    eigval, eigvec = np.clip(eigval[order], 0, None), eigvec[:, order]
    keep = min(dim or d, d, n - 1 if n <= d else d)
    eigval, eigvec = eigval[:keep], eigvec[:, :keep]
    scale = (eigval + floor * eigval.mean() + 1e-12) ** (-power / 2)
    projection = (eigvec * scale).T
    return Whitening(mean=mean.astype(np.float32), projection=projection.astype(np.float32))


def learn_supervised_whitening(x: np.ndarray, labels: Sequence[int], reg: float = 0.1) -> Whitening:
    """Lw whitening (Radenovic et al.): whiten the intra-class (matching-pair) covariance,
    then rotate onto the principal axes of the whitened data. ``reg`` shrinks towards the
    mean eigenvalue (small training sets have rank-deficient covariances)."""
    x = np.asarray(x, dtype=np.float64)
    labels_arr = np.asarray(labels)
    mean = x.mean(axis=0)
    centred_by_class = np.zeros_like(x)
    for c in np.unique(labels_arr):
        rows = labels_arr == c
        centred_by_class[rows] = x[rows] - x[rows].mean(axis=0)
    cs = centred_by_class.T @ centred_by_class / max(1, len(x) - 1)
    w, v = np.linalg.eigh(cs)
    w = np.clip(w, 0, None) + reg * max(float(w.mean()), 1e-12)
    p1 = (v / np.sqrt(w)) @ v.T  # C_S^(-1/2)
    xw = (x - mean) @ p1.T
    cd = xw.T @ xw / max(1, len(x) - 1)
    w2, v2 = np.linalg.eigh(cd)
    order = np.argsort(w2)[::-1]
    projection = v2[:, order].T @ p1
    return Whitening(mean=mean.astype(np.float32), projection=projection.astype(np.float32),
                     kind="lw")
