"""PCA-whitening of descriptors, learned without labels (Jégou & Chum 2012; Tolias et al.).

Centre, rotate onto the principal axes, divide each axis by the square root of its variance (with
a floor so that near-empty axes are not blown up), optionally keep only the top ``dim`` axes, and
L2-normalise again. Learned on the user's own library; its id travels in ModelMeta.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: ``CHECKPOINT.pt#whitening``: the supervised whitening stored in a fine-tuned checkpoint
CHECKPOINT_REF = "#whitening"


def checkpoint_ref(checkpoint: str | os.PathLike[str]) -> str:
    return f"{checkpoint}{CHECKPOINT_REF}"


@dataclass(frozen=True, eq=False)
class Whitening:
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

    def save(self, path: str | os.PathLike[str]) -> Path:
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, mean=self.mean, projection=self.projection)
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Whitening:
        """From a file :meth:`save` wrote, or from a checkpoint: ``CHECKPOINT.pt#whitening``."""
        ref = str(path)
        if ref.endswith(CHECKPOINT_REF):
            from imgsearch_gui.base.errors import CheckpointError
            from imgsearch_gui.ml.checkpoint import load_checkpoint

            checkpoint = ref[: -len(CHECKPOINT_REF)]
            stored = load_checkpoint(checkpoint).whitening
            if not stored:
                raise CheckpointError(f"{checkpoint} holds no whitening")
            return cls(mean=np.asarray(stored["mean"], dtype=np.float32),
                       projection=np.asarray(stored["projection"], dtype=np.float32), kind="lw")
        with np.load(path) as data:
            return cls(mean=data["mean"].astype(np.float32),
                       projection=data["projection"].astype(np.float32))


def learn_pca_whitening(x: np.ndarray, dim: int | None = None, floor: float = 10.0) -> Whitening:
    """Learn from descriptors ``x`` (n, d); ``floor`` times the mean eigenvalue is added to
    every eigenvalue (shrinkage), so that weak, noisy axes are not blown up. Measured
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
    scale = 1.0 / np.sqrt(eigval + floor * eigval.mean() + 1e-12)
    projection = (eigvec * scale).T
    return Whitening(mean=mean.astype(np.float32), projection=projection.astype(np.float32))
