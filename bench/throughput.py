"""Indexing speed of each runtime (torch, OpenVINO), from decoding alone to the whole command.

All in one run, so the ratios compare like with like on a shared, noisy machine:

1. **decode only**: the photos decoded as the model is fed them (read, JPEG decode, EXIF, resize
   to the longest side, uint8 tensor) by the indexing code's decoder, on 1 thread, on as many
   threads as indexing uses, and on that many processes: the ceiling the pipeline cannot pass;
2. **in-process**, per runtime: (a) grouping + forward + pooling on tensors decoded beforehand,
   (b) ``Embedder.embed_files`` from files (decoding overlapped with inference), on the 640x480
   photos and on flowers17's mixed shapes (a shape-specific compiled model vs a dynamic one);
3. **the whole command**: ``imgsearch index DIR --runtime R`` in a fresh process and a fresh data
   dir (process start, model load, scan, hashing, embedding, saving: what a user waits for),
   alternating runtimes, best of ``--repeats``; the OpenVINO conversion is cached before (its
   one-off cost is printed);
4. **the same results**: for ``--queries`` photos, the top 10 of ``ImageLibrary.search`` (the
   shipped search: rotations, DBA, alpha-QE) on the index each runtime built, queried with that
   runtime; overlap = shared hits / 10, and the descriptors' cosine.

The 640x480 photos are UKBench and flowers17 photos centre-cropped to 4:3 and resized (JPEG q90),
made once under the temp dir.

    cd bench && python throughput.py [--n 600] [--repeats 2] [--queries 40]

Target (issue 15): (3) default / torch >= 2.5, overlap >= 0.97.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np
from common import flowers17, require, ukbench
from PIL import Image

from imgsearch_gui.base.config import EmbedderConfig, decode_workers
from imgsearch_gui.ml.embedder import decode, load_embedder

RUNTIMES = ("torch", "openvino")


def photos_640(n: int) -> list[Path]:
    """``n`` 640x480 JPEGs made from UKBench and flowers17 photos (made once, kept in /tmp)."""
    folder = Path(tempfile.gettempdir()) / "imgsearch-bench" / f"photos640-{n}"
    done = sorted(folder.glob("*.jpg"))
    if len(done) == n:
        return done
    folder.mkdir(parents=True, exist_ok=True)
    sources = [p for pair in zip(ukbench()[0], flowers17()[0][::3], strict=False) for p in pair]
    require(sources)
    out = []
    for i, src in enumerate((sources * (n // len(sources) + 1))[:n]):
        im = Image.open(src).convert("RGB")
        w, h = im.size
        tw = min(w, h * 4 // 3)
        th = tw * 3 // 4
        left, top = (w - tw) // 2, (h - th) // 2
        im = im.crop((left, top, left + tw, top + th)).resize((640, 480), Image.Resampling.LANCZOS)
        path = folder / f"{i:05d}.jpg"
        im.save(path, quality=90)
        out.append(path)
    return out


def decode_only(paths: list[Path], size: int, threads: int, processes: bool = False) -> float:
    """Images/s of the indexing decoder alone (processes: the tensors pickled back, as a
    process pool would have to)."""
    t0 = time.perf_counter()
    pool = ProcessPoolExecutor(threads) if processes else ThreadPoolExecutor(threads)
    with pool:
        for _ in pool.map(partial(decode, size=size), paths, chunksize=8 if processes else 1):
            pass
    return len(paths) / (time.perf_counter() - t0)


def _done(value) -> Future:
    fut: Future = Future()
    fut.set_result(value)
    return fut


def forward_only(embedder, tensors: list) -> float:
    bs = embedder.config.batch_size
    t0 = time.perf_counter()
    for start in range(0, len(tensors), bs * 2):
        chunk = [(str(i), _done(t)) for i, t in enumerate(tensors[start:start + bs * 2])]
        for _ in embedder._embed_chunk(chunk, bs):
            pass
    return len(tensors) / (time.perf_counter() - t0)


def pipeline(embedder, paths: list[Path]) -> float:
    t0 = time.perf_counter()
    n = sum(1 for r in embedder.embed_files(paths) if r.vector is not None)
    return n / (time.perf_counter() - t0)


def index_command(folder: Path, data_dir: Path, runtime: str, env: dict) -> float:
    """Wall seconds of ``imgsearch index`` in a new process (a new, empty data dir)."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "imgsearch_gui.cli", "index", str(folder), "--data-dir",
                    str(data_dir), "--runtime", runtime], check=True, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def overlap(data_dirs: dict[str, Path], queries: list[Path]) -> tuple[float, float, float]:
    """(mean top-10 overlap, its minimum, the least query-descriptor cosine) torch vs openvino."""
    from imgsearch_gui.app.config import load_config
    from imgsearch_gui.app.library import ImageLibrary

    tops, vectors = {}, {}
    for runtime, data_dir in data_dirs.items():
        config = load_config(data_dir)
        assert config.runtime == runtime, config
        embedder = load_embedder(config)
        assert embedder.runtime == runtime, embedder.runtime
        with ImageLibrary.for_config(data_dir, embedder, config) as library:
            tops[runtime] = [[h.path for h in library.search(q, k=10)] for q in queries]
        vectors[runtime] = np.stack([embedder.embed_path(q) for q in queries])
    shared = [len(set(a) & set(b)) / 10 for a, b in zip(tops["torch"], tops["openvino"], strict=True)]
    cosine = (vectors["torch"] * vectors["openvino"]).sum(1)
    return float(np.mean(shared)), float(np.min(shared)), float(cosine.min())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=600, help="640x480 photos indexed")
    ap.add_argument("--mixed", type=int, default=200, help="flowers17 photos (mixed shapes)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--queries", type=int, default=40)
    ap.add_argument("--skip-command", action="store_true", help="only sections 1 and 2")
    args = ap.parse_args()
    config = EmbedderConfig()
    size, workers = config.size, decode_workers(config.workers)
    photos = photos_640(args.n)
    mixed = flowers17()[0][:: max(1, len(flowers17()[0]) // args.mixed)][: args.mixed]
    cores = len(os.sched_getaffinity(0))
    print(f"{len(photos)} 640x480 JPEGs, {len(mixed)} flowers17 JPEGs; {cores} cores; the "
          f"defaults: {config.backbone}, {config.pooling}, {size} px, batch {config.batch_size}, "
          f"{workers} decoding threads\n")

    print("| decode only (the pipeline's ceiling) | 640x480, img/s | flowers17, img/s |")
    print("|---|---:|---:|")
    for threads, processes in ((1, False), (workers, False), (workers, True)):
        label = f"{threads} {'processes' if processes else 'threads' if threads > 1 else 'thread'}"
        print(f"| {label} | "
              f"{max(decode_only(photos, size, threads, processes) for _ in range(2)):.0f} | "
              f"{max(decode_only(mixed, size, threads, processes) for _ in range(2)):.0f} |",
              flush=True)

    embedders = {r: load_embedder(EmbedderConfig(runtime=r)) for r in RUNTIMES}
    assert {r: e.runtime for r, e in embedders.items()} == {r: r for r in RUNTIMES}
    tensors = {name: [decode(p, size) for p in paths] for name, paths in
               (("640x480", photos[:200]), ("flowers17", mixed))}
    rows: dict[tuple[str, str], list[float]] = {}
    for emb in embedders.values():  # warm-up: kernels, compiled shapes
        pipeline(emb, photos[:48])
        pipeline(emb, mixed)
    for _ in range(args.repeats):
        for runtime, emb in embedders.items():
            for name, paths in (("640x480", photos[:200]), ("flowers17", mixed)):
                a = forward_only(emb, tensors[name])
                b = pipeline(emb, paths)
                best = rows.get((runtime, name), [0.0, 0.0])
                rows[(runtime, name)] = [max(best[0], a), max(best[1], b)]
    print("\n| runtime | photos | (a) forward only, img/s | (b) embed_files, img/s | (b) vs torch |")
    print("|---|---|---:|---:|---:|")
    for (runtime, name), (a, b) in rows.items():
        print(f"| {runtime} | {name} | {a:.1f} | {b:.1f} | {b / rows[('torch', name)][1]:.2f}x |")
    del embedders
    if args.skip_command:
        return

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        env = dict(os.environ, IMGSEARCH_CACHE_DIR=str(tmp_path / "cache"),
                   IMGSEARCH_LOG_DIR=str(tmp_path / "logs"))
        warm = tmp_path / "warm-photos"
        warm.mkdir()
        for p in photos[:8]:
            os.symlink(p, warm / p.name)
        first = index_command(warm, tmp_path / "warm-ov", "openvino", env)
        again = index_command(warm, tmp_path / "warm-ov2", "openvino", env)
        print(f"\nfirst OpenVINO run (converts and caches the model): {first:.1f} s for 8 photos; "
              f"with the cache: {again:.1f} s")
        walls: dict[str, list[float]] = {r: [] for r in RUNTIMES}
        dirs = {}
        for rep in range(args.repeats):
            for runtime in (RUNTIMES if rep % 2 == 0 else RUNTIMES[::-1]):
                dirs[runtime] = tmp_path / f"data-{runtime}-{rep}"
                walls[runtime].append(index_command(photos[0].parent, dirs[runtime], runtime, env))
        best = {r: min(w) for r, w in walls.items()}
        print(f"\n`imgsearch index` of {len(photos)} photos, whole process (runs: "
              + "; ".join(f"{r} {', '.join(f'{w:.1f}' for w in ws)} s" for r, ws in walls.items())
              + ")\n")
        print("| runtime | wall s (best) | photos/s | vs torch |")
        print("|---|---:|---:|---:|")
        for runtime in RUNTIMES:
            print(f"| {runtime} | {best[runtime]:.1f} | {len(photos) / best[runtime]:.1f} | "
                  f"{best['torch'] / best[runtime]:.2f}x |")
        os.environ["IMGSEARCH_CACHE_DIR"] = env["IMGSEARCH_CACHE_DIR"]
        mean, least, cosine = overlap(dirs, photos[: args.queries])
        print(f"\ntop-10 overlap torch vs openvino over {args.queries} queries: mean {mean:.3f}, "
              f"least {least:.1f}; least query-descriptor cosine {cosine:.6f}")


if __name__ == "__main__":
    main()
