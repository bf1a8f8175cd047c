"""Fine-tuning: off-the-shelf vs fine-tuned val-split retrieval mAP, with wall and CPU time.

oxford_flowers17 with a seeded 40 train / 40 val split per class, and clothing10 with its own
train/validation split (train capped per class with --clothing-max-per-class to keep CPU runs
short). Every val image is a query against the val set, itself excluded. Runs the app's default
recipe (``FinetuneConfig()``) with the classification and the triplet loss.

    python bench/finetune.py [--datasets flowers17 clothing10] [--losses classification triplet]

Set OMP_WAIT_POLICY=PASSIVE (done here before torch loads): with the CPU shared by other
processes, OpenMP's spinning barriers otherwise slow small batches down by orders of magnitude.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from dataclasses import replace  # noqa: E402

from common import DATA  # noqa: E402

from imgsearch_gui.ml.finetune import (  # noqa: E402
    DataReady,
    EpochEnd,
    FinetuneConfig,
    FinetuneResult,
    finetune,
)

DATASETS = {
    "flowers17": (DATA / "oxford_flowers17", {"val_fraction": 0.5}),
    "clothing10": (DATA / "clothing10", {}),
    "cub10": (DATA / "cub_dev10", {"val_fraction": 0.2}),
}


def run_one(name: str, loss: str, overrides: dict, models_dir) -> dict:
    root, extra = DATASETS[name]
    config = replace(FinetuneConfig(), loss=loss, name=f"bench-{name}-{loss}",
                     **extra, **overrides)
    t0, c0 = time.perf_counter(), time.process_time()
    result = None
    for event in finetune(root, config, models_dir):
        if isinstance(event, DataReady):
            s = event.summary
            print(f"  {name}: {len(s.classes)} classes, {s.n_train} train / {s.n_val} val, "
                  f"{event.device}, batch {event.batch_size}", flush=True)
        elif isinstance(event, EpochEnd):
            print(f"  epoch {event.epoch}/{event.epochs} {event.stage}: loss {event.loss:.4f} "
                  f"val mAP {100 * event.val_map:.2f} p {event.p}  ({time.perf_counter() - t0:.0f} s)",
                  flush=True)
        elif isinstance(event, FinetuneResult):
            result = event
    assert result is not None
    return {"dataset": name, "loss": loss, "n_train": result.data.n_train,
            "n_val": result.data.n_val, "map_before": result.map_before,
            "map_after": result.map_after, "best_epoch": result.best_epoch,
            "wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0,
            "p": result.pooling_params.get("p"),
            "epochs": [(h.epoch, h.stage, round(h.val_map, 4)) for h in result.history],
            "recipe": {k: v for k, v in vars(config).items() if k != "name"}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", nargs="+", default=["flowers17", "clothing10"])
    ap.add_argument("--losses", nargs="+", default=["classification", "triplet"])
    ap.add_argument("--clothing-max-per-class", type=int, default=100)
    ap.add_argument("--epochs", type=int, help="override the default number of epochs")
    ap.add_argument("--size", type=int)
    ap.add_argument("--lr", type=float)
    ap.add_argument("--threads", type=int)
    ap.add_argument("--models-dir", default="/tmp/imgsearch-bench-models")
    ap.add_argument("--json", help="append the rows here (JSON list)")
    args = ap.parse_args()
    rows = []
    for name in args.datasets:
        for loss in args.losses:
            overrides: dict = {}
            for key in ("epochs", "size", "lr", "threads"):
                if getattr(args, key) is not None:
                    overrides[key] = getattr(args, key)
            if name == "clothing10" and args.clothing_max_per_class:
                overrides["max_per_class"] = args.clothing_max_per_class
            print(f"{name} / {loss} {overrides}", flush=True)
            rows.append(run_one(name, loss, overrides, args.models_dir))
            r = rows[-1]
            print(f"  -> {100 * r['map_before']:.1f} -> {100 * r['map_after']:.1f}  "
                  f"{r['wall_s']:.0f} s wall, {r['cpu_s']:.0f} s CPU", flush=True)
            if args.json:
                with open(args.json, "w") as fh:
                    json.dump(rows, fh, indent=1)
    cores = os.cpu_count()
    load = os.getloadavg()
    print(f"\n{cores} CPU cores, load average at the end {load[0]:.1f} (shared machine)\n")
    print("| dataset | loss | train/val | off-the-shelf mAP | fine-tuned mAP | best epoch | "
          "wall | CPU |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['dataset']} | {r['loss']} | {r['n_train']}/{r['n_val']} | "
              f"{100 * r['map_before']:.1f} | {100 * r['map_after']:.1f} | {r['best_epoch']} | "
              f"{r['wall_s'] / 60:.1f} min | {r['cpu_s'] / 60:.1f} min |")


if __name__ == "__main__":
    main()
