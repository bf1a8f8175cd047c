"""The dev sets every default is chosen on, each split into a tuning half and a confirmation half.

Kinds (all from ../shared/data, see its README):
- class retrieval: flowers17, clothing10 (its validation and test splits), cub_dev10; every image
  a query against the others of its half, itself excluded; mAP.
- instance retrieval: ukbench_dev300 (75 objects x 4 views); N-S and mAP.
- copy detection: ``copies``, built here (:func:`build_copies`) from shared photos: originals,
  each with ten edited copies (two crops, 90/180/270-degree rotations, a downscale, grey, higher
  contrast, a mirror, JPEG quality 30), among distractors that include other views of the same
  objects (same scene, not the same photo). A query is an edited copy; it is found when the
  original is its first hit.

Halves: even / odd classes (flowers17, cub_dev10), objects (ukbench) or originals (copies);
clothing10 tunes on its validation split and confirms on its test split. A half is a library of
its own: descriptors, DBA and whitening are all of that half alone.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass, field
from pathlib import Path

from common import DATA
from PIL import Image, ImageEnhance, ImageOps

SUFFIXES = {".jpg", ".jpeg", ".png"}
#: the edits of a copy, in the order of the copy's file names
EDITS = ("crop_centre", "crop_corner", "rot90", "rot180", "rot270", "downscale", "grey",
         "contrast", "mirror", "jpeg30")


@dataclass(frozen=True)
class DevSet:
    """One half of one dev set: the library's photos, their labels, and (copy detection) the
    queries with the index of the photo each must find first."""

    name: str
    kind: str  # "class" | "instance" | "copy"
    half: str  # "tune" | "confirm"
    paths: tuple[Path, ...]
    labels: tuple[str, ...]
    queries: tuple[Path, ...] = ()
    targets: tuple[int, ...] = ()  # per query: the row of its original in ``paths``
    edits: tuple[str, ...] = field(default=())  # per query: which edit it is


def _images(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in SUFFIXES)


def _class_halves(name: str, root: Path) -> list[DevSet]:
    classes = sorted(d.name for d in root.iterdir() if d.is_dir())
    out = []
    for half, keep in (("tune", classes[0::2]), ("confirm", classes[1::2])):
        paths = [p for c in keep for p in _images(root / c)]
        out.append(DevSet(name, "class", half, tuple(paths), tuple(p.parent.name for p in paths)))
    return out


def _clothing() -> list[DevSet]:
    out = []
    for half, split in (("tune", "validation"), ("confirm", "test")):
        paths = _images(DATA / "clothing10" / split)
        out.append(DevSet("clothing10", "class", half, tuple(paths),
                          tuple(p.parent.name for p in paths)))
    return out


def _ukbench_rows() -> list[tuple[Path, int]]:
    root = DATA / "ukbench_dev300"
    with open(root / "groups.csv") as fh:
        return [(root / "images" / r["filename"], int(r["group"])) for r in csv.DictReader(fh)]


def _ukbench() -> list[DevSet]:
    rows = _ukbench_rows()
    out = []
    for half, parity in (("tune", 0), ("confirm", 1)):
        keep = [(p, g) for p, g in rows if g % 2 == parity]
        out.append(DevSet("ukbench", "instance", half, tuple(p for p, _ in keep),
                          tuple(str(g) for _, g in keep)))
    return out


def _edit(image: Image.Image, edit: str) -> Image.Image:
    w, h = image.size
    if edit == "crop_centre":
        return image.crop((w // 5, h // 5, w - w // 5, h - h // 5))  # 60 % of each side
    if edit == "crop_corner":
        return image.crop((0, 0, w * 3 // 4, h * 3 // 4))
    if edit.startswith("rot"):
        turn = {"rot90": Image.Transpose.ROTATE_90, "rot180": Image.Transpose.ROTATE_180,
                "rot270": Image.Transpose.ROTATE_270}[edit]
        return image.transpose(turn)
    if edit == "downscale":
        return image.resize((max(1, w // 3), max(1, h // 3)), Image.Resampling.LANCZOS)
    if edit == "grey":
        return ImageOps.grayscale(image).convert("RGB")
    if edit == "contrast":
        return ImageEnhance.Contrast(image).enhance(1.6)
    if edit == "mirror":
        return ImageOps.mirror(image)
    if edit == "jpeg30":
        return image
    raise ValueError(edit)


def _copy_sources() -> tuple[list[Path], list[Path]]:
    """(originals, distractors): ukbench view 0 of 40 objects (its other three views are
    distractors: the same object, another shot), 20 flowers, 10 birds, 10 clothes as originals;
    more of each kind as plain distractors."""
    rng = random.Random(13)
    rows = _ukbench_rows()
    objects = sorted({g for _, g in rows})
    rng.shuffle(objects)
    chosen = set(objects[:40])
    originals = [p for i, (p, g) in enumerate(rows) if g in chosen and i % 4 == 0]
    distractors = [p for i, (p, g) in enumerate(rows) if g in chosen and i % 4 != 0]
    for root, n_orig, n_dis in ((DATA / "oxford_flowers17", 20, 200),
                                (DATA / "cub_dev10", 10, 60),
                                (DATA / "clothing10" / "train", 10, 60)):
        pool = _images(root)
        rng.shuffle(pool)
        originals += pool[:n_orig]
        distractors += pool[n_orig : n_orig + n_dis]
    return originals, distractors


def build_copies(out: Path) -> Path:
    """Write the copy-detection set under ``out`` once (deterministic): ``library/`` holds the
    originals and distractors, ``queries/`` the edited copies; ``copies.csv`` names each copy's
    original and edit."""
    index = out / "copies.csv"
    if index.exists():
        return out
    originals, distractors = _copy_sources()
    (out / "library").mkdir(parents=True, exist_ok=True)
    (out / "queries").mkdir(parents=True, exist_ok=True)
    rows = []
    for n, src in enumerate(originals):
        with Image.open(src) as im:
            image = ImageOps.exif_transpose(im).convert("RGB")
        name = f"o{n:03d}.jpg"
        image.save(out / "library" / name, quality=92)
        for edit in EDITS:
            copy_name = f"o{n:03d}_{edit}.jpg"
            _edit(image, edit).save(out / "queries" / copy_name,
                                    quality=30 if edit == "jpeg30" else 90)
            rows.append((copy_name, name, edit))
    for n, src in enumerate(distractors):
        with Image.open(src) as im:
            ImageOps.exif_transpose(im).convert("RGB").save(out / "library" / f"d{n:03d}.jpg",
                                                            quality=92)
    with open(index.with_suffix(".tmp"), "w", newline="") as fh:
        csv.writer(fh).writerows([("copy", "original", "edit"), *rows])
    index.with_suffix(".tmp").replace(index)
    return out


def _copies(root: Path) -> list[DevSet]:
    with open(root / "copies.csv") as fh:
        rows = list(csv.DictReader(fh))
    originals = sorted({r["original"] for r in rows})
    distractors = sorted(p.name for p in (root / "library").glob("d*.jpg"))
    out = []
    for half, parity in (("tune", 0), ("confirm", 1)):
        mine = [o for i, o in enumerate(originals) if i % 2 == parity]
        lib = mine + [d for i, d in enumerate(distractors) if i % 2 == parity]
        row_of = {name: i for i, name in enumerate(lib)}
        qs = [r for r in rows if r["original"] in row_of]
        out.append(DevSet("copies", "copy", half, tuple(root / "library" / n for n in lib),
                          tuple(lib), tuple(root / "queries" / r["copy"] for r in qs),
                          tuple(row_of[r["original"]] for r in qs), tuple(r["edit"] for r in qs)))
    return out


def dev_sets(copies_root: Path) -> list[DevSet]:
    """Every half of every dev set (the copy set is built under ``copies_root`` if missing)."""
    build_copies(copies_root)
    return [*_class_halves("flowers17", DATA / "oxford_flowers17"), *_clothing(),
            *_class_halves("cub_dev10", DATA / "cub_dev10"), *_ukbench(), *_copies(copies_root)]
