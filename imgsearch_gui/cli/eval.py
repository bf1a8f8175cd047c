"""``imgsearch eval``: retrieval quality of the current model on a labelled folder, measured on
what ``imgsearch search`` returns with the data dir's settings (DBA, rotations, alpha-QE) unless
flags change them; ``--json`` reports the settings measured."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

from imgsearch_gui.base import paths
from imgsearch_gui.base.pathtext import display_path
from imgsearch_gui.cli.common import add_query_flags, config_from_args, load_model, query_settings


def add_parsers(sub, parents: list[argparse.ArgumentParser]) -> None:
    """eval."""
    p = sub.add_parser("eval", parents=parents, help="retrieval quality (mAP, mP@k, N-S) on "
                       "a labelled folder, a groups CSV or Oxford/Paris ground truth")
    p.add_argument("dir", type=Path, metavar="DIR",
                   help="photos; without --groups/--oxford-gt one subfolder per class")
    p.add_argument("--groups", type=Path, metavar="CSV", help="filename,group rows (e.g. UKBench)")
    p.add_argument("--oxford-gt", type=Path, metavar="GT_DIR",
                   help="Oxford/Paris *_query.txt and *_good/ok/junk.txt files")
    p.add_argument("--model", metavar="CHECKPOINT", help="a fine-tuned checkpoint to evaluate")
    p.add_argument("--whiten", type=int, nargs="?", const=0, metavar="DIM",
                   help="PCA-whitening learned on DIR (optionally reduced to DIM)")
    p.add_argument("--dba", type=int, metavar="N", help="database-side augmentation with N "
                   "neighbours (default: the data dir's, as search uses it; 0 = off)")
    add_query_flags(p)
    p.add_argument("--per-query", action="store_true", help="print the AP of every query")
    p.add_argument("--json", action="store_true", help="one JSON object with the scores")


def run(args: argparse.Namespace) -> int:
    from imgsearch_gui.app.evaluation import EvalSettings, evaluate

    if args.model:
        args.weights = args.model
    data_dir = paths.data_dir(args.data_dir)
    config = config_from_args(args, data_dir)
    embedder = load_model(config)
    default = EvalSettings.of(config, whiten=args.whiten)
    settings = replace(default, query=query_settings(args, default.query))
    bar = None

    def progress(event) -> None:
        nonlocal bar
        if not sys.stderr.isatty() or args.json:
            return
        desc = "embedding" if event.stage == "embed" else event.stage.replace(
            "embed turned", "embedding turned") + " degrees"
        if bar is None or bar.desc != desc:  # a bar per view: upright, then each turn
            from tqdm import tqdm

            if bar is not None:
                bar.close()
            bar = tqdm(total=event.total, unit="img", desc=desc, file=sys.stderr)
        bar.update(event.done - bar.n)

    try:
        result = evaluate(embedder, args.dir, groups=args.groups, oxford_gt=args.oxford_gt,
                          settings=settings, cache_dir=data_dir / "eval-cache", progress=progress)
    finally:
        if bar is not None:
            bar.close()
    if args.json:
        out = result.to_dict(per_query=args.per_query)
        out["model"] = embedder.meta.describe()  # "settings": what was measured
        print(json.dumps(out))
        return 0
    print(f"model:    {embedder.meta.describe()}")
    print(f"search:   {describe_settings(settings)}")
    print(f"images:   {result.n_images} ({len(result.skipped_images)} unreadable skipped)")
    print(f"queries:  {result.n_queries}" + (f" ({result.skipped_queries} skipped: image missing)"
                                             if result.skipped_queries else ""))
    print(f"mAP:      {100 * result.map:.2f}")
    print(f"mP@1/5/10: {100 * result.mp_at_1:.2f} / {100 * result.mp_at_5:.2f} / "
          f"{100 * result.mp_at_10:.2f}")
    if result.ns_score is not None:
        print(f"N-S:      {result.ns_score:.3f} / 4")
    if args.per_query:
        for name, ap in result.per_query:
            print(f"  {100 * ap:6.2f}  {display_path(name)}")
    return 0


def describe_settings(settings) -> str:
    """One line naming what the scores measure."""
    query = settings.query
    parts = [f"DBA {settings.dba}" if settings.dba else "no DBA",
             "rotations" if query.rotations else "no rotations",
             f"alpha-QE {query.expansion.n}" if query.expansion else "no QE"]
    if settings.whiten is not None:
        parts.append(f"whitened to {settings.whiten}" if settings.whiten else "whitened")
    return ", ".join(parts)
