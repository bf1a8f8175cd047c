"""What every command shares: ``--data-dir``, ``--verbose``, the model flags, opening a library."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from imgsearch_gui.base import paths, registry
from imgsearch_gui.base.errors import UserError
from imgsearch_gui.base.pathtext import display_path

#: the options that may come before the command too (``imgsearch --data-dir X index DIR``)
GLOBAL_DEFAULTS = {"data_dir": None, "verbose": False, "no_wait": False}


def global_options(parser: argparse.ArgumentParser) -> None:
    """--data-dir, --verbose, --no-wait, on the main parser and on each command's. Their default
    is left out (SUPPRESS): a command's parser would otherwise overwrite what was given before
    the command with its default; :func:`fill_global_defaults` adds the defaults afterwards."""
    parser.add_argument("--data-dir", type=Path, default=argparse.SUPPRESS,
                        help="where the index lives (default: the user data dir, or "
                        "$IMGSEARCH_DATA_DIR)")
    parser.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="log debug messages")
    parser.add_argument("--no-wait", action="store_true", default=argparse.SUPPRESS,
                        help="commands that write to the data dir (index, whiten): exit with "
                        "status 3 instead of waiting when another process is writing to it")


def fill_global_defaults(args: argparse.Namespace) -> argparse.Namespace:
    for key, value in GLOBAL_DEFAULTS.items():
        if not hasattr(args, key):
            setattr(args, key, value)
    return args


def common_parser() -> argparse.ArgumentParser:
    """The flags every command that touches a data dir takes (an argparse parent)."""
    common = argparse.ArgumentParser(add_help=False)
    global_options(common)
    _model_flags(common)
    return common


def _model_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model (default: what the data dir was indexed with)")
    group.add_argument("--backbone", help=", ".join(
        f"{n} (default)" if n == registry.DEFAULT_BACKBONE else n for n in registry.backbone_names()))
    group.add_argument("--pooling", choices=sorted(registry.pooling_names()))
    group.add_argument("--size", type=int, metavar="PX", help="longest side fed to the CNN")
    group.add_argument("--layer", help="feature layer (a named block) instead of the last conv")
    group.add_argument("--multiscale", action="store_true", default=None,
                       help="average descriptors at scales 1, 1/sqrt2, 1/2")
    group.add_argument("--device", choices=registry.device_names())
    group.add_argument("--runtime", choices=registry.runtime_names(), help="what runs the CNN: "
                       + "; ".join(f"{n}: {registry.runtime_label(n)}" for n in registry.runtime_names())
                       + ". The descriptors are the same; only the speed differs.")
    group.add_argument("--weights", metavar="PATH", help="weights file (torchvision backbones)")
    group.add_argument("--download", action="store_true",
                       help="allow downloading torchvision weights (needs the internet)")
    group.add_argument("--batch-size", type=int, help="images per forward pass")
    group.add_argument("--workers", type=int, help="image-decoding threads (default: one per 2 "
                       "cores, 2 to 8)")


def add_query_flags(parser: argparse.ArgumentParser, recorded: bool = False) -> None:
    """The query-side flags search and eval share (default: the data dir's settings); for
    ``index`` (``recorded``) they become the data dir's settings."""
    title = ("search settings, kept with the index for later searches" if recorded
             else "query (default: the data dir's settings)")
    group = parser.add_argument_group(title)
    turn = group.add_mutually_exclusive_group()
    turn.add_argument("--no-rotations", dest="rotations", action="store_false", default=None,
                      help="search with the query as it is only, not also turned by 90, 180 "
                      "and 270 degrees (1 forward pass instead of 4 per query)")
    turn.add_argument("--rotations", dest="rotations", action="store_true",
                      help="also search with the query turned by 90, 180 and 270 degrees, "
                      "each photo keeping its best score (finds sideways copies)")
    group.add_argument("--qe", type=int, metavar="N",
                       help="alpha query expansion with the top N neighbours (0 = off)")
    if not recorded:
        group.add_argument("--alpha", type=float, help="similarity power of alpha-QE "
                           "(default 3; 0 = average query expansion)")


def query_settings(args: argparse.Namespace, default):
    """``default`` (a QuerySettings) with the query flags of the command applied."""
    from dataclasses import replace

    from imgsearch_gui.ml.query_expansion import QueryExpansion

    settings = default
    if args.rotations is not None:
        settings = replace(settings, rotations=args.rotations)
    if args.qe is not None:
        settings = replace(settings, expansion=QueryExpansion(args.qe) if args.qe > 0 else None)
    alpha = getattr(args, "alpha", None)
    if alpha is not None and settings.expansion is not None:
        settings = replace(settings, expansion=replace(settings.expansion, alpha=alpha))
    return settings


def config_from_args(args: argparse.Namespace, data_dir: Path):
    """The data dir's saved settings with the command's flags applied."""
    from imgsearch_gui.app.config import apply_overrides, load_config

    return apply_overrides(
        load_config(data_dir), backbone=args.backbone, pooling=args.pooling, size=args.size,
        layer=args.layer, multiscale=args.multiscale, device=args.device,
        runtime=getattr(args, "runtime", None), weights=args.weights,
        download=args.download or None, batch_size=args.batch_size, workers=args.workers,
        dba=getattr(args, "dba", None), rotations=getattr(args, "rotations", None),
        qe=getattr(args, "qe", None),
    )


def load_model(config):
    """The embedder for ``config``; a bad ``--layer`` or a weights file that does not fit the
    backbone (ValueError from torch's loading) is the user's to fix, not a bug."""
    from imgsearch_gui.ml.embedder import load_embedder

    try:
        return load_embedder(config)
    except ValueError as exc:
        raise UserError(str(exc)) from exc


def open_library(args: argparse.Namespace):
    """(library, data_dir, config): loads the model once for the whole command.

    ``--rebuild`` also gets past a catalog that cannot be read (moved aside, not deleted).
    """
    from imgsearch_gui.app.library import ImageLibrary, move_aside_damaged
    from imgsearch_gui.base.errors import CatalogCorruptError

    data_dir = paths.data_dir(args.data_dir)
    config = config_from_args(args, data_dir)
    embedder = load_model(config)
    writer = writer_options(args)
    try:
        library = ImageLibrary.for_config(data_dir, embedder, config, **writer)
    except CatalogCorruptError:
        if not getattr(args, "rebuild", False):
            raise
        aside = move_aside_damaged(data_dir)
        print(f"The damaged index was moved to {display_path(str(aside))}; rebuilding.",
              file=sys.stderr)
        library = ImageLibrary.for_config(data_dir, embedder, config, **writer)
    return library, data_dir, config


def writer_options(args: argparse.Namespace) -> dict:
    """ImageLibrary's writer settings for this command: a second writer waits for the first one
    (saying so on stderr), or with --no-wait fails with WriterBusyError (exit status 3)."""
    return {"wait": not getattr(args, "no_wait", False), "on_wait": _print_waiting}


def _print_waiting(message: str) -> None:
    print(f"imgsearch: {display_path(message)}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def cancel_on_signals(cancel, message: str = "cancelling (Ctrl-C again to stop at once) ..."
                      ) -> Iterator[None]:
    """Ctrl-C or SIGTERM cancels the job (it winds down, keeps its work and reports); a second
    Ctrl-C interrupts at once. Only the main thread can take signals: elsewhere, nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, _frame) -> None:
        if cancel.cancelled and signum == signal.SIGINT:
            raise KeyboardInterrupt
        if not cancel.cancelled:
            print(f"imgsearch: {message}", file=sys.stderr, flush=True)
        cancel.cancel()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, old)
