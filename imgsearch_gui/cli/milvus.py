"""``imgsearch export --milvus URI`` and ``imgsearch search ... --milvus URI``: the index served by
Milvus (a ``*.db`` file is Milvus Lite, ``http://host:19530`` a server; the [cluster] extra)."""

from __future__ import annotations

import argparse
import json
import sys

from imgsearch_gui.base import paths
from imgsearch_gui.base.errors import UserError
from imgsearch_gui.base.pathtext import display_path

EXPORT_EPILOG = """\
The collection carries the model's ModelMeta: exporting another model's index to it is refused.
A second export syncs: new, changed and moved photos are written, deleted ones removed.
--json prints {"added", "updated", "deleted", "total", "uri", "collection"}.
"""


def add_milvus_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--milvus", metavar="URI",
                        help="a Milvus collection instead of the data dir's index: a *.db file "
                        "(Milvus Lite) or http://host:19530 (the [cluster] extra)")
    parser.add_argument("--collection", metavar="NAME",
                        help="the Milvus collection (default imgsearch)")


def add_parser(sub, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("export", parents=parents, help="write the index to a Milvus collection",
                       epilog=EXPORT_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_milvus_flags(p)
    p.add_argument("--json", action="store_true", help="one JSON object with the counts")


def run_export(args: argparse.Namespace) -> int:
    from imgsearch_gui.app import shared_index
    from imgsearch_gui.app.library import CATALOG_FILE
    from imgsearch_gui.cli.common import open_library

    if not args.milvus:
        raise UserError("export needs --milvus URI")
    if not (paths.data_dir(args.data_dir) / CATALOG_FILE).exists():
        raise UserError(f"nothing to export: no index in {paths.data_dir(args.data_dir)}")
    library, _, _ = open_library(args)
    with library:
        report = shared_index.export(library, args.milvus, args.collection)
    counts = {"added": report.added, "updated": report.updated, "deleted": report.deleted,
              "total": report.total, "uri": args.milvus, "collection": args.collection or "imgsearch"}
    if args.json:
        sys.stdout.write(json.dumps(counts) + "\n")
    else:
        print(f"{display_path(args.milvus)}: {report.total} photos ({report.added} added, "
              f"{report.updated} updated, {report.deleted} removed)")
    return 0


def open_shared(args: argparse.Namespace):
    """The Milvus collection of ``--milvus``, with the model of the command's flags (or the data
    dir's settings), for ``search``."""
    from imgsearch_gui.app.shared_index import SharedIndex
    from imgsearch_gui.cli.common import config_from_args, load_model

    config = config_from_args(args, paths.data_dir(args.data_dir))
    return SharedIndex(args.milvus, load_model(config), args.collection), config
