"""``imgsearch finetune LABELLED_DIR``: fine-tune the CNN on a folder with one subfolder per class.

Prints the data check (classes, counts, unreadable files), a progress bar per epoch, the val mAP
of every epoch and the before/after table; ``--json`` prints one object instead (map_before,
map_after, checkpoint, seconds, history...). The checkpoint is saved as
``<data dir>/models/<name>.pt``; use it with ``imgsearch index DIR --weights CKPT --rebuild``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from pathlib import Path

from imgsearch_gui.base.pathtext import display_path

log = logging.getLogger(__name__)


def add_parser(sub, parents: list[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    from imgsearch_gui.base.finetune_config import LOSSES, FinetuneConfig

    d = FinetuneConfig()
    p = sub.add_parser(
        "finetune", parents=parents,
        help="fine-tune the CNN on a labelled folder (one subfolder per class)",
        description="Fine-tune the CNN on LABELLED_DIR (LABELLED_DIR/CLASS/photo.jpg, or "
        "train/ and validation/ folders of classes, used as given). Reports the val-split "
        "retrieval mAP before and after and saves a checkpoint under <data dir>/models/.")
    p.add_argument("dir", type=Path, metavar="LABELLED_DIR")
    p.add_argument("--epochs", type=int, default=d.epochs,
                   help=f"whole-network epochs (default {d.epochs})")
    p.add_argument("--head-epochs", type=int, default=d.head_epochs,
                   help=f"classification: head-only epochs first (default {d.head_epochs})")
    p.add_argument("--loss", choices=LOSSES, default=d.loss,
                   help=f"training objective (default {d.loss})")
    p.add_argument("--val-fraction", type=float, default=d.val_fraction,
                   help=f"share of each class held out for validation (default {d.val_fraction}; "
                   "ignored when the folder has train/ and validation/)")
    p.add_argument("--lr", type=float, help="backbone learning rate; head and GeM p get 10x "
                   "(default 1e-3 for classification, 1e-4 for contrastive/triplet)")
    p.add_argument("--margin", type=float, help="contrastive (default 0.7) / triplet (0.1) margin")
    p.add_argument("--negatives", type=int, default=d.negatives,
                   help=f"contrastive/triplet: hard negatives per anchor pair, mined each epoch "
                   f"from {d.pool_size} training photos embedded with the current network "
                   f"(default {d.negatives}; 0 = only in the batch)")
    p.add_argument("--epoch-images", type=int, default=d.epoch_images, metavar="N",
                   help=f"an epoch of a larger folder samples N training photos (default "
                   f"{d.epoch_images}); 0 = every photo in every epoch")
    p.add_argument("--label-smoothing", type=float, default=d.label_smoothing)
    p.add_argument("--patience", type=int, default=d.patience,
                   help=f"stop after this many epochs without a better val mAP (default "
                   f"{d.patience}; 0 = never)")
    p.add_argument("--min-epochs", type=int, metavar="N",
                   help="full epochs that never count against the patience (default: half of "
                   "--epochs)")
    p.add_argument("--seed", type=int, default=d.seed, help="split/sampling seed")
    p.add_argument("--whiten", action="store_true",
                   help="also learn a supervised whitening on the train split (its mAP is "
                   "reported; stored in the checkpoint and applied when indexing with it)")
    p.add_argument("--max-per-class", type=int, metavar="N",
                   help="use at most N training images per class (quick runs)")
    p.add_argument("--name", help="checkpoint name (default: backbone-folder-loss-time)")
    p.add_argument("--json", action="store_true", help="print one JSON object with the results")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    return p


def _config(args: argparse.Namespace):
    from imgsearch_gui.base.finetune_config import FinetuneConfig

    d = FinetuneConfig()
    pooling = args.pooling or d.pooling
    return FinetuneConfig(
        backbone=args.backbone or d.backbone, weights=args.weights, pooling=pooling,
        size=args.size or d.size, loss=args.loss, epochs=args.epochs,
        head_epochs=args.head_epochs, batch_size=args.batch_size, lr=args.lr,
        label_smoothing=args.label_smoothing, margin=args.margin,
        val_fraction=args.val_fraction, seed=args.seed, patience=args.patience,
        min_epochs=args.min_epochs, negatives=args.negatives,
        epoch_images=args.epoch_images or None,
        whiten=args.whiten, device=args.device or d.device,
        workers=args.workers or d.workers, max_per_class=args.max_per_class, name=args.name)


def run(args: argparse.Namespace) -> int:
    from imgsearch_gui.base import paths
    from imgsearch_gui.base.errors import UserError
    from imgsearch_gui.base.types import CancelToken, Progress
    from imgsearch_gui.ml.finetune import DataReady, EpochEnd, FinetuneResult, TrainStep, finetune

    if not args.dir.is_dir():
        raise UserError(f"not a folder: {args.dir}")
    data_dir = paths.data_dir(args.data_dir)
    config = _config(args).checked()  # FinetuneError: a UserError, reported by dispatch
    quiet = args.quiet or args.json
    err = sys.stderr
    bar = None
    show_bar = not quiet and err.isatty()
    token = CancelToken()
    result: FinetuneResult | None = None
    try:
        for event in finetune(args.dir, config, data_dir / "models", cancel=token):
            if isinstance(event, FinetuneResult):
                result = event
            elif isinstance(event, DataReady) and not quiet:
                _print_data(event, err)
            elif isinstance(event, TrainStep) and not quiet:
                if show_bar:
                    if bar is None or bar.total != event.steps or event.step == 1:
                        if bar is not None:
                            bar.close()
                        from tqdm import tqdm

                        bar = tqdm(total=event.steps, unit="step", file=err, dynamic_ncols=True,
                                   desc=event.label)
                    bar.set_postfix(loss=f"{event.loss:.4f}", lr=f"{event.lr:.1e}",
                                    ips=f"{event.images_per_s:.1f}")
                    bar.update(event.step - bar.n)
            elif isinstance(event, EpochEnd) and not quiet:
                if bar is not None:
                    bar.close()
                    bar = None
                p = f", p {event.p:.2f}" if event.p is not None else ""
                print(f"{event.label}: loss {event.loss:.4f}, val mAP "
                      f"{100 * event.val_map:.2f}{p}, {event.seconds:.0f} s"
                      f"{'  (best)' if event.best else ''}", file=err, flush=True)
            elif isinstance(event, Progress) and not quiet and event.message:
                print(event.message, file=err, flush=True)
    except KeyboardInterrupt:
        token.cancel()
        raise
    finally:
        if bar is not None:
            bar.close()
    assert result is not None
    if args.json:
        out = result.to_dict()
        out["map_before"] = _finite(out["map_before"])
        out["map_after"] = _finite(out["map_after"])
        print(json.dumps(out))
        return 1 if result.cancelled else 0
    _print_result(result)
    return 1 if result.cancelled else 0


def _finite(x: float | None) -> float | None:
    return None if x is None or math.isnan(x) else x


def _print_data(event, out) -> None:
    s = event.summary
    split = "given (train/validation folders)" if s.split == "given" else (
        f"random per class, {100 * (s.val_fraction or 0):.0f}% val, seed {s.seed}")
    print(f"data:   {display_path(str(s.root))}: {len(s.classes)} classes, {s.n_train} train / {s.n_val} val "
          f"images; split {split}", file=out)
    for c in s.classes:
        print(f"  {display_path(c.name):<24} {c.train:5d} train {c.val:5d} val", file=out)
    for b in s.bad_files[:50]:
        print(f"  skipped {display_path(str(b.path))}: {display_path(b.reason)}", file=out)
    if len(s.bad_files) > 50:
        print(f"  ... and {len(s.bad_files) - 50} more unreadable files", file=out)
    print(f"device: {event.device}, batch {event.batch_size}", file=out, flush=True)


def _print_result(r) -> None:
    if r.cancelled:
        print("cancelled: no checkpoint was written")
        return
    print("")
    print("| model | val mAP |")
    print("|---|---:|")
    print(f"| off-the-shelf | {100 * r.map_before:.2f} |")
    best = r.best
    if best is not None:
        print(f"| fine-tuned ({best.label}) | {100 * r.map_after:.2f} |")
    if r.map_whitened is not None:
        print(f"| fine-tuned + whitening | {100 * r.map_whitened:.2f} |")
    print("")
    params = ", ".join(f"{k}={v:.3f}" for k, v in r.pooling_params.items())
    print(f"time:       {r.seconds:.0f} s wall, {r.cpu_seconds:.0f} s CPU"
          + (" (stopped early)" if r.stopped_early else ""))
    if params:
        print(f"pooling:    {params}")
    if not r.improved:
        print("result:     no fine-tuned epoch beat the off-the-shelf model on the validation "
              "photos; nothing was saved (keep using the current model)")
        return
    checkpoint = display_path(str(r.checkpoint)) if r.checkpoint else r.checkpoint
    print(f"checkpoint: {checkpoint}")
    if r.checkpoint:
        print(f"use it:     imgsearch index DIR --weights {checkpoint} --rebuild")
