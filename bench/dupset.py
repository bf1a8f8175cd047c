"""A seeded near-duplicate photo dev set (a ``tune`` and a ``heldout`` half) and its pair scorer.

Modelled on a holiday folder: each original photo with some of eight kinds of copies (re-saved
JPEG, downscaled, grey, colour-edited, turned, mirrored, cropped, byte-identical; some with a second
edit, e.g. ``crop+resave``), among other shots of the same scene (the other ukbench views of the
object, the stereo motorcycle's right image) and other photos of the same class (another flower of
the species, ...), all under random names in a few subfolders. Sources: ../shared/data (ukbench_dev300,
oxford_flowers17, cub_dev10, clothing10) and scikit-image's bundled photos. Each half is a folder
with ``truth.json``::

    {"groups": [[rel, ...], ...],  # an original and all its copies (groups of two or more only)
     "exact": [[rel, ...], ...],   # byte-identical sets
     "kinds": {rel: kind},         # "original" | "scene" | "distractor" | a copy kind ("crop", "turn+resave")
     "edits": {rel: text}, "sources": {rel: source}, "skipped": [[source, duplicate_of], ...]}

``skipped`` lists source photos left out because they duplicate one already taken (oxford_flowers17
has dozens of such pairs; scikit-image's ``cat`` is ``chelsea``).

Usage: python bench/dupset.py OUT_DIR [--seed N] [--originals N] [--scale N]
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import random
import shutil
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from common import DATA, flowers17, ukbench
from PIL import Image, ImageEnhance, ImageOps

SUFFIXES = {".jpg", ".jpeg", ".png"}
COPY_KINDS = ("resave", "downscale", "grey", "colour", "turn", "mirror", "crop", "exact")
#: the second edits a copy of a kind may get (its kind is then "crop+resave", ...)
SECOND = {"crop": ("resave", "downscale"), "turn": ("downscale", "resave"), "mirror": ("resave", "crop"),
          "colour": ("resave", "downscale"), "grey": ("downscale", "crop"), "downscale": ("resave",)}
SKIMAGE = ("astronaut", "chelsea", "cat", "coffee", "rocket", "camera", "hubble_deep_field",
           "immunohistochemistry")
FOLDERS = ("2019 Holiday", "Phone/Camera", "Été 2021", "misc", "Downloads", "backup/old photos")
WORDS = ("plage", "Zürich", "café", "été", "日本 旅行", "Łódź", "São Paulo", "Ærø", "München", "Kraków",
         "İstanbul", "crème brûlée", "Sagrada Família")
#: two source photos are taken for duplicates when their 16x16 grey thumbnails correlate this much and
#: their 4x4 colour thumbnails differ this little (mean absolute, 0-1). On ../shared/data this flags 68
#: oxford_flowers17 pairs (>= 0.9989 / <= 0.016: the same photo re-encoded or colour-edited), a clothing10
#: photo filed under both shorts and skirt, a skirt shot twice and two look-alike shirt photos.
SAME_CORR, SAME_COLOUR = 0.97, 0.02


@dataclass(frozen=True)
class DupSet:
    """One half as written: absolute paths, the truth groups (an original and its copies), the
    byte-identical sets and every file's kind."""

    root: Path
    groups: list[list[Path]]
    exact: list[list[Path]]
    kinds: dict[Path, str]
    files: list[Path]

    @classmethod
    def load(cls, root: Path) -> DupSet:
        """Reads root/truth.json, so a benchmark can reuse a set built earlier."""
        root = Path(root).resolve()
        truth = json.loads((root / "truth.json").read_text(encoding="utf-8"))
        kinds = {root / rel: kind for rel, kind in truth["kinds"].items()}
        return cls(root, [[root / r for r in g] for g in truth["groups"]],
                   [[root / r for r in g] for g in truth["exact"]], kinds, sorted(kinds))


@dataclass(frozen=True)
class PairScores:
    """Pairwise scores over the unordered pairs of a set's files."""

    precision: float
    recall: float
    f1: float
    tp: int
    fp: int
    fn: int
    tn: int


@dataclass(frozen=True)
class _Photo:
    """A source photo: a file under ../shared/data, or a scikit-image photo ("skimage:NAME")."""

    source: str
    label: str  # its class (or object), for same-class distractors

    def array(self) -> np.ndarray:
        if self.source.startswith("skimage:"):
            return _skimage(self.source.removeprefix("skimage:"))
        with Image.open(DATA / self.source) as im:
            return np.asarray(ImageOps.exif_transpose(im).convert("RGB"))

    def digest(self) -> str:
        if self.source.startswith("skimage:"):
            return hashlib.md5(self.array().tobytes()).hexdigest()
        data = (DATA / self.source).read_bytes()
        return hashlib.md5(data).hexdigest()

    def write(self, dest: Path) -> None:
        """An original is the photo's own bytes; a scikit-image array becomes a JPEG (quality 92)."""
        if self.source.startswith("skimage:"):
            Image.fromarray(self.array()).save(dest, "JPEG", quality=92)
        else:
            shutil.copyfile(DATA / self.source, dest)


@dataclass(frozen=True)
class _Item:
    """A candidate original with the other shots of its scene and the photos of its class."""

    original: _Photo
    scenes: tuple[_Photo, ...] = ()
    kin: tuple[_Photo, ...] = ()


class _Guard:
    """Takes each source photo at most once and refuses one that duplicates a photo already taken
    (same bytes, or alike thumbnails), so no truth group hides a duplicate of the datasets."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.taken: list[str] = []
        self.digests: dict[str, str] = {}
        self.grey: list[np.ndarray] = []
        self.colour: list[np.ndarray] = []
        self.skipped: list[tuple[str, str]] = []

    def take(self, photo: _Photo) -> bool:
        if photo.source in self.seen:
            return False
        self.seen.add(photo.source)
        digest = photo.digest()
        if digest in self.digests:
            self.skipped.append((photo.source, self.digests[digest]))
            return False
        grey, colour = _thumbs(Image.fromarray(photo.array()))
        if self.grey:
            alike = (np.stack(self.grey) @ grey >= SAME_CORR) & (
                np.abs(np.stack(self.colour) - colour).mean(axis=1) <= SAME_COLOUR)
            if alike.any():
                self.skipped.append((photo.source, self.taken[int(np.argmax(alike))]))
                return False
        self.digests[digest] = photo.source
        self.taken.append(photo.source)
        self.grey.append(grey)
        self.colour.append(colour)
        return True


@cache
def _skimage(name: str) -> np.ndarray:
    import skimage.data

    if name.startswith("motorcycle_"):
        left, right, _ = skimage.data.stereo_motorcycle()
        return left if name == "motorcycle_left" else right
    return getattr(skimage.data, name)()


def _thumbs(im: Image.Image) -> tuple[np.ndarray, np.ndarray]:
    """A 16x16 grey thumbnail (zero mean, unit norm) and a 4x4 colour one, for the duplicate test."""
    grey = np.asarray(im.convert("L").resize((16, 16), Image.Resampling.BILINEAR), np.float32).ravel()
    grey -= grey.mean()
    grey /= max(float(np.linalg.norm(grey)), 1e-6)
    colour = np.asarray(im.convert("RGB").resize((4, 4), Image.Resampling.BILINEAR), np.float32).ravel() / 255
    return grey, colour


def _rel(path: Path) -> str:
    return path.relative_to(DATA).as_posix()


def _class_items(paths: list[Path], labels: list[str], rng: random.Random) -> list[_Item]:
    """Every photo of a class folder as a candidate, the classes interleaved so that a few picks
    already span them."""
    by_class: dict[str, list[_Photo]] = {}
    for path, label in zip(paths, labels, strict=True):
        by_class.setdefault(label, []).append(_Photo(_rel(path), label))
    lists = [by_class[label] for label in sorted(by_class)]
    rng.shuffle(lists)
    for photos in lists:
        rng.shuffle(photos)
    longest = max(map(len, lists))
    return [_Item(ps[i], kin=tuple(ps)) for i in range(longest) for ps in lists if i < len(ps)]


def _queues(rng: random.Random) -> dict[str, list[_Item]]:
    """Per source, the candidate originals in a seeded order; the halves consume them in turn."""
    views: dict[str, list[_Photo]] = {}
    for path, group in zip(*ukbench(), strict=True):
        views.setdefault(group, []).append(_Photo(_rel(path), "ukbench" + group))
    uk = []
    for group in sorted(views, key=int):
        shots = views[group][:]
        rng.shuffle(shots)
        uk.append(_Item(shots[0], scenes=tuple(shots[1:])))  # one view is the original, three are the scene
    rng.shuffle(uk)
    sk = [_Item(_Photo("skimage:" + name, name)) for name in SKIMAGE]
    sk.append(_Item(_Photo("skimage:motorcycle_left", "motorcycle"),
                    scenes=(_Photo("skimage:motorcycle_right", "motorcycle"),)))
    rng.shuffle(sk)
    # flowers17() reads any folder of class subfolders
    return {"skimage": sk, "ukbench": uk, "flowers17": _class_items(*flowers17(), rng),
            "cub_dev10": _class_items(*flowers17(DATA / "cub_dev10"), rng),
            "clothing10": _class_items(*flowers17(DATA / "clothing10"), rng)}


def _quotas(n: int) -> dict[str, int]:
    """Originals per source for a half of n: a few scikit-image photos, then ukbench 25 %, flowers 30 %,
    cub 20 % (each capped by half of what there is), clothing10 the rest."""
    sk = min(4, n // 10)
    rest = n - sk
    uk, fl, cub = min(round(rest * 0.25), 37), min(round(rest * 0.3), 600), min(round(rest * 0.2), 250)
    return {"skimage": sk, "ukbench": uk, "flowers17": fl, "cub_dev10": cub,
            "clothing10": rest - uk - fl - cub}


def _pick(queue: list[_Item], k: int, guard: _Guard, rng: random.Random) -> list[_Item]:
    """The next k originals of a queue that pass the guard, with their scenes that pass it and,
    half of the time, one photo of the same class as a distractor."""
    out: list[_Item] = []
    while queue and len(out) < k:
        item = queue.pop(0)
        if not guard.take(item.original):
            continue
        scenes = tuple(p for p in item.scenes if guard.take(p))
        kin: tuple[_Photo, ...] = ()
        if item.kin and rng.random() < 0.5:
            kin = next(((p,) for p in reversed(item.kin) if guard.take(p)), ())
        out.append(_Item(item.original, scenes, kin))
    return out


def _away_from_one(rng: random.Random, lo: float, hi: float) -> float:
    """A factor in [lo, hi] that changes the photo visibly (at least 8 % from 1)."""
    while abs((f := rng.uniform(lo, hi)) - 1) < 0.08:
        pass
    return f


def _colour(im: Image.Image, rng: random.Random) -> tuple[Image.Image, str]:
    """A random mix of saturation, brightness, contrast and (sometimes) a hue shift."""
    ranges = {"saturation": (0.3, 1.7), "brightness": (0.75, 1.25), "contrast": (0.75, 1.35)}
    enhancers = {"saturation": ImageEnhance.Color, "brightness": ImageEnhance.Brightness,
                 "contrast": ImageEnhance.Contrast}
    ops = [op for op in ranges if rng.random() < 0.5] or [rng.choice(list(ranges))]
    notes = []
    for op in ops:
        f = _away_from_one(rng, *ranges[op])
        im = enhancers[op](im).enhance(f)
        notes.append(f"{op} {f:.2f}")
    if rng.random() < 0.35:
        shift = rng.choice((-1, 1)) * rng.randint(8, 30)  # of 256: 11-42 degrees
        hsv = np.asarray(im.convert("HSV")).copy()
        hsv[..., 0] = ((hsv[..., 0].astype(np.int16) + shift) % 256).astype(np.uint8)
        im = Image.fromarray(hsv, "HSV").convert("RGB")
        notes.append(f"hue {shift:+d}/256")
    return im, " ".join(notes)


def _edit(step: str, im: Image.Image, rng: random.Random) -> tuple[Image.Image, str]:
    """One edit with random parameters, and what it did."""
    if step == "downscale":
        s = rng.uniform(0.3, 0.6)
        return im.resize((max(1, round(im.width * s)), max(1, round(im.height * s))),
                         Image.Resampling.LANCZOS), f"downscale {s:.2f}"
    if step == "grey":
        return im.convert("L"), "grey"
    if step == "colour":
        return _colour(im, rng)
    if step == "turn":
        deg = rng.choice((90, 180, 270))
        return im.transpose(getattr(Image.Transpose, f"ROTATE_{deg}")), f"turn {deg}"
    if step == "mirror":
        return ImageOps.mirror(im), "mirror"
    if step == "crop":
        fw, fh = rng.uniform(0.55, 0.85), rng.uniform(0.55, 0.85)
        w, h = max(1, round(im.width * fw)), max(1, round(im.height * fh))
        x, y = rng.randint(0, im.width - w), rng.randint(0, im.height - h)
        return im.crop((x, y, x + w, y + h)), f"crop {fw:.2f}x{fh:.2f} at {x},{y}"
    raise ValueError(step)


def _make_copy(kind: str, src: Path, dest: Path, rng: random.Random, quality: int | None = None) -> str:
    """Writes one copy of the file src (the edits of kind in order, then JPEG: quality 35-80 when the
    kind has "resave", else the given quality or 85-95); returns what was done."""
    if kind == "exact":
        shutil.copyfile(src, dest)
        return "byte-identical"
    with Image.open(src) as opened:
        im = ImageOps.exif_transpose(opened).convert("RGB")
    notes = []
    for step in kind.split("+"):
        if step != "resave":
            im, note = _edit(step, im, rng)
            notes.append(note)
    if "resave" in kind.split("+"):
        quality = rng.randint(35, 80)
    elif quality is None:
        quality = rng.randint(85, 95)
    im.save(dest, "JPEG", quality=quality)
    return ", ".join([*notes, f"JPEG q{quality}"])


def _copy_kinds(rng: random.Random) -> list[str]:
    """2 to all 8 kinds of copies, about a third of those that can with a second edit."""
    kinds = rng.sample(COPY_KINDS, rng.randint(2, len(COPY_KINDS)))
    return [k + "+" + rng.choice(SECOND[k]) if k in SECOND and rng.random() < 0.3 else k for k in kinds]


def _namer(rng: random.Random) -> Callable[[], str]:
    """Random, unique (case-insensitively) relative file names in a few subfolders, saying nothing
    about the photo: camera names, dates, words with spaces and accents, .jpg/.JPG/.jpeg."""
    taken: set[str] = set()

    def stem() -> str:
        n = rng.randint
        day = f"20{n(10, 23)}-{n(1, 12):02d}-{n(1, 28):02d}"
        clock = f"{n(0, 23):02d}.{n(0, 59):02d}.{n(0, 59):02d}"
        style = rng.randrange(7)
        if style == 0:
            return f"IMG_{n(1, 9999):04d}"
        if style == 1:
            return f"DSC{n(0, 99999):05d}"
        if style == 2:
            return f"IMG_{day.replace('-', '')}_{clock.replace('.', '')}"
        if style == 3:
            return f"Photo {day} {clock}"
        if style == 4:
            return f"WhatsApp Image {day} at {clock}"
        if style == 5:
            return f"scan {n(1, 999):03d}"
        return f"{rng.choice(WORDS)} {n(1, 300)}"

    def name() -> str:
        while True:
            rel = f"{rng.choice(FOLDERS)}/{stem()}{rng.choice(('.jpg', '.jpg', '.jpg', '.JPG', '.jpeg'))}"
            if rel.casefold() not in taken:
                taken.add(rel.casefold())
                return rel

    return name


def _write_half(root: Path, items: list[_Item], skipped: list[tuple[str, str]], rng: random.Random) -> DupSet:
    """Writes the originals, their copies (a few originals get none), scenes and distractors under
    random names, then truth.json; checks that the only byte-identical files are the exact copies."""
    name = _namer(rng)
    truth: dict = {"groups": [], "exact": [], "kinds": {}, "edits": {}, "sources": {}, "skipped": skipped}

    def add(kind: str, source: str, edit: str = "") -> str:
        rel = name()
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        truth["kinds"][rel], truth["sources"][rel], truth["edits"][rel] = kind, source, edit
        return rel

    bare = set(rng.sample(range(len(items)), min(len(items), max(2, round(0.07 * len(items))))))
    for i, item in enumerate(items):
        group = [add("original", item.original.source)]
        item.original.write(root / group[0])
        for kind in [] if i in bare else _copy_kinds(rng):
            rel = add(kind, item.original.source)
            truth["edits"][rel] = _make_copy(kind, root / group[0], root / rel, rng)
            group.append(rel)
            if kind == "exact":
                truth["exact"].append([group[0], rel])
        if len(group) > 1:
            truth["groups"].append(group)
        for kind, photos in (("scene", item.scenes), ("distractor", item.kin)):
            for photo in photos:
                photo.write(root / add(kind, photo.source))
    (root / "truth.json").write_text(json.dumps(truth, indent=1, ensure_ascii=False), encoding="utf-8")
    _check_exact(root, truth)
    return DupSet.load(root)


def _check_exact(root: Path, truth: dict) -> None:
    """Byte-identical files must be exactly the truth's exact sets (a source duplicate would break it)."""
    by_hash: dict[str, list[str]] = {}
    for rel in truth["kinds"]:
        by_hash.setdefault(hashlib.md5((root / rel).read_bytes()).hexdigest(), []).append(rel)
    found = sorted(sorted(g) for g in by_hash.values() if len(g) > 1)
    if found != sorted(sorted(g) for g in truth["exact"]):
        raise RuntimeError(f"unexpected byte-identical files in {root}: {found}")


def _refuse_nonempty(folder: Path) -> None:
    if folder.exists() and any(folder.iterdir()):
        raise FileExistsError(f"{folder} is not empty")


def build(out_dir: Path, seed: int = 0, originals_per_half: int = 60) -> tuple[DupSet, DupSet]:
    """Writes out_dir/tune (for choosing thresholds) and out_dir/heldout (for confirming them): the same
    recipe on disjoint originals, deterministic for a seed. Refuses a half folder that is not empty."""
    out_dir = Path(out_dir)
    roots = [out_dir / "tune", out_dir / "heldout"]
    for root in roots:
        _refuse_nonempty(root)
    rng = random.Random(seed)
    queues, guard = _queues(rng), _Guard()
    halves = []
    for root in roots:
        before = len(guard.skipped)
        quotas = _quotas(originals_per_half)
        items = [it for src, k in quotas.items() for it in _pick(queues[src], k, guard, rng)]
        rng.shuffle(items)
        root.mkdir(parents=True, exist_ok=True)
        halves.append(_write_half(root, items, guard.skipped[before:], rng))
    return halves[0], halves[1]


def _ids(group: list[Path], truth: DupSet, index: dict[str, int]) -> list[int]:
    """Indices of a group's files in the set (relative paths are taken from the set's root; files
    that are not in the set are ignored)."""
    ids = set()
    for p in group:
        path = Path(p) if Path(p).is_absolute() else truth.root / p
        key = os.path.normpath(path)
        if key not in index:
            key = str(path.resolve())
        if key in index:
            ids.add(index[key])
    return sorted(ids)


def _pairs(groups: list[list[Path]], truth: DupSet, index: dict[str, int]) -> set[tuple[int, int]]:
    return {pair for g in groups for pair in itertools.combinations(_ids(g, truth, index), 2)}


def _index(truth: DupSet) -> dict[str, int]:
    return {os.path.normpath(p): i for i, p in enumerate(truth.files)}


def pair_scores(predicted: list[list[Path]], truth: DupSet) -> PairScores:
    """Pairwise precision and recall: a pair of files is positive when one truth group holds both,
    predicted when one predicted group does (groups may overlap)."""
    index = _index(truth)
    pred, true = _pairs(predicted, truth, index), _pairs(truth.groups, truth, index)
    tp, fp, fn = len(pred & true), len(pred - true), len(true - pred)
    n = len(truth.files)
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return PairScores(precision, recall, f1, tp, fp, fn, n * (n - 1) // 2 - tp - fp - fn)


def recall_by_kind(predicted: list[list[Path]], truth: DupSet) -> dict[str, float]:
    """Per copy kind, the share of (original, copy) pairs predicted, so a report can say "crop: 0.90"."""
    index = _index(truth)
    pred = _pairs(predicted, truth, index)
    hits: Counter[str] = Counter()
    totals: Counter[str] = Counter()
    for group in truth.groups:
        original = next(p for p in group if truth.kinds[p] == "original")
        for p in group:
            if p != original:
                a, b = sorted((index[os.path.normpath(original)], index[os.path.normpath(p)]))
                totals[truth.kinds[p]] += 1
                hits[truth.kinds[p]] += (a, b) in pred
    return {kind: hits[kind] / totals[kind] for kind in sorted(totals)}


def _usable(paths: list[Path]) -> list[Path]:
    """The photos PIL can identify (header only) with both sides at least 32 pixels."""
    out = []
    for p in paths:
        if p.suffix.lower() in SUFFIXES:
            try:
                with Image.open(p) as im:
                    if min(im.size) >= 32:
                        out.append(p)
            except OSError:
                pass
    return out


def _scale_copy(job: tuple[str, Path, Path, int]) -> None:
    kind, src, dest, seed = job
    _make_copy(kind, src, dest, random.Random(seed), quality=85)


def build_scale(out_dir: Path, n: int = 10000, seed: int = 0) -> Path:
    """About n photos for timing a scan: every usable photo of ../shared/data copied as it is (a seeded
    sample when n is smaller), plus edited copies (JPEG 85, written by a few processes) of a random
    subset to reach n. Refuses a folder that is not empty."""
    out_dir = Path(out_dir)
    _refuse_nonempty(out_dir)
    rng = random.Random(seed)
    photos = _usable(sorted(DATA.rglob("*")))
    if n < len(photos):
        photos = sorted(rng.sample(photos, n))
    for p in photos:
        dest = out_dir / "photos" / p.relative_to(DATA)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(p, dest)
    k = max(0, n - len(photos))
    sources = rng.sample(photos, k) if k <= len(photos) else rng.choices(photos, k=k)
    jobs = []
    for i, src in enumerate(sources):
        kind = _copy_kinds(rng)[0]
        dest = out_dir / "copies" / f"{i // 1000:02d}" / f"{i:05d}.jpg"
        jobs.append((kind, src, dest, rng.randrange(2**32)))
    for folder in sorted({dest.parent for _, _, dest, _ in jobs}):
        folder.mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        list(pool.map(_scale_copy, jobs, chunksize=64))
    return out_dir


def main(argv: list[str] | None = None) -> None:
    """Builds the dev set (or, with --scale, the timing folder) and prints a summary."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--originals", type=int, default=60, help="originals per half")
    ap.add_argument("--scale", type=int, default=0, help="instead: build_scale with this many photos")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    if args.scale:
        root = build_scale(args.out_dir, args.scale, args.seed)
        count = sum(1 for p in root.rglob("*") if p.is_file())
        print(f"{root}: {count} photos in {time.perf_counter() - t0:.1f} s")
        return
    for half in build(args.out_dir, args.seed, args.originals):
        truth = json.loads((half.root / "truth.json").read_text(encoding="utf-8"))
        kinds = Counter(half.kinds.values())
        print(f"{half.root}: {len(half.files)} files, {len(half.groups)} groups, "
              f"{len(half.exact)} exact sets")
        print("  " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())))
        for source, same in truth["skipped"]:
            print(f"  skipped {source} (duplicates {same})")
    print(f"built in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
