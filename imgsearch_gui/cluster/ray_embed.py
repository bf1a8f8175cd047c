"""Embedding on a Ray cluster: the same ``embed_files`` contract as the local embedder.

The indexing job (app/indexing.py) stays on the driver: scan, catalog, hashes, moves, commits in
batches, so a crash loses at most the work since the last save and the next run embeds only what
is still pending. Only the paths of the photos that need a vector travel to the cluster, where
Ray Data hands them in batches to a pool of model actors (``map_batches`` with a callable class:
the model is loaded once per actor, one GPU each when the cluster has GPUs). Each actor runs the
local embedding path itself (``Embedder.embed_files``: decoding overlapped with inference, the
CPU runtime, HEIC/RAW through base.images), so a vector from the cluster is the vector the local
path gives, and its ModelMeta is checked against the driver's before any photo is embedded.

Paths travel as bytes (``os.fsencode``): a name that is not UTF-8 arrives exactly. The workers
must see the photos at the same paths (a shared mount) and have the package installed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import ray
import ray.data

from imgsearch_gui.base.config import EmbedderConfig
from imgsearch_gui.base.errors import ClusterJobError, ClusterUnavailableError
from imgsearch_gui.base.meta import ModelMeta
from imgsearch_gui.base.types import CancelToken
from imgsearch_gui.ml.embedder import EmbedResult

log = logging.getLogger(__name__)

LOCAL = "local"  # ``--ray local``: a cluster of this machine alone, started and stopped here


@dataclass(frozen=True)
class ClusterPlan:
    """How the work is spread: ``actors`` model actors, each with these CPUs and GPUs."""

    actors: int
    cpus_per_actor: float
    gpus_per_actor: float
    batch_size: int = 32

    @classmethod
    def for_resources(cls, cpus: float, gpus: float, actors: int | None = None) -> ClusterPlan:
        """One actor per GPU; without GPUs, actors of up to 4 CPUs each (torch and OpenVINO use
        a few threads well; one actor per core would load the model once per core)."""
        if gpus >= 1:
            n = actors or int(gpus)
            return cls(n, max(1.0, min(4.0, cpus // n)), 1.0)
        cpus = max(1.0, cpus)
        n = actors or max(1, int(cpus // min(4.0, cpus)))
        return cls(n, max(1.0, cpus // n), 0.0)


class RaySession:
    """A connection to a Ray cluster for one command; ``local`` starts one here (and stops it)."""

    def __init__(self, address: str, num_cpus: int | None = None) -> None:
        self.address = address
        self.num_cpus = num_cpus
        self._owned = False

    def __enter__(self) -> RaySession:
        if not ray.is_initialized():
            local = self.address == LOCAL
            try:
                ray.init(address=None if local else self.address,
                         num_cpus=self.num_cpus if local else None,
                         include_dashboard=False, log_to_driver=False,
                         logging_level=logging.WARNING, configure_logging=True)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise ClusterUnavailableError(
                    f"cannot reach the Ray cluster at {self.address}: {exc}") from exc
            self._owned = True
        logging.getLogger("ray.data").setLevel(logging.WARNING)  # its plans and timings: noise
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True  # results in the order of the paths
        context.enable_progress_bars = False  # the job reports progress itself
        return self

    def __exit__(self, *exc: object) -> None:
        if self._owned:
            ray.shutdown()
            self._owned = False

    def resources(self) -> tuple[float, float]:
        """(CPUs, GPUs) of the whole cluster."""
        res = ray.cluster_resources()
        return float(res.get("CPU", 0.0)), float(res.get("GPU", 0.0))


class _EmbedActor:
    """One model on a worker: loaded once, then batches of paths embedded in turn."""

    def __init__(self, config: EmbedderConfig, expected: str) -> None:
        from imgsearch_gui.ml.embedder import load_embedder

        self.embedder = load_embedder(config)
        mine = self.embedder.meta
        if mine != ModelMeta.from_json(expected):
            raise ClusterJobError(f"the worker's model differs from the driver's: {mine.describe()} "
                                  "(another version of the package or of the weights there?)")
        self.dim = mine.dim

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        paths = [os.fsdecode(bytes(p)) for p in batch["path"]]
        n = len(paths)
        vectors = np.zeros((n, self.dim), dtype=np.float32)
        ok = np.zeros(n, dtype=bool)
        errors, thumbs = [""] * n, [b""] * n
        for i, res in enumerate(self.embedder.embed_files(paths)):
            if res.vector is not None:
                vectors[i], ok[i] = res.vector, True
            errors[i] = res.error or ""
            thumbs[i] = res.thumbprint or b""
        return {"path": batch["path"], "vector": vectors, "ok": ok,
                "error": np.array(errors, dtype=object), "thumb": np.array(thumbs, dtype=object)}


class RayEmbedder:
    """``embed_files`` on the cluster; ``meta`` and ``config`` are the driver's embedder's."""

    def __init__(self, session: RaySession, config: EmbedderConfig, meta: ModelMeta,
                 actors: int | None = None) -> None:
        self.session = session
        self.config = config
        self.meta = meta
        self.plan = ClusterPlan.for_resources(*session.resources(), actors=actors)
        log.info("Ray cluster at %s: %d model actors (%g CPUs, %g GPUs each)", session.address,
                 self.plan.actors, self.plan.cpus_per_actor, self.plan.gpus_per_actor)

    def embed_files(self, paths: Sequence[str | os.PathLike[str]],
                    cancel: CancelToken | None = None) -> Iterator[EmbedResult]:
        """Results in the order of ``paths``, as the cluster finishes them; stops at ``cancel``
        (what the cluster finished until then has been yielded)."""
        paths = [os.fspath(p) for p in paths]
        if not paths:
            return
        plan = self.plan
        blocks = max(plan.actors * 4, len(paths) // (plan.batch_size * 4), 1)
        ds = ray.data.from_items([{"path": os.fsencode(p)} for p in paths],
                                 override_num_blocks=min(blocks, len(paths)))
        ds = ds.map_batches(_EmbedActor, fn_constructor_args=(self.config, self.meta.to_json()),
                            batch_size=plan.batch_size, batch_format="numpy",
                            compute=ray.data.ActorPoolStrategy(size=plan.actors),
                            num_cpus=plan.cpus_per_actor, num_gpus=plan.gpus_per_actor or None)
        done = 0
        try:
            for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
                for res in _results(batch):
                    if res.path != paths[done]:  # pragma: no cover - preserve_order broken
                        raise ClusterJobError(f"the cluster returned {res.path} for {paths[done]}")
                    done += 1
                    yield res
                if cancel is not None and cancel.cancelled:
                    return
        except ray.exceptions.RayError as exc:
            raise ClusterJobError(f"the Ray cluster failed after {done} photos: "
                                  f"{_cause(exc)}") from exc


def _results(batch: dict[str, np.ndarray]) -> Iterator[EmbedResult]:
    for path, vector, ok, error, thumb in zip(batch["path"], batch["vector"], batch["ok"],
                                              batch["error"], batch["thumb"], strict=True):
        yield EmbedResult(os.fsdecode(bytes(path)),
                          np.array(vector, dtype=np.float32) if ok else None,
                          str(error) or None, bytes(thumb) or None)


def _cause(exc: BaseException) -> str:
    """The worker's own error (``ClusterJobError: ...``) rather than Ray's traceback."""
    cause = getattr(exc, "cause", None) or exc.__cause__
    while cause is not None and getattr(cause, "cause", None) is not None:
        cause = cause.cause
    text = str(cause if cause is not None else exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__
