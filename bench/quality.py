"""Quality features measured with the eval code path, each alone and combined.

flowers17: class mAP (every image a query, itself excluded); ukbench_dev300: N-S and mAP.
Rows: the default off-the-shelf model, + multi-scale, + PCA-whitening, + alpha-QE, + DBA, and
combinations. Costs: embedding time per image (multi-scale), post-processing time per query.

    python bench/quality.py [--pooling gem] [--size 384] [--data-dir /tmp/imgsearch-bench]
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from common import DATA, flowers17, require, ukbench

from imgsearch_gui.app.evaluation import PostProcessing, evaluate
from imgsearch_gui.base.config import EmbedderConfig
from imgsearch_gui.ml.embedder import load_embedder
from imgsearch_gui.ml.query_expansion import alpha_qe, dba
from imgsearch_gui.ml.whitening import learn_pca_whitening

VARIANTS = {
    "off-the-shelf": (False, PostProcessing()),
    "+ multi-scale": (True, PostProcessing()),
    "+ PCA-whitening": (False, PostProcessing(whiten=0)),
    "+ PCA-whitening 256": (False, PostProcessing(whiten=256)),
    "+ alpha-QE (n=2, a=3)": (False, PostProcessing(qe="alpha", qe_n=2, alpha=3.0)),
    "+ DBA (n=3, a=3) [default]": (False, PostProcessing(dba_n=3, alpha=3.0)),
    "+ DBA + alpha-QE": (False, PostProcessing(dba_n=3, qe="alpha")),
    "+ multi-scale + DBA": (True, PostProcessing(dba_n=3)),
    "+ multi-scale + DBA + alpha-QE": (True, PostProcessing(dba_n=3, qe="alpha")),
    "+ whitening + DBA + alpha-QE": (False, PostProcessing(whiten=0, dba_n=3, qe="alpha")),
}


def post_cost_ms(vectors: np.ndarray, post: PostProcessing) -> tuple[float, float]:
    """(ms per indexed image, ms per query) that the post-processing adds, exact search."""
    t0 = time.perf_counter()
    db = vectors
    if post.whiten is not None:
        w = learn_pca_whitening(db, dim=post.whiten or None)
        db = w.apply(db)
    if post.dba_n:
        db = dba(db, n=post.dba_n, alpha=post.alpha)
    per_image = (time.perf_counter() - t0) * 1000 / len(vectors)
    queries = vectors[:100]
    t0 = time.perf_counter()
    q = w.apply(queries) if post.whiten is not None else queries
    if post.qe != "none":
        q = alpha_qe(q, db, n=post.qe_n, alpha=post.alpha)
    per_query = (time.perf_counter() - t0) * 1000 / len(queries)
    return per_image, per_query


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pooling", default=EmbedderConfig().pooling)
    ap.add_argument("--size", type=int, default=EmbedderConfig().size)
    ap.add_argument("--data-dir", type=Path, default=Path("/tmp/imgsearch-bench"))
    ap.add_argument("--only", nargs="*", help="variant names to run")
    ap.add_argument("--json")
    args = ap.parse_args()
    require(flowers17()[0])
    require(ukbench()[0])
    base = EmbedderConfig(pooling=args.pooling, size=args.size)
    embedders = {False: load_embedder(base), True: load_embedder(replace(base, multiscale=True))}
    rows = []
    embed_secs: dict[bool, float] = {}
    for name, (multi, post) in VARIANTS.items():
        if args.only and name not in args.only:
            continue
        emb = embedders[multi]
        fl = evaluate(emb, DATA / "oxford_flowers17", post=post, cache_dir=args.data_dir)
        uk = evaluate(emb, DATA / "ukbench_dev300", groups=DATA / "ukbench_dev300" / "groups.csv",
                      post=post, cache_dir=args.data_dir)
        if fl.seconds_embed > 1:  # only the run that embedded (later runs use the cache)
            embed_secs[multi] = (fl.seconds_embed + uk.seconds_embed) / (fl.n_images + uk.n_images)
        from imgsearch_gui.app.evaluation import cached_descriptors

        vecs, _, _, _ = cached_descriptors(emb, flowers17()[0], args.data_dir)
        per_image, per_query = post_cost_ms(vecs, post)
        rows.append({"variant": name, "multiscale": multi, "flowers17_map": fl.map,
                     "ukbench_ns": uk.ns_score, "ukbench_map": uk.map,
                     "post_ms_per_image": per_image, "post_ms_per_query": per_query})
        print(f"{name}: flowers {100 * fl.map:.1f}, ukbench N-S {uk.ns_score:.2f}", flush=True)
    print(f"\n{embedders[False].meta.describe()}\n")
    for multi, secs in sorted(embed_secs.items()):
        print(f"embedding: {1000 * secs:.0f} ms/image ({'multi-scale' if multi else 'single scale'})")
    print("\n| variant | flowers17 mAP | UKBench N-S | UKBench mAP | + ms/indexed image | + ms/query |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['variant']} | {100 * r['flowers17_map']:.1f} | {r['ukbench_ns']:.2f} | "
              f"{100 * r['ukbench_map']:.1f} | {r['post_ms_per_image']:.2f} | "
              f"{r['post_ms_per_query']:.2f} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "embed_s_per_image": embed_secs}))


if __name__ == "__main__":
    main()
