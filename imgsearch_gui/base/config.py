"""EmbedderConfig: the model choices a user makes, as plain data (no torch).

The CLI, the GUI's preferences and ``app/config.py`` (which stores it beside the index) all read
and write it without loading a network; ``ml/embedder.py`` turns it into a model.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from imgsearch_gui.base import registry


@dataclass(frozen=True)
class EmbedderConfig:
    """What the user chooses; ``ModelMeta`` is what it resolves to (with the weights' id)."""

    backbone: str = registry.DEFAULT_BACKBONE
    pooling: str = registry.DEFAULT_POOLING
    size: int = registry.DEFAULT_SIZE
    layer: str | None = None
    multiscale: bool = False
    device: str = registry.DEFAULT_DEVICE
    #: what runs the backbone (``base/registry.RUNTIMES``); like the device, it changes speed,
    #: not the descriptors, so an index stays valid across runtimes
    runtime: str = registry.DEFAULT_RUNTIME
    weights: str | None = None
    whitening: str | None = None  # a PCA-whitening file learned on the library (ml/whitening.py)
    #: index option, not part of the network: database-side augmentation with this many
    #: neighbours (0 = off); the default chosen by bench/defaults_score.py.
    dba: int = registry.DEFAULT_DBA
    #: search options (the query side), kept with the index so that ``eval`` measures what
    #: ``search`` and the GUI do: turned query views, and alpha-QE neighbours (0 = off)
    rotations: bool = registry.DEFAULT_ROTATIONS
    qe: int = registry.DEFAULT_QE
    batch_size: int = 16
    #: image-decoding threads; 0: :func:`decode_workers` (decoding keeps up with the model)
    workers: int = 0
    download: bool = False


def decode_workers(configured: int = 0) -> int:
    """``configured``, or for 0 one decoding thread per 2 cores, 2 to 8: measured on 2 cores, one
    thread decodes a 640x480 JPEG to the model's 384 px in ~7 ms, 4-5x faster than OpenVINO embeds
    it (bench/throughput.py), so a thread per 2 cores keeps up while leaving the cores to the
    model; threads, not processes, since PIL releases the GIL while it decodes and resizes."""
    if configured > 0:
        return configured
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 2
    return min(8, max(2, cores // 2))
