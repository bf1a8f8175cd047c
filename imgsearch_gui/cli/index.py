"""``imgsearch index``, ``whiten`` and ``info``: build the index, whiten it, describe it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from imgsearch_gui import __version__
from imgsearch_gui.base import paths
from imgsearch_gui.base.errors import UserError
from imgsearch_gui.base.logs import current_log_file
from imgsearch_gui.cli.common import open_library


def add_parsers(sub, parents: list[argparse.ArgumentParser]) -> None:
    """index, whiten and info."""
    p = sub.add_parser("index", parents=parents, help="embed every photo under DIR")
    p.add_argument("dirs", nargs="+", type=Path, metavar="DIR")
    p.add_argument("--rebuild", action="store_true",
                   help="drop the index and embed everything again (e.g. after a model change)")
    p.add_argument("--dba", type=int, metavar="N",
                   help="database-side augmentation with N neighbours (default 3; 0 = off); "
                   "kept for later runs")
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = sub.add_parser("whiten", parents=parents, help="learn PCA-whitening on the indexed "
                       "photos (no labels needed) and apply it to the index and to queries")
    p.add_argument("--dim", type=int, help="keep only the top DIM whitened dimensions")
    p.add_argument("--off", action="store_true",
                   help="stop whitening (re-embeds the libraries with the plain model)")

    sub.add_parser("info", parents=parents, help="model, device and index summary")


def run_index(args: argparse.Namespace) -> int:
    from imgsearch_gui.app.config import save_config
    from imgsearch_gui.base.types import IndexReport, Progress

    for d in args.dirs:
        if not d.is_dir():
            raise UserError(f"not a folder: {d}")
    library, data_dir, config = open_library(args)
    show_bar = not args.quiet and sys.stderr.isatty()
    status = 0
    with library:
        for position, folder in enumerate(args.dirs):
            bar = None
            report: IndexReport | None = None
            rebuild = args.rebuild and position == 0  # later folders must keep the new vectors
            try:
                for event in library.index_library(folder, rebuild=rebuild):
                    if isinstance(event, IndexReport):
                        report = event
                    elif isinstance(event, Progress) and show_bar and event.stage == "embed":
                        if bar is None:
                            from tqdm import tqdm

                            bar = tqdm(total=event.total, unit="img", desc=folder.name,
                                       dynamic_ncols=True, file=sys.stderr)
                        bar.total = event.total
                        bar.update(event.done - bar.n)
            finally:
                if bar is not None:
                    bar.close()
            save_config(data_dir, config)
            if report is not None:
                print_report(report)
                status = status or (0 if not report.cancelled else 1)
    return status


def print_report(r) -> None:
    out = sys.stdout
    print(f"{r.library}: {r.indexed} embedded, {r.unchanged} unchanged, {r.moved} moved, "
          f"{r.duplicates} duplicates, {r.removed} removed, {len(r.skipped)} skipped "
          f"in {r.seconds:.1f} s ({r.images_per_s:.1f} images/s)", file=out)
    for s in r.skipped[:50]:
        print(f"  skipped {s.path}: {s.reason}", file=out)
    if len(r.skipped) > 50:
        print(f"  ... and {len(r.skipped) - 50} more skipped files", file=out)
    if r.cancelled:
        print("  cancelled: what was finished is kept; run again to continue", file=out)


def run_whiten(args: argparse.Namespace) -> int:
    """Learn whitening from unwhitened descriptors: re-embeds first if the index is whitened."""
    from dataclasses import replace

    from imgsearch_gui.app.config import save_config
    from imgsearch_gui.app.library import ImageLibrary
    from imgsearch_gui.base.types import IndexReport

    library, data_dir, config = open_library(args)
    try:
        if config.whitening is not None:
            plain = library.embedder.with_whitening(None)
            library.close()
            library = ImageLibrary.for_config(data_dir, plain, config.dba)
            roots = [lib.root for lib in library.libraries()]
            print(f"re-embedding {len(roots)} libraries without whitening ...")
            for position, root in enumerate(roots):
                for event in library.index_library(root, rebuild=position == 0):
                    if isinstance(event, IndexReport):
                        print_report(event)
            config = replace(config, whitening=None)
            save_config(data_dir, config)
        if args.off:
            print("whitening is off")
            return 0
        path = library.learn_whitening(args.dim)  # WhiteningError: a UserError
        save_config(data_dir, replace(config, whitening=str(path)))
        print(f"whitening learned on {library.stats().vectors} descriptors: {path} "
              f"(dim {library.embedder.meta.dim})")
    finally:
        library.close()
    return 0


def run_info(args: argparse.Namespace) -> int:
    library, data_dir, config = open_library(args)
    with library:
        stats = library.stats()
        emb = library.embedder
        print(f"version:   imgsearch {__version__}")
        print(f"backbone:  {emb.meta.backbone} (weights {emb.meta.weights_id})")
        params = ", ".join(f"{k}={v:g}" for k, v in emb.meta.pooling_params)
        print(f"pooling:   {emb.meta.pooling}{f' ({params})' if params else ''}")
        print(f"size:      {emb.meta.input_size} px longest side"
              f"{', multi-scale' if len(emb.meta.scales) > 1 else ''}")
        print(f"dim:       {emb.meta.dim}")
        print(f"whitening: {emb.meta.whitening_id or 'none'}")
        print(f"device:    {emb.device}")
        print(f"data dir:  {data_dir}")
        print(f"cache:     {paths.cache_dir()}")
        print(f"log file:  {current_log_file() or '(none)'}")
        print(f"index:     {stats.vectors} vectors, {stats.files} files")
        if stats.meta is not None and stats.meta != emb.meta:
            print(f"WARNING:   the index was built with {stats.meta.describe()}; "
                  "run `imgsearch index --rebuild DIR` to use the current model")
        for lib in stats.libraries:
            print(f"library:   {lib.root} ({lib.indexed} indexed, {lib.skipped} skipped)")
    return 0
