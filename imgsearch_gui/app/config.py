"""The embedder settings a data dir was indexed with, so later runs use the same model.

Stored as JSON beside the index; CLI flags and the GUI's settings dialog override it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, fields, replace
from pathlib import Path

from imgsearch_gui.base.atomic import atomic_write
from imgsearch_gui.base.config import EmbedderConfig

log = logging.getLogger(__name__)

CONFIG_FILE = "embedder.json"
_PERSISTED = ("backbone", "pooling", "size", "layer", "multiscale", "device", "runtime", "weights",
              "whitening", "dba", "rotations", "qe")


def read_config(data_dir: Path) -> EmbedderConfig | None:
    """The saved settings of ``data_dir``; None when there are none or they cannot be read."""
    path = Path(data_dir) / CONFIG_FILE
    if not path.exists():
        return None
    try:
        raw = json.loads(path.read_text())
        if not isinstance(raw, dict):
            raise ValueError("not a JSON object")
        known = {f.name for f in fields(EmbedderConfig)}
        return EmbedderConfig(**{k: v for k, v in raw.items() if k in known and k in _PERSISTED})
    except (OSError, ValueError, TypeError) as exc:
        log.warning("ignoring unreadable %s: %s", path, exc)
        return None


def load_config(data_dir: Path) -> EmbedderConfig:
    """The saved settings of ``data_dir``, or the defaults when there are none (or they are bad)."""
    return read_config(data_dir) or EmbedderConfig()


def save_config(data_dir: Path, config: EmbedderConfig) -> None:
    path = Path(data_dir) / CONFIG_FILE
    data = {k: v for k, v in asdict(config).items() if k in _PERSISTED}
    atomic_write(path, json.dumps(data, indent=2, sort_keys=True).encode("utf-8"))


MODEL_FIELDS = ("backbone", "pooling", "size", "layer", "multiscale", "weights")


def apply_overrides(saved: EmbedderConfig, **changes: object) -> EmbedderConfig:
    """``saved`` with the non-None ``changes`` applied (CLI flags, GUI settings).

    A whitening belongs to the descriptors it was learned on, so it is dropped when the changes
    alter the model. A newly chosen fine-tuned checkpoint brings the backbone, pooling and
    input size it was trained with, unless they are given too, and its supervised whitening
    if it has one (``imgsearch whiten --off`` turns that off like any other whitening).
    """
    given = {k: v for k, v in changes.items() if v is not None}
    weights = given.get("weights")
    ckpt = None
    if weights and weights != saved.weights:
        from imgsearch_gui.ml.checkpoint import is_checkpoint, load_checkpoint

        if is_checkpoint(weights):
            ckpt = load_checkpoint(weights)
            given = {"backbone": ckpt.backbone, "pooling": ckpt.pooling, "size": ckpt.size,
                     **given}
    config = replace(saved, **given)
    if config.whitening and any(getattr(config, f) != getattr(saved, f) for f in MODEL_FIELDS):
        config = replace(config, whitening=None)
    if (ckpt is not None and ckpt.whitening and "whitening" not in given
            and config.pooling == ckpt.pooling):
        # the supervised whitening learned with it (`finetune --whiten`) goes along; it fits
        # the descriptors of the pooling it was learned on only
        from imgsearch_gui.ml.whitening import checkpoint_ref

        config = replace(config, whitening=checkpoint_ref(weights))
    return config
