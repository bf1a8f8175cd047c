"""Embedder: photos -> L2-normalised descriptors from a CNN's last convolutional feature map.

Decoding (threads; PIL releases the GIL) overlaps inference; images of the same shape are batched
(:mod:`~imgsearch_gui.ml.batching`); the network is :class:`~imgsearch_gui.ml.descriptor.RetrievalNet`,
run under ``torch.inference_mode`` with channels_last and fp16 autocast on CUDA.
"""

from __future__ import annotations

import logging
import math
import os
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np
import torch
from PIL import Image

from imgsearch_gui.base.config import EmbedderConfig, decode_workers
from imgsearch_gui.base.errors import DeviceUnavailableError, ImageError, WhiteningError
from imgsearch_gui.base.images import load_image
from imgsearch_gui.base.meta import ModelMeta
from imgsearch_gui.base.thumbprint import thumbprint_of_array
from imgsearch_gui.base.types import CancelToken
from imgsearch_gui.ml.backbones import DeferredBackbone, LoadedBackbone
from imgsearch_gui.ml.batching import embed_by_shape
from imgsearch_gui.ml.checkpoint import is_checkpoint, load_checkpoint
from imgsearch_gui.ml.descriptor import RetrievalNet, infer
from imgsearch_gui.ml.pooling import Pooling
from imgsearch_gui.ml.runtime import Trunk, backbone_for, make_trunk
from imgsearch_gui.ml.views import turn
from imgsearch_gui.ml.whitening import Whitening

log = logging.getLogger(__name__)

MULTISCALE = (1.0, 1 / math.sqrt(2), 0.5)


@dataclass(frozen=True)
class EmbedResult:
    path: str
    vector: np.ndarray | None
    error: str | None = None
    #: the decoded photo's 16x16 grey thumbnail (base/thumbprint.py), kept with its vector
    thumbprint: bytes | None = None


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise DeviceUnavailableError("CUDA was requested but no CUDA GPU is available")
    return torch.device(name)


def resize_longest(image: Image.Image, size: int) -> Image.Image:
    """Keep the aspect ratio; the longest side becomes ``size`` pixels."""
    w, h = image.size
    scale = size / max(w, h)
    new = (max(1, round(w * scale)), max(1, round(h * scale)))
    if new == (w, h):
        return image
    return image.resize(new, Image.Resampling.BILINEAR, reducing_gap=None)


def image_to_tensor(image: Image.Image, size: int) -> torch.Tensor:
    """uint8 CHW tensor of the image resized to ``size`` (normalisation happens on the device)."""
    arr = np.asarray(resize_longest(image, size), dtype=np.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1)


def decode(path: str | os.PathLike[str], size: int) -> torch.Tensor:
    """The photo at ``path`` as the network is fed it: uint8 CHW, longest side ``size``."""
    return image_to_tensor(load_image(path, max_side=size), size)


class Embedder:
    """One loaded model; thread-safe for sequential calls (the GUI serialises them)."""

    def __init__(self, config: EmbedderConfig, backbone: LoadedBackbone | DeferredBackbone,
                 pooling_params: dict[str, float] | None = None, trunk: Trunk | None = None) -> None:
        self.config = config
        self.device = resolve_device(config.device)
        pool = Pooling(config.pooling, **(pooling_params or {}))  # UnknownChoiceError if unknown
        self.pooling_params = dict(pool.params)  # the defaults, with the given ones over them
        self.scales = MULTISCALE if config.multiscale else (1.0,)
        net = RetrievalNet(backbone, pool, self.scales)
        spec = backbone.spec
        try:
            # channels_last is faster on CUDA and, measured, on CPU too (oneDNN depthwise convs).
            self.net = net.to(self.device).to(memory_format=torch.channels_last)
            #: what runs the backbone's forward pass (OpenVINO on the CPU by default, ml/runtime.py)
            self.trunk = trunk or make_trunk(self.net.backbone, self.device, config.runtime)
            dim = spec.channels if config.layer is None else self.net.probe_dim(self.trunk)
        except (RuntimeError, AssertionError) as exc:  # CUDA unusable: no driver, out of memory,
            # an old driver; a CPU-only torch asserts "not compiled with CUDA"
            if self.device.type != "cuda":
                raise
            raise DeviceUnavailableError(f"the CUDA GPU cannot run the model: {exc}") from exc
        self.backbone = self.net.backbone
        self.whitening = Whitening.load(config.whitening) if config.whitening else None
        if self.whitening is not None:
            if self.whitening.dim_in != dim:
                raise WhiteningError(f"whitening {config.whitening} expects {self.whitening.dim_in}-d "
                                 f"descriptors, this model gives {dim}")
            dim = self.whitening.dim_out
        self.meta = ModelMeta(
            backbone=spec.name,
            weights_id=backbone.weights_id,
            pooling=config.pooling,
            input_size=config.size,
            mean=spec.mean,
            std=spec.std,
            dim=dim,
            pooling_params=tuple(sorted(self.pooling_params.items())),
            layer=config.layer,
            scales=self.scales,
            whitening_id=self.whitening.id if self.whitening is not None else None,
        )

    # bench/pooling_map.py normalises with these to pool one feature map several ways
    @property
    def _mean(self) -> torch.Tensor:
        return self.net.mean

    @property
    def _std(self) -> torch.Tensor:
        return self.net.std

    def with_whitening(self, path: str | os.PathLike[str] | None) -> Embedder:
        """The same loaded network with another whitening (or none): no reload."""
        config = replace(self.config, whitening=str(path) if path is not None else None)
        return Embedder(config, self.backbone, self.pooling_params, self.trunk)

    @property
    def runtime(self) -> str:
        """The runtime in use ("openvino", "torch"): what the config asked for, or torch where
        that could not run here."""
        return self.trunk.name

    # -- tensors -----------------------------------------------------------------------------

    def embed_batch(self, batch: torch.Tensor) -> np.ndarray:
        """(N, 3, H, W) uint8 images of one shape -> (N, dim) float32 unit vectors."""
        out = infer(lambda x: self.net.describe(x, self.trunk), batch, self.device)
        return self.whitening.apply(out) if self.whitening is not None else out

    # -- images ------------------------------------------------------------------------------

    def prepare(self, image: Image.Image) -> torch.Tensor:
        return image_to_tensor(image, self.config.size)

    def embed_image(self, image: Image.Image) -> np.ndarray:
        from imgsearch_gui.base.images import to_rgb

        return self.embed_batch(self.prepare(to_rgb(image))[None])[0]

    def embed_path(self, path: str | os.PathLike[str]) -> np.ndarray:
        return self.embed_batch(self._decode(str(path))[None])[0]

    def embed_views(self, image: Image.Image, quarters: Sequence[int] = (0,)) -> np.ndarray:
        """(len(quarters), dim): the image turned by each of ``quarters`` x 90 degrees
        (``ml/views.py``), views of one shape in one batch."""
        from imgsearch_gui.base.images import to_rgb

        tensor = self.prepare(to_rgb(image))
        vectors = embed_by_shape([turn(tensor, q) for q in quarters], self.embed_batch,
                                 max(1, self.config.batch_size))
        assert vectors is not None  # no cancel token: never None
        return vectors

    def _decode(self, path: str, quarters: int = 0) -> torch.Tensor:
        return turn(decode(path, self.config.size), quarters)

    def embed_files(
        self, paths: Sequence[str | os.PathLike[str]], cancel: CancelToken | None = None,
        quarters: int = 0,
    ) -> Iterator[EmbedResult]:
        """Embed ``paths`` in order (each turned ``quarters`` x 90 degrees: ``eval`` embeds the
        views a rotation-robust query has); unusable files yield a result with ``error`` set.

        Decoding runs ``workers`` files ahead in a thread pool while the model works on the
        current batch; within a window of decoded images, those of equal shape share a batch.
        """
        paths = [str(p) for p in paths]
        bs = max(1, self.config.batch_size)
        window = bs * 2
        with ThreadPoolExecutor(max_workers=decode_workers(self.config.workers),
                                thread_name_prefix="decode") as pool:
            pending: deque[tuple[str, Future[torch.Tensor]]] = deque()
            it = iter(paths)

            def fill() -> None:
                while len(pending) < window * 2:
                    try:
                        p = next(it)
                    except StopIteration:
                        return
                    pending.append((p, pool.submit(self._decode, p, quarters)))

            fill()
            while pending:
                if cancel is not None and cancel.cancelled:
                    for _, fut in pending:
                        fut.cancel()
                    return
                chunk = [pending.popleft() for _ in range(min(window, len(pending)))]
                fill()
                yield from self._embed_chunk(chunk, bs)

    def _embed_chunk(self, chunk: Iterable[tuple[str, Future[torch.Tensor]]], bs: int
                     ) -> Iterator[EmbedResult]:
        """Results of one window of decodes, in order; a file that failed gets its error."""
        results: list[EmbedResult | None] = []
        decoded: list[tuple[int, str, torch.Tensor]] = []
        for i, (path, fut) in enumerate(chunk):
            results.append(None)
            try:
                decoded.append((i, path, fut.result()))
            except ImageError as exc:
                results[i] = EmbedResult(path, None, exc.reason)
            except Exception as exc:  # noqa: BLE001 - a bad file must never stop indexing
                log.exception("unexpected error decoding %s", path)
                results[i] = EmbedResult(path, None, f"unexpected error: {exc}")
        for i, result in self._embed_decoded(decoded, bs):
            results[i] = result
        for result in results:
            assert result is not None
            yield result


    def _embed_decoded(self, decoded: list[tuple[int, str, torch.Tensor]], bs: int
                       ) -> list[tuple[int, EmbedResult]]:
        """(position, result) of decoded images, batched by shape; when a batch fails, its
        neighbours must not fail with it: every image is retried alone and one that still fails
        gets the error as its reason."""
        try:
            vectors = embed_by_shape([t for _, _, t in decoded], self.embed_batch, bs)
        except Exception:  # noqa: BLE001 - retried one by one below
            log.warning("a batch of %d images failed; retrying them one by one", len(decoded),
                        exc_info=True)
            return [(i, self._embed_alone(path, t)) for i, path, t in decoded]
        assert vectors is not None  # no cancel token: never None
        return [(i, EmbedResult(path, vec, None, thumbprint_of_array(t.numpy())))
                for (i, path, t), vec in zip(decoded, vectors, strict=True)]

    def _embed_alone(self, path: str, image: torch.Tensor) -> EmbedResult:
        try:
            return EmbedResult(path, self.embed_batch(image[None])[0], None,
                               thumbprint_of_array(image.numpy()))
        except Exception as exc:  # noqa: BLE001 - one bad file must never stop indexing
            log.exception("embedding %s (%dx%d px) failed", path, image.shape[-1], image.shape[-2])
            return EmbedResult(path, None, f"could not be embedded ({type(exc).__name__}: {exc})")


def load_embedder(config: EmbedderConfig | None = None) -> Embedder:
    """Build the model described by ``config`` (slow for real backbones: seconds).

    When ``config.weights`` is a fine-tuned checkpoint, its backbone and learned pooling
    parameters (GeM's p) are used; the pooling and size stay the user's choice.
    """
    config = config or EmbedderConfig()
    pooling_params = None
    if config.weights is not None and is_checkpoint(config.weights):
        ckpt = load_checkpoint(config.weights)
        if ckpt.backbone != config.backbone:
            log.info("checkpoint %s is a fine-tuned %s", config.weights, ckpt.backbone)
            config = replace(config, backbone=ckpt.backbone)
        if ckpt.pooling == config.pooling:
            pooling_params = ckpt.pooling_params
    backbone = backbone_for(config, resolve_device(config.device))
    embedder = Embedder(config, backbone, pooling_params)
    log.info("embedder ready: %s on %s (%s)", embedder.meta.describe(), embedder.device,
             embedder.runtime)
    return embedder


__all__ = ["EmbedderConfig", "EmbedResult", "Embedder", "load_embedder"]
