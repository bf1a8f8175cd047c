"""Which runtime runs the backbone's forward pass: torch, or OpenVINO on the CPU.

A *trunk* maps a normalised float batch (N, 3, H, W) to the backbone's feature map; pooling,
multi-scale and whitening stay in torch (one implementation, ``ml/functional.py``), so every
runtime gives the same descriptors and an index stays valid across them. Training and CUDA always
use torch. A runtime that cannot be used here (package missing, export failed, a backbone it cannot
convert) falls back to torch with one log line: speed is never worth an error for the user.

Measured (bench/throughput.py): OpenVINO runs EfficientNet-Lite0 at about 3x torch eager on this
2-core CPU; ONNX Runtime was as fast as OpenVINO's dynamic shapes but slower than its static ones,
and its exporter (torch.onnx, dynamo) took 8 minutes for Lite0 where OpenVINO converts from torch
in 8 s: OpenVINO it is.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

import torch

from imgsearch_gui.base import registry
from imgsearch_gui.base.config import EmbedderConfig
from imgsearch_gui.base.errors import UnknownChoiceError
from imgsearch_gui.ml.backbones import REGISTRY, DeferredBackbone, LoadedBackbone, load_backbone

log = logging.getLogger(__name__)


class Trunk(Protocol):
    """The backbone's forward pass in some runtime: (N, 3, H, W) float -> (N, C, h, w) float,
    both channels_last (what torch's convolutions and R-MAC's pooling run fastest on)."""

    name: str

    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...


class TorchTrunk:
    """The backbone itself (channels_last, as the Embedder prepares it)."""

    name = "torch"

    def __init__(self, backbone: LoadedBackbone | DeferredBackbone) -> None:
        self.backbone = backbone

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)


def check_runtime(name: str) -> str:
    """``name`` if it is a runtime, else UnknownChoiceError naming the runtimes."""
    if name not in registry.RUNTIMES:
        raise UnknownChoiceError(f"unknown runtime {name!r}; choose from "
                                 f"{', '.join(registry.runtime_names())}")
    return name


def uses_openvino(runtime: str, device: torch.device) -> bool:
    """Whether ``runtime`` asks for OpenVINO here: it runs on the CPU only."""
    return check_runtime(runtime) in ("auto", "openvino") and device.type == "cpu"


def backbone_for(config: EmbedderConfig, device: torch.device, cache_dir: Path | None = None
                 ) -> LoadedBackbone | DeferredBackbone:
    """The backbone of ``config``: built now, or (when OpenVINO will run a cached conversion of
    it) deferred until torch needs it, which saves most of a command's start-up. Anything that
    goes wrong on the way (a cache dir that cannot be read) means: build it now."""
    spec = REGISTRY.get(config.backbone)
    if spec is not None and uses_openvino(config.runtime, device):
        try:
            from imgsearch_gui.ml.openvino_trunk import is_cached

            weights_id = spec.identify(config.weights)
            if weights_id is not None:
                deferred = DeferredBackbone(spec, config.weights, weights_id, config.layer,
                                            config.download)
                if is_cached(deferred, cache_dir):
                    return deferred
        except Exception as exc:  # noqa: BLE001 - the torch model is built as before
            log.debug("no deferred backbone: %s", exc)
    return load_backbone(config.backbone, config.weights, config.layer, config.download)


def make_trunk(backbone: LoadedBackbone | DeferredBackbone, device: torch.device, runtime: str,
               cache_dir: Path | None = None) -> Trunk:
    """The trunk ``runtime`` asks for on ``device``; torch where that runtime cannot run."""
    if not uses_openvino(runtime, device):
        if runtime == "openvino":
            log.info("OpenVINO runs on the CPU only; the %s uses torch", device.type)
        return TorchTrunk(backbone)
    try:
        from imgsearch_gui.ml.openvino_trunk import OpenVinoTrunk

        return OpenVinoTrunk.for_backbone(backbone, cache_dir)
    except Exception as exc:  # noqa: BLE001 - any failure means torch, never an error
        log.warning("OpenVINO is not used (%s: %s); the model runs in torch",
                    type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
        return TorchTrunk(backbone)
