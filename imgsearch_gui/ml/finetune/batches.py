"""Training batches: class-balanced sampling, augmentation, and a one-batch-ahead prefetcher."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import torch


def balanced_batches(labels: Sequence[int], batch_size: int, n_batches: int, per_class: int,
                     rng: random.Random) -> list[list[int]]:
    """Class-balanced batches: P classes (uniformly, every class equally often) x K images, K a
    multiple of ``per_class`` (so pairs side by side are classmates), each class's images cycled
    in a fresh random order, so every image is seen."""
    by_class: dict[int, list[int]] = {}
    for i, c in enumerate(labels):
        by_class.setdefault(c, []).append(i)
    classes = sorted(by_class)
    k = per_class * math.ceil(max(per_class, math.ceil(batch_size / len(classes))) / per_class)
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


def class_sample(labels: Sequence[int], n: int, rng: random.Random) -> list[int]:
    """``n`` rows (all when there are fewer), taking the classes in turn, each class's rows in a
    random order: every class is represented as evenly as its photos allow."""
    by_class: dict[int, list[int]] = {}
    for i, c in enumerate(labels):
        by_class.setdefault(c, []).append(i)
    for rows in by_class.values():
        rng.shuffle(rows)
    chosen: list[int] = []
    depth = 0
    while len(chosen) < min(n, len(labels)):
        for c in sorted(by_class):
            if depth < len(by_class[c]) and len(chosen) < n:
                chosen.append(by_class[c][depth])
        depth += 1
    return sorted(chosen)


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


class Prefetcher:
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
