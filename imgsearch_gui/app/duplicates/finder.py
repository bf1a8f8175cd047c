"""The duplicate finder: exact and near-duplicate groups over the indexed photos.

A plain generator (progress, then a :class:`DuplicateReport`) that checks a cancel token, so
the CLI and the GUI's worker run the same code:

1. files: every indexed file under the chosen roots that is still there;
2. exact: files that share a vector have the same content (indexing compared their hashes;
   files over 128 KiB are hashed whole again here, as a move to the trash will follow);
3. candidates (candidates.py): nearest neighbours by descriptor and by thumbprint in all eight
   orientations, minus the pairs the user said are not duplicates;
4. verification (ml/same_photo.py) of each candidate, in a thread pool: only the same photo, not
   another shot of the same scene, passes;
5. groups: connected verified pairs, the copy to keep picked by the rule (keep.py), ordered by
   the bytes they would free.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np

from imgsearch_gui.app import scan
from imgsearch_gui.app.catalog import Catalog, FileRecord
from imgsearch_gui.app.duplicates import candidates as cands
from imgsearch_gui.app.duplicates.keep import sort_key
from imgsearch_gui.app.duplicates.model import (
    DuplicateFile,
    DuplicateGroup,
    DuplicateReport,
    FinderOptions,
    GroupKind,
)
from imgsearch_gui.base.errors import ImageError
from imgsearch_gui.base.images import load_image, photo_size
from imgsearch_gui.base.thumbprint import thumbprint
from imgsearch_gui.base.types import CancelToken, Progress, SkippedFile
from imgsearch_gui.index.store import VectorStore
from imgsearch_gui.ml.same_photo import SIDE, PhotoFeatures, Verdict, compare

log = logging.getLogger(__name__)

_CHUNK = 64  # pairs verified between two progress reports / cancel checks
#: a mirror image keeps its descriptor (cosine >= 0.80 measured for mirrored crops, 0.95 for
#: mirrored copies): below this, a pair is not tried mirrored unless its thumbprints say so
MIRROR_COSINE = 0.75


@dataclass
class _Scope:
    """The files the finder looks at, by vector."""

    files: dict[int, list[FileRecord]]
    unreadable: list[SkippedFile]


def run(catalog: Catalog, store: VectorStore, options: FinderOptions | None = None,
        cancel: CancelToken | None = None) -> Iterator[Progress | DuplicateReport]:
    """Progress events, then the report (nothing more when cancelled)."""
    options = options or FinderOptions()
    cancel = cancel or CancelToken()
    start = time.perf_counter()
    yield Progress("scan", 0, 0, None, message="Reading the catalog")
    scope = _scope(catalog, store, options.roots)
    exact = yield from _exact_sets(scope, cancel)
    thumbs, new_thumbs = yield from _thumbprints(catalog, scope, cancel)
    if cancel.cancelled:
        return
    pairs = _candidates(catalog, store, scope, thumbs, options)
    verified = yield from _verify(scope, pairs, options, cancel)
    if verified is None:
        return
    distinct = catalog.distinct_pairs()
    groups = _groups(scope, exact, verified, options, pairs, distinct)
    unreadable = tuple({s.path: s for s in scope.unreadable}.values())
    yield DuplicateReport(tuple(groups), sum(len(v) for v in scope.files.values()), len(pairs),
                          time.perf_counter() - start, unreadable, new_thumbs)


# ---------------------------------------------------------------------- 1. files
def _scope(catalog: Catalog, store: VectorStore, roots: Sequence[str]) -> _Scope:
    offline = catalog.offline_library_roots()
    libs = {lib.id: lib.root for lib in catalog.libraries()}
    prefixes = [scan.normalize_root(r) for r in roots]
    files: dict[int, list[FileRecord]] = defaultdict(list)
    unreadable: list[SkippedFile] = []
    seen: set[object] = set()  # one file met twice (nested libraries, a hard link) is one file
    for rec in catalog.indexed_files():
        if libs.get(rec.library_id) in offline or rec.vector_id not in store:
            continue
        if prefixes and not any(_under(rec.path, p) for p in prefixes):
            continue
        identity = _identity(rec)
        if identity is None:
            unreadable.append(SkippedFile(rec.path, "changed or gone since it was indexed"))
            continue
        if identity in seen:
            continue
        seen.add(identity)
        files[int(rec.vector_id)].append(rec)
    return _Scope(dict(files), unreadable)


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _identity(rec: FileRecord) -> object | None:
    """The file behind ``rec`` (device and inode, or its real path where there are no inode
    numbers); None when it changed or is gone since it was indexed."""
    try:
        st = os.stat(rec.path)
    except OSError:
        return None
    if st.st_size != rec.size or st.st_mtime_ns != rec.mtime_ns:
        return None
    return (st.st_dev, st.st_ino) if st.st_ino else os.path.realpath(rec.path)


# ---------------------------------------------------------------------- 2. exact
def _exact_sets(scope: _Scope, cancel: CancelToken
                ) -> Iterator[Progress] | list[list[FileRecord]]:
    """Per shared vector, the files whose whole content is the same (more than one)."""
    shared = [recs for recs in scope.files.values() if len(recs) > 1]
    out: list[list[FileRecord]] = []
    for n, recs in enumerate(shared, start=1):
        if cancel.cancelled:
            break
        by_hash: dict[str, list[FileRecord]] = defaultdict(list)
        for rec in recs:
            by_hash[_content_hash(rec)].append(rec)
        out += [same for key, same in by_hash.items() if len(same) > 1 and key]
        if n % 50 == 0 or n == len(shared):
            yield Progress("hash", n, len(shared), recs[0].path, message="Comparing identical files")
    return out


def _content_hash(rec: FileRecord) -> str:
    if scan.fast_hash_is_full(rec.size):
        return rec.fast_hash or ""
    try:
        return scan.full_hash(rec.path)
    except OSError:
        return ""


# ---------------------------------------------------------------------- 3. candidates
def _thumbprints(catalog: Catalog, scope: _Scope, cancel: CancelToken
                 ) -> Iterator[Progress] | tuple[dict[int, bytes], dict[int, bytes]]:
    """Every vector's thumbprint; those an older catalog lacks are made from the photo."""
    stored = catalog.thumbprints()
    thumbs = {v: stored[v] for v in scope.files if v in stored}
    missing = [v for v in scope.files if v not in stored]
    new: dict[int, bytes] = {}
    for n, vid in enumerate(missing, start=1):
        if cancel.cancelled:
            break
        path = scope.files[vid][0].path
        try:
            new[vid] = thumbprint(load_image(path, max_side=32))
        except ImageError as exc:
            scope.unreadable.append(SkippedFile(path, exc.reason))
        if n % 25 == 0 or n == len(missing):
            yield Progress("thumbs", n, len(missing), path, message="Reading older photos")
    thumbs.update(new)
    return thumbs, new


def _candidates(catalog: Catalog, store: VectorStore, scope: _Scope, thumbs: dict[int, bytes],
                options: FinderOptions) -> list[cands.Candidate]:
    vids = sorted(scope.files)
    pairs = cands.merged(
        cands.from_index(store, vids, options.neighbours, options.min_cosine,
                         restricted=len(vids) < len(store)),
        cands.from_thumbprints(thumbs, options.turned_neighbours, options.min_thumb_correlation))
    distinct = catalog.distinct_pairs()
    if distinct:
        hashes = _hashes(scope)
        pairs = [p for p in pairs if not _said_distinct(hashes[p.a], hashes[p.b], distinct)]
    return cands.local_order(pairs)


def _hashes(scope: _Scope) -> dict[int, set[str]]:
    return {v: {r.fast_hash for r in recs if r.fast_hash} for v, recs in scope.files.items()}


def _said_distinct(a: set[str], b: set[str], distinct: set[tuple[str, str]]) -> bool:
    return any((min(x, y), max(x, y)) in distinct for x in a for y in b)


# ---------------------------------------------------------------------- 4. verification
class _FeatureCache:
    """Each photo's features, made once and dropped when no pair left needs them."""

    def __init__(self, scope: _Scope, pairs: Sequence[cands.Candidate]) -> None:
        self._scope = scope
        self._uses = Counter(v for p in pairs for v in (p.a, p.b))
        self._features: dict[int, PhotoFeatures | None] = {}
        self._lock = threading.Lock()

    def load(self, vid: int) -> None:
        if vid in self._features:
            return
        path = self._scope.files[vid][0].path
        feats: PhotoFeatures | None = None
        try:
            # draft decoding keeps at least twice max_side: a 12 MP JPEG decodes at 1/8 (504 px,
            # 10 ms) instead of 1/4 (1008 px, 15 ms), still more than the SIDE compared
            image = load_image(path, max_side=SIDE // 2)
            feats = PhotoFeatures.of(np.asarray(image.convert("L")))
        except ImageError as exc:
            self._skip(path, exc.reason)
        except Exception as exc:  # noqa: BLE001 - one odd photo must never stop the finder
            log.exception("reading %s for comparison failed", path)
            self._skip(path, f"could not be compared ({type(exc).__name__}: {exc})")
        self._features[vid] = feats

    def _skip(self, path: str, reason: str) -> None:
        with self._lock:
            self._scope.unreadable.append(SkippedFile(path, reason))

    def get(self, vid: int) -> PhotoFeatures | None:
        return self._features[vid]

    def done(self, pair: cands.Candidate) -> None:
        for vid in (pair.a, pair.b):
            self._uses[vid] -= 1
            if self._uses[vid] <= 0:
                self._features.pop(vid, None)


def _verify(scope: _Scope, pairs: Sequence[cands.Candidate], options: FinderOptions,
            cancel: CancelToken) -> Iterator[Progress] | dict[tuple[int, int], Verdict] | None:
    """The verdicts of the pairs that are the same photo (None when cancelled)."""
    cache = _FeatureCache(scope, pairs)
    same: dict[tuple[int, int], Verdict] = {}
    rate_start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=max(1, options.workers),
                            thread_name_prefix="duplicates") as pool:
        for start in range(0, len(pairs), _CHUNK):
            if cancel.cancelled:
                return None
            chunk = pairs[start:start + _CHUNK]
            needed = sorted({v for p in chunk for v in (p.a, p.b)})
            list(pool.map(cache.load, needed))
            for pair, verdict in zip(chunk, pool.map(lambda p: _check(cache, p), chunk),
                                     strict=True):
                if verdict is not None and verdict.same:
                    same[(pair.a, pair.b)] = verdict
                cache.done(pair)
            done = start + len(chunk)
            rate = done / max(1e-6, time.perf_counter() - rate_start)
            yield Progress("verify", done, len(pairs), scope.files[chunk[-1].b][0].path, rate,
                           (len(pairs) - done) / rate if rate > 0 else None,
                           message="Comparing look-alike photos")
    return None if cancel.cancelled else same


def _check(cache: _FeatureCache, pair: cands.Candidate) -> Verdict | None:
    a, b = cache.get(pair.a), cache.get(pair.b)
    if a is None or b is None:
        return None
    try:
        return compare(a, b, mirrored_first=pair.mirrored,
                       try_mirror=pair.mirrored or pair.cosine >= MIRROR_COSINE)
    except Exception:  # noqa: BLE001 - one odd pair must never stop the finder
        log.exception("comparing vectors %d and %d failed", pair.a, pair.b)
        return None


# ---------------------------------------------------------------------- 5. groups
class _Components:
    """Union-find over hashable nodes."""

    def __init__(self) -> None:
        self._parent: dict[object, object] = {}

    def root(self, node: object) -> object:
        parent = self._parent
        while parent.get(node, node) != node:
            parent[node] = parent.get(parent[node], parent[node])
            node = parent[node]
        return node

    def join(self, a: object, b: object) -> None:
        self._parent[self.root(a)] = self.root(b)

    def groups(self, nodes: object) -> list[list]:
        out: dict[object, list] = defaultdict(list)
        for node in nodes:
            out[self.root(node)].append(node)
        return [sorted(members) for members in out.values()]


def _groups(scope: _Scope, exact: list[list[FileRecord]], verified: dict[tuple[int, int], Verdict],
            options: FinderOptions, pairs: Sequence[cands.Candidate] = (),
            distinct: set[tuple[str, str]] | None = None) -> list[DuplicateGroup]:
    clusters, tree = _clusters(scope, verified, distinct or set())
    identical = {rec.id: i for i, same in enumerate(exact) for rec in same}
    built = [(vids, _group(scope, vids, tree, identical, options)) for vids in clusters]
    grouped = {v for vids in clusters for v in vids}
    built += [([int(same[0].vector_id)], _group(scope, [int(same[0].vector_id)], tree,
                                                identical, options, same))
              for same in exact if same[0].vector_id not in grouped]
    built = [(vids, g) for vids, g in built if len(g.files) > 1]
    groups = [g for _, g in built]
    if options.similar:
        groups += _similar(scope, built, verified, pairs, options)
    return sorted(groups, key=lambda g: (g.kind == GroupKind.SIMILAR, -g.freed, g.kept.path))


def _clusters(scope: _Scope, verified: dict[tuple[int, int], Verdict],
              distinct: set[tuple[str, str]]) -> tuple[list[list[int]], dict[int, dict[int, float]]]:
    """Groups of verified pairs, joined best pair first (a maximum spanning forest), never
    joining two photos the user said are not duplicates (not even through a third one); and the
    forest's edges, vid -> {neighbour: agreement}."""
    components = _Components()
    hashes = _hashes(scope)
    members: dict[object, set[str]] = {}
    tree: dict[int, dict[int, float]] = defaultdict(dict)
    for (a, b), verdict in sorted(verified.items(), key=lambda kv: (-kv[1].agreement, kv[0])):
        ra, rb = components.root(a), components.root(b)
        if ra == rb:
            continue
        ha, hb = members.get(ra, hashes[a]), members.get(rb, hashes[b])
        if distinct and _said_distinct(ha, hb, distinct):
            continue
        components.join(a, b)
        members[components.root(a)] = ha | hb
        tree[a][b] = tree[b][a] = verdict.agreement
    return components.groups(tree), tree


def _group(scope: _Scope, vids: list[int], tree: dict[int, dict[int, float]],
           identical: dict[int, int], options: FinderOptions,
           only: list[FileRecord] | None = None) -> DuplicateGroup:
    records = only or [rec for v in vids for rec in scope.files[v]]
    key = sort_key(options.keep_rule)
    ranked = sorted(((_file(r), r) for r in records), key=lambda fr: key(fr[0]))
    keeper_rec = ranked[0][1]
    scores = _path_scores(int(keeper_rec.vector_id), tree)
    files = []
    for file, rec in ranked:
        same_bytes = rec is keeper_rec or identical.get(rec.id, -1) == identical.get(
            keeper_rec.id, -2)
        score = 1.0 if same_bytes else scores.get(int(rec.vector_id), 0.0)
        files.append(replace(file, score=round(score, 4), keep=rec is keeper_rec,
                             identical=same_bytes))
    kind = GroupKind.EXACT if len(vids) == 1 else GroupKind.NEAR
    return DuplicateGroup(kind, tuple(files))


def _file(rec: FileRecord) -> DuplicateFile:
    width, height = photo_size(rec.path) or (None, None)
    return DuplicateFile(rec.path, rec.size, rec.mtime_ns, width, height, 1.0, False, False,
                         rec.fast_hash)


def _path_scores(keeper: int, tree: dict[int, dict[int, float]]) -> dict[int, float]:
    """How surely each photo of the group is the kept one: its own agreement with it, or through
    other copies the weakest link of the chain (never a better pair of someone else's)."""
    scores = {keeper: 1.0}
    todo = [keeper]
    while todo:
        vid = todo.pop()
        for other, agreement in tree.get(vid, {}).items():
            if other not in scores:
                scores[other] = min(scores[vid], agreement)
                todo.append(other)
    return scores


def _similar(scope: _Scope, built: list[tuple[list[int], DuplicateGroup]],
             verified: dict[tuple[int, int], Verdict], pairs: Sequence[cands.Candidate],
             options: FinderOptions) -> list[DuplicateGroup]:
    """Groups of photos that are alike but not copies (asked for): each copy group stands in
    by its kept file; the score is the descriptors' cosine."""
    node_of = {v: -1 - i for i, (vids, _) in enumerate(built) for v in vids}  # a group: < 0
    components = _Components()
    cosine: dict[int, float] = {}
    for p in pairs:
        a, b = node_of.get(p.a, p.a), node_of.get(p.b, p.b)
        if (p.a, p.b) in verified or a == b or p.cosine < options.similar_cosine:
            continue
        components.join(a, b)
        for node in (a, b):
            cosine[node] = max(cosine.get(node, 0.0), p.cosine)
    out = []
    for nodes in components.groups(cosine):
        if len(nodes) < 2:
            continue
        files = [built[-1 - n][1].kept if n < 0 else _file(scope.files[n][0]) for n in nodes]
        scores = [cosine[n] for n in nodes]
        key = sort_key(options.keep_rule)
        ranked = sorted(zip(files, scores, strict=True), key=lambda fs: key(fs[0]))
        out.append(DuplicateGroup(GroupKind.SIMILAR, tuple(
            replace(f, score=round(s, 4), keep=i == 0, identical=False)
            for i, (f, s) in enumerate(ranked))))
    return out
