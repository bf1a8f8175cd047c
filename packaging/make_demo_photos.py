"""Make the first-run demo photos (resources/demo/) from the CC0 clothing10 dataset.

``python packaging/make_demo_photos.py [--source ../shared/data/clothing10/test] [--per-class 4]``

Takes photos spread evenly over each class folder (sorted names, so the choice is repeatable),
downscales them to at most 320 px, strips metadata and writes ``<class>-<n>.jpg`` plus the
licence and a provenance note. The outputs are committed (about 15 KB a photo).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "imgsearch_gui" / "resources" / "demo"
MAX_SIDE = 320


def pick(files: list[Path], n: int) -> list[Path]:
    """``n`` files spread evenly over ``files`` (all of them if there are fewer)."""
    if len(files) <= n:
        return files
    return [files[(i * len(files)) // n] for i in range(n)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=ROOT.parent / "shared/data/clothing10/test")
    parser.add_argument("--per-class", type=int, default=4)
    args = parser.parse_args(argv)
    dataset = args.source.parent
    if DEMO.exists():
        shutil.rmtree(DEMO)
    DEMO.mkdir(parents=True)
    count = 0
    for folder in sorted(p for p in args.source.iterdir() if p.is_dir()):
        for n, src in enumerate(pick(sorted(folder.glob("*.jpg")), args.per_class), start=1):
            with Image.open(src) as image:
                image = ImageOps.exif_transpose(image).convert("RGB")
                image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
                image.save(DEMO / f"{folder.name}-{n}.jpg", quality=82, optimize=True,
                           progressive=True)
            count += 1
    shutil.copy(dataset / "LICENSE", DEMO / "LICENSE.txt")
    (DEMO / "README.txt").write_text(
        "Demo photos for imgsearch's first run (imgsearch-gui --demo).\n\n"
        f"{count} photos, {args.per_class} per class, downscaled to at most {MAX_SIDE} px, from the\n"
        "Clothing dataset (small) by Alexey Grigorev, github.com/alexeygrigorev/clothing-dataset-small,\n"
        "a subset of github.com/alexeygrigorev/clothing-dataset, released under CC0 1.0\n"
        "(public domain dedication; LICENSE.txt). File names are <class>-<n>.jpg.\n",
        encoding="utf-8",
    )
    print(f"{count} photos in {DEMO}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
