"""The training loop: :func:`finetune`, a generator of events, as a sequence of short steps.

data (read, split) -> model (seeded; off-the-shelf val mAP; classification: an imprinted head)
-> stages (head, full) of epochs (optimiser steps, then the val mAP, the best epoch kept, early
stopping) -> best weights back -> optional supervised whitening -> one atomic checkpoint.

A step that notices the cancel returns a false value and its caller stops; the cancelled
:class:`FinetuneResult` is yielded where the cancel was noticed (inside an epoch: with the
prefetcher still running) or, before training, by :func:`finetune`.

Seeds and the order in which random numbers are drawn are part of the recipe: the same config on
the same data gives the same events.
"""

from __future__ import annotations

import copy
import logging
import math
import random
import re
import time
from collections.abc import Generator, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from imgsearch_gui.base.types import CancelToken, Progress
from imgsearch_gui.ml import functional as LF
from imgsearch_gui.ml.backbones import LoadedBackbone, load_backbone
from imgsearch_gui.ml.batching import embed_by_shape
from imgsearch_gui.ml.checkpoint import Checkpoint, save_checkpoint
from imgsearch_gui.ml.descriptor import RetrievalNet, infer
from imgsearch_gui.ml.embedder import resolve_device
from imgsearch_gui.ml.evaluate import label_retrieval
from imgsearch_gui.ml.finetune.batches import Prefetcher, balanced_batches, class_sample
from imgsearch_gui.ml.finetune.config import FinetuneConfig
from imgsearch_gui.ml.finetune.data import Split, read_folder, split_decoded
from imgsearch_gui.ml.finetune.events import (
    DataReady,
    DataSummary,
    EpochEnd,
    FinetuneResult,
    TrainStep,
    epoch_label,
)
from imgsearch_gui.ml.finetune.losses import CosineHead, batch_loss
from imgsearch_gui.ml.finetune.mining import anchors_of, mined_batches, pool_rows
from imgsearch_gui.ml.finetune.plan import Plan, Speed, batch_size_for, plan_for
from imgsearch_gui.ml.finetune.trainmode import train_mode
from imgsearch_gui.ml.pooling import make_pooling
from imgsearch_gui.ml.whitening import Whitening, learn_supervised_whitening

log = logging.getLogger(__name__)
Event = Progress | DataReady | TrainStep | EpochEnd | FinetuneResult
_DEFAULT = FinetuneConfig()  # frozen: safe as a default argument


def finetune(root: str | Path, config: FinetuneConfig = _DEFAULT,
             models_dir: str | Path | None = None, cancel: CancelToken | None = None
             ) -> Iterator[Event]:
    """Fine-tune on the labelled folder ``root``; see the package docstring for the events.

    The checkpoint goes to ``models_dir/<config.name>.pt`` (``models_dir`` None: nothing is
    written, e.g. for experiments). Raises :class:`FinetuneError` for unusable data.
    """
    config = config.checked()
    root = Path(root)
    cancel = cancel or CancelToken()
    clock = Clock()
    device = resolve_device(config.device)
    if config.threads:
        torch.set_num_threads(config.threads)
    decoded = yield from read_folder(root, config, cancel)  # cached in memory for every epoch
    if cancel.cancelled:
        yield cancelled_result(clock, decoded.unsplit_summary(config))
        return
    data = split_decoded(decoded, config)
    plan = plan_for(len(data.train_images), len(data.val_images), config, device.type,
                    n_classes=len(data.classes))
    yield DataReady(data.summary, str(device), plan.batch_size, plan)
    model = build_model(config, device, 2 * batch_size_for(config, device.type), cancel)
    yield Progress("embed", 0, len(data.val_images), message="off-the-shelf val mAP")
    t_eval = time.perf_counter()
    map_before = model.val_map(data)
    eval_time_per_image = (time.perf_counter() - t_eval) / max(1, len(data.val_images))
    if map_before is None:
        yield cancelled_result(clock, data.summary)
        return
    if plan.imprint and not (yield from imprint_head(model, data, config, plan.imprint)):
        yield cancelled_result(clock, data.summary)
        return
    run = Run(config, root, cancel, clock, plan, data, model, map_before)
    run.eval_time_per_image = eval_time_per_image  # the ETA's rate until the first epoch's
    if (yield from train(run)):
        yield from finish(run, models_dir)


# -- the run's pieces -------------------------------------------------------------------------------


@dataclass
class Clock:
    """Wall and CPU time since the run started."""

    wall: float = field(default_factory=time.perf_counter)
    cpu: float = field(default_factory=time.process_time)

    def seconds(self) -> float:
        return time.perf_counter() - self.wall

    def cpu_seconds(self) -> float:
        return time.process_time() - self.cpu


def cancelled_result(clock: Clock, summary: DataSummary) -> FinetuneResult:
    return FinetuneResult(map_before=float("nan"), map_after=float("nan"), checkpoint=None,
                          seconds=clock.seconds(), cpu_seconds=clock.cpu_seconds(), history=(),
                          data=summary, best_epoch=0, cancelled=True)


@dataclass
class Model:
    """The network being fine-tuned (and the classification head, once imprinted)."""

    backbone: LoadedBackbone
    net: RetrievalNet
    dim: int
    device: torch.device
    eval_batch_size: int
    cancel: CancelToken
    head: CosineHead | None = None

    def embed(self, images: Sequence[torch.Tensor]) -> np.ndarray | None:
        """Descriptors as training sees them (one scale, no augmentation); None if cancelled."""
        self.net.eval()
        return embed_by_shape(images, lambda batch: infer(self.net, batch, self.device),
                              self.eval_batch_size, self.cancel)

    def val_map(self, data: Split) -> float | None:
        vecs = self.embed(data.val_images)
        return None if vecs is None else label_retrieval(vecs, data.val_labels).map

    def backbone_state(self) -> dict[str, torch.Tensor]:
        """A copy of the weights on the CPU (kept in memory for the best epoch)."""
        return copy.deepcopy({k: v.detach().cpu() for k, v in self.backbone.model.state_dict().items()})


def build_model(config: FinetuneConfig, device: torch.device, eval_batch_size: int,
                cancel: CancelToken) -> Model:
    torch.manual_seed(config.seed)
    backbone = load_backbone(config.backbone, config.weights)
    net = RetrievalNet(backbone, make_pooling(config.pooling)).to(device)
    net = net.to(memory_format=torch.channels_last)
    return Model(backbone, net, net.probe_dim(), device, eval_batch_size, cancel)


def imprint_head(model: Model, data: Split, config: FinetuneConfig, n_images: int
                 ) -> Generator[Event, None, bool]:
    """The cosine head, started from the class means of the off-the-shelf descriptors of
    ``n_images`` training photos, the classes in turn (no aug). False when cancelled."""
    model.head = CosineHead(model.dim, len(data.classes), config.temperature).to(model.device)
    rows = class_sample(data.train_labels, n_images, random.Random(config.seed))
    yield Progress("embed", 0, len(rows), message="initialising the classifier")
    vecs = model.embed([data.train_images[r] for r in rows])
    if vecs is None:
        return False
    means = np.zeros((len(data.classes), model.dim), dtype=np.float32)
    np.add.at(means, np.asarray([data.train_labels[r] for r in rows]), vecs)
    with torch.no_grad():
        model.head.weight.copy_(LF.l2n(torch.from_numpy(means)))
    return True


@dataclass
class Best:
    """The best epoch so far; the off-the-shelf model (epoch 0) is the baseline to beat."""

    map: float
    epoch: int
    state: dict[str, torch.Tensor]
    params: dict[str, float]

    @classmethod
    def of(cls, model: Model, val_map: float, epoch: int) -> Best:
        return cls(val_map, epoch, model.backbone_state(), model.net.pooling_params())


@dataclass
class Run:
    """One fine-tuning run after the model is ready: what every stage and epoch share."""

    config: FinetuneConfig
    root: Path
    cancel: CancelToken
    clock: Clock
    plan: Plan
    data: Split
    model: Model
    map_before: float
    # from the above
    labels: torch.Tensor = field(init=False)
    backbone_params: list[nn.Parameter] = field(init=False)
    extra_params: list[nn.Parameter] = field(init=False)  # pooling (GeM's p) and head
    lr_head: float = field(init=False)
    amp_dtype: torch.dtype = field(init=False)
    scaler: torch.amp.GradScaler = field(init=False)
    rng: random.Random = field(init=False)  # batch sampling
    best: Best = field(init=False)
    # what the epochs change
    epoch: int = 0  # 1-based over all epochs, head epochs first
    stage_epoch: int = 0  # 1-based within the current stage
    history: list[EpochEnd] = field(default_factory=list)
    bad_epochs: int = 0  # epochs without a better val mAP (early stopping)
    stopped_early: bool = False
    seen: int = 0  # training images so far, and the seconds their steps took (the ETA)
    train_time: float = 0.0
    eval_time_per_image: float | None = None

    def __post_init__(self) -> None:
        model, config = self.model, self.config
        self.labels = torch.tensor(self.data.train_labels)
        self.backbone_params = [p for p in model.net.backbone.parameters() if p.requires_grad]
        self.extra_params = list(model.net.pool.parameters()) + (
            list(model.head.parameters()) if model.head else [])
        self.lr_head = config.backbone_lr * config.lr_head_factor
        use_fp16 = model.device.type == "cuda" and not torch.cuda.is_bf16_supported()
        self.amp_dtype = torch.float16 if use_fp16 else torch.bfloat16
        self.scaler = torch.amp.GradScaler("cuda", enabled=use_fp16)
        self.rng = random.Random(config.seed)
        self.best = Best.of(model, self.map_before, 0)

    def cancelled(self) -> FinetuneResult:
        return cancelled_result(self.clock, self.data.summary)


# -- stages and epochs ------------------------------------------------------------------------------


def train(run: Run) -> Generator[Event, None, bool]:
    """The head stage (classification), then the full one; False when cancelled."""
    for name, n_epochs in (("head", run.plan.head_epochs), ("full", run.plan.epochs)):
        if n_epochs == 0:
            continue
        stage = Stage.start(run, name, n_epochs)
        for k in range(n_epochs):
            run.epoch += 1
            run.stage_epoch = k + 1
            if not (yield from run_epoch(run, stage)):
                return False
            if name == "full" and 0 < run.config.patience <= run.bad_epochs:
                run.stopped_early = True
                break
    return True


@dataclass
class Stage:
    """``head``: the head and the pooling learn, the backbone is frozen; ``full``: everything,
    the backbone at ``backbone_lr``. Warm-up, then cosine decay over the stage's steps."""

    name: str
    optimizer: torch.optim.Optimizer
    epochs: int
    total_steps: int
    warmup: int
    step: int = 0

    @classmethod
    def start(cls, run: Run, name: str, n_epochs: int) -> Stage:
        for p in run.backbone_params:
            p.requires_grad_(name == "full")
        head_group = {"params": run.extra_params, "lr": run.lr_head, "base_lr": run.lr_head,
                      "weight_decay": 0.0}
        groups = [head_group]
        if name == "full":
            lr = run.config.backbone_lr
            groups = [{"params": run.backbone_params, "lr": lr, "base_lr": lr,
                       "weight_decay": run.config.weight_decay}, head_group]
        steps = run.plan.steps_per_epoch
        warmup = max(1, steps // 4) if name == "full" else 1
        return cls(name, torch.optim.AdamW(groups), n_epochs, n_epochs * steps,
                   warmup)

    def set_lr(self) -> None:
        for g in self.optimizer.param_groups:
            g["lr"] = lr_at(self.step, self.total_steps, g["base_lr"], self.warmup)


def lr_at(step: int, total: int, base: float, warmup: int) -> float:
    """Linear warm-up, then cosine decay to 1% of ``base``."""
    if step < warmup:
        return base * (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return base * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))


def run_epoch(run: Run, stage: Stage) -> Generator[Event, None, bool]:
    """The epoch's steps, its val mAP and its EpochEnd; False when cancelled."""
    t_epoch = time.perf_counter()
    loss = yield from train_epoch(run, stage)
    if loss is None:
        return False
    t_eval = time.perf_counter()
    val_images = run.data.val_images
    yield Progress("embed", 0, len(val_images),
                   message=f"val mAP after {epoch_label(stage.name, run.stage_epoch, stage.epochs)}")
    val_map = run.model.val_map(run.data)
    if val_map is None:
        yield run.cancelled()
        return False
    run.eval_time_per_image = (time.perf_counter() - t_eval) / max(1, len(val_images))
    yield end_epoch(run, stage, loss, val_map, t_epoch)
    return True


def end_epoch(run: Run, stage: Stage, loss: float, val_map: float, t_epoch: float) -> EpochEnd:
    """Keep the epoch if it beats the best so far. Only full epochs after the first
    ``min_full_epochs`` count against the patience: the warm-up changes the descriptor only
    through GeM's p (the trunk is frozen), and the first full epochs at the peak learning rate
    often dip before the recipe pays off (cub_dev10: 83 -> 68 -> 80 -> 88 -> 93)."""
    improved = val_map > run.best.map + 1e-4
    if improved:
        run.best = Best.of(run.model, val_map, run.epoch)
        run.bad_epochs = 0
    elif stage.name == "full" and run.stage_epoch > run.config.min_full_epochs:
        run.bad_epochs += 1
    p_now = run.model.net.pooling_params().get("p")
    end = EpochEnd(stage.name, run.stage_epoch, stage.epochs, loss, val_map, p_now,
                   time.perf_counter() - t_epoch, improved, run_epoch=run.epoch)
    run.history.append(end)
    return end


def train_epoch(run: Run, stage: Stage) -> Generator[Event, None, float | None]:
    """One epoch of class-balanced, augmented batches (a TrainStep after each); the mean loss,
    None when cancelled."""
    config, net, plan = run.config, run.model.net, run.plan
    if plan.pairs:
        batches = balanced_batches(run.data.train_labels, 2 * plan.pairs, plan.steps_per_epoch,
                                   2, run.rng)
        batches = yield from mine(run, stage, batches)
        if batches is None:
            return None
    else:
        batches = balanced_batches(run.data.train_labels, plan.batch_size, plan.steps_per_epoch,
                                   2, run.rng)
    running, n_loss = 0.0, 0
    train_mode(net)
    if stage.name == "head":
        net.backbone.eval()  # frozen: no dropout/BN changes, no graph through it
    for n, x in Prefetcher(run.data.train_images, batches, config.crop_size,
                           config.seed * 1000 + run.epoch):
        if run.cancel.cancelled:
            yield run.cancelled()
            return None
        t_step = time.perf_counter()
        running += train_step(run, stage, x, batches[n])
        n_loss += 1
        yield step_event(run, stage, n, len(x), time.perf_counter() - t_step, running / n_loss)
    return running / max(1, n_loss)


def mine(run: Run, stage: Stage, pair_batches: list[list[int]]
         ) -> Generator[Event, None, list[list[int]] | None]:
    """The epoch's batches of anchor pairs with hard negatives from a pool embedded now
    (:mod:`.mining`); None when cancelled."""
    rows = pool_rows(anchors_of(pair_batches), len(run.data.train_images), run.config.pool_size,
                     run.rng)
    label = epoch_label(stage.name, run.stage_epoch, stage.epochs)
    yield Progress("embed", 0, len(rows), message=f"mining hard negatives for {label}")
    vecs = run.model.embed([run.data.train_images[r] for r in rows])
    if vecs is None:
        yield run.cancelled()
        return None
    return mined_batches(pair_batches, run.data.train_labels, rows, vecs, run.config.negatives)


def train_step(run: Run, stage: Stage, x: torch.Tensor, rows: list[int]) -> float:
    """One optimiser step on the augmented uint8 images ``x`` of training rows ``rows``."""
    model, config = run.model, run.config
    stage.set_lr()
    y = run.labels[rows].to(model.device)
    x = x.to(model.device, non_blocking=True)
    with torch.autocast("cuda", dtype=run.amp_dtype, enabled=model.device.type == "cuda"):
        desc = model.net(x, train_trunk=stage.name == "full").float()
        loss = batch_loss(config.loss, desc, y, model.head, config.loss_margin, config.label_smoothing)
    stage.optimizer.zero_grad(set_to_none=True)
    run.scaler.scale(loss).backward()
    run.scaler.step(stage.optimizer)
    run.scaler.update()
    if hasattr(model.net.pool, "p"):
        with torch.no_grad():
            model.net.pool.p.clamp_(min=1.0, max=10.0)
    stage.step += 1
    return float(loss.detach())


def step_event(run: Run, stage: Stage, n: int, n_images: int, dt: float, loss: float) -> TrainStep:
    """The TrainStep of batch ``n``; the ETA is the plan's work left at the rates measured so far
    (the rest of this epoch, then the later epochs with their evaluations and mining)."""
    plan = run.plan
    run.seen += n_images
    run.train_time += dt
    rate = run.seen / max(run.train_time, 1e-6)
    eta = (plan.steps_per_epoch - n - 1) * plan.batch_size / rate
    if run.eval_time_per_image is not None:
        eta += plan.seconds(Speed(train=rate, embed=1 / run.eval_time_per_image), run.epoch)
        eta += run.eval_time_per_image * len(run.data.val_images)  # this epoch's val mAP
    return TrainStep(stage.name, run.stage_epoch, stage.epochs, n + 1, plan.steps_per_epoch, loss,
                     stage.optimizer.param_groups[0]["lr"], n_images / dt, eta,
                     run_step=(run.epoch - 1) * plan.steps_per_epoch + n + 1,
                     run_steps=plan.total_epochs * plan.steps_per_epoch, images=n_images)


# -- the end: best weights, whitening, checkpoint ---------------------------------------------------


def finish(run: Run, models_dir: str | Path | None) -> Generator[Event, None, None]:
    """The best epoch's weights (and whitening) saved; nothing when no epoch beat the
    off-the-shelf model: the original network is not a result."""
    improved = run.best.epoch > 0
    if not improved:
        log.info("no epoch beat the off-the-shelf val mAP %.4f: nothing saved", run.map_before)
    restore_best(run)
    whitening, map_whitened = None, None
    if run.config.whiten and improved:
        learned = yield from learn_whitening(run)
        if learned is None:
            return
        whitening, map_whitened = learned
    if run.cancel.cancelled:
        yield run.cancelled()
        return
    seconds = run.clock.seconds()
    ckpt_path = None
    if models_dir is not None and improved:
        ckpt_path = yield from save(run, Path(models_dir), whitening, map_whitened, seconds)
    best = run.best
    yield FinetuneResult(
        map_before=run.map_before, map_after=best.map,
        checkpoint=str(ckpt_path) if ckpt_path else None,
        seconds=run.clock.seconds(), cpu_seconds=run.clock.cpu_seconds(),
        history=tuple(run.history), data=run.data.summary, best_epoch=best.epoch, cancelled=False,
        stopped_early=run.stopped_early, map_whitened=map_whitened, pooling_params=best.params)


def restore_best(run: Run) -> None:
    net, best = run.model.net, run.best
    run.model.backbone.model.load_state_dict(best.state)
    if hasattr(net.pool, "p") and "p" in best.params:
        with torch.no_grad():
            net.pool.p.fill_(best.params["p"])


def learn_whitening(run: Run) -> Generator[Event, None, tuple[Whitening, float] | None]:
    """Supervised whitening learned on the train split; with its val mAP. None when cancelled."""
    data = run.data
    yield Progress("embed", 0, len(data.train_images) + len(data.val_images),
                   message="learning the whitening")
    tr = run.model.embed(data.train_images)
    va = run.model.embed(data.val_images)
    if tr is None or va is None:
        yield run.cancelled()
        return None
    whitening = learn_supervised_whitening(tr, data.train_labels)
    return whitening, label_retrieval(whitening.apply(va), data.val_labels).map


def save(run: Run, models_dir: Path, whitening: Whitening | None, map_whitened: float | None,
         seconds: float) -> Generator[Progress, None, Path]:
    """The best epoch's weights and what to know about them, written once, atomically."""
    config, best = run.config, run.best
    yield Progress("save", 0, 1)
    path = models_dir / f"{config.name or default_name(run.root, config)}.pt"
    info = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "recipe": {k: v for k, v in asdict(config).items() if k not in ("name",)},
        "data": run.data.summary.to_dict(),
        "metrics": {"map_before": run.map_before, "map_after": best.map,
                    "map_whitened": map_whitened, "best_epoch": best.epoch,
                    "seconds": round(seconds, 1)},
        "history": [asdict(h) for h in run.history],
        "base_weights_id": run.model.backbone.weights_id,
    }
    stored = None if whitening is None else {k: torch.from_numpy(v) for k, v in whitening.state().items()}
    save_checkpoint(path, Checkpoint(
        backbone=config.backbone, state_dict=best.state, pooling=config.pooling,
        pooling_params=best.params, size=config.size, whitening=stored, info=info))
    yield Progress("save", 1, 1, current=str(path))
    return path


def default_name(root: Path, config: FinetuneConfig) -> str:
    folder = re.sub(r"[^A-Za-z0-9_.-]+", "_", root.resolve().name) or "data"
    return f"{config.backbone}-{folder}-{config.loss}-{time.strftime('%Y%m%d-%H%M%S')}"
