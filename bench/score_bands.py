"""Score distributions of the shipped search, and the bands ("same photo", "very similar",
"similar", "unrelated") chosen from them.

Scores are what ``imgsearch search`` reports (``app.search.rank`` through ``EvalIndex``: the
shipped rotations, DBA and QE), on the descriptors cached by ``bench/defaults.py embed``:
- exact copy: a library photo searched for itself;
- edited copy: a copy of ``bench/devsets.py``'s copy set and its original;
- same object: another view of a UKBench object (the same thing, another shot);
- same class: another photo of the class (flowers17, clothing10, cub_dev10);
- unrelated, best: the best score of a query whose library has nothing related in it (flowers
  searched among clothes and birds, and so on): what a query with no real match sees first.

    python bench/score_bands.py [--cache /tmp/imgsearch-bench] [--pooling rmac --size 384]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from defaults_score import Candidate, Descriptors
from devsets import dev_sets

from imgsearch_gui.app.evaluation import EvalIndex, EvalSettings
from imgsearch_gui.app.search import QuerySettings
from imgsearch_gui.base.config import EmbedderConfig

QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


def shipped(args) -> Candidate:
    config = EmbedderConfig()
    return Candidate(args.size or config.size, config.multiscale, args.pooling or config.pooling,
                     config.dba, config.qe, None, config.rotations, QuerySettings().turned_min)


def _ranked_scores(index: EvalIndex, views: list[np.ndarray]) -> list[dict[int, float]]:
    return [dict(zip(lab.tolist(), sim.tolist(), strict=True)) for lab, sim in index.ranked(views)]


def distributions(desc: Descriptors, c: Candidate) -> dict[str, list[float]]:
    settings: EvalSettings = c.settings()
    out: dict[str, list[float]] = {"exact copy": [], "edited copy": [], "same object": [],
                                   "same class": [], "unrelated, best": []}
    sets = dev_sets(desc.cache / "copies")
    for s in sets:
        if s.kind == "copy":
            index = EvalIndex(desc.get(c, "r0", s.paths), settings)
            q = desc.views(c, s.queries)
            scores = _ranked_scores(index, [np.stack([v[i] for v in q])
                                            for i in range(len(s.queries))])
            out["edited copy"] += [sc[t] for sc, t in zip(scores, s.targets, strict=True)]
            continue
        views = desc.views(c, s.paths)
        index = EvalIndex(views[0], settings)
        scores = _ranked_scores(index, [np.stack([v[i] for v in views])
                                        for i in range(len(s.paths))])
        labels = np.asarray(s.labels)
        key = "same object" if s.kind == "instance" else "same class"
        for i, sc in enumerate(scores):
            out["exact copy"].append(sc[i])
            out[key] += [sc[j] for j in np.flatnonzero(labels == labels[i]) if j != i]
    # unrelated: each class set's queries against the other class sets' photos
    classes = [s for s in sets if s.kind == "class" and s.half == "tune"]
    for s in classes:
        others = [p for o in classes if o.name != s.name for p in o.paths]
        index = EvalIndex(desc.get(c, "r0", others), settings)
        q = desc.views(c, s.paths[::4])
        scores = _ranked_scores(index, [np.stack([v[i] for v in q]) for i in range(len(q[0]))])
        out["unrelated, best"] += [max(sc.values()) for sc in scores]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", type=Path, default=Path("/tmp/imgsearch-bench"))
    ap.add_argument("--pooling")
    ap.add_argument("--size", type=int)
    args = ap.parse_args()
    c = shipped(args)
    dist = distributions(Descriptors(args.cache), c)
    table = {k: {f"q{int(q * 100):02d}": round(float(np.quantile(v, q)), 3) for q in QUANTILES}
             | {"n": len(v)} for k, v in dist.items()}
    print(json.dumps({"candidate": c.name, "quantiles": table}, indent=1))


if __name__ == "__main__":
    main()
