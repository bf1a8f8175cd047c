"""Choose the shipped defaults across every dev set, by the worst case.

Phase ``embed`` computes descriptors once per (input size, multi-scale, view) with every pooling
of the same feature maps (``RetrievalNet.describe_pools``), through the app's decoding
(``ml.embedder.decode``) and view turns (``ml.views``), cached under ``--cache``.
Phase ``score`` (``bench/defaults_score.py``) runs every candidate through the search pipeline
that ``imgsearch search`` and ``eval`` share.

    python bench/defaults.py embed [--cache /tmp/imgsearch-bench] [--plan quick|full|dear]
    python bench/defaults.py cost   # images/s of each setting through Embedder.embed_files
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from devsets import dev_sets

from imgsearch_gui.base.config import EmbedderConfig
from imgsearch_gui.ml.batching import embed_by_shape
from imgsearch_gui.ml.descriptor import infer
from imgsearch_gui.ml.embedder import decode, load_embedder
from imgsearch_gui.ml.pooling import Pooling
from imgsearch_gui.ml.views import mirror, turn

POOLINGS = ("rmac", "gem", "mac")
#: view name -> tensor transform
VIEWS = {"r0": lambda t: t, "r1": lambda t: turn(t, 1), "r2": lambda t: turn(t, 2),
         "r3": lambda t: turn(t, 3), "m": mirror}
#: (size, multiscale, which photos get the turned views: "all" | "queries" (copy queries) | "")
PLANS = {
    "quick": [(384, False, "all")],
    "full": [(384, False, "all"), (512, False, "queries"), (640, False, "queries"),
             (384, True, "queries"), (512, True, "queries")],
    # the dearer settings on the tuning halves only (with --half tune): 2 cores are slow
    "dear": [(384, True, "queries"), (640, False, "queries")],
}


def cache_file(cache: Path, size: int, multiscale: bool, view: str) -> Path:
    return cache / f"desc-{size}-{'ms' if multiscale else 'ss'}-{view}.npz"


def load_cache(path: Path) -> dict[str, np.ndarray]:
    if not path.exists():
        return {}
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def embed(paths: list[Path], size: int, multiscale: bool, view: str, cache: Path) -> float:
    """Add the descriptors of ``paths`` at this setting to the cache; images/s (0: all cached).

    Each entry is (len(POOLINGS), dim): one descriptor per pooling of the same feature maps."""
    target = cache_file(cache, size, multiscale, view)
    have = load_cache(target)
    todo = [p for p in paths if str(p) not in have]
    if not todo:
        return 0.0
    embedder = load_embedder(EmbedderConfig(size=size, multiscale=multiscale, dba=0))
    pools = [Pooling(p).to(embedder.device) for p in POOLINGS]
    net = embedder.net
    transform = VIEWS[view]

    def batch_fn(batch: torch.Tensor) -> np.ndarray:
        return infer(lambda x: torch.cat(net.describe_pools(x, pools, embedder.trunk), dim=1), batch,
                     embedder.device)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        for start in range(0, len(todo), 64):
            chunk = todo[start : start + 64]
            tensors = list(pool.map(lambda p: transform(decode(p, size)), chunk))
            vectors = embed_by_shape(tensors, batch_fn, 16)
            assert vectors is not None
            for p, v in zip(chunk, vectors, strict=True):
                have[str(p)] = v.reshape(len(POOLINGS), -1)
    rate = len(todo) / (time.perf_counter() - t0)
    tmp = target.with_name(target.name + ".tmp.npz")
    np.savez(tmp, **have)
    tmp.replace(target)
    return rate


def cost(sets, n: int = 48, rounds: int = 2) -> dict[str, float]:
    """Images/s of each descriptor setting through ``Embedder.embed_files`` (what indexing
    runs), on the same ``n`` photos, the settings interleaved, best of ``rounds``."""
    photos = [p for s in sets if s.name == "flowers17" for p in s.paths][:n]
    settings = [(384, False), (512, False), (640, False), (384, True), (512, True)]
    embedders = {k: load_embedder(EmbedderConfig(size=k[0], multiscale=k[1], dba=0))
                 for k in settings}
    best: dict[str, float] = {}
    for _ in range(rounds):
        for (size, ms), embedder in embedders.items():
            t0 = time.perf_counter()
            assert all(r.vector is not None for r in embedder.embed_files(photos))
            key = f"{size}-{'ms' if ms else 'ss'}"
            best[key] = max(best.get(key, 0.0), len(photos) / (time.perf_counter() - t0))
    return {k: round(v, 1) for k, v in best.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("phase", choices=["embed", "cost"])
    ap.add_argument("--cache", type=Path, default=Path("/tmp/imgsearch-bench"))
    ap.add_argument("--plan", choices=sorted(PLANS), default="full")
    ap.add_argument("--half", choices=["tune", "confirm"], help="only this half of every set")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    sets = [s for s in dev_sets(args.cache / "copies") if args.half in (None, s.half)]
    if args.phase == "cost":
        rates = cost(sets)
        (args.cache / "cost.json").write_text(json.dumps(rates, indent=1))
        print(json.dumps({"images_per_s": rates, "threads": torch.get_num_threads()}))
        return
    library = sorted({p for s in sets for p in s.paths})
    queries = sorted({q for s in sets for q in s.queries})
    rates = {}
    for size, multiscale, turned in PLANS[args.plan]:
        key = f"{size}-{'ms' if multiscale else 'ss'}"
        rates[key] = embed([*library, *queries], size, multiscale, "r0", args.cache)
        views_of = {"all": [*library, *queries], "queries": queries, "": []}[turned]
        for view in ("r1", "r2", "r3", "m"):
            photos = queries if view == "m" else views_of
            if photos:
                embed(photos, size, multiscale, view, args.cache)
        print(json.dumps({"setting": key, "images_per_s": round(rates[key], 1)}), flush=True)
    (args.cache / "embed-rates.json").write_text(json.dumps(rates, indent=1))


if __name__ == "__main__":
    main()
