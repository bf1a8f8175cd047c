"""Decoding speed of each photo format, as indexing and the GUI's thumbnails decode them.

``load_image(path, max_side)`` on as many threads as indexing decodes with (``decode_workers()``,
2 on a 2-core machine), for the model's input size (``registry.DEFAULT_SIZE``) and for the GUI's
160 px thumbnails, in images/s and as a ratio to JPEG measured in the same run (the machine is
shared and noisy: only the ratios compare).

The photos are phone-sized (4032x3024, 12 MP) mosaics of 36 real photos each (flowers17 from
../shared/data, else skimage's bundled ones) at about their own resolution, so that they compress
like real photos (an upscaled small photo would compress, and decode, unrealistically well), each
written as:

- JPEG q90 (what phones and cameras write),
- HEIC q80, 512 px grid tiles and a 320 px thumbnail (as iPhones write them),
- AVIF q75 (Pillow's encoder, speed 8),
- DNG with a 1620 px embedded JPEG preview (as most camera RAWs carry one) and DNG without a
  preview (the half-size development path), 12-bit uncompressed mosaics written by
  tests/photos.py.

Also measured, for the choice made in base/heif.py (libheif threads per photo): HEIC with 1 and
4 threads instead of 2, and one HEIC decoded alone (the wait for a query photo) with each.

    cd bench && python decode_formats.py [--n 6] [--rounds 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common import flowers17
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from photos import make_dng  # noqa: E402 (the DNG writer the tests use)

from imgsearch_gui.base import heif, registry  # noqa: E402
from imgsearch_gui.base.config import decode_workers  # noqa: E402
from imgsearch_gui.base.images import load_image  # noqa: E402

SIZE = (4032, 3024)
PREVIEW = (1620, 1215)
THUMB = 160


def sources(count: int) -> list[Image.Image]:
    """``count`` real photos, RGB: flowers17 when ../shared/data has it, else skimage's."""
    paths = flowers17()[0]
    if len(paths) >= count:
        step = max(1, len(paths) // count)
        return [Image.open(p).convert("RGB") for p in paths[::step][:count]]
    from skimage import data

    photos = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket()]
    return [Image.fromarray(photos[i % len(photos)]) for i in range(count)]


def phone_sized(photos: list[Image.Image]) -> Image.Image:
    """A 12 MP mosaic of 6x6 real photos at about their own resolution (672x504 crops): detail
    at every scale like a phone photo, so each format compresses (and decodes) about as it would
    a real one, which an upscaled small photo would not."""
    cols, rows = 6, 6
    tw, th = SIZE[0] // cols, SIZE[1] // rows
    canvas = Image.new("RGB", SIZE)
    for k, photo in enumerate(photos[: cols * rows]):
        scale = max(tw / photo.width, th / photo.height)
        tile = photo.resize((max(tw, round(photo.width * scale)),
                             max(th, round(photo.height * scale))), Image.Resampling.BICUBIC)
        left, top = (tile.width - tw) // 2, (tile.height - th) // 2
        canvas.paste(tile.crop((left, top, left + tw, top + th)), ((k % cols) * tw,
                                                                   (k // cols) * th))
    return canvas


def make_set(n: int) -> dict[str, list[Path]]:
    """The photos in each format (made once under the temp dir)."""
    folder = Path(tempfile.gettempdir()) / "imgsearch-bench" / f"formats-{n}"
    folder.mkdir(parents=True, exist_ok=True)
    assert heif.available(), "pillow-heif is needed to write the HEIC photos"
    writers: dict[str, tuple[str, Callable[[Image.Image, Path], object]]] = {
        "JPEG": (".jpg", lambda im, p: im.save(p, "JPEG", quality=90)),
        "HEIC": (".heic", lambda im, p: im.save(p, "HEIF", quality=80, tile_size=512,
                                                thumbnails=[320])),
        "AVIF": (".avif", lambda im, p: im.save(p, "AVIF", quality=75, speed=8)),
        "DNG + preview": (".dng", lambda im, p: make_dng(p, im, preview=im.resize(PREVIEW))),
        "DNG, no preview": ("-raw.dng", lambda im, p: make_dng(p, im)),
    }
    out: dict[str, list[Path]] = {name: [] for name in writers}
    photos = sources(36 * n)
    for i in range(n):
        big = None
        for name, (suffix, write) in writers.items():
            path = folder / f"photo{i:02d}{suffix}"
            if not path.exists():
                big = big or phone_sized(photos[36 * i: 36 * (i + 1)])
                write(big, path)
            out[name].append(path)
    return out


def rate(paths: list[Path], max_side: int, threads: int, rounds: int) -> float:
    """Images/s of load_image over ``paths`` on ``threads`` threads, best of ``rounds``."""
    best = 0.0
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda p: load_image(p, max_side=max_side), paths[:threads]))  # warm
        for _ in range(rounds):
            start = time.perf_counter()
            list(pool.map(lambda p: load_image(p, max_side=max_side), paths))
            best = max(best, len(paths) / (time.perf_counter() - start))
    return best


def heif_threads(n: int) -> None:
    import pillow_heif

    pillow_heif.options.DECODE_THREADS = n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=6, help="photos per format")
    ap.add_argument("--rounds", type=int, default=3, help="passes over them; the best counts")
    args = ap.parse_args()
    threads = decode_workers()
    sets = make_set(args.n)
    sizes = (registry.DEFAULT_SIZE, THUMB)
    rows: list[tuple[str, float, list[float]]] = []
    for name, paths in sets.items():
        mb = sum(p.stat().st_size for p in paths) / len(paths) / 1e6
        rows.append((name, mb, [rate(paths, s, threads, args.rounds) for s in sizes]))
    heic = sets["HEIC"]
    alone = {}
    for n in sorted({1, heif.DECODE_THREADS, 4}):
        heif_threads(n)
        if n != heif.DECODE_THREADS:
            rows.append((f"HEIC, libheif {n} thread{'s' if n > 1 else ''}", rows[1][1],
                         [rate(heic, s, threads, args.rounds) for s in sizes]))
        alone[n] = 1000 / rate(heic, registry.DEFAULT_SIZE, 1, args.rounds)
    heif_threads(heif.DECODE_THREADS)
    jpeg = rows[0][2]
    print(f"{args.n} photos of {SIZE[0]}x{SIZE[1]} per format, load_image on {threads} threads, "
          f"best of {args.rounds}")
    head = " | ".join(f"max_side {s}: images/s | x JPEG" for s in sizes)
    print(f"| format | MB/photo | {head} |")
    print("|---|---:|" + "---:|---:|" * len(sizes))
    for name, mb, rates in rows:
        cells = " | ".join(f"{r:.1f} | {r / j:.2f}" for r, j in zip(rates, jpeg, strict=True))
        print(f"| {name} | {mb:.1f} | {cells} |")
    print(f"HEIC rows: libheif {heif.DECODE_THREADS} threads per photo (base/heif.py) unless "
          "named. One HEIC alone (a query), max_side "
          f"{registry.DEFAULT_SIZE}: " + ", ".join(f"{ms:.0f} ms with {n} libheif thread"
                                                  f"{'s' if n > 1 else ''}"
                                                  for n, ms in alone.items()))


if __name__ == "__main__":
    main()
