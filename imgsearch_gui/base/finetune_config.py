"""The fine-tuning recipe: losses and every setting, checked before anything is read."""

from __future__ import annotations

import math
from dataclasses import dataclass

from imgsearch_gui.base import registry
from imgsearch_gui.base.errors import FinetuneError

LOSSES = ("classification", "contrastive", "triplet")


@dataclass(frozen=True)
class FinetuneConfig:
    """The training recipe. Defaults are the measured CPU recipe (bench/finetune.py)."""

    backbone: str = registry.DEFAULT_BACKBONE
    weights: str | None = None  # start from these weights (e.g. an earlier checkpoint)
    pooling: str = registry.DEFAULT_FINETUNE_POOLING
    size: int = 224  # longest side of the images as evaluated and indexed
    train_crop: float = 0.86  # training crops are square, this share of ``size`` (224 -> 192):
    # 1.36x fewer pixels a step, and a net trained a little below its test size does as well
    # or better there (Touvron et al., FixRes)
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
    negatives: int = 2  # contrastive/triplet: hard negatives per anchor pair, mined each epoch
    pool_size: int = 400  # ... from this many training images embedded with the current net
    epoch_images: int | None = 512  # an epoch of a larger folder samples this many (None: all)
    val_fraction: float = 0.2
    seed: int = 0
    patience: int = 2  # early stopping: full epochs without a better val mAP, counted only
    min_epochs: int | None = None  # after this many full epochs (None: half of them, rounded up)
    whiten: bool = False  # learn a supervised (Lw) whitening on the train split afterwards
    device: str = registry.DEFAULT_DEVICE
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
        if self.pooling not in registry.POOLINGS:
            raise FinetuneError(f"unknown pooling {self.pooling!r}")
        if not 0.0 < self.val_fraction < 1.0:
            raise FinetuneError("--val-fraction must be between 0 and 1 (exclusive)")
        if self.epochs < 0 or self.head_epochs < 0 or self.epochs + self.warmup_epochs < 1:
            raise FinetuneError("at least one training epoch is needed")
        if self.size < 32:
            raise FinetuneError("the input size must be at least 32 px")
        if not 0.25 <= self.train_crop <= 1.5:
            raise FinetuneError("the training crop must be between 0.25 and 1.5 of the size")
        if self.min_epochs is not None and self.min_epochs < 0:
            raise FinetuneError("--min-epochs must be 0 or more")
        if self.negatives < 0 or self.pool_size < 2:
            raise FinetuneError("--negatives must be 0 or more and the pool at least 2 images")
        if self.epoch_images is not None and self.epoch_images < 1:
            raise FinetuneError("--epoch-images must be at least 1 (0 on the command line: all)")
        if self.batch_size is not None and self.batch_size < 2:
            raise FinetuneError("the batch size must be at least 2")
        return self

    @property
    def crop_size(self) -> int:
        """The side of the square training crops (a multiple of 16, at least 32)."""
        return max(32, round(self.size * self.train_crop / 16) * 16)

    @property
    def warmup_epochs(self) -> int:
        """Epochs training the classifier alone before the ``epochs`` asked for (classification)."""
        return self.head_epochs if self.loss == "classification" else 0

    @property
    def mines(self) -> bool:
        """Metric losses mine hard negatives from a pool (``negatives`` 0: in-batch only)."""
        return self.loss != "classification" and self.negatives > 0

    @property
    def min_full_epochs(self) -> int:
        """Full epochs that never count against the patience."""
        return math.ceil(self.epochs / 2) if self.min_epochs is None else self.min_epochs

    @property
    def loss_margin(self) -> float:
        """contrastive 0.7 (distance), triplet 0.1 (squared distance) unless ``margin`` is set."""
        if self.margin is not None:
            return self.margin
        return 0.7 if self.loss == "contrastive" else 0.1
