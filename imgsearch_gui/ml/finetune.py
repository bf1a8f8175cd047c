"""Fine-tuning the CNN on a labelled folder, as a generator of progress events.

``finetune(root, config, models_dir, cancel=...)`` checks the data (unreadable files listed and
left out; empty folders, a single class or classes with fewer than 2 images are errors before any
training), splits every class into train/val (or uses an existing ``train/`` + ``validation/``
layout as given), decodes every image once into memory at the model's input size, measures the
off-the-shelf val mAP, trains, and measures again. It yields, in order:

* :class:`~imgsearch_gui.base.types.Progress` while decoding ("load") and embedding ("embed"),
* :class:`DataReady` once the data is checked and split,
* :class:`TrainStep` after every optimiser step, :class:`EpochEnd` after every epoch,
* :class:`FinetuneResult` last (also when cancelled: then ``checkpoint`` is None).

Recipes. ``classification``: a cosine-softmax head (a linear layer with L2-normalised weights and
a temperature, initialised with the class means of the off-the-shelf descriptors) over the pooled,
L2-normalised descriptor; first the head alone, then the whole network with the head's learning
rate 10x the backbone's; label smoothing. ``contrastive`` / ``triplet``: class-balanced batches
(P classes x K images); positives are classmates in the batch, negatives the hardest ones mined
from the current embeddings of the batch. GeM's p is learned in every recipe. BatchNorm layers stay
in eval mode (frozen running statistics, as cirtorch does). The best epoch (val mAP) is kept in
memory and written once, atomically, at the end: a cancelled run writes nothing.
"""

from __future__ import annotations

import copy
import logging
import math
import random
import re
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from imgsearch_gui.base.errors import FinetuneError, ImageError
from imgsearch_gui.base.images import is_supported, load_image
from imgsearch_gui.base.types import CancelToken, Progress, SkippedFile
from imgsearch_gui.ml import functional as LF
from imgsearch_gui.ml.backbones import LoadedBackbone, load_backbone
from imgsearch_gui.ml.checkpoint import Checkpoint, save_checkpoint
from imgsearch_gui.ml.embedder import image_to_tensor, resize_longest, resolve_device
from imgsearch_gui.ml.evaluate import label_retrieval
from imgsearch_gui.ml.pooling import make_pooling

log = logging.getLogger(__name__)

LOSSES = ("classification", "contrastive", "triplet")
TRAIN_NAMES = ("train", "training")
VAL_NAMES = ("validation", "val", "valid")


@dataclass(frozen=True)
class FinetuneConfig:
    """The training recipe. Defaults are the measured CPU recipe (bench/finetune.py)."""

    backbone: str = "efficientnet_lite0"
    weights: str | None = None  # start from these weights (e.g. an earlier checkpoint)
    pooling: str = "gem"
    size: int = 224  # longest side of the images; training crops are size x size
    loss: str = "classification"
    epochs: int = 7  # whole-network epochs (bench/finetune.py: flowers17 0.865 at 5, 0.890 at 7)
    head_epochs: int = 1  # classification: epochs training the head (and p) alone first
    batch_size: int | None = None  # None: 32 on CPU, 64 on CUDA
    lr: float | None = None  # backbone (None: 1e-3 classification, 1e-4 contrastive/triplet,
    # measured by bench/finetune.py); the head and GeM's p get lr_head_factor x this
    lr_head_factor: float = 10.0
    weight_decay: float = 1e-2
    label_smoothing: float = 0.1
    temperature: float = 0.05  # cosine-softmax: logits = cos / temperature
    margin: float | None = None  # contrastive 0.7 (distance), triplet 0.1 (squared distance)
    val_fraction: float = 0.2
    seed: int = 0
    patience: int = 2  # early stopping: epochs without a better val mAP
    whiten: bool = False  # learn a supervised (Lw) whitening on the train split afterwards
    device: str = "auto"
    workers: int = 2  # decoding threads
    threads: int | None = None  # torch intra-op threads (None: leave torch's setting)
    max_per_class: int | None = None  # cap on training images per class (quick runs)
    name: str | None = None  # checkpoint file name (without .pt); default derived

    @property
    def backbone_lr(self) -> float:
        if self.lr is not None:
            return self.lr
        return 1e-3 if self.loss == "classification" else 1e-4

    def checked(self) -> FinetuneConfig:
        if self.loss not in LOSSES:
            raise FinetuneError(f"unknown loss {self.loss!r}; choose from {', '.join(LOSSES)}")
        if self.pooling not in LF.POOLINGS:
            raise FinetuneError(f"unknown pooling {self.pooling!r}")
        if not 0.0 < self.val_fraction < 1.0:
            raise FinetuneError("--val-fraction must be between 0 and 1 (exclusive)")
        if self.epochs < 0 or self.head_epochs < 0 or self.epochs + self.head_epochs < 1:
            raise FinetuneError("at least one training epoch is needed")
        if self.size < 32:
            raise FinetuneError("the input size must be at least 32 px")
        if self.batch_size is not None and self.batch_size < 2:
            raise FinetuneError("the batch size must be at least 2")
        return self


# -- events ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClassCount:
    name: str
    train: int
    val: int


@dataclass(frozen=True)
class DataSummary:
    root: str
    split: str  # "given" (train/validation folders) or "random"
    val_fraction: float | None
    seed: int
    classes: tuple[ClassCount, ...]
    bad_files: tuple[SkippedFile, ...] = ()

    @property
    def n_train(self) -> int:
        return sum(c.train for c in self.classes)

    @property
    def n_val(self) -> int:
        return sum(c.val for c in self.classes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "root": self.root, "split": self.split, "val_fraction": self.val_fraction,
            "seed": self.seed, "n_train": self.n_train, "n_val": self.n_val,
            "classes": {c.name: {"train": c.train, "val": c.val} for c in self.classes},
            "bad_files": [{"path": b.path, "reason": b.reason} for b in self.bad_files],
        }


@dataclass(frozen=True)
class DataReady:
    summary: DataSummary
    device: str
    batch_size: int


@dataclass(frozen=True)
class TrainStep:
    stage: str  # "head" | "full"
    epoch: int  # 1-based over all epochs (head epochs first)
    epochs: int
    step: int  # 1-based within the epoch
    steps: int
    loss: float  # running mean over the epoch so far
    lr: float  # backbone lr (head lr in the head stage)
    images_per_s: float
    eta_s: float | None  # whole run, including evaluations


@dataclass(frozen=True)
class EpochEnd:
    stage: str
    epoch: int
    epochs: int
    loss: float
    val_map: float
    p: float | None  # GeM's p after the epoch
    seconds: float
    best: bool


@dataclass(frozen=True)
class FinetuneResult:
    map_before: float
    map_after: float
    checkpoint: str | None
    seconds: float
    cpu_seconds: float
    history: tuple[EpochEnd, ...]
    data: DataSummary
    best_epoch: int
    cancelled: bool = False
    stopped_early: bool = False
    map_whitened: float | None = None
    pooling_params: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "map_before": self.map_before, "map_after": self.map_after,
            "map_whitened": self.map_whitened, "checkpoint": self.checkpoint,
            "seconds": round(self.seconds, 2), "cpu_seconds": round(self.cpu_seconds, 2),
            "best_epoch": self.best_epoch, "cancelled": self.cancelled,
            "stopped_early": self.stopped_early, "pooling_params": self.pooling_params,
            "history": [asdict(h) for h in self.history], "data": self.data.to_dict(),
        }


# -- data ------------------------------------------------------------------------------------------


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


def decode(path: Path, size: int) -> torch.Tensor:
    """uint8 CHW tensor, longest side ``size``: exactly what the Embedder feeds the network."""
    return image_to_tensor(load_image(path, max_side=size), size)


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
    items = list(scan.train + scan.val)
    decoded: dict[int, torch.Tensor] = {}
    bad: list[SkippedFile] = []
    for event in check_images([p for p, _ in items], 32, workers, cancel):
        if isinstance(event, Progress):
            yield event
        else:
            decoded, bad = event
    if cancel is not None and cancel.cancelled:
        return
    counts = {c: [0, 0] for c in scan.classes}
    for i in decoded:
        counts[items[i][1]][0 if i < len(scan.train) else 1] += 1
    final = {c: (a, b) for c, (a, b) in counts.items()}
    error = None
    try:
        validate_counts(final, scan.given_split, Path(root))
    except FinetuneError as exc:
        error = str(exc)
    yield FolderReport(str(root), scan.given_split, final, tuple(bad), error)


# -- model -----------------------------------------------------------------------------------------


class RetrievalNet(nn.Module):
    """uint8 image batch -> L2-normalised descriptor (normalisation, trunk, pooling)."""

    def __init__(self, backbone: LoadedBackbone, pooling: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.pool = pooling
        spec = backbone.spec
        self.register_buffer("mean", torch.tensor(spec.mean).view(1, 3, 1, 1) * 255, persistent=False)
        self.register_buffer("std", torch.tensor(spec.std).view(1, 3, 1, 1) * 255, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = ((x.float() - self.mean) / self.std).contiguous(memory_format=torch.channels_last)
        return self.pool(self.backbone(x).float())

    def pooling_params(self) -> dict[str, float]:
        if hasattr(self.pool, "p"):
            return {"p": float(self.pool.p.detach().item())}
        return dict(getattr(self.pool, "params", {}))


class CosineHead(nn.Module):
    """Linear classifier on unit descriptors with unit weight rows: logits = cos / temperature."""

    def __init__(self, dim: int, classes: int, temperature: float = 0.05) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(classes, dim) * 0.01)
        self.temperature = temperature

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(LF.l2n(x), LF.l2n(self.weight)) / self.temperature


def freeze_batchnorm(module: nn.Module) -> int:
    """Put every BatchNorm layer in eval mode (running statistics frozen); returns how many."""
    n = 0
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()
            n += 1
    return n


def train_mode(net: nn.Module) -> None:
    net.train()
    freeze_batchnorm(net)


def _descriptor_dim(net: RetrievalNet, device: torch.device) -> int:
    with torch.inference_mode():
        return int(net(torch.zeros(1, 3, 64, 64, dtype=torch.uint8, device=device)).shape[1])


def embed(net: RetrievalNet, images: Sequence[torch.Tensor], device: torch.device,
          batch_size: int, cancel: CancelToken | None = None) -> np.ndarray | None:
    """Descriptors of uint8 images (any sizes: equal shapes share a batch). None if cancelled."""
    net.eval()
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for i, t in enumerate(images):
        by_shape.setdefault(tuple(t.shape), []).append(i)
    out: np.ndarray | None = None
    amp = device.type == "cuda"
    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.float16, enabled=amp):
        for idx in by_shape.values():
            for start in range(0, len(idx), batch_size):
                if cancel is not None and cancel.cancelled:
                    return None
                part = idx[start : start + batch_size]
                x = torch.stack([images[i] for i in part]).to(device, non_blocking=True)
                d = net(x).float().cpu().numpy()
                if out is None:
                    out = np.zeros((len(images), d.shape[1]), dtype=np.float32)
                out[part] = d
    assert out is not None
    return out


# -- batches and augmentation ------------------------------------------------------------------------


def balanced_batches(labels: Sequence[int], batch_size: int, n_batches: int, per_class: int,
                     rng: random.Random) -> list[list[int]]:
    """Class-balanced batches: P classes (uniformly, every class equally often) x K images
    (each class's images cycled in a fresh random order, so every image is seen)."""
    by_class: dict[int, list[int]] = {}
    for i, c in enumerate(labels):
        by_class.setdefault(c, []).append(i)
    classes = sorted(by_class)
    k = max(per_class, math.ceil(batch_size / len(classes)))
    p = max(1, min(len(classes), batch_size // k))
    queues: dict[int, list[int]] = {c: [] for c in classes}
    class_queue: list[int] = []

    def take(c: int) -> int:
        if not queues[c]:
            queues[c] = by_class[c][:]
            rng.shuffle(queues[c])
        return queues[c].pop()

    batches = []
    for _ in range(n_batches):
        chosen: list[int] = []
        while len(chosen) < p:
            if not class_queue:
                class_queue = classes[:]
                rng.shuffle(class_queue)
            c = class_queue.pop()
            if c not in chosen:
                chosen.append(c)
        batches.append([take(c) for c in chosen for _ in range(k)])
    return batches


def make_augment(size: int):
    """Training augmentation on uint8 CHW tensors: random resized crop to size x size, flip,
    small rotation/shear, colour jitter. Evaluation uses none (the whole image, longest side
    ``size``)."""
    from torchvision.transforms import v2

    return v2.Compose([
        v2.RandomResizedCrop(size, scale=(0.35, 1.0), ratio=(3 / 4, 4 / 3), antialias=True),
        v2.RandomHorizontalFlip(),
        v2.RandomApply([v2.RandomAffine(degrees=10, shear=(-6, 6, -6, 6))], p=0.5),
        v2.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3, hue=0.02),
    ])


# -- losses ----------------------------------------------------------------------------------------


def contrastive_loss(desc: torch.Tensor, labels: torch.Tensor, margin: float = 0.7,
                     hard_negatives: int = 5) -> torch.Tensor:
    """cirtorch's contrastive loss over the batch: every positive pair pulled together
    (0.5 d^2), each anchor's ``hard_negatives`` closest other-class images pushed beyond
    ``margin`` (0.5 max(0, margin - d)^2)."""
    dist = torch.cdist(desc, desc).clamp(min=1e-8)
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=desc.device)
    pos = same & ~eye
    pos_loss = 0.5 * dist[pos].pow(2)
    neg_dist = dist.masked_fill(same, float("inf"))
    k = min(hard_negatives, int((~same).sum(dim=1).min().item()))
    if k <= 0:
        return pos_loss.mean()
    hardest = neg_dist.topk(k, dim=1, largest=False).values
    neg_loss = 0.5 * (margin - hardest).clamp(min=0).pow(2)
    return torch.cat([pos_loss, neg_loss.flatten()]).sum() / max(1, len(labels))


def triplet_loss(desc: torch.Tensor, labels: torch.Tensor, margin: float = 0.1) -> torch.Tensor:
    """Batch-hard triplet loss (Hermans et al.) on squared distances, like cirtorch's margin:
    each anchor with its farthest classmate and its closest other-class image."""
    dist = torch.cdist(desc, desc).pow(2)
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=desc.device)
    pos = same & ~eye
    valid = pos.any(dim=1) & (~same).any(dim=1)
    hardest_pos = dist.masked_fill(~pos, float("-inf")).amax(dim=1)
    hardest_neg = dist.masked_fill(same, float("inf")).amin(dim=1)
    loss = (margin + hardest_pos - hardest_neg).clamp(min=0)
    return loss[valid].mean() if valid.any() else desc.sum() * 0


# -- supervised whitening ----------------------------------------------------------------------------


def learn_supervised_whitening(x: np.ndarray, labels: Sequence[int], reg: float = 0.1
                               ) -> dict[str, np.ndarray]:
    """Lw whitening (Radenovic et al.): whiten the intra-class (matching-pair) covariance,
    then rotate onto the principal axes of the whitened data. ``reg`` shrinks towards the
    mean eigenvalue (small training sets have rank-deficient covariances)."""
    x = np.asarray(x, dtype=np.float64)
    labels_arr = np.asarray(labels)
    mean = x.mean(axis=0)
    centred_by_class = np.zeros_like(x)
    for c in np.unique(labels_arr):
        rows = labels_arr == c
        centred_by_class[rows] = x[rows] - x[rows].mean(axis=0)
    cs = centred_by_class.T @ centred_by_class / max(1, len(x) - 1)
    w, v = np.linalg.eigh(cs)
    w = np.clip(w, 0, None) + reg * max(float(w.mean()), 1e-12)
    p1 = (v / np.sqrt(w)) @ v.T  # C_S^(-1/2)
    xw = (x - mean) @ p1.T
    cd = xw.T @ xw / max(1, len(x) - 1)
    w2, v2 = np.linalg.eigh(cd)
    order = np.argsort(w2)[::-1]
    projection = v2[:, order].T @ p1
    return {"mean": mean.astype(np.float32), "projection": projection.astype(np.float32)}


def apply_whitening(x: np.ndarray, whitening: dict[str, Any]) -> np.ndarray:
    mean = np.asarray(whitening["mean"], dtype=np.float32)
    proj = np.asarray(whitening["projection"], dtype=np.float32)
    y = (np.asarray(x, dtype=np.float32) - mean) @ proj.T
    return y / (np.linalg.norm(y, axis=1, keepdims=True) + 1e-12)


# -- the training loop -------------------------------------------------------------------------------


def default_name(root: Path, config: FinetuneConfig) -> str:
    folder = re.sub(r"[^A-Za-z0-9_.-]+", "_", root.resolve().name) or "data"
    return f"{config.backbone}-{folder}-{config.loss}-{time.strftime('%Y%m%d-%H%M%S')}"


def _lr_at(step: int, total: int, base: float, warmup: int) -> float:
    """Linear warm-up, then cosine decay to 1% of ``base``."""
    if step < warmup:
        return base * (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return base * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))


class _Prefetcher:
    """Builds augmented batches in a background thread, one batch ahead."""

    def __init__(self, images: Sequence[torch.Tensor], batches: list[list[int]], size: int,
                 seed: int) -> None:
        self.images = images
        self.batches = batches
        self.augment = make_augment(size)
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ft-augment")
        self.seed = seed

    def _build(self, n: int) -> torch.Tensor:
        torch.manual_seed(self.seed * 100_003 + n)  # one batch at a time: reproducible crops
        return torch.stack([self.augment(self.images[i]) for i in self.batches[n]])

    def __iter__(self) -> Iterator[tuple[int, torch.Tensor]]:
        try:
            nxt = self.pool.submit(self._build, 0) if self.batches else None
            for n in range(len(self.batches)):
                assert nxt is not None
                batch = nxt.result()
                nxt = self.pool.submit(self._build, n + 1) if n + 1 < len(self.batches) else None
                yield n, batch
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)


def finetune(root: str | Path, config: FinetuneConfig = FinetuneConfig(),
             models_dir: str | Path | None = None, cancel: CancelToken | None = None
             ) -> Iterator[Progress | DataReady | TrainStep | EpochEnd | FinetuneResult]:
    """Fine-tune on the labelled folder ``root``; see the module docstring for the events.

    The checkpoint goes to ``models_dir/<config.name>.pt`` (``models_dir`` None: nothing is
    written, e.g. for experiments). Raises :class:`FinetuneError` for unusable data.
    """
    config = config.checked()
    root = Path(root)
    cancel = cancel or CancelToken()
    t_start, cpu_start = time.perf_counter(), time.process_time()
    device = resolve_device(config.device)
    cuda = device.type == "cuda"
    if config.threads:
        torch.set_num_threads(config.threads)
    batch_size = config.batch_size or (64 if cuda else 32)

    # -- data: scan, decode once (cached in memory), check, split ---------------------------------
    scan = scan_folder(root)
    validate_counts(scan.counts(), scan.given_split, root)  # before decoding anything
    items = list(scan.train + scan.val)
    decoded: dict[int, torch.Tensor] = {}
    bad: list[SkippedFile] = []
    for event in check_images([p for p, _ in items], config.size, config.workers, cancel):
        if isinstance(event, Progress):
            yield event
        else:
            decoded, bad = event
    if cancel.cancelled:
        yield _cancelled(t_start, cpu_start, root, config, scan, bad)
        return
    n_given_train = len(scan.train)
    usable_train = [(i, items[i][1]) for i in range(n_given_train) if i in decoded]
    usable_val = [(i, items[i][1]) for i in range(n_given_train, len(items)) if i in decoded]
    if scan.given_split:
        train_idx, val_idx = [i for i, _ in usable_train], [i for i, _ in usable_val]
    else:
        counts = {c: (sum(1 for _, k in usable_train if k == c), 0) for c in scan.classes}
        validate_counts(counts, False, root)
        train_idx, val_idx = split_per_class(usable_train, config.val_fraction, config.seed)
    counts_after = {c: (0, 0) for c in scan.classes}
    for i in train_idx:
        a, b = counts_after[items[i][1]]
        counts_after[items[i][1]] = (a + 1, b)
    for i in val_idx:
        a, b = counts_after[items[i][1]]
        counts_after[items[i][1]] = (a, b + 1)
    validate_counts(counts_after, True, root)
    if config.max_per_class:
        rng = random.Random(config.seed)
        kept: list[int] = []
        for c in scan.classes:
            idx = [i for i in train_idx if items[i][1] == c]
            rng.shuffle(idx)
            kept += idx[: config.max_per_class]
        train_idx = sorted(kept)
    classes = [c for c in scan.classes if any(items[i][1] == c for i in train_idx)]
    class_id = {c: k for k, c in enumerate(classes)}
    summary = DataSummary(
        root=str(root), split="given" if scan.given_split else "random",
        val_fraction=None if scan.given_split else config.val_fraction, seed=config.seed,
        classes=tuple(ClassCount(c, sum(1 for i in train_idx if items[i][1] == c),
                                 sum(1 for i in val_idx if items[i][1] == c)) for c in classes),
        bad_files=tuple(bad))
    yield DataReady(summary, str(device), batch_size)
    train_images = [decoded[i] for i in train_idx]
    train_labels = [class_id[items[i][1]] for i in train_idx]
    val_images = [decoded[i] for i in val_idx]
    val_labels = [items[i][1] for i in val_idx]

    # -- model -------------------------------------------------------------------------------------
    torch.manual_seed(config.seed)
    backbone = load_backbone(config.backbone, config.weights)
    net = RetrievalNet(backbone, make_pooling(config.pooling)).to(device)
    net = net.to(memory_format=torch.channels_last)
    dim = _descriptor_dim(net, device)
    eval_bs = batch_size * 2

    def evaluate_val() -> float | None:
        vecs = embed(net, val_images, device, eval_bs, cancel)
        return None if vecs is None else label_retrieval(vecs, val_labels).map

    yield Progress("embed", 0, len(val_images), message="off-the-shelf val mAP")
    map_before = evaluate_val()
    if map_before is None:
        yield _cancelled(t_start, cpu_start, root, config, scan, bad, summary)
        return

    head: CosineHead | None = None
    if config.loss == "classification":
        head = CosineHead(dim, len(classes), config.temperature).to(device)
        # Imprinting: start from the class means of the off-the-shelf descriptors (no aug).
        yield Progress("embed", 0, len(train_images), message="initialising the classifier")
        vecs = embed(net, train_images, device, eval_bs, cancel)
        if vecs is None:
            yield _cancelled(t_start, cpu_start, root, config, scan, bad, summary)
            return
        means = np.zeros((len(classes), dim), dtype=np.float32)
        np.add.at(means, np.asarray(train_labels), vecs)
        with torch.no_grad():
            head.weight.copy_(LF.l2n(torch.from_numpy(means)))

    head_epochs = config.head_epochs if head is not None else 0
    total_epochs = head_epochs + config.epochs
    steps_per_epoch = max(1, math.ceil(len(train_images) / batch_size))
    per_class = 2 if config.loss == "classification" else 4
    margin = config.margin if config.margin is not None else (
        0.7 if config.loss == "contrastive" else 0.1)
    labels_t = torch.tensor(train_labels)
    backbone_params = [p for p in net.backbone.parameters() if p.requires_grad]
    extra_params = list(net.pool.parameters()) + (list(head.parameters()) if head else [])
    lr_head = config.backbone_lr * config.lr_head_factor
    use_fp16 = cuda and not torch.cuda.is_bf16_supported()
    amp_dtype = torch.float16 if use_fp16 else torch.bfloat16
    scaler = torch.amp.GradScaler("cuda", enabled=use_fp16)
    rng = random.Random(config.seed)

    # The off-the-shelf model is the baseline: an epoch is kept only if it beats it.
    best_map, best_epoch = map_before, 0
    best_state = copy.deepcopy({k: v.detach().cpu() for k, v in backbone.model.state_dict().items()})
    best_params = net.pooling_params()
    history: list[EpochEnd] = []
    bad_epochs, stopped_early = 0, False
    train_seen, train_time = 0, 0.0
    eval_time_per_image = None
    epoch = 0
    for stage, n_epochs in (("head", head_epochs), ("full", config.epochs)):
        if n_epochs == 0:
            continue
        for p in backbone_params:
            p.requires_grad_(stage == "full")
        if stage == "head":
            groups = [{"params": extra_params, "lr": lr_head, "base_lr": lr_head,
                       "weight_decay": 0.0}]
        else:
            groups = [{"params": backbone_params, "lr": config.backbone_lr,
                       "base_lr": config.backbone_lr,
                       "weight_decay": config.weight_decay},
                      {"params": extra_params, "lr": lr_head, "base_lr": lr_head,
                       "weight_decay": 0.0}]
        optimizer = torch.optim.AdamW(groups)
        total_steps = n_epochs * steps_per_epoch
        warmup = max(1, steps_per_epoch // 4) if stage == "full" else 1
        stage_step = 0
        for _ in range(n_epochs):
            epoch += 1
            t_epoch = time.perf_counter()
            batches = balanced_batches(train_labels, batch_size, steps_per_epoch, per_class, rng)
            running, n_loss = 0.0, 0
            train_mode(net)
            if stage == "head":
                net.backbone.eval()  # frozen: no dropout/BN changes, no graph through it
            for n, x in _Prefetcher(train_images, batches, config.size, config.seed * 1000 + epoch):
                if cancel.cancelled:
                    yield _cancelled(t_start, cpu_start, root, config, scan, bad, summary)
                    return
                t_step = time.perf_counter()
                for g in optimizer.param_groups:
                    g["lr"] = _lr_at(stage_step, total_steps, g["base_lr"], warmup)
                y = labels_t[batches[n]].to(device)
                x = x.to(device, non_blocking=True)
                with torch.autocast("cuda", dtype=amp_dtype, enabled=cuda):
                    if stage == "head":
                        with torch.no_grad():
                            fmap = net.backbone(((x.float() - net.mean) / net.std).contiguous(
                                memory_format=torch.channels_last))
                        desc = net.pool(fmap.float())
                    else:
                        desc = net(x)
                    desc = desc.float()
                    if config.loss == "classification":
                        assert head is not None
                        loss = F.cross_entropy(head(desc), y, label_smoothing=config.label_smoothing)
                    elif config.loss == "contrastive":
                        loss = contrastive_loss(desc, y, margin)
                    else:
                        loss = triplet_loss(desc, y, margin)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                if hasattr(net.pool, "p"):
                    with torch.no_grad():
                        net.pool.p.clamp_(min=1.0, max=10.0)
                stage_step += 1
                running += float(loss.detach())
                n_loss += 1
                dt = time.perf_counter() - t_step
                train_seen += len(x)
                train_time += dt
                rate = train_seen / max(train_time, 1e-6)
                remaining = (total_epochs - epoch + 1) * steps_per_epoch - (n + 1)
                eta = remaining * batch_size / rate
                if eval_time_per_image is not None:
                    eta += (total_epochs - epoch + 1) * eval_time_per_image * len(val_images)
                yield TrainStep(stage, epoch, total_epochs, n + 1, steps_per_epoch,
                                running / n_loss, optimizer.param_groups[0]["lr"], len(x) / dt, eta)
            t_eval = time.perf_counter()
            yield Progress("embed", 0, len(val_images), message=f"val mAP after epoch {epoch}")
            val_map = evaluate_val()
            if val_map is None:
                yield _cancelled(t_start, cpu_start, root, config, scan, bad, summary)
                return
            eval_time_per_image = (time.perf_counter() - t_eval) / max(1, len(val_images))
            improved = val_map > best_map + 1e-4
            if improved:
                best_map, best_epoch = val_map, epoch
                best_state = copy.deepcopy({k: v.detach().cpu() for k, v in
                                            backbone.model.state_dict().items()})
                best_params = net.pooling_params()
                bad_epochs = 0
            elif stage == "full" or best_epoch == 0:
                bad_epochs += 1
            p_now = net.pooling_params().get("p")
            end = EpochEnd(stage, epoch, total_epochs, running / max(1, n_loss), val_map, p_now,
                           time.perf_counter() - t_epoch, improved)
            history.append(end)
            yield end
            if stage == "full" and config.patience > 0 and bad_epochs >= config.patience:
                stopped_early = True
                break

    # -- best weights back, optional whitening, checkpoint --------------------------------------------
    backbone.model.load_state_dict(best_state)
    if hasattr(net.pool, "p") and "p" in best_params:
        with torch.no_grad():
            net.pool.p.fill_(best_params["p"])
    whitening, map_whitened = None, None
    if config.whiten:
        yield Progress("embed", 0, len(train_images), message="learning the whitening")
        tr = embed(net, train_images, device, eval_bs, cancel)
        va = embed(net, val_images, device, eval_bs, cancel)
        if tr is None or va is None:
            yield _cancelled(t_start, cpu_start, root, config, scan, bad, summary)
            return
        w = learn_supervised_whitening(tr, train_labels)
        map_whitened = label_retrieval(apply_whitening(va, w), val_labels).map
        whitening = {k: torch.from_numpy(v) for k, v in w.items()}
    if cancel.cancelled:
        yield _cancelled(t_start, cpu_start, root, config, scan, bad, summary)
        return
    seconds = time.perf_counter() - t_start
    ckpt_path = None
    if models_dir is not None:
        yield Progress("save", 0, 1)
        name = config.name or default_name(root, config)
        ckpt_path = Path(models_dir) / f"{name}.pt"
        info = {
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "recipe": {k: v for k, v in asdict(config).items() if k not in ("name",)},
            "data": summary.to_dict(),
            "metrics": {"map_before": map_before, "map_after": best_map,
                        "map_whitened": map_whitened, "best_epoch": best_epoch,
                        "seconds": round(seconds, 1)},
            "history": [asdict(h) for h in history],
            "base_weights_id": backbone.weights_id,
        }
        save_checkpoint(ckpt_path, Checkpoint(
            backbone=config.backbone, state_dict=best_state, pooling=config.pooling,
            pooling_params=best_params, size=config.size, whitening=whitening, info=info))
        yield Progress("save", 1, 1, current=str(ckpt_path))
    yield FinetuneResult(
        map_before=map_before, map_after=best_map,
        checkpoint=str(ckpt_path) if ckpt_path else None,
        seconds=time.perf_counter() - t_start, cpu_seconds=time.process_time() - cpu_start,
        history=tuple(history), data=summary, best_epoch=best_epoch, cancelled=False,
        stopped_early=stopped_early, map_whitened=map_whitened, pooling_params=best_params)


def _cancelled(t_start: float, cpu_start: float, root: Path, config: FinetuneConfig,
               scan: FolderScan, bad: list[SkippedFile],
               summary: DataSummary | None = None) -> FinetuneResult:
    if summary is None:
        summary = DataSummary(str(root), "given" if scan.given_split else "random",
                              config.val_fraction, config.seed, (), tuple(bad))
    return FinetuneResult(map_before=float("nan"), map_after=float("nan"), checkpoint=None,
                          seconds=time.perf_counter() - t_start,
                          cpu_seconds=time.process_time() - cpu_start, history=(), data=summary,
                          best_epoch=0, cancelled=True)


def run_to_end(events: Iterator[Any]) -> FinetuneResult:
    """Drain a :func:`finetune` generator; its result."""
    result = None
    for event in events:
        if isinstance(event, FinetuneResult):
            result = event
    assert result is not None
    return result


__all__ = [
    "LOSSES", "FinetuneConfig", "FinetuneError", "FinetuneResult", "DataReady", "DataSummary",
    "ClassCount", "TrainStep", "EpochEnd", "FolderScan", "FolderReport", "scan_folder",
    "inspect_folder", "check_images",
    "validate_counts", "split_per_class", "finetune", "run_to_end", "freeze_batchnorm",
    "contrastive_loss", "triplet_loss", "learn_supervised_whitening", "apply_whitening",
    "resize_longest",
]
