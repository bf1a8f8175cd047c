"""What watching costs and how soon a new photo is found (issue 16), on the shipped code path.

1. **a pass with nothing changed**: ``ImageLibrary.index_library`` over a library of ``--n``
   indexed photos (the walk, the stat of every file, the diff with the catalog): what every
   batch of the watcher costs on top of embedding what changed;
2. **latency**: ``watch_libraries`` (what ``imgsearch watch`` runs) with its default debounce;
   a new photo is copied into the library and the clock runs until ``ImageLibrary.search`` finds
   it, with file events and with polling (``--poll-interval``), ``--repeats`` times each.

The library is UKBench's 300 photos plus flowers17 photos up to ``--n``, copied under the temp
dir; the model is the default one (EfficientNet-Lite0, the default runtime).

    cd bench && python watch_latency.py [--n 1000] [--repeats 3] [--poll-interval 10]
"""

from __future__ import annotations

import argparse
import queue
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path

from common import flowers17, require, ukbench

from imgsearch_gui.app.library import ImageLibrary
from imgsearch_gui.app.watch import DEBOUNCE_S, watch_libraries
from imgsearch_gui.base.config import EmbedderConfig
from imgsearch_gui.base.types import CancelToken, IndexReport
from imgsearch_gui.ml.embedder import load_embedder


def make_library(folder: Path, n: int) -> tuple[list[Path], list[Path]]:
    """(library photos, spare photos to add later), copied from the dev sets."""
    photos = ukbench()[0] + flowers17()[0]
    require(photos)
    folder.mkdir(parents=True)
    for i, src in enumerate(photos[:n]):  # 100 photos per subfolder
        sub = folder / f"{i // 100:02d}"
        sub.mkdir(exist_ok=True)
        shutil.copyfile(src, sub / f"{i:05d}{src.suffix}")
    return sorted(folder.rglob("*.*")), photos[n:n + 20]


def time_noop_pass(library: ImageLibrary, root: Path, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        report = [e for e in library.index_library(root) if isinstance(e, IndexReport)][-1]
        times.append(time.perf_counter() - started)
        assert report.embedded == 0, report
    return min(times)


def latency(library: ImageLibrary, root: Path, spares: list[Path], repeats: int,
            **options) -> list[float]:
    cancel = CancelToken()
    events: queue.Queue = queue.Queue()

    def loop() -> None:
        for event in watch_libraries(library, [str(root)], cancel=cancel, **options):
            events.put(event)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    while not isinstance(events.get(timeout=600), IndexReport):  # the catch-up pass
        pass
    out = []
    try:
        for i in range(repeats):
            src = spares.pop()
            dest = root / f"new-{options.get('poll')}-{i}{src.suffix}"
            started = time.perf_counter()
            shutil.copyfile(src, dest)
            while True:
                hits = library.search(str(dest), k=1)
                if hits and hits[0].path == str(dest.resolve()):
                    break
                time.sleep(0.05)
            out.append(time.perf_counter() - started)
            time.sleep(1.0)
    finally:
        cancel.cancel()
        thread.join(30)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--poll-interval", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "library"
        photos, spares = make_library(root, args.n)
        embedder = load_embedder(EmbedderConfig())
        print(f"model: {embedder.meta.describe()}, runtime {embedder.runtime}")
        with ImageLibrary(Path(tmp) / "data", embedder) as library:
            started = time.perf_counter()
            for _ in library.index_library(root):
                pass
            print(f"indexed {len(photos)} photos in {time.perf_counter() - started:.1f} s")
            noop = time_noop_pass(library, root)
            print(f"a pass with nothing changed over {len(photos)} photos: {noop * 1000:.0f} ms "
                  f"({noop / len(photos) * 1e6:.0f} us per photo)")
            for mode, options in (("events", {"poll": False}),
                                  ("polling", {"poll": True, "poll_interval_s": args.poll_interval})):
                times = latency(library, root, spares, args.repeats, **options)
                print(f"{mode}: new photo found by search after "
                      f"{statistics.median(times):.2f} s median (min {min(times):.2f}, max "
                      f"{max(times):.2f}; debounce {DEBOUNCE_S} s)")


if __name__ == "__main__":
    main()
