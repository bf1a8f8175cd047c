"""Fine-tuning: off-the-shelf vs fine-tuned val-split retrieval mAP, with wall and CPU time.

oxford_flowers17 with a seeded 40 train / 40 val split per class, clothing10 with its own
train/validation split, cub_dev10 with a seeded 80/20 split. Every val image is a query against
the val set, itself excluded. Runs the app's default recipe (``FinetuneConfig()``, what
``imgsearch finetune DIR`` runs) with each loss; "error removed" is the share of (1 - mAP before)
that fine-tuning removed. ``--seeds 0 1 2`` repeats a run with other splits and sampling.

    python bench/finetune.py [--datasets flowers17 clothing10 cub10]
                             [--losses classification triplet contrastive] [--seeds 0]

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
                     **{**extra, **overrides})
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
    best = result.best
    return {"dataset": name, "loss": loss, "seed": config.seed, "n_train": result.data.n_train,
            "n_val": result.data.n_val, "map_before": result.map_before,
            "map_after": result.map_after, "improved": result.improved,
            "error_removed": (result.map_after - result.map_before) / (1 - result.map_before),
            "best_epoch": f"{best.stage} {best.epoch}/{best.epochs}" if best else "none",
            "stopped_early": result.stopped_early,
            "wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0,
            "p": result.pooling_params.get("p"),
            "epochs": [(h.stage, h.epoch, round(h.val_map, 4)) for h in result.history],
            "recipe": {k: v for k, v in vars(config).items() if k != "name"}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", nargs="+", default=list(DATASETS))
    ap.add_argument("--losses", nargs="+", default=["classification", "triplet", "contrastive"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--epochs", type=int, help="override the default number of epochs")
    ap.add_argument("--margin", type=float)
    ap.add_argument("--size", type=int)
    ap.add_argument("--lr", type=float)
    ap.add_argument("--threads", type=int)
    ap.add_argument("--models-dir", default="/tmp/imgsearch-bench-models")
    ap.add_argument("--json", help="append the rows here (JSON list)")
    args = ap.parse_args()
    rows = []
    for name in args.datasets:
        for loss in args.losses:
            for seed in args.seeds:
                overrides: dict = {"seed": seed}
                for key in ("epochs", "size", "lr", "threads", "margin"):
                    if getattr(args, key) is not None:
                        overrides[key] = getattr(args, key)
                print(f"{name} / {loss} {overrides}", flush=True)
                rows.append(run_one(name, loss, overrides, args.models_dir))
                r = rows[-1]
                print(f"  -> {100 * r['map_before']:.1f} -> {100 * r['map_after']:.1f} "
                      f"({100 * r['error_removed']:.0f} % of the error removed), "
                      f"{r['wall_s']:.0f} s wall, {r['cpu_s']:.0f} s CPU", flush=True)
                if args.json:
                    with open(args.json, "w") as fh:
                        json.dump(rows, fh, indent=1)
    cores = os.cpu_count()
    load = os.getloadavg()
    print(f"\n{cores} CPU cores, load average at the end {load[0]:.1f} (shared machine)\n")
    print_table(rows)


def print_table(rows: list[dict]) -> None:
    print("| dataset | loss | seed | train/val | mAP before | mAP after | error removed | "
          "best epoch | wall | CPU |")
    print("|---|---|---:|---|---:|---:|---:|---|---:|---:|")
    for r in rows:
        print(f"| {r['dataset']} | {r['loss']} | {r['seed']} | {r['n_train']}/{r['n_val']} | "
              f"{100 * r['map_before']:.1f} | {100 * r['map_after']:.1f} | "
              f"{100 * r['error_removed']:.0f} % | {r['best_epoch']} | "
              f"{r['wall_s'] / 60:.1f} min | {r['cpu_s'] / 60:.1f} min |")


if __name__ == "__main__":
    main()
