"""What a run will do (epochs, steps, images embedded) and how long that takes on this computer,
known before it starts: the dialog shows the estimate beside Start, the loop follows the plan.

The speed is measured, not assumed: :func:`measure_speed` times a few real training steps and an
inference batch of the run's network on random images (seconds), because CPUs differ by 10x and
more and a shared machine is slower than its specification.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

from imgsearch_gui.ml.finetune.config import FinetuneConfig


@dataclass(frozen=True)
class Speed:
    """Images per second of this network on this device."""

    train: float  # a full training step (forward, backward, optimiser) on size x size crops
    embed: float  # inference on whole images (val mAP, mining, the head stage's frozen trunk)


@dataclass(frozen=True)
class Plan:
    """A run's work, from the data's counts and the config; the loop runs exactly this."""

    n_train: int
    n_val: int
    head_epochs: int  # the classifier's warm-up (classification only)
    epochs: int  # full epochs, as set
    steps_per_epoch: int
    batch_size: int  # images a step trains on
    pairs: int  # metric losses: anchor pairs per batch, then their mined negatives (0: no mining)
    pool_images: int  # embedded before each full epoch to mine negatives
    imprint: int  # classification: the head starts from the class means of this many photos
    whiten: bool  # a supervised whitening learned on every image at the end

    @property
    def total_epochs(self) -> int:
        return self.head_epochs + self.epochs

    def work(self, epochs_done: int = 0) -> tuple[int, int]:
        """(images trained on with the whole network, images run through the frozen network)
        after ``epochs_done`` epochs (0: the whole run: the off-the-shelf val mAP and the
        head's initialisation too). The frozen count is the val mAP after every epoch, the
        mining pools, the head stage's steps and the whitening."""
        epoch_images = self.steps_per_epoch * self.batch_size
        head_left = max(0, self.head_epochs - epochs_done)
        full_left = min(self.epochs, self.total_epochs - epochs_done)
        frozen = self.n_val * (head_left + full_left) + self.pool_images * full_left
        frozen += epoch_images * head_left
        if epochs_done == 0:
            frozen += self.n_val + self.imprint
        if self.whiten:
            frozen += self.n_train + self.n_val
        return full_left * epoch_images, frozen

    def seconds(self, speed: Speed, epochs_done: int = 0) -> float:
        """Expected wall time after the photos are loaded (after ``epochs_done`` epochs)."""
        full, frozen = self.work(epochs_done)
        return full / speed.train + frozen / speed.embed


def batch_size_for(config: FinetuneConfig, device_type: str) -> int:
    """Images per step before mining: 32 on a CPU, 64 on CUDA, unless set."""
    return config.batch_size or (64 if device_type == "cuda" else 32)


def steps_per_epoch(n_train: int, batch_size: int, config: FinetuneConfig) -> int:
    """An epoch is every training image once, or ``epoch_images`` of them in a large folder."""
    n = n_train if config.epoch_images is None else min(n_train, config.epoch_images)
    return max(1, math.ceil(n / batch_size))


def split_sizes(counts: dict[str, tuple[int, int]], given_split: bool, config: FinetuneConfig
                ) -> tuple[int, int]:
    """(train, val) images a run will have, from a folder check's usable counts per class
    (``FolderReport.counts``), as :func:`~.data.split_per_class` and the per-class cap split them."""
    n_train = n_val = 0
    for a, b in counts.values():
        if not given_split:
            b = min(a - 1, max(1, round(a * config.val_fraction))) if a > 1 else 0
            a -= b
        if config.max_per_class:
            a = min(a, config.max_per_class)
        n_train, n_val = n_train + a, n_val + b
    return n_train, n_val


def plan_for(n_train: int, n_val: int, config: FinetuneConfig, device_type: str = "cpu",
             n_classes: int | None = None) -> Plan:
    """The plan of a run on ``n_train``/``n_val`` images (of ``n_classes`` classes: mining takes
    at most one negative per other class; None: as many as ``negatives`` asks)."""
    batch = batch_size_for(config, device_type)
    steps = steps_per_epoch(n_train, batch, config)
    pairs = max(1, batch // (2 + config.negatives)) if config.mines else 0
    pool = 0
    if pairs:
        negatives = config.negatives if n_classes is None else min(config.negatives, n_classes - 1)
        batch = pairs * (2 + negatives)
        pool = min(n_train, max(config.pool_size, steps * pairs))  # every anchor is in the pool
    imprint = min(n_train, steps * batch) if config.loss == "classification" else 0
    return Plan(n_train, n_val, config.warmup_epochs, config.epochs, steps, batch, pairs, pool,
                imprint=imprint, whiten=config.whiten)


def measure_speed(config: FinetuneConfig, steps: int = 2, batch: int = 8) -> Speed:
    """Time ``steps`` training steps and an inference batch of ``config``'s network on random
    images (after one warm-up step each). A few seconds on a CPU."""
    from imgsearch_gui.ml.backbones import load_backbone
    from imgsearch_gui.ml.descriptor import RetrievalNet
    from imgsearch_gui.ml.embedder import resolve_device
    from imgsearch_gui.ml.finetune.trainmode import train_mode
    from imgsearch_gui.ml.pooling import make_pooling

    device = resolve_device(config.device)
    net = RetrievalNet(load_backbone(config.backbone, config.weights), make_pooling(config.pooling))
    net = net.to(device).to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-6)
    crop = config.crop_size
    rng = torch.Generator().manual_seed(0)  # the run's global RNG is left alone
    x = torch.randint(0, 256, (batch, 3, crop, crop), dtype=torch.uint8, generator=rng).to(device)
    # evaluation sees whole photos, longest side ``size``: a 4:3 one stands for them
    photos = torch.randint(0, 256, (batch, 3, config.size * 3 // 4, config.size), dtype=torch.uint8,
                           generator=rng).to(device)
    train_mode(net)
    t0 = 0.0
    for i in range(steps + 1):
        if i == 1:
            t0 = _now(device)
        loss = net(x).pow(2).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    train = steps * batch / max(1e-6, _now(device) - t0)
    net.eval()
    with torch.inference_mode():
        net(photos)
        t0 = _now(device)
        net(photos)
        embed = batch / max(1e-6, _now(device) - t0)
    return Speed(train=train, embed=embed)


def _now(device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()
