"""The augmented store: the searched copy of the index with database-side augmentation (DBA).

Derived data: every vector of the store merged with its nearest neighbours by
:func:`imgsearch_gui.ml.query_expansion.augment` (the function exact DBA in ``eval`` uses too),
kept in step with the store incrementally and rebuilt from the stored vectors when it is missing
or damaged, never by embedding again.

It follows the store exactly: its header records the store's ``lineage`` (``source``), and a
store that started again (a rebuild hands out labels from 0 again) or another model or DBA setting
makes it start again too. A full redo is built beside, in memory, and swapped in when complete:
searches meanwhile use the old augmented vectors, never a half-filled store; a cancel keeps them.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np

from imgsearch_gui.base.errors import IndexCorruptError
from imgsearch_gui.base.meta import ModelMeta
from imgsearch_gui.base.types import CancelToken
from imgsearch_gui.index.store import HnswParams, VectorStore
from imgsearch_gui.ml.query_expansion import Augmentation, augment

log = logging.getLogger(__name__)

#: the share of new vectors above which every vector is augmented again (older vectors then see
#: their new neighbours too)
FULL_REFRESH_SHARE = 0.1
_BLOCK = 1024


def open_augmented(directory: Path, params: HnswParams | None) -> VectorStore:
    """The saved augmented store, or an empty one when it cannot be read (it is rebuilt)."""
    try:
        return VectorStore.open(directory, params)
    except IndexCorruptError as exc:
        log.warning("rebuilding the augmented index: %s", exc)
        return VectorStore(directory, params)


def augmented_meta(meta: ModelMeta | None, aug: Augmentation) -> ModelMeta | None:
    """The store's meta with the DBA settings added (other settings make another store)."""
    if meta is None:
        return meta
    return replace(meta, extra=(*meta.extra, ("dba", f"n={aug.n},alpha={aug.alpha:g}")))


def augment_labels(store: VectorStore, labels: np.ndarray, aug: Augmentation) -> np.ndarray:
    """DBA of the stored vectors ``labels``: each merged with its ``aug.n`` nearest others."""
    vectors = store.get(labels)
    neighbours, similarities = [], []
    for label, (nbr, sims) in zip(labels.tolist(), store.query(vectors, aug.n + 1), strict=True):
        keep = nbr != label
        nbr, sims = nbr[keep][: aug.n], sims[keep][: aug.n]
        neighbours.append(store.get(nbr))
        similarities.append(sims)
    return augment(vectors, neighbours, similarities, aug.alpha)


def sync_augmented(store: VectorStore, aug_store: VectorStore, aug: Augmentation,
                   cancel: CancelToken | None = None) -> bool:
    """Give ``aug_store`` exactly the labels of ``store``; True if anything changed.

    New vectors get their augmented version from their current neighbours (never cut short by
    ``cancel``: the cost is that of the batch just saved, so a cancelled job's photos are found
    too); when more than FULL_REFRESH_SHARE of the index is new, or the store is another one
    (lineage), model or DBA setting, every vector is redone beside and swapped in. ``cancel``
    stops such a redo between blocks: the old contents stay and :func:`is_current` is False (the
    caller then searches the store itself until a later sync completes).
    """
    meta = augmented_meta(store.meta, aug)
    raw_labels = store.labels()
    if aug_store.meta != meta or aug_store.source != store.lineage:
        return _redo(store, aug_store, aug, meta, cancel)
    changed = False
    extra = np.setdiff1d(aug_store.labels(), raw_labels)
    if len(extra):
        aug_store.remove(extra)
        changed = True
    missing = np.setdiff1d(raw_labels, aug_store.labels())
    if len(missing) == 0:
        return changed
    if len(missing) > FULL_REFRESH_SHARE * len(raw_labels):
        return _redo(store, aug_store, aug, meta, cancel) or changed
    for start in range(0, len(missing), _BLOCK):
        labels = missing[start : start + _BLOCK]
        aug_store.add(labels, augment_labels(store, labels, aug))
    log.debug("augmented %d vectors (DBA n=%d, alpha=%g)", len(missing), aug.n, aug.alpha)
    return True


def _redo(store: VectorStore, aug_store: VectorStore, aug: Augmentation, meta: ModelMeta | None,
          cancel: CancelToken | None) -> bool:
    """Every vector augmented again, in a store beside; ``aug_store`` takes it when complete."""
    fresh = VectorStore(aug_store.directory, aug_store.params)
    fresh.reset(meta)
    fresh.source = store.lineage
    fresh.max_label = aug_store.max_label
    labels = store.labels()
    for start in range(0, len(labels), _BLOCK):
        if cancel is not None and cancel.cancelled:
            log.info("DBA redo cancelled after %d of %d vectors", start, len(labels))
            return False
        block = labels[start : start + _BLOCK]
        fresh.add(block, augment_labels(store, block, aug))
    fresh.build_graph_if_due(cancel)
    aug_store.adopt(fresh)
    log.debug("augmented all %d vectors (DBA n=%d, alpha=%g)", len(labels), aug.n, aug.alpha)
    return True


def is_current(store: VectorStore, aug_store: VectorStore, aug: Augmentation) -> bool:
    """Whether ``aug_store`` is the complete DBA copy of ``store`` (same lineage, model, setting
    and labels): only then may queries go to it instead of the store."""
    if aug_store.meta != augmented_meta(store.meta, aug) or aug_store.source != store.lineage:
        return len(store) == 0 and len(aug_store) == 0
    return len(aug_store) == len(store) and np.array_equal(aug_store.labels(), store.labels())
