"""What :func:`~imgsearch_gui.ml.finetune.finetune` yields, in order (besides Progress):
:class:`DataReady` once, :class:`TrainStep` per optimiser step, :class:`EpochEnd` per epoch,
:class:`FinetuneResult` last. Plain frozen dataclasses: the CLI and the dialog only read them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from imgsearch_gui.base.types import SkippedFile
from imgsearch_gui.ml.finetune.plan import Plan


@dataclass(frozen=True)
class ClassCount:
    """Usable images of one class on each side of the split."""

    name: str
    train: int
    val: int


@dataclass(frozen=True)
class DataSummary:
    """The checked, split data of a run (also stored in the checkpoint's ``info``)."""

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


def epoch_label(stage: str, epoch: int, epochs: int) -> str:
    """``epoch 3/7`` counts the epochs asked for; the classifier's warm-up is named apart."""
    if stage == "head":
        return f"classifier warm-up {epoch}/{epochs}"
    return f"epoch {epoch}/{epochs}"


@dataclass(frozen=True)
class DataReady:
    """Yielded once, when the data is checked and split, before any training."""

    summary: DataSummary
    device: str
    batch_size: int
    plan: Plan | None = None  # what the run will do (epochs, steps, images embedded)


@dataclass(frozen=True)
class TrainStep:
    """Yielded after every optimiser step."""

    stage: str  # "head" (the classifier's warm-up, before the epochs asked for) | "full"
    epoch: int  # 1-based within the stage: "epoch 3/7" is the third of the 7 full epochs
    epochs: int  # epochs of the stage (full: as set, --epochs)
    step: int  # 1-based within the epoch
    steps: int
    loss: float  # running mean over the epoch so far
    lr: float  # backbone lr (head lr in the head stage)
    images_per_s: float
    eta_s: float | None  # whole run, including evaluations
    run_step: int = 0  # 1-based over the whole run (every stage): for progress bars
    run_steps: int = 0
    images: int = 0  # in this step's batch

    @property
    def label(self) -> str:
        return epoch_label(self.stage, self.epoch, self.epochs)


@dataclass(frozen=True)
class EpochEnd:
    """Yielded after every epoch, with the val mAP it reached."""

    stage: str
    epoch: int  # 1-based within the stage, as in TrainStep
    epochs: int
    loss: float
    val_map: float
    p: float | None  # GeM's p after the epoch
    seconds: float
    best: bool
    run_epoch: int = 0  # 1-based over the whole run (head epochs first)

    @property
    def label(self) -> str:
        return epoch_label(self.stage, self.epoch, self.epochs)


@dataclass(frozen=True)
class FinetuneResult:
    """Yielded last, also when cancelled (then ``cancelled`` and no checkpoint). A run whose
    epochs never beat the off-the-shelf model is not ``improved`` and saves no checkpoint."""

    map_before: float
    map_after: float
    checkpoint: str | None
    seconds: float
    cpu_seconds: float
    history: tuple[EpochEnd, ...]
    data: DataSummary
    best_epoch: int  # EpochEnd.run_epoch of the kept weights; 0: the off-the-shelf model
    cancelled: bool = False
    stopped_early: bool = False
    map_whitened: float | None = None
    pooling_params: dict[str, float] = field(default_factory=dict)

    @property
    def best(self) -> EpochEnd | None:
        """The epoch whose weights were kept (None: none beat the off-the-shelf model)."""
        return next((h for h in self.history if h.run_epoch == self.best_epoch), None) \
            if self.best_epoch else None

    @property
    def improved(self) -> bool:
        """An epoch beat the off-the-shelf model on the val split (``map_after`` is its mAP)."""
        return not self.cancelled and self.best_epoch > 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "improved": self.improved,
            "map_before": self.map_before, "map_after": self.map_after,
            "map_whitened": self.map_whitened, "checkpoint": self.checkpoint,
            "seconds": round(self.seconds, 2), "cpu_seconds": round(self.cpu_seconds, 2),
            "best_epoch": self.best_epoch, "cancelled": self.cancelled,
            "stopped_early": self.stopped_early, "pooling_params": self.pooling_params,
            "history": [asdict(h) for h in self.history], "data": self.data.to_dict(),
        }


def run_to_end(events: Iterator[Any]) -> FinetuneResult:
    """Drain a :func:`finetune` generator; its result."""
    result = None
    for event in events:
        if isinstance(event, FinetuneResult):
            result = event
    assert result is not None
    return result
