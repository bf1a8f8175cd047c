"""Class-retrieval mAP on oxford_flowers17 and N-S / mAP on ukbench_dev300, for every pooling.

One forward pass per image and size; every pooling is applied to the same feature map, so the
poolings are compared on identical features. Images go through the app's own loading path
(draft JPEG decode, EXIF, longest side resized to the size).

    python bench/pooling_map.py --sizes 384 512 [--backbone efficientnet_lite0]
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from common import flowers17, require, ukbench

from imgsearch_gui.base.config import EmbedderConfig
from imgsearch_gui.base.images import load_image
from imgsearch_gui.ml import functional as LF
from imgsearch_gui.ml.backbones import load_backbone
from imgsearch_gui.ml.embedder import Embedder
from imgsearch_gui.ml.evaluate import label_retrieval, ns_score

POOLINGS = ["rmac", "gem", "mac", "crow", "spoc", "sum"]


def descriptors(embedder: Embedder, paths, size: int) -> dict[str, np.ndarray]:
    out: dict[str, list[np.ndarray]] = {p: [] for p in POOLINGS}

    def decode(path):
        return embedder.prepare(load_image(path, max_side=size))

    with ThreadPoolExecutor(2) as pool, torch.inference_mode():
        for tensor in pool.map(decode, paths):
            x = tensor[None].float()
            x = ((x - embedder._mean) / embedder._std).contiguous(memory_format=torch.channels_last)
            fmap = embedder.backbone(x).float()
            for name in POOLINGS:
                params = LF.DEFAULT_PARAMS.get(name, {})
                out[name].append(LF.pool(fmap, name, **params)[0].numpy())
    return {k: np.stack(v) for k, v in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[384, 512])
    ap.add_argument("--backbone", default="efficientnet_lite0")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()

    fl_paths, fl_labels = flowers17()
    uk_paths, uk_groups = ukbench()
    require(fl_paths)
    require(uk_paths)
    backbone = load_backbone(args.backbone)
    rows = []
    for size in args.sizes:
        embedder = Embedder(EmbedderConfig(backbone=args.backbone, size=size, runtime="torch"), backbone)
        t0 = time.perf_counter()
        fl = descriptors(embedder, fl_paths, size)
        uk = descriptors(embedder, uk_paths, size)
        secs = time.perf_counter() - t0
        for name in POOLINGS:
            f = label_retrieval(fl[name], fl_labels)
            u = label_retrieval(uk[name], uk_groups)
            rows.append({"size": size, "pooling": name, "flowers17_map": f.map,
                         "ukbench_ns": ns_score(uk[name], uk_groups), "ukbench_map": u.map})
        print(f"size {size}: {len(fl_paths) + len(uk_paths)} images in {secs:.0f} s", flush=True)

    print(f"\n{args.backbone}; flowers17: {len(fl_paths)} images, every image a query, itself "
          f"excluded; ukbench_dev300: {len(uk_paths)} images\n")
    print("| size | pooling | flowers17 mAP | UKBench N-S | UKBench mAP |")
    print("|---:|---|---:|---:|---:|")
    for r in sorted(rows, key=lambda r: (r["size"], -r["flowers17_map"])):
        print(f"| {r['size']} | {r['pooling']} | {100 * r['flowers17_map']:.1f} | "
              f"{r['ukbench_ns']:.2f} | {100 * r['ukbench_map']:.1f} |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
