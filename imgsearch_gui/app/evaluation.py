"""``imgsearch eval``: retrieval quality on a labelled folder, a groups CSV or Oxford/Paris
ground truth, measured on the rankings the search pipeline returns.

The evaluated photos become a library of their own (an in-memory store, DBA'd by the code the
library's augmented store uses), and every query is ranked by :func:`~imgsearch_gui.app.search.
rank`, the function ``imgsearch search`` and the GUI rank with: the same views (rotations),
alpha-QE and DBA. Descriptors (of every view) are cached per model (fingerprint) and file (path,
size, mtime) in the data dir, so trying settings does not embed the photos again.
"""

from __future__ import annotations

import csv
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from imgsearch_gui.app import scan
from imgsearch_gui.app.augmented import sync_augmented
from imgsearch_gui.app.search import QuerySettings, rank
from imgsearch_gui.base import registry
from imgsearch_gui.base.config import EmbedderConfig
from imgsearch_gui.base.errors import EvalError, ImageError
from imgsearch_gui.base.images import load_image
from imgsearch_gui.base.types import CancelToken, Progress
from imgsearch_gui.index.store import VectorStore
from imgsearch_gui.ml.embedder import Embedder
from imgsearch_gui.ml.evaluate import RetrievalScores, ranking_scores
from imgsearch_gui.ml.query_expansion import Augmentation
from imgsearch_gui.ml.whitening import learn_pca_whitening

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvalSettings:
    """What ``eval`` measures: by default exactly what ``search`` and the GUI do with the data
    dir's settings (DBA on the database side; rotations and alpha-QE on the query side, through
    :func:`imgsearch_gui.app.search.rank`). ``whiten`` (eval only): PCA-whitening learned on
    the evaluated photos, as ``imgsearch whiten`` learns one on the library."""

    dba: int = registry.DEFAULT_DBA  # the defaults: the shipped search
    query: QuerySettings = field(default_factory=QuerySettings)
    whiten: int | None = None  # 0 = full dimension, N = reduce to N, None = off
    whiten_power: float = 1.0

    @classmethod
    def of(cls, config: EmbedderConfig, **changes: object) -> EvalSettings:
        return replace(cls(config.dba, QuerySettings.of(config)), **changes)

    def describe(self) -> dict[str, object]:
        """The settings as plain data: ``eval --json`` reports what it measured."""
        return {"dba": self.dba, **self.query.describe(), "whiten": self.whiten,
                **({"whiten_power": self.whiten_power} if self.whiten is not None else {})}


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
    settings: EvalSettings | None = None

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
        if self.settings is not None:
            out["settings"] = self.settings.describe()
        if per_query:
            out["per_query"] = [{"query": q, "ap": ap} for q, ap in self.per_query]
        return out


# -- datasets ------------------------------------------------------------------------------------


def photo_files(root: Path) -> list[Path]:
    """The photos under ``root`` as indexing finds them (``scan.walk``: hidden files left out, a
    photo shot RAW+JPEG once), so eval measures the library a user would build; sorted."""
    if not root.is_dir():
        return []
    return sorted(Path(f.path) for f in scan.walk(root))


def labelled_folder(root: Path) -> tuple[list[Path], list[str]]:
    """Images under ``root``; the label is the first folder below ``root``."""
    top = Path(scan.normalize_root(root))
    paths = [p for p in photo_files(top) if len(p.relative_to(top).parts) >= 2]
    if not paths:
        raise EvalError(f"{root}: no images in class subfolders (expected ROOT/CLASS/photo.jpg)")
    return paths, [p.relative_to(top).parts[0] for p in paths]


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
    quarters: int = 0,
) -> tuple[np.ndarray, list[int], list[tuple[str, str]], float]:  # progress: stage "embed"
    # (upright) or "embed turned N" (a turned view)
    """(vectors of usable files, their indices into ``paths``, skipped (path, reason), seconds);
    each photo turned ``quarters`` x 90 degrees (a view of a rotation-robust query)."""
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

    view = f"|q{quarters}" if quarters else ""

    def key(p: Path) -> str:
        st = p.stat()
        return f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}{view}"

    keys = [key(p) for p in paths]
    todo = [i for i, k in enumerate(keys) if k not in cache]
    skipped: list[tuple[str, str]] = []
    t0 = time.perf_counter()
    todo_paths = [paths[i] for i in todo]
    results = embedder.embed_files(todo_paths, cancel=cancel, quarters=quarters) if todo else ()
    for n, result in enumerate(results, 1):
        i = todo[n - 1]
        if result.vector is None:
            skipped.append((str(paths[i]), result.error or "unreadable"))
        else:
            cache[keys[i]] = result.vector
        if progress is not None:
            stage = f"embed turned {90 * quarters}" if quarters else "embed"
            progress(Progress(stage, n, len(todo), current=result.path))
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


#: queries ranked at once: exact search holds (views x queries x photos) similarities
_QUERY_CHUNK = 256


class EvalIndex:
    """The evaluated photos as a library: their descriptors in a store (never saved), and the
    store searches go to (its DBA copy when DBA is on), as :class:`ImageLibrary` keeps them."""

    def __init__(self, vectors: np.ndarray, settings: EvalSettings) -> None:
        self.settings = settings
        self.whitening = None
        if settings.whiten is not None:
            self.whitening = learn_pca_whitening(vectors, dim=settings.whiten or None,
                                                 power=settings.whiten_power)
            vectors = self.whitening.apply(vectors)
        self.store = VectorStore(Path("<eval>"))
        self.store.add(np.arange(len(vectors)), vectors)
        self.stores: tuple[VectorStore, ...] = (self.store,)
        if settings.dba > 0 and len(vectors) > 1:
            augmented = VectorStore(Path("<eval-dba>"))
            sync_augmented(self.store, augmented, Augmentation(n=settings.dba))
            self.stores = (augmented, self.store)  # as ImageLibrary searches them

    def prepare(self, views: np.ndarray) -> np.ndarray:
        """Query views as the store holds descriptors (whitened when it is)."""
        return self.whitening.apply(views) if self.whitening is not None else views

    def ranked(self, views: list[np.ndarray], k: int | None = None
               ) -> list[tuple[np.ndarray, np.ndarray]]:
        """(rows, scores) of the store ranked for each query (given as its views), as search
        ranks them; all rows unless ``k``."""
        k = len(self.store) if k is None else k
        out: list[tuple[np.ndarray, np.ndarray]] = []
        for start in range(0, len(views), _QUERY_CHUNK):  # bounded memory: exact search
            chunk = [self.prepare(v) for v in views[start : start + _QUERY_CHUNK]]
            out += rank(self.stores, chunk, k, None, **self.settings.query.search_args())
        return out

    def rankings(self, views: list[np.ndarray], k: int | None = None) -> list[np.ndarray]:
        """The store's rows ranked for each query (see :meth:`ranked`), without the scores."""
        return [rows for rows, _ in self.ranked(views, k)]


def view_descriptors(
    embedder: Embedder, paths: list[Path], settings: EvalSettings, cache_dir: Path | None,
    progress: Callable[[Progress], None] | None = None,
) -> tuple[list[np.ndarray], list[int], list[tuple[str, str]], float]:
    """(per view, the vectors of the usable files; their indices into ``paths``; skipped;
    seconds): view 0 is the photo as it is, and with rotations the photo turned by 90, 180 and
    270 degrees follows (the views a query photo is searched with)."""
    vectors, kept, skipped, seconds = cached_descriptors(embedder, paths, cache_dir, progress)
    views = [vectors]
    kept_paths = [paths[i] for i in kept]
    for quarters in settings.query.quarter_turns[1:]:
        turned, kept_turned, _, more = cached_descriptors(embedder, kept_paths, cache_dir,
                                                          progress, quarters=quarters)
        if len(kept_turned) != len(kept_paths):
            raise EvalError("a photo that could be read upright could not be read turned")
        views.append(turned)
        seconds += more
    return views, kept, skipped, seconds


# -- protocols -----------------------------------------------------------------------------------


def evaluate_labels(embedder: Embedder, paths: list[Path], labels: list[str], *,
                    settings: EvalSettings = EvalSettings(), cache_dir: Path | None = None,
                    groups_of_four: bool = False,
                    progress: Callable[[Progress], None] | None = None) -> EvalResult:
    """Every image with a classmate is a query against all others, ranked by the search
    pipeline; itself is left out of its ranking (N-S counts it, as UKBench does)."""
    views, kept, skipped, t_embed = view_descriptors(embedder, paths, settings, cache_dir,
                                                     progress)
    t0 = time.perf_counter()
    scores, ns, rows = label_scores(views, [labels[i] for i in kept], settings)
    t_search = time.perf_counter() - t0
    per_query = tuple((str(paths[kept[row]]), ap)
                      for row, ap in zip(rows, scores.per_query_ap, strict=True))
    return EvalResult(scores.map, scores.mp_at_1, scores.mp_at_5, scores.mp_at_10,
                      scores.n_queries, len(kept), ns if groups_of_four else None,
                      tuple(skipped), 0, per_query, t_embed, t_search, settings)


def label_scores(views: list[np.ndarray], labels: list[str], settings: EvalSettings
                 ) -> tuple[RetrievalScores, float, list[int]]:
    """(scores, N-S, query rows) of labelled photos given as descriptors (one array per view,
    see :func:`view_descriptors`) searched as a library of their own: every photo with a
    classmate is a query, itself left out of its ranking (N-S, the number of its group in the
    top 4, counts it, as UKBench does). ``bench/defaults.py`` scores candidates with it."""
    labels_arr = np.asarray(labels)
    index = EvalIndex(views[0], settings)
    rows = [i for i in range(len(labels_arr)) if (labels_arr == labels_arr[i]).sum() > 1]
    rankings = index.rankings([np.stack([v[i] for v in views]) for i in rows])
    positives = [np.flatnonzero(labels_arr == labels_arr[i]) for i in rows]
    scores = ranking_scores([r[r != i] for r, i in zip(rankings, rows, strict=True)],
                            [p[p != i] for p, i in zip(positives, rows, strict=True)])
    ns = float(np.mean([np.isin(r[:4], p).sum() for r, p in zip(rankings, positives,
                                                                 strict=True)])) if rows else 0.0
    return scores, ns, rows


def _crop(image, bbox: tuple[float, float, float, float]):
    x0, y0, x1, y1 = bbox
    return image.crop((int(x0), int(y0), int(x1 + 0.5), int(y1 + 0.5)))


def evaluate_oxford(embedder: Embedder, root: Path, gt_dir: Path, *,
                    settings: EvalSettings = EvalSettings(), cache_dir: Path | None = None,
                    progress: Callable[[Progress], None] | None = None) -> EvalResult:
    """Oxford/Paris protocol: bbox-cropped queries, good+ok positive, junk ignored."""
    queries = oxford_ground_truth(gt_dir)
    paths = photo_files(root)
    if not paths:
        raise EvalError(f"{root}: no images")
    vectors, kept, skipped, t_embed = cached_descriptors(embedder, paths, cache_dir, progress)
    names = [paths[i].stem for i in kept]
    by_name = {n: i for i, n in enumerate(names)}
    usable = [q for q in queries if q.image in by_name
              and any(n in by_name for n in q.positives)]
    if not usable:
        raise EvalError("none of the query images (with a positive) is in the folder")
    quarters = settings.query.quarter_turns
    views = [embedder.embed_views(_crop(load_image(paths[kept[by_name[q.image]]]), q.bbox),
                                  quarters) for q in usable]
    t0 = time.perf_counter()
    rankings = EvalIndex(vectors, settings).rankings(views)
    junk = [np.array([by_name[n] for n in q.junk if n in by_name], dtype=np.int64)
            for q in usable]
    scores = ranking_scores([r[~np.isin(r, j)] for r, j in zip(rankings, junk, strict=True)],
                            [np.array([by_name[n] for n in q.positives if n in by_name])
                             for q in usable])
    return EvalResult(scores.map, scores.mp_at_1, scores.mp_at_5, scores.mp_at_10,
                      scores.n_queries, len(kept), None, tuple(skipped),
                      len(queries) - len(usable),
                      tuple((q.name, ap) for q, ap in zip(usable, scores.per_query_ap,
                                                          strict=True)),
                      t_embed, time.perf_counter() - t0, settings)


def _check(path: Path) -> None:
    if not path.is_dir():
        raise EvalError(f"not a folder: {path}")


def evaluate(embedder: Embedder, root: Path, *, groups: Path | None = None,
             oxford_gt: Path | None = None, settings: EvalSettings = EvalSettings(),
             cache_dir: Path | None = None,
             progress: Callable[[Progress], None] | None = None) -> EvalResult:
    """Scores of the search pipeline with ``settings`` (the CLI passes the data dir's)."""
    _check(root)
    if oxford_gt is not None:
        return evaluate_oxford(embedder, root, oxford_gt, settings=settings, cache_dir=cache_dir,
                               progress=progress)
    if groups is not None:
        paths, labels = groups_csv(root, groups)
        sizes = {lab: labels.count(lab) for lab in set(labels)}
        return evaluate_labels(embedder, paths, labels, settings=settings, cache_dir=cache_dir,
                               groups_of_four=set(sizes.values()) == {4}, progress=progress)
    paths, labels = labelled_folder(root)
    return evaluate_labels(embedder, paths, labels, settings=settings, cache_dir=cache_dir,
                           progress=progress)


__all__ = ["EvalError", "EvalResult", "EvalSettings", "evaluate", "ImageError"]
