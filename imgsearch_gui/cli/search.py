"""``imgsearch search``: the most similar indexed photos to each query, as text or JSON Lines.

A file name whose bytes are not valid UTF-8 cannot be JSON text as it is: in ``--json`` its
``"path"`` shows those bytes as ``\\xNN`` escapes (readable, as in the text output) and the exact
name is in ``"path_b64"``, the base64 of the path's bytes (present only for such names).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from imgsearch_gui.app import search
from imgsearch_gui.base.bands import Band
from imgsearch_gui.base.errors import UserError
from imgsearch_gui.base.pathtext import display_path, path_json
from imgsearch_gui.cli.common import add_query_flags, open_library, query_settings
from imgsearch_gui.cli.milvus import add_milvus_flags, open_shared

log = logging.getLogger(__name__)


def add_parsers(sub, parents: list[argparse.ArgumentParser]) -> None:
    """search."""
    p = sub.add_parser("search", parents=parents, help="most similar photos to each query")
    p.add_argument("queries", nargs="+", type=Path, metavar="QUERY_IMAGE")
    p.add_argument("-k", type=int, default=20, help="results per query (default 20)")
    p.add_argument("--library", type=Path, help="search only this indexed folder")
    add_query_flags(p)
    add_milvus_flags(p)
    p.add_argument("--json", action="store_true",
                   help="JSON Lines: one array of {path, score, band} per query, in order (a path "
                        "that is not valid UTF-8 also has path_b64, the base64 of its bytes; band: "
                        "same photo | very similar | similar | unrelated, for models whose score "
                        "bands were measured)")


def run(args: argparse.Namespace) -> int:
    from imgsearch_gui.base.errors import ImageError
    from imgsearch_gui.base.images import load_image

    for q in args.queries:  # fail fast, before the model loads
        if not q.is_file():
            raise UserError(f"cannot read query image {q}: no such file")
    if args.k < 1:
        raise UserError("-k must be at least 1")
    if args.milvus:
        if args.library:
            raise UserError("--library does not apply to a Milvus collection (searched whole)")
        library, config = open_shared(args)
        settings = query_settings(args, search.QuerySettings.of(config))
    else:
        library, _, _ = open_library(args)
        settings = query_settings(args, library.query)
    with library:
        for q in args.queries:
            try:
                image = load_image(q, max_side=library.embedder.config.size)
            except ImageError as exc:
                raise UserError(f"cannot read query image {q}: {exc.reason}") from exc
            t0 = time.perf_counter()
            hits = (library.search(image, args.k, settings) if args.milvus else
                    library.search(image, k=args.k, library=args.library, settings=settings))
            log.debug("query %s: %.1f ms", q, (time.perf_counter() - t0) * 1000)
            if args.json:
                # a hit of an offline library (unplugged drive) says so
                line = [hit_json(h.path, h.score) | ({"band": str(h.band)} if h.band else {})
                        | ({"offline": True} if h.offline else {}) for h in hits]
                sys.stdout.write(json.dumps(line) + "\n")
            else:
                if len(args.queries) > 1:
                    print(f"# {display_path(str(q))}")
                for h in hits:
                    offline = "  (offline)" if h.offline else ""
                    band = f"{h.band!s:13s} " if h.band else ""
                    print(f"{h.rank:3d}  {h.score:.4f}  {band}{display_path(h.path)}{offline}")
                if hits and hits[0].band == Band.UNRELATED:
                    print("    (no close match: even the best hit is unrelated)")
            sys.stdout.flush()
    return 0


def hit_json(path: str, score: float) -> dict[str, object]:
    """One hit of ``--json``: ``path`` as valid text, ``path_b64`` where that is not exact."""
    return {**path_json(str(Path(path).resolve())), "score": round(float(score), 6)}
