"""``imgsearch eval``: retrieval quality of an embedder on a labelled folder, a groups CSV or
Oxford/Paris ground truth, with optional whitening, query expansion and DBA.

Descriptors are cached per model (fingerprint) and file (path, size, mtime) in the data dir, so
trying post-processing variants does not embed the photos again.
"""

from __future__ import annotations

import csv
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from imgsearch_gui.base.errors import EvalError, ImageError
from imgsearch_gui.base.images import is_supported, load_image
from imgsearch_gui.base.types import CancelToken, Progress
from imgsearch_gui.ml import query_expansion as qe
from imgsearch_gui.ml.embedder import Embedder
from imgsearch_gui.ml.evaluate import average_precision, label_retrieval, ns_score, precision_at
from imgsearch_gui.ml.whitening import learn_pca_whitening

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PostProcessing:
    whiten: int | None = None  # 0 = full dimension, N = reduce to N, None = off
    qe: str = "none"  # "none" | "avg" | "alpha"
    qe_n: int = 2
    alpha: float = 3.0
    dba_n: int = 0


@dataclass(frozen=True)
class OxfordQuery:
    name: str
    image: str
    bbox: tuple[float, float, float, float]
    positives: frozenset[str]
    junk: frozenset[str]


@dataclass(frozen=True)
class EvalResult:
    map: float
    mp_at_1: float
    mp_at_5: float
    mp_at_10: float
    n_queries: int
    n_images: int
    ns_score: float | None = None
    skipped_images: tuple[tuple[str, str], ...] = ()
    skipped_queries: int = 0
    per_query: tuple[tuple[str, float], ...] = field(default=())
    seconds_embed: float = 0.0
    seconds_search: float = 0.0

    def to_dict(self, per_query: bool = False) -> dict:
        out = {
            "map": self.map, "mp_at_1": self.mp_at_1, "mp_at_5": self.mp_at_5,
            "mp_at_10": self.mp_at_10, "n_queries": self.n_queries, "n_images": self.n_images,
            "skipped_images": len(self.skipped_images), "skipped_queries": self.skipped_queries,
            "seconds_embed": round(self.seconds_embed, 3),
            "seconds_search": round(self.seconds_search, 3),
        }
        if self.ns_score is not None:
            out["ns_score"] = self.ns_score
        if per_query:
            out["per_query"] = [{"query": q, "ap": ap} for q, ap in self.per_query]
        return out


# -- datasets ------------------------------------------------------------------------------------


def labelled_folder(root: Path) -> tuple[list[Path], list[str]]:
    """Images under ``root``; the label is the first folder below ``root``."""
    paths = sorted(p for p in root.rglob("*") if p.is_file() and is_supported(p))
    paths = [p for p in paths if len(p.relative_to(root).parts) >= 2]
    if not paths:
        raise EvalError(f"{root}: no images in class subfolders (expected ROOT/CLASS/photo.jpg)")
    return paths, [p.relative_to(root).parts[0] for p in paths]


def groups_csv(root: Path, csv_path: Path) -> tuple[list[Path], list[str]]:
    """``filename,group`` rows; filenames are relative to ``root`` or its ``images/`` folder."""
    try:
        with open(csv_path, newline="") as fh:
            rows = list(csv.reader(fh))
    except OSError as exc:
        raise EvalError(f"cannot read {csv_path}: {exc.strerror}") from exc
    if rows and rows[0][:2] == ["filename", "group"]:
        rows = rows[1:]
    paths, groups = [], []
    for row in rows:
        if len(row) < 2:
            continue
        name, group = row[0].strip(), row[1].strip()
        for candidate in (root / name, root / "images" / name):
            if candidate.is_file():
                paths.append(candidate)
                groups.append(group)
                break
    if not paths:
        raise EvalError(f"no file named in {csv_path} exists under {root}")
    return paths, groups


def oxford_ground_truth(gt_dir: Path) -> list[OxfordQuery]:
    """Oxford/Paris ``*_query.txt`` (image + bbox) with ``*_good/ok/junk.txt`` lists."""
    queries = []
    for qfile in sorted(gt_dir.glob("*_query.txt")):
        stem = qfile.name[: -len("_query.txt")]
        parts = qfile.read_text().split()
        image = parts[0].removeprefix("oxc1_")
        bbox = tuple(float(v) for v in parts[1:5])

        def names(kind: str, stem: str = stem) -> frozenset[str]:
            f = gt_dir / f"{stem}_{kind}.txt"
            return frozenset(f.read_text().split()) if f.exists() else frozenset()

        queries.append(OxfordQuery(stem, image, bbox, names("good") | names("ok"), names("junk")))  # type: ignore[arg-type]
    if not queries:
        raise EvalError(f"{gt_dir}: no *_query.txt files")
    return queries


# -- descriptors ---------------------------------------------------------------------------------


def cached_descriptors(
    embedder: Embedder, paths: list[Path], cache_dir: Path | None,
    progress: Callable[[Progress], None] | None = None, cancel: CancelToken | None = None,
) -> tuple[np.ndarray, list[int], list[tuple[str, str]], float]:
    """(vectors of usable files, their indices into ``paths``, skipped (path, reason), seconds)."""
    cache: dict[str, np.ndarray] = {}
    cache_file = None
    if cache_dir is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        cache_file = cache_dir / f"eval-{embedder.meta.fingerprint}.npz"
        if cache_file.exists():
            try:
                with np.load(cache_file) as data:
                    cache = {k: data[k] for k in data.files}
            except (OSError, ValueError):
                log.warning("ignoring unreadable descriptor cache %s", cache_file)

    def key(p: Path) -> str:
        st = p.stat()
        return f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}"

    keys = [key(p) for p in paths]
    todo = [i for i, k in enumerate(keys) if k not in cache]
    skipped: list[tuple[str, str]] = []
    t0 = time.perf_counter()
    for n, result in enumerate(embedder.embed_files([paths[i] for i in todo], cancel=cancel), 1):
        i = todo[n - 1]
        if result.vector is None:
            skipped.append((str(paths[i]), result.error or "unreadable"))
        else:
            cache[keys[i]] = result.vector
        if progress is not None:
            progress(Progress("embed", n, len(todo), current=result.path))
    seconds = time.perf_counter() - t0
    if cancel is not None and cancel.cancelled:
        raise KeyboardInterrupt("evaluation cancelled")
    if cache_file is not None and todo:
        tmp = cache_file.with_name(cache_file.name + ".tmp.npz")
        np.savez(tmp, **cache)
        os.replace(tmp, cache_file)
    kept = [i for i, k in enumerate(keys) if k in cache]
    vectors = np.stack([cache[keys[i]] for i in kept]) if kept else np.zeros((0, embedder.meta.dim))
    return vectors.astype(np.float32), kept, skipped, seconds


def postprocess(db: np.ndarray, queries: np.ndarray, post: PostProcessing
                ) -> tuple[np.ndarray, np.ndarray]:
    """Whitening (learned on ``db``), then DBA on the database, then query expansion."""
    if post.whiten is not None:
        w = learn_pca_whitening(db, dim=post.whiten or None)
        db, queries = w.apply(db), w.apply(queries)
    if post.dba_n > 0:
        db = qe.dba(db, n=post.dba_n, alpha=post.alpha)
    if post.qe != "none":
        queries = qe.alpha_qe(queries, db, n=post.qe_n,
                              alpha=post.alpha if post.qe == "alpha" else 0.0)
    return db, queries


# -- protocols -----------------------------------------------------------------------------------


def evaluate_labels(embedder: Embedder, paths: list[Path], labels: list[str], *,
                    post: PostProcessing = PostProcessing(), cache_dir: Path | None = None,
                    groups_of_four: bool = False,
                    progress: Callable[[Progress], None] | None = None) -> EvalResult:
    """Every image with a classmate is a query against all others, itself excluded."""
    vectors, kept, skipped, t_embed = cached_descriptors(embedder, paths, cache_dir, progress)
    labels_kept = [labels[i] for i in kept]
    t0 = time.perf_counter()
    db, queries = postprocess(vectors, vectors, post)
    scores = label_retrieval(db, labels_kept, queries=queries)
    t_search = time.perf_counter() - t0
    ns = ns_score(db, labels_kept, queries=queries) if groups_of_four else None
    per_query = tuple((str(paths[kept[row]]), ap)
                      for row, ap in zip(scores.query_rows, scores.per_query_ap, strict=True))
    return EvalResult(scores.map, scores.mp_at_1, scores.mp_at_5, scores.mp_at_10,
                      scores.n_queries, len(kept), ns, tuple(skipped), 0, per_query,
                      t_embed, t_search)


def evaluate_oxford(embedder: Embedder, root: Path, gt_dir: Path, *,
                    post: PostProcessing = PostProcessing(), cache_dir: Path | None = None,
                    progress: Callable[[Progress], None] | None = None) -> EvalResult:
    """Oxford/Paris protocol: bbox-cropped queries, good+ok positive, junk ignored."""
    queries = oxford_ground_truth(gt_dir)
    paths = sorted(p for p in root.rglob("*") if p.is_file() and is_supported(p))
    if not paths:
        raise EvalError(f"{root}: no images")
    vectors, kept, skipped, t_embed = cached_descriptors(embedder, paths, cache_dir, progress)
    names = [paths[i].stem for i in kept]
    by_name = {n: i for i, n in enumerate(names)}
    usable = [q for q in queries if q.image in by_name]
    if not usable:
        raise EvalError("none of the query images is in the folder")
    qvecs = []
    for q in usable:
        image = load_image(paths[kept[by_name[q.image]]])
        x0, y0, x1, y1 = q.bbox
        qvecs.append(embedder.embed_image(image.crop((int(x0), int(y0), int(x1 + 0.5),
                                                      int(y1 + 0.5)))))
    t0 = time.perf_counter()
    db, qv = postprocess(vectors, np.stack(qvecs), post)
    aps, p1, p5, p10, per_query = [], [], [], [], []
    for q, vec in zip(usable, qv, strict=True):
        positives = {by_name[n] for n in q.positives if n in by_name}
        if not positives:
            continue
        junk = {by_name[n] for n in q.junk if n in by_name}
        ranking = np.argsort(-(db @ vec), kind="stable")
        ap = average_precision(ranking, positives, junk)
        aps.append(ap)
        per_query.append((q.name, ap))
        p1.append(precision_at(ranking, positives, 1, junk))
        p5.append(precision_at(ranking, positives, 5, junk))
        p10.append(precision_at(ranking, positives, 10, junk))
    return EvalResult(float(np.mean(aps)), float(np.mean(p1)), float(np.mean(p5)),
                      float(np.mean(p10)), len(aps), len(kept), None, tuple(skipped),
                      len(queries) - len(aps), tuple(per_query), t_embed,
                      time.perf_counter() - t0)


def _check(path: Path) -> None:
    if not path.is_dir():
        raise EvalError(f"not a folder: {path}")


def evaluate(embedder: Embedder, root: Path, *, groups: Path | None = None,
             oxford_gt: Path | None = None, post: PostProcessing = PostProcessing(),
             cache_dir: Path | None = None,
             progress: Callable[[Progress], None] | None = None) -> EvalResult:
    _check(root)
    if oxford_gt is not None:
        return evaluate_oxford(embedder, root, oxford_gt, post=post, cache_dir=cache_dir,
                               progress=progress)
    if groups is not None:
        paths, labels = groups_csv(root, groups)
        sizes = {lab: labels.count(lab) for lab in set(labels)}
        return evaluate_labels(embedder, paths, labels, post=post, cache_dir=cache_dir,
                               groups_of_four=set(sizes.values()) == {4}, progress=progress)
    paths, labels = labelled_folder(root)
    return evaluate_labels(embedder, paths, labels, post=post, cache_dir=cache_dir,
                           progress=progress)


__all__ = ["EvalError", "EvalResult", "PostProcessing", "evaluate", "ImageError"]
