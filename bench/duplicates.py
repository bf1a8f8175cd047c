"""The duplicate finder on the dev sets of bench/dupset.py, through the code path users run.

    python bench/duplicates.py quality [--sets /tmp/dupset] [--half tune|heldout|both]
    python bench/duplicates.py scale [--folder /tmp/dupscale] [--n 10000]

``quality`` indexes each half with the shipped default model (ImageLibrary.index_library, what
``imgsearch index`` runs), then runs ImageLibrary.find_duplicates (what ``imgsearch duplicates``
and the GUI run) and scores the groups: pairwise precision / recall, recall per kind of copy,
and the recall of the candidates stage alone. ``scale`` times the finder on ~10,000 indexed
photos (bench/dupset.build_scale); indexing is timed apart and not counted.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from itertools import combinations
from pathlib import Path

import dupset

from imgsearch_gui.app.duplicates import DuplicateReport, FinderOptions
from imgsearch_gui.app.library import ImageLibrary
from imgsearch_gui.base.config import EmbedderConfig
from imgsearch_gui.base.types import IndexReport
from imgsearch_gui.ml.embedder import load_embedder


def open_indexed(folder: Path, data_dir: Path) -> ImageLibrary:
    config = EmbedderConfig()
    library = ImageLibrary.for_config(data_dir, load_embedder(config), config)
    t0 = time.perf_counter()
    for event in library.index_library(folder):
        if isinstance(event, IndexReport):
            print(f"indexed {folder}: {event.embedded} embedded in {time.perf_counter() - t0:.1f} s")
    return library


def find(library: ImageLibrary, options: FinderOptions | None = None) -> DuplicateReport:
    for event in library.find_duplicates(options):
        if isinstance(event, DuplicateReport):
            return event
    raise RuntimeError("no report")


def quality(sets: Path, half: str, work: Path, options: FinderOptions) -> dict:
    truth = dupset.DupSet.load(sets / half)
    library = open_indexed(truth.root, work / f"data-{half}")
    with library:
        report = find(library, options)
        groups = [[Path(f.path) for f in g.files] for g in report.groups]
        scores = dupset.pair_scores(groups, truth)
        by_kind = dupset.recall_by_kind(groups, truth)
        cand = candidate_recall(library, truth, options)
    out = {"half": half, "precision": round(scores.precision, 4), "recall": round(scores.recall, 4),
           "tp": scores.tp, "fp": scores.fp, "fn": scores.fn, "groups": len(report.groups),
           "pairs_checked": report.pairs_checked, "seconds": round(report.seconds, 2),
           "candidate_recall": cand, "recall_by_kind": {k: round(v, 3) for k, v in by_kind.items()}}
    print(json.dumps(out, indent=1))
    misses(groups, truth)
    return out


def candidate_recall(library: ImageLibrary, truth: dupset.DupSet, options: FinderOptions) -> float:
    """The share of true pairs of distinct contents that stage one proposes."""
    from imgsearch_gui.app.duplicates import finder

    cat, store = library.catalog, library.store
    scope = finder._scope(cat, store, ())
    thumbs = {**cat.thumbprints()}
    pairs = finder._candidates(cat, store, scope, thumbs, options)
    proposed = {(p.a, p.b) for p in pairs}
    vid_of = {Path(r.path): v for v, recs in scope.files.items() for r in recs}
    want = set()
    for group in truth.groups:
        vids = sorted({vid_of[p] for p in group if p in vid_of})
        want |= set(combinations(vids, 2))
    return round(len(want & proposed) / max(1, len(want)), 4)


def misses(groups: list[list[Path]], truth: dupset.DupSet) -> None:
    """Print the missed copies and the wrong pairs, for reading failures."""
    found = {frozenset(p) for g in groups for p in combinations(g, 2)}
    group_of = {p: i for i, g in enumerate(truth.groups) for p in g}
    for g in truth.groups:
        for a, b in combinations(g, 2):
            if frozenset((a, b)) not in found and truth.kinds.get(a) == "original":
                print(f"  missed {truth.kinds.get(b)}: {b.name}")
    for fg in groups:
        for a, b in combinations(fg, 2):
            if group_of.get(a, -1) != group_of.get(b, -2):
                print(f"  wrong: {truth.kinds.get(a)} {a.name} ~ {truth.kinds.get(b)} {b.name}")


def scale(folder: Path, n: int, work: Path, options: FinderOptions) -> dict:
    if not folder.exists():
        dupset.build_scale(folder, n)
    library = open_indexed(folder, work / "data-scale")
    with library:
        t0 = time.perf_counter()
        report = find(library, options)
        seconds = time.perf_counter() - t0
    out = {"photos": report.photos, "groups": len(report.groups),
           "pairs_checked": report.pairs_checked, "seconds": round(seconds, 1)}
    print(json.dumps(out))
    return out


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=("quality", "scale"))
    ap.add_argument("--sets", type=Path, default=Path("/tmp/dupset"))
    ap.add_argument("--half", choices=("tune", "heldout", "both"), default="tune")
    ap.add_argument("--folder", type=Path, default=Path("/tmp/dupscale"))
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--work", type=Path, default=Path("/tmp/dupbench"))
    ap.add_argument("--k", type=int, default=FinderOptions.neighbours)
    ap.add_argument("--min-cosine", type=float, default=FinderOptions.min_cosine)
    ap.add_argument("--thumb-k", type=int, default=FinderOptions.turned_neighbours)
    ap.add_argument("--min-thumb", type=float, default=FinderOptions.min_thumb_correlation)
    ap.add_argument("--keypoints", type=int, default=0, help="ORB keypoints (default: shipped)")
    args = ap.parse_args()
    options = FinderOptions(neighbours=args.k, min_cosine=args.min_cosine,
                            turned_neighbours=args.thumb_k, min_thumb_correlation=args.min_thumb)
    if args.keypoints:
        from imgsearch_gui.ml import same_photo

        same_photo.KEYPOINTS = args.keypoints
    if args.what == "quality":
        if not args.sets.exists():
            dupset.build(args.sets)
        for half in (("tune", "heldout") if args.half == "both" else (args.half,)):
            quality(args.sets, half, args.work, options)
    else:
        scale(args.folder, args.n, args.work, options)


if __name__ == "__main__":
    main()
