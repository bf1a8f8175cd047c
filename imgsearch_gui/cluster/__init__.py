"""Optional extra ``[cluster]``: embedding on a Ray cluster (``ray_embed``) and the index served by
Milvus (``milvus``), behind the same interfaces as the local path (an embedder's ``embed_files``;
a vector store's ``query``/``get``). Nothing here is imported unless asked for, so the app runs
without the extra; :func:`require` turns a missing one into a clear message."""

from __future__ import annotations

import importlib

from imgsearch_gui.base.errors import ClusterUnavailableError


def require(module: str, what: str) -> None:
    """Raise ClusterUnavailableError (a user error) when ``module`` is not installed."""
    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise ClusterUnavailableError(
            f"{what} needs the cluster extra: pip install 'imgsearch-gui[cluster]' ({exc})"
        ) from exc
