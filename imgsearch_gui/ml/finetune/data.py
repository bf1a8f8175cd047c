"""The labelled folder: scan (no decoding), check, decode once into memory, split train/val.

Classes are the subfolders of the root (or of its ``train/`` and ``validation/`` folders, a split
used as given). Unreadable files are listed and left out; data that cannot be trained on (no
images, one class, a class with fewer than 2 images) is a :class:`FinetuneError` before training.
"""

from __future__ import annotations

import random
import time
from collections.abc import Generator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch

from imgsearch_gui.base.errors import FinetuneError, ImageError
from imgsearch_gui.base.images import is_supported
from imgsearch_gui.base.types import CancelToken, Progress, SkippedFile
from imgsearch_gui.ml.embedder import decode
from imgsearch_gui.ml.finetune.config import FinetuneConfig
from imgsearch_gui.ml.finetune.events import ClassCount, DataSummary

TRAIN_NAMES = ("train", "training")
VAL_NAMES = ("validation", "val", "valid")


@dataclass(frozen=True)
class FolderScan:
    """What a labelled folder holds, without decoding anything."""

    root: Path
    classes: tuple[str, ...]
    train: tuple[tuple[Path, str], ...]  # (path, class); everything when the split is random
    val: tuple[tuple[Path, str], ...]  # only for a given split
    given_split: bool

    def counts(self) -> dict[str, tuple[int, int]]:
        out = {c: [0, 0] for c in self.classes}
        for _, c in self.train:
            out[c][0] += 1
        for _, c in self.val:
            out[c][1] += 1
        return {c: (a, b) for c, (a, b) in out.items()}

    @property
    def paths(self) -> list[Path]:
        return [p for p, _ in self.train + self.val]


def _class_files(folder: Path) -> list[tuple[Path, str]]:
    out = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for path in sorted(sub.rglob("*")):
            if path.is_file() and is_supported(path) and not path.name.startswith("."):
                out.append((path, sub.name))
    return out


def _child(root: Path, names: Sequence[str]) -> Path | None:
    by_lower = {p.name.lower(): p for p in root.iterdir() if p.is_dir()}
    for name in names:
        if name in by_lower:
            return by_lower[name]
    return None


def scan_folder(root: str | Path) -> FolderScan:
    """Classes are the subfolders of ``root``; ``root/train`` + ``root/validation`` (or ``val``)
    with class subfolders is a given split (a ``test`` folder is left alone)."""
    root = Path(root)
    if not root.is_dir():
        raise FinetuneError(f"not a folder: {root}")
    train_dir, val_dir = _child(root, TRAIN_NAMES), _child(root, VAL_NAMES)
    if train_dir is not None and val_dir is not None:
        train, val = _class_files(train_dir), _class_files(val_dir)
        classes = sorted({c for _, c in train} | {c for _, c in val})
        return FolderScan(root, tuple(classes), tuple(train), tuple(val), True)
    files = _class_files(root)
    classes = sorted({c for _, c in files})
    return FolderScan(root, tuple(classes), tuple(files), (), False)


def validate_counts(counts: dict[str, tuple[int, int]], given_split: bool, root: Path) -> None:
    """Raise :class:`FinetuneError` for data that cannot be trained on (usable images only)."""
    total = sum(a + b for a, b in counts.values())
    if total == 0:
        raise FinetuneError(f"{root}: no usable images in class subfolders "
                            "(expected ROOT/CLASS/photo.jpg, one subfolder per class)")
    nonempty = [c for c, (a, b) in counts.items() if a + b > 0]
    if len(nonempty) < 2:
        raise FinetuneError(f"{root}: only one class ({nonempty[0]}); fine-tuning needs at least "
                            "two classes (one subfolder per class)")
    if given_split:
        missing = [c for c, (a, _) in counts.items() if a == 0]
        if missing:
            raise FinetuneError(f"{root}: no training images for class(es) {', '.join(missing)}")
        few = [c for c, (a, b) in counts.items() if a + b < 2]
    else:
        few = [c for c, (a, _) in counts.items() if a < 2]
    if few:
        detail = ", ".join(f"{c} ({sum(counts[c])})" for c in few)
        raise FinetuneError(f"{root}: every class needs at least 2 images; too few in {detail}")
    if given_split and sum(b for _, b in counts.values()) == 0:
        raise FinetuneError(f"{root}: the validation folder has no usable images")


def split_per_class(items: Sequence[tuple[int, str]], val_fraction: float, seed: int
                    ) -> tuple[list[int], list[int]]:
    """Seeded split of (index, class) items: ~``val_fraction`` of every class to val, at least
    one image on each side."""
    rng = random.Random(seed)
    by_class: dict[str, list[int]] = {}
    for i, c in items:
        by_class.setdefault(c, []).append(i)
    train, val = [], []
    for c in sorted(by_class):
        idx = sorted(by_class[c])
        rng.shuffle(idx)
        n_val = min(len(idx) - 1, max(1, round(len(idx) * val_fraction)))
        val += idx[:n_val]
        train += idx[n_val:]
    return sorted(train), sorted(val)


def check_images(paths: Sequence[Path], size: int = 64, workers: int = 2,
                 cancel: CancelToken | None = None) -> Iterator[Progress | tuple[dict, list]]:
    """Decode ``paths`` (threads); yields Progress("load") and finally (tensors by index,
    list of SkippedFile). Used by :func:`finetune` and, with a small size, by the dialog."""
    tensors: dict[int, torch.Tensor] = {}
    bad: list[SkippedFile] = []
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="ft-decode") as pool:
        futures = [pool.submit(decode, p, size) for p in paths]
        for i, fut in enumerate(futures):
            if cancel is not None and cancel.cancelled:
                for f in futures[i:]:
                    f.cancel()
                return
            try:
                tensors[i] = fut.result()
            except ImageError as exc:
                bad.append(SkippedFile(str(paths[i]), exc.reason))
            except Exception as exc:  # noqa: BLE001 - one odd file must not stop the check
                bad.append(SkippedFile(str(paths[i]), f"unexpected error: {exc}"))
            done = i + 1
            rate = done / max(1e-6, time.perf_counter() - t0)
            yield Progress("load", done, len(paths), current=str(paths[i]), images_per_s=rate,
                           eta_s=(len(paths) - done) / rate)
    yield tensors, bad


@dataclass(frozen=True)
class Decoded:
    """A scanned folder with its images decoded (``images`` by position in ``items``)."""

    scan: FolderScan
    items: list[tuple[Path, str]]  # scan.train + scan.val
    images: dict[int, torch.Tensor]
    bad: list[SkippedFile]

    def usable_counts(self) -> dict[str, tuple[int, int]]:
        """class -> (train, val) decoded images (val 0 when the split is random)."""
        counts = {c: [0, 0] for c in self.scan.classes}
        for i in self.images:
            counts[self.items[i][1]][0 if i < len(self.scan.train) else 1] += 1
        return {c: (a, b) for c, (a, b) in counts.items()}

    def unsplit_summary(self, config: FinetuneConfig) -> DataSummary:
        """What is known before the split (a run cancelled while decoding reports this)."""
        return DataSummary(str(self.scan.root), "given" if self.scan.given_split else "random",
                           config.val_fraction, config.seed, (), tuple(self.bad))


def decode_folder(scan: FolderScan, size: int, workers: int, cancel: CancelToken | None
                  ) -> Generator[Progress, None, Decoded]:
    """:func:`check_images` of every scanned file: yields its Progress, returns the result."""
    items = list(scan.train + scan.val)
    decoded: dict[int, torch.Tensor] = {}
    bad: list[SkippedFile] = []
    for event in check_images([p for p, _ in items], size, workers, cancel):
        if isinstance(event, Progress):
            yield event
        else:
            decoded, bad = event
    return Decoded(scan, items, decoded, bad)


@dataclass(frozen=True)
class FolderReport:
    """The data check of a labelled folder (for the dialog): usable counts, bad files and the
    error that training would raise (None when the folder is fine)."""

    root: str
    given_split: bool
    counts: dict[str, tuple[int, int]]  # class -> (train, val) usable images; val 0 if random
    bad_files: tuple[SkippedFile, ...]
    error: str | None


def inspect_folder(root: str | Path, workers: int = 2, cancel: CancelToken | None = None
                   ) -> Iterator[Progress | FolderReport]:
    """Scan and decode (small, fast) every image of ``root``; yields Progress("load") and
    finally a :class:`FolderReport` (nothing when cancelled)."""
    try:
        scan = scan_folder(root)
    except FinetuneError as exc:
        yield FolderReport(str(root), False, {}, (), str(exc))
        return
    data = yield from decode_folder(scan, 32, workers, cancel)
    if cancel is not None and cancel.cancelled:
        return
    final = data.usable_counts()
    error = None
    try:
        validate_counts(final, scan.given_split, Path(root))
    except FinetuneError as exc:
        error = str(exc)
    yield FolderReport(str(root), scan.given_split, final, tuple(data.bad), error)


# -- the data of one run ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Split:
    """The images a run trains and validates on, decoded, with their labels."""

    summary: DataSummary
    classes: list[str]  # classes with training images; train_labels index this list
    train_images: list[torch.Tensor]
    train_labels: list[int]
    val_images: list[torch.Tensor]
    val_labels: list[str]


def read_folder(root: Path, config: FinetuneConfig, cancel: CancelToken
                ) -> Generator[Progress, None, Decoded]:
    """Scan and check ``root``, decode every image at the model's size (yields Progress("load"));
    returns what was decoded (partly, when cancelled)."""
    scan = scan_folder(root)
    validate_counts(scan.counts(), scan.given_split, root)  # before decoding anything
    return (yield from decode_folder(scan, config.size, config.workers, cancel))


def split_decoded(data: Decoded, config: FinetuneConfig) -> Split:
    """The usable images split train/val (given, or seeded per class), checked again, the train
    side capped at ``config.max_per_class``."""
    root, scan, items = data.scan.root, data.scan, data.items
    train_idx, val_idx = _split_usable(data, config)
    counts_after = {c: (0, 0) for c in scan.classes}
    for i in train_idx:
        a, b = counts_after[items[i][1]]
        counts_after[items[i][1]] = (a + 1, b)
    for i in val_idx:
        a, b = counts_after[items[i][1]]
        counts_after[items[i][1]] = (a, b + 1)
    validate_counts(counts_after, True, root)
    if config.max_per_class:
        train_idx = _cap_per_class(train_idx, items, scan.classes, config.max_per_class, config.seed)
    classes = [c for c in scan.classes if any(items[i][1] == c for i in train_idx)]
    class_id = {c: k for k, c in enumerate(classes)}
    summary = DataSummary(
        root=str(root), split="given" if scan.given_split else "random",
        val_fraction=None if scan.given_split else config.val_fraction, seed=config.seed,
        classes=tuple(ClassCount(c, sum(1 for i in train_idx if items[i][1] == c),
                                 sum(1 for i in val_idx if items[i][1] == c)) for c in classes),
        bad_files=tuple(data.bad))
    return Split(summary, classes,
                 train_images=[data.images[i] for i in train_idx],
                 train_labels=[class_id[items[i][1]] for i in train_idx],
                 val_images=[data.images[i] for i in val_idx],
                 val_labels=[items[i][1] for i in val_idx])


def _split_usable(data: Decoded, config: FinetuneConfig) -> tuple[list[int], list[int]]:
    items, n_given_train = data.items, len(data.scan.train)
    usable_train = [(i, items[i][1]) for i in range(n_given_train) if i in data.images]
    usable_val = [(i, items[i][1]) for i in range(n_given_train, len(items)) if i in data.images]
    if data.scan.given_split:
        return [i for i, _ in usable_train], [i for i, _ in usable_val]
    validate_counts(data.usable_counts(), False, data.scan.root)
    return split_per_class(usable_train, config.val_fraction, config.seed)


def _cap_per_class(train_idx: list[int], items: Sequence[tuple[Path, str]], classes: Sequence[str],
                   max_per_class: int, seed: int) -> list[int]:
    """At most ``max_per_class`` training images of every class, chosen with ``seed``."""
    rng = random.Random(seed)
    kept: list[int] = []
    for c in classes:
        idx = [i for i in train_idx if items[i][1] == c]
        rng.shuffle(idx)
        kept += idx[:max_per_class]
    return sorted(kept)
