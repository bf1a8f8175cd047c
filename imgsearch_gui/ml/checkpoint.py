"""Fine-tuned model files: weights plus the metadata that says how to use them.

A checkpoint is one ``torch.save`` dict (format tag ``imgsearch-checkpoint/1``): the base backbone
name, the full model's state dict (timm/torchvision layout), the pooling and its learned parameters
(GeM's p), the input size, an optional whitening, and a free-form ``info`` (training data summary,
metrics). Written atomically (temp file + rename), so a cancelled run never leaves half a file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from imgsearch_gui.base.atomic import atomic_write
from imgsearch_gui.base.errors import CheckpointError

FORMAT = "imgsearch-checkpoint/1"
SUFFIX = ".pt"


@dataclass(frozen=True)
class Checkpoint:
    backbone: str
    state_dict: dict[str, torch.Tensor]
    pooling: str
    pooling_params: dict[str, float]
    size: int
    whitening: dict[str, Any] | None = None  # {"mean": Tensor, "projection": Tensor}
    info: dict[str, Any] = field(default_factory=dict)


def save_checkpoint(path: str | os.PathLike[str], ckpt: Checkpoint) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "backbone": ckpt.backbone,
        "state_dict": {k: v.detach().cpu() for k, v in ckpt.state_dict.items()},
        "pooling": ckpt.pooling,
        "pooling_params": dict(ckpt.pooling_params),
        "size": int(ckpt.size),
        "whitening": ckpt.whitening,
        "info": ckpt.info,
    }
    return atomic_write(path, lambda fh: torch.save(payload, fh))


def is_checkpoint(path: str | os.PathLike[str]) -> bool:
    try:
        load_checkpoint(path)
    except CheckpointError:
        return False
    return True


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same error to the user
        raise CheckpointError(f"{path}: not a readable checkpoint ({exc})") from exc
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an imgsearch checkpoint")
    return Checkpoint(
        backbone=str(raw["backbone"]),
        state_dict=raw["state_dict"],
        pooling=str(raw["pooling"]),
        pooling_params={str(k): float(v) for k, v in raw.get("pooling_params", {}).items()},
        size=int(raw["size"]),
        whitening=raw.get("whitening"),
        info=raw.get("info") or {},
    )


def list_checkpoints(models_dir: str | os.PathLike[str]) -> list[Path]:
    """Fine-tuned models saved under ``models_dir`` (newest first)."""
    folder = Path(models_dir)
    if not folder.is_dir():
        return []
    found = [p for p in folder.glob(f"*{SUFFIX}") if not p.name.startswith(".")]
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)
