"""Choose the shipped defaults across every dev set, by the worst case.

Phase ``embed`` computes descriptors once per (input size, multi-scale, view) with every pooling
of the same feature maps (``RetrievalNet.describe_pools``), through the app's decoding
(``ml.embedder.decode``) and view turns (``ml.views``), cached under ``--cache``.
Phase ``score`` (``bench/defaults_score.py``) runs every candidate through the search pipeline
that ``imgsearch search`` and ``eval`` share.

    python bench/defaults.py embed [--cache /tmp/imgsearch-bench] [--plan quick|full]
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
        return infer(lambda x: torch.cat(net.describe_pools(x, pools), dim=1), batch,
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("phase", choices=["embed"])
    ap.add_argument("--cache", type=Path, default=Path("/tmp/imgsearch-bench"))
    ap.add_argument("--plan", choices=sorted(PLANS), default="full")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    sets = dev_sets(args.cache / "copies")
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
