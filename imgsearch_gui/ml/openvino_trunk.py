"""The backbone run by OpenVINO on the CPU: converted from torch once, cached, compiled per shape.

* **Export**: ``openvino.convert_model`` traces the torch trunk (seconds); the result is checked
  against torch on a probe batch (cosine >= 0.9999 per image, else not used) and saved in the cache
  dir under a key made of the weights' hash (ModelMeta's ``weights_id``), the backbone, the
  layer and both libraries' versions, so a fine-tuned checkpoint gets its own model and a changed
  one is converted again. Saving is atomic (a folder renamed into place); a cache that cannot be
  written (full disk) only costs the conversion next time.
* **Shapes**: descriptors keep the photo's aspect ratio, so batches differ in H and W. A model
  compiled for one (H, W) is faster than a fully dynamic one (measured:
  bench/throughput.py), and compiling takes a fraction of a second, so a shape gets its own
  compiled model once :data:`STATIC_AFTER` images of it have been seen (a library has a few common
  shapes); rare shapes run on the dynamic model. Nothing is padded or resized: the descriptors
  are those of torch.
* **Precision**: f32 always (``INFERENCE_PRECISION_HINT``): OpenVINO's default on CPUs with AMX is
  bf16, whose effect on retrieval mAP has not been measured here (this machine has no bf16).
* **Threads**: a compiled model per thread count, read from torch's setting for the calling thread
  (the GUI's query thread runs with one, ``ml/threads.py``); a request runs one image (faster
  than batches here: :func:`compile_config`); a call takes an idle infer request and gives it
  back, so a search and an indexing job can run at once.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import importlib.metadata
import logging
import os
import shutil
import tempfile
import threading
import warnings
from collections import Counter, OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov
import torch

from imgsearch_gui.base import paths
from imgsearch_gui.base.atomic import fsync_dir
from imgsearch_gui.base.errors import ExportMismatchError
from imgsearch_gui.ml.backbones import DeferredBackbone, LoadedBackbone

log = logging.getLogger(__name__)

#: bump when the export changes (inputs, conversion options): old cached models are not reused
EXPORT_VERSION = 2  # 2: NHWC input and output
#: images of one (H, W) after which that shape gets its own compiled model
STATIC_AFTER = 16
#: compiled shape-specific models kept (least recently used dropped first): each holds ~40 MB
#: (measured: Lite0's embedder 890 MB resident, 1216 MB with 8 shapes compiled), and a library
#: has a few common shapes (4:3, 16:9, either way up)
MAX_STATIC = 4
#: the least cosine similarity between OpenVINO's and torch's feature maps accepted at export
MIN_COSINE = 0.9999
#: the batches a conversion is checked on: the traced shape and one with odd sides
_PROBE_SHAPES = ((2, 3, 72, 96), (1, 3, 77, 101))

_models: dict[str, ov.Model] = {}  # key -> converted model, so one process converts once
_models_lock = threading.Lock()


def model_key(backbone: LoadedBackbone | DeferredBackbone) -> str:
    """A hash of everything the converted model depends on: the backbone, the weights' id (a
    hash of the weights file, ModelMeta's ``weights_id``), the layer, and the versions of the
    code that defines and converts the network (timm, torchvision, torch, OpenVINO, this package:
    the backbones' trunks are defined here), so an upgrade converts again."""
    versions = "|".join(f"{pkg} {_version(pkg)}" for pkg in ("openvino", "torch", "timm",
                                                             "torchvision", "imgsearch-gui"))
    text = (f"{EXPORT_VERSION}|{backbone.spec.name}|{backbone.weights_id}|{backbone.layer}|"
            f"{versions}")
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "none"


def model_folder(backbone: LoadedBackbone | DeferredBackbone, cache_dir: Path | None = None) -> Path:
    return (cache_dir or paths.cache_dir()) / "openvino" / f"{backbone.spec.name}-{model_key(backbone)}"


def is_cached(backbone: LoadedBackbone | DeferredBackbone, cache_dir: Path | None = None) -> bool:
    """True when this backbone's conversion is ready (in this process or the cache dir)."""
    return model_key(backbone) in _models or (model_folder(backbone, cache_dir) / "model.xml").exists()


def compile_config(threads: int) -> dict[str, Any]:
    """f32, one stream on ``threads`` threads (the requests run one image each: measured on 2
    cores, EfficientNet-Lite0 at 384x288 ran 39 images/s as one batch of 16 and 46 one image at a
    time, as fast as two single-threaded streams, which cost each new shape twice)."""
    return {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": max(1, threads),
            "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY"}


class _SignalStack(ctypes.Structure):
    _fields_ = [("ss_sp", ctypes.c_void_p), ("ss_flags", ctypes.c_int), ("ss_size", ctypes.c_size_t)]


@contextlib.contextmanager
def keep_signal_stack() -> Iterator[None]:
    """Compile with the calling thread's alternate signal stack put back afterwards.

    OpenVINO's CPU plugin gives the compiling thread a signal stack of its own and puts the old
    one back when the compiled model is destroyed, in whichever thread that happens: a model
    compiled in the main thread and freed in another left the main thread's signal stack pointing
    at unmapped memory, and the next signal there (Ctrl-C) crashed the process (found by the test
    suite's SIGINT test, traced with gdb and sigaltstack). Python's handlers run on that stack
    (SA_ONSTACK). Where there is no sigaltstack (Windows) this does nothing.
    """
    libc = _libc()
    saved = _SignalStack()
    if libc is None or libc.sigaltstack(None, ctypes.byref(saved)) != 0:
        yield
        return
    try:
        yield
    finally:
        libc.sigaltstack(ctypes.byref(saved), None)


@functools.cache
def _libc() -> ctypes.CDLL | None:
    if os.name != "posix":
        return None
    try:
        libc = ctypes.CDLL(None)
        return libc if hasattr(libc, "sigaltstack") else None
    except OSError:
        return None


def _compile(core: ov.Core, model: ov.Model, threads: int) -> ov.CompiledModel:
    with keep_signal_stack():
        return core.compile_model(model, "CPU", compile_config(threads))


def convert(backbone: LoadedBackbone | DeferredBackbone) -> ov.Model:
    """The trunk as an OpenVINO model with a free batch size, height and width, checked."""
    trunk = backbone.loaded().trunk.eval()
    gen = torch.Generator().manual_seed(0)
    example, *others = (torch.randn(*shape, generator=gen) for shape in _PROBE_SHAPES)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit.trace's deprecation, TracerWarnings
        model = ov.convert_model(trunk, example_input=example, input=[ov.PartialShape([-1, 3, -1, -1])])
    model = channels_last_io(model)
    request = _compile(ov.Core(), model, 1).create_infer_request()
    for probe in (example, *others):  # another shape too: a size baked into the trace shows
        with torch.no_grad():
            expected = trunk(probe).float().numpy()
        check_same(expected, request.infer({0: nhwc(probe)})[0].transpose(0, 3, 1, 2))
    return model


def channels_last_io(model: ov.Model) -> ov.Model:
    """``model`` (NCHW in and out) taking and giving NHWC: the memory of torch's channels_last
    tensors, so neither side copies to change layouts (OpenVINO transposes inside the graph)."""
    ppp = ov.preprocess.PrePostProcessor(model)
    ppp.input().tensor().set_layout(ov.Layout("NHWC"))
    ppp.input().model().set_layout(ov.Layout("NCHW"))
    ppp.output().tensor().set_layout(ov.Layout("NHWC"))
    ppp.output().model().set_layout(ov.Layout("NCHW"))
    return ppp.build()


def nhwc(x: torch.Tensor) -> np.ndarray:
    """The NHWC array of an NCHW tensor (no copy when it is channels_last)."""
    return np.ascontiguousarray(x.detach().float().permute(0, 2, 3, 1).numpy())


def check_same(expected: np.ndarray, got: np.ndarray) -> None:
    """ExportMismatchError unless ``got`` has ``expected``'s shape and each image's feature map
    is at cosine >= :data:`MIN_COSINE` of it."""
    if expected.shape != got.shape:
        raise ExportMismatchError(f"feature map {got.shape} instead of torch's {expected.shape}")
    a, b = expected.reshape(len(expected), -1), got.reshape(len(got), -1)
    cosine = (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)
    if float(cosine.min()) < MIN_COSINE:
        raise ExportMismatchError(f"feature maps at cosine {cosine.min():.6f} of torch's")


def load_model(backbone: LoadedBackbone | DeferredBackbone, cache_dir: Path | None = None) -> ov.Model:
    """The converted trunk: from this process, from the cache dir, or converted (and cached)."""
    key = model_key(backbone)
    with _models_lock:
        if key in _models:
            return _models[key]
        try:
            folder: Path | None = model_folder(backbone, cache_dir)
        except OSError as exc:  # no cache dir can be made: convert in every process
            log.warning("no cache dir for the OpenVINO model (%s); it is converted each run", exc)
            folder = None
        model = _read_cached(folder) if folder is not None else None
        if model is None:
            log.info("converting %s to OpenVINO (once per model; cached in %s)",
                     backbone.spec.name, folder.parent if folder is not None else "nowhere")
            model = convert(backbone)
            if folder is not None:
                _save(model, folder)
        _models[key] = model
        return model


def _read_cached(folder: Path) -> ov.Model | None:
    xml = folder / "model.xml"
    if not xml.exists():
        return None
    try:
        return ov.Core().read_model(str(xml))
    except Exception as exc:  # noqa: BLE001 - a damaged cache entry is converted again
        log.warning("cached OpenVINO model %s unreadable (%s); converting again", folder, exc)
        shutil.rmtree(folder, ignore_errors=True)
        return None


def _save(model: ov.Model, folder: Path) -> None:
    """Write the model into a temporary folder beside ``folder``, then rename it into place: a
    crash or a full disk never leaves a half-written model where a later run would read it."""
    tmp: Path | None = None
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
        ov.save_model(model, str(tmp / "model.xml"), compress_to_fp16=False)
        for name in ("model.xml", "model.bin"):  # on disk before the name says it is there
            with open(tmp / name, "rb") as fh:
                os.fsync(fh.fileno())
        fsync_dir(tmp)
        os.replace(tmp, folder)
        fsync_dir(folder.parent)
        tmp = None
    except (OSError, RuntimeError) as exc:  # OpenVINO reports a failed write as RuntimeError
        if folder.exists():  # another process saved it first
            return
        log.warning("could not cache the OpenVINO model in %s (%s); it is converted again next "
                    "time", folder.parent, exc)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


class OpenVinoTrunk:
    """Runs the converted trunk; compiled models per (shape, threads), infer requests per thread."""

    name = "openvino"

    def __init__(self, model: ov.Model, backbone: LoadedBackbone | DeferredBackbone) -> None:
        self.model = model
        self.backbone = backbone  # torch, for a batch OpenVINO fails on
        self._core = ov.Core()
        self._lock = threading.Lock()
        self._dynamic: dict[int, ov.CompiledModel] = {}
        self._static: OrderedDict[tuple[int, int, int], ov.CompiledModel] = OrderedDict()
        self._seen: Counter[tuple[int, int, int]] = Counter()  # images by (h, w, threads)
        #: idle infer requests of each compiled model (by id): a call takes one and gives it back,
        #: so threads running at once never share one. Not a threading.local: that frees a
        #: thread's requests while the thread is torn down, and OpenVINO's destructor then takes
        #: the GIL, which crashes a QThread's exit (found by a GUI test, traced with gdb)
        self._idle: dict[int, list[ov.InferRequest]] = {}
        self._failures = 0

    @classmethod
    def for_backbone(cls, backbone: LoadedBackbone | DeferredBackbone, cache_dir: Path | None = None
                     ) -> OpenVinoTrunk:
        """The trunk, its dynamic model compiled for this thread: a CPU plugin that cannot load
        fails here, where the caller falls back to torch once, not on every batch."""
        trunk = cls(load_model(backbone, cache_dir), backbone)
        trunk._compiled(0, 0, 0, torch.get_num_threads())
        return trunk

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        inputs = nhwc(x)
        try:
            compiled = self._compiled(x.shape[2], x.shape[3], len(x), torch.get_num_threads())
            return torch.from_numpy(self._run(compiled, inputs)).permute(0, 3, 1, 2)
        except Exception:  # noqa: BLE001 - torch does this batch; the log says why (once)
            self._failures += 1
            log.log(logging.WARNING if self._failures == 1 else logging.DEBUG,
                    "OpenVINO failed on a %s batch; torch runs it (failure %d)", tuple(x.shape),
                    self._failures, exc_info=self._failures == 1)
            return self.backbone(x)

    def _run(self, compiled: ov.CompiledModel, inputs: np.ndarray) -> np.ndarray:
        """The images of ``inputs`` one request each (faster than one batch: cache-sized)."""
        with self._lock:
            idle = self._idle.get(id(compiled))
            request = idle.pop() if idle else None
        if request is None:
            request = compiled.create_infer_request()
        out = np.concatenate([request.infer({0: inputs[i : i + 1]})[0] for i in range(len(inputs))])
        with self._lock:
            if self._is_live(compiled):  # not dropped from the cache meanwhile
                self._idle.setdefault(id(compiled), []).append(request)
        return out

    def _is_live(self, compiled: ov.CompiledModel) -> bool:
        return any(c is compiled for c in (*self._static.values(), *self._dynamic.values()))

    @property
    def static_shapes(self) -> list[tuple[int, int]]:
        """(H, W) of the shapes that have their own compiled model now (tests, ``info``)."""
        return sorted({(h, w) for h, w, _ in self._static})

    def _compiled(self, h: int, w: int, n: int, threads: int) -> ov.CompiledModel:
        """The model for an (h, w) batch on ``threads`` threads: that shape's own once this
        thread count has run :data:`STATIC_AFTER` images of it (counted again from 0 when it was
        dropped from the cache, so shapes beyond :data:`MAX_STATIC` run on the dynamic model
        rather than recompiling in turn), else the dynamic one."""
        with self._lock:
            key = (h, w, threads)
            self._seen[key] += n
            if key in self._static:
                self._static.move_to_end(key)
                return self._static[key]
            if n and self._seen[key] >= STATIC_AFTER:
                return self._compile_static(key)
            if threads not in self._dynamic:
                self._dynamic[threads] = _compile(self._core, self.model, threads)
            return self._dynamic[threads]

    def _compile_static(self, key: tuple[int, int, int]) -> ov.CompiledModel:
        h, w, threads = key
        model = self.model.clone()
        model.reshape({0: ov.PartialShape([1, h, w, 3])})
        self._static[key] = _compile(self._core, model, threads)
        log.debug("OpenVINO model compiled for %dx%d px, %d threads", w, h, threads)
        while len(self._static) > MAX_STATIC:
            dropped_key, dropped = self._static.popitem(last=False)
            self._idle.pop(id(dropped), None)
            self._seen[dropped_key] = 0
        return self._static[key]

