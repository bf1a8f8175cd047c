"""``imgsearch index``, ``whiten`` and ``info``: build the index, whiten it, describe it."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from imgsearch_gui import __version__
from imgsearch_gui.base import paths, registry
from imgsearch_gui.base.errors import UserError
from imgsearch_gui.base.images import SUPPORTED_FORMATS_TEXT
from imgsearch_gui.base.logs import current_log_file
from imgsearch_gui.base.pathtext import display_path, path_b64, path_json
from imgsearch_gui.base.types import CancelToken, IndexReport, Progress
from imgsearch_gui.cli.common import add_query_flags, cancel_on_signals, open_library, writer_options

INDEX_EPILOG = """\
A library folder that is missing, or empty while photos are indexed under it (an unplugged
drive, an empty mount point), is offline: its photos stay in the index and nothing is removed;
--prune removes them. Folders that cannot be read keep their photos too (and are reported).
Files skipped by earlier runs are tried again when they change, with --retry-skipped and on
--rebuild.

--json prints one JSON object on stdout at the end (progress goes to stderr):
  indexed     photos of the given folders searchable after the run
  embedded    images embedded in this run (identical files count once)
  unchanged, moved, removed, duplicates   files in each case
  skipped     [{"path", "reason"}] files that could not be used
  offline     the given library folders that were not reachable (nothing removed)
  unreadable  folders that could not be read (their photos were kept)
  cancelled   true when interrupted (Ctrl-C): what was done is kept
  seconds     wall time of the run
  A name that is not valid UTF-8 shows its bytes as \\xNN escapes; the exact name is the base64
  of its bytes: "path_b64" next to a skipped "path", and "offline_b64" / "unreadable_b64" lists
  (null where the name is exact) next to those lists, present only for such names.

exit status:
  0  done
  1  cancelled (Ctrl-C; what was done is kept) or an unexpected error
  2  bad input (a missing folder that is not a library, a bad option, another model's index)
  3  another process is writing the index (see --no-wait)
  4  storage error (the disk is full or cannot be written; the index is kept as it was)
"""


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def add_parsers(sub, parents: list[argparse.ArgumentParser]) -> None:
    """index, whiten and info."""
    p = sub.add_parser("index", parents=parents, help="embed every photo under DIR",
                       epilog=f"{SUPPORTED_FORMATS_TEXT}\n\n{INDEX_EPILOG}",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dirs", nargs="+", type=Path, metavar="DIR")
    p.add_argument("--rebuild", action="store_true",
                   help="drop the index and embed everything again (e.g. after a model change)")
    p.add_argument("--dba", type=int, metavar="N",
                   help="database-side augmentation with N neighbours "
                   f"(default {registry.DEFAULT_DBA}; 0 = off); "
                   "kept for later runs")
    add_query_flags(p, recorded=True)
    p.add_argument("--prune", action="store_true",
                   help="a DIR that is missing or empty: remove its photos from the index "
                   "(without it, such a library is offline and kept)")
    p.add_argument("--retry-skipped", action="store_true",
                   help="try the files skipped by earlier runs again, changed or not")
    p.add_argument("--json", action="store_true",
                   help="one JSON object with the counts on stdout at the end (see below)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    cluster = p.add_argument_group("embedding on a Ray cluster (the [cluster] extra)")
    cluster.add_argument("--ray", metavar="ADDRESS",
                         help="embed the new and changed photos on the Ray cluster at ADDRESS "
                         "(host:port, ray://host:10001, or 'local' for a cluster of this machine); "
                         "the workers must see the photos at the same paths")
    cluster.add_argument("--ray-actors", type=_positive, metavar="N",
                         help="model actors (default: one per GPU, else one per 4 CPUs)")
    cluster.add_argument("--ray-cpus", type=_positive, metavar="N",
                         help="with --ray local: the CPUs the local cluster may use (default all)")

    p = sub.add_parser("whiten", parents=parents, help="learn PCA-whitening on the indexed "
                       "photos (no labels needed) and apply it to the index and to queries")
    p.add_argument("--dim", type=_positive, help="keep only the top DIM whitened dimensions")
    p.add_argument("--off", action="store_true",
                   help="stop whitening (re-embeds the libraries with the plain model)")

    sub.add_parser("info", parents=parents, help="model, device and index summary")


def _check_dirs(args: argparse.Namespace) -> None:
    """Bad input before the model loads: a DIR that is not a folder. A missing DIR may be an
    offline library (the library decides: NotADirectoryError when it is not one)."""
    from imgsearch_gui.app.library import CATALOG_FILE

    catalog = paths.data_dir(args.data_dir) / CATALOG_FILE
    for d in args.dirs:
        if (d.exists() or not catalog.exists()) and not d.is_dir():
            raise UserError(f"not a folder: {d}")


def run_index(args: argparse.Namespace) -> int:
    _check_dirs(args)
    library, data_dir, config = open_library(args)
    started = time.perf_counter()
    reports = []
    cancel = CancelToken()
    library.settings = config  # recorded in embedder.json by each job, under the writer lock
    with library, cancel_on_signals(cancel), _cluster_embedder(args, library) as embed_with:
        for position, folder in enumerate(args.dirs):
            rebuild = args.rebuild and position == 0  # later folders must keep the new vectors
            report = _index_one(library, folder, args, rebuild, cancel, embed_with)
            if report is None:
                continue
            reports.append(report)
            if not args.json:
                print_report(report)
            if report.cancelled:
                break
    if args.json:
        sys.stdout.write(json.dumps(summary(reports, time.perf_counter() - started)) + "\n")
        sys.stdout.flush()
    return 1 if any(r.cancelled for r in reports) else 0


@contextlib.contextmanager
def _cluster_embedder(args: argparse.Namespace, library) -> Iterator[object | None]:
    """With ``--ray``: the cluster's embedder for the whole command (a local cluster is started
    and stopped around it); else None (the library's own embedder)."""
    if not getattr(args, "ray", None):
        yield None
        return
    from imgsearch_gui import cluster

    cluster.require("ray", "--ray")
    from imgsearch_gui.cluster.ray_embed import RayEmbedder, RaySession

    with RaySession(args.ray, args.ray_cpus) as session:
        embedder = library.embedder
        yield RayEmbedder(session, embedder.config, embedder.meta, args.ray_actors)


def _index_one(library, folder: Path, args: argparse.Namespace, rebuild: bool,
               cancel: CancelToken, embed_with=None) -> IndexReport | None:
    """One folder indexed (a progress bar on stderr), its report."""
    show_bar = not args.quiet and sys.stderr.isatty()
    bar = None
    report: IndexReport | None = None
    try:
        events = library.index_library(folder, rebuild=rebuild, cancel=cancel, prune=args.prune,
                                       retry_skipped=args.retry_skipped, embed_with=embed_with)
        for event in events:
            if isinstance(event, IndexReport):
                report = event
            elif isinstance(event, Progress) and show_bar and event.stage == "embed":
                if bar is None:
                    from tqdm import tqdm

                    bar = tqdm(total=event.total, unit="img", desc=folder.name,
                               dynamic_ncols=True, file=sys.stderr)
                bar.total = event.total
                bar.update(event.done - bar.n)
    except NotADirectoryError as exc:
        raise UserError(f"not a folder: {folder}") from exc
    finally:
        if bar is not None:
            bar.close()
    return report


def summary(reports: Sequence[IndexReport], seconds: float) -> dict[str, object]:
    """``index --json``: the counts of every folder's report, summed."""
    total = {key: sum(getattr(r, key) for r in reports)
             for key in ("indexed", "embedded", "unchanged", "moved", "removed", "duplicates")}
    return {
        **total,
        "skipped": [{**path_json(s.path), "reason": display_path(s.reason)}
                    for r in reports for s in r.skipped],
        **_path_list("offline", [r.library for r in reports if r.offline]),
        **_path_list("unreadable", [p for r in reports for p in r.unreadable]),
        "cancelled": any(r.cancelled for r in reports),
        "seconds": round(seconds, 3),
    }


def _path_list(key: str, items: Sequence[str]) -> dict[str, list]:
    """``{key: readable paths}``, plus ``{key}_b64`` (the exact bytes, None where the text is
    exact) when one of them is not valid UTF-8."""
    out: dict[str, list] = {key: [display_path(p) for p in items]}
    exact = [path_b64(p) for p in items]
    if any(b is not None for b in exact):
        out[f"{key}_b64"] = exact
    return out


def print_report(r: IndexReport) -> None:
    """The text form of one folder's report; every path readable (``\\xNN`` escapes)."""
    out = sys.stdout
    library = display_path(r.library)
    if r.offline:
        print(f"{library}: offline (not found, or empty: an unplugged drive?); its {r.indexed} "
              "photos stay in the index, nothing removed (--prune removes them)", file=out)
        return
    print(f"{library}: {r.indexed} searchable; {r.embedded} embedded, {r.unchanged} unchanged, "
          f"{r.moved} moved, {r.duplicates} duplicates, {r.removed} removed, {len(r.skipped)} "
          f"skipped in {r.seconds:.1f} s ({r.images_per_s:.1f} images/s)", file=out)
    for s in r.skipped[:50]:
        print(f"  skipped {display_path(s.path)}: {display_path(s.reason)}", file=out)
    if len(r.skipped) > 50:
        print(f"  ... and {len(r.skipped) - 50} more skipped files", file=out)
    for path in r.unreadable:
        print(f"  could not read {display_path(path)}: its photos are kept as they were", file=out)
    if r.cancelled:
        print("  cancelled: what was finished is kept; run again to continue", file=out)


def run_whiten(args: argparse.Namespace) -> int:
    """Learn whitening from unwhitened descriptors: re-embeds first if the index is whitened.

    The settings (embedder.json) are recorded by the library in the same writes as the index
    (under the writer lock, right after the index switched), never after them."""
    from dataclasses import replace

    from imgsearch_gui.app.library import ImageLibrary

    library, data_dir, config = open_library(args)
    library.settings = config
    try:
        if config.whitening is not None:
            plain = library.embedder.with_whitening(None)
            library.close()
            config = replace(config, whitening=None)
            library = ImageLibrary.for_config(data_dir, plain, config, settings=config,
                                              **writer_options(args))
            roots = [lib.root for lib in library.libraries()]
            print(f"re-embedding {len(roots)} libraries without whitening ...")
            if not roots:  # no job to record them: nothing is indexed that they could contradict
                from imgsearch_gui.app.config import save_config

                save_config(data_dir, config)
            for position, root in enumerate(roots):
                for event in library.index_library(root, rebuild=position == 0):
                    if isinstance(event, IndexReport):
                        print_report(event)
        if args.off:
            print("whitening is off")
            return 0
        path = library.learn_whitening(args.dim)  # WhiteningError: a UserError
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
        query = library.query
        print(f"search:    DBA {config.dba or 'off'}, rotations "
              f"{'on' if query.rotations else 'off'}, alpha-QE "
              f"{query.expansion.n if query.expansion else 'off'}")
        print(f"device:    {emb.device}")
        asked = f" ({config.runtime} was asked for; see the log)" if config.runtime not in (
            "auto", emb.runtime) else ""
        print(f"runtime:   {emb.runtime}{asked}")
        print(f"data dir:  {display_path(str(data_dir))}")
        print(f"cache:     {display_path(str(paths.cache_dir()))}")
        print(f"log file:  {display_path(str(current_log_file() or '(none)'))}")
        print(f"index:     {stats.vectors} vectors, {stats.files} files")
        if stats.meta is not None and stats.meta != emb.meta:
            print(f"WARNING:   the index was built with {stats.meta.describe()}; "
                  "run `imgsearch index --rebuild DIR` to use the current model")
        for lib in stats.libraries:
            offline = ", OFFLINE: not found or empty, its photos are kept" if lib.offline else ""
            print(f"library:   {display_path(lib.root)} ({lib.indexed} indexed, {lib.skipped} "
                  f"skipped{offline})")
    return 0
