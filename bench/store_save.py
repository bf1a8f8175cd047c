"""What verified writes cost: VectorStore.save() with every file read back (size + CRC, the
hnsw.bin layout check) against the same save without the read-back, in one process.

    python bench/store_save.py --sizes 5000 20000 --dim 1280 --reps 3

The baseline keeps what the store did before verification (write, fsync, CRC of the arrays and of
hnsw.bin); only the read-back and the layout walk are left out. Runs alternate between the two so
that other jobs on the machine load both alike.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from imgsearch_gui.index import durable, store
from imgsearch_gui.index.store import HnswParams, VectorStore


def _unverified_npy(directory: Path, path: Path, arr: np.ndarray) -> dict:
    with open(path, "wb") as fh:
        np.save(fh, arr, allow_pickle=False)
        fh.flush()
        os.fsync(fh.fileno())
        size = fh.tell()
    return {"size": size, "crc32": durable.crc_array(arr)}


def _unverified_hnsw(directory: Path, path: Path, count: int, capacity: int) -> dict:
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())
    return {"size": path.stat().st_size, "crc32": durable.crc_file(path)}


@contextlib.contextmanager
def unverified():
    saved = durable.save_npy, durable.check_hnsw
    durable.save_npy, durable.check_hnsw = _unverified_npy, _unverified_hnsw
    try:
        yield
    finally:
        durable.save_npy, durable.check_hnsw = saved


def one_save(vectors: np.ndarray, root: Path, verified: bool) -> float:
    """Seconds of the save of a store holding ``vectors`` (graph built beforehand)."""
    folder = Path(tempfile.mkdtemp(dir=root))
    s = VectorStore(folder, HnswParams(exact_threshold=1000))
    s.add(np.arange(len(vectors)), vectors)
    s.build_graph_if_due()
    with contextlib.nullcontext() if verified else unverified():
        t0 = time.perf_counter()
        s.save()
        seconds = time.perf_counter() - t0
    shutil.rmtree(folder)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 20000])
    parser.add_argument("--dim", type=int, default=1280)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    assert store.durable is durable  # the store calls the functions patched above
    rng = np.random.default_rng(0)
    root = Path(tempfile.mkdtemp(prefix="store-save-"))
    print("| vectors | dim | save, verified s | save, unverified s | ratio |")
    print("|---:|---:|---:|---:|---:|")
    try:
        for n in args.sizes:
            x = rng.standard_normal((n, args.dim)).astype(np.float32)
            x /= np.linalg.norm(x, axis=1, keepdims=True)
            times: dict[bool, list[float]] = {True: [], False: []}
            for _ in range(args.reps):
                for verified in (True, False):
                    times[verified].append(one_save(x, root, verified))
            v, u = statistics.median(times[True]), statistics.median(times[False])
            print(f"| {n:,} | {args.dim} | {v:.3f} | {u:.3f} | {v / u:.2f} |")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
