"""Command line: ``imgsearch index|search|info|gui``.

Every command takes ``--data-dir`` (where the index lives) and the model flags; without model
flags the settings the data dir was indexed with are used, so ``search`` matches ``index``.
Exit status: 0 ok, 2 for a user error (bad path, unreadable query, model mismatch), 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from imgsearch_gui import __version__
from imgsearch_gui.base import paths
from imgsearch_gui.base.errors import StorageError, UserError
from imgsearch_gui.base.logs import FILE_ONLY, current_log_file, setup_logging
from imgsearch_gui.cli import finetune as cli_finetune

log = logging.getLogger(__name__)


def _model_flags(parser: argparse.ArgumentParser) -> None:
    from imgsearch_gui.ml import functional

    group = parser.add_argument_group("model (default: what the data dir was indexed with)")
    group.add_argument("--backbone", help="efficientnet_lite0 (default), efficientnet_lite2, "
                       "vgg16, resnet50, resnet101")
    group.add_argument("--pooling", choices=sorted(functional.POOLINGS))
    group.add_argument("--size", type=int, metavar="PX", help="longest side fed to the CNN")
    group.add_argument("--layer", help="feature layer (a named block) instead of the last conv")
    group.add_argument("--multiscale", action="store_true", default=None,
                       help="average descriptors at scales 1, 1/sqrt2, 1/2")
    group.add_argument("--device", choices=["auto", "cpu", "cuda"])
    group.add_argument("--weights", metavar="PATH", help="weights file (torchvision backbones)")
    group.add_argument("--download", action="store_true",
                       help="allow downloading torchvision weights (needs the internet)")
    group.add_argument("--batch-size", type=int, help="images per forward pass")
    group.add_argument("--workers", type=int, help="image-decoding threads")


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", type=Path, help="where the index lives "
                        "(default: the user data dir, or $IMGSEARCH_DATA_DIR)")
    common.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    _model_flags(common)

    parser = argparse.ArgumentParser(prog="imgsearch", description="Find photos by their content.")
    parser.add_argument("--version", action="version", version=f"imgsearch {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("index", parents=[common], help="embed every photo under DIR")
    p.add_argument("dirs", nargs="+", type=Path, metavar="DIR")
    p.add_argument("--rebuild", action="store_true",
                   help="drop the index and embed everything again (e.g. after a model change)")
    p.add_argument("--dba", type=int, metavar="N",
                   help="database-side augmentation with N neighbours (default 3; 0 = off); "
                   "kept for later runs")
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = sub.add_parser("search", parents=[common], help="most similar photos to each query")
    p.add_argument("queries", nargs="+", type=Path, metavar="QUERY_IMAGE")
    p.add_argument("-k", type=int, default=20, help="results per query (default 20)")
    p.add_argument("--library", type=Path, help="search only this indexed folder")
    p.add_argument("--qe", type=int, default=0, metavar="N",
                   help="alpha query expansion with the top N neighbours (0 = off)")
    p.add_argument("--alpha", type=float, default=3.0, help="similarity power for --qe")
    p.add_argument("--json", action="store_true",
                   help="JSON Lines: one array of {path, score} per query, in order")

    p = sub.add_parser("eval", parents=[common], help="retrieval quality (mAP, mP@k, N-S) on "
                       "a labelled folder, a groups CSV or Oxford/Paris ground truth")
    p.add_argument("dir", type=Path, metavar="DIR",
                   help="photos; without --groups/--oxford-gt one subfolder per class")
    p.add_argument("--groups", type=Path, metavar="CSV", help="filename,group rows (e.g. UKBench)")
    p.add_argument("--oxford-gt", type=Path, metavar="GT_DIR",
                   help="Oxford/Paris *_query.txt and *_good/ok/junk.txt files")
    p.add_argument("--model", metavar="CHECKPOINT", help="a fine-tuned checkpoint to evaluate")
    p.add_argument("--whiten", type=int, nargs="?", const=0, metavar="DIM",
                   help="PCA-whitening learned on DIR (optionally reduced to DIM)")
    p.add_argument("--qe", choices=["none", "avg", "alpha"], default="none",
                   help="query expansion: average or alpha-weighted")
    p.add_argument("--qe-n", type=int, default=2, help="neighbours used by query expansion")
    p.add_argument("--alpha", type=float, default=3.0, help="similarity power for alpha-QE/DBA")
    p.add_argument("--dba", type=int, default=0, metavar="N",
                   help="database-side augmentation with N neighbours")
    p.add_argument("--per-query", action="store_true", help="print the AP of every query")
    p.add_argument("--json", action="store_true", help="one JSON object with the scores")

    p = sub.add_parser("whiten", parents=[common], help="learn PCA-whitening on the indexed "
                       "photos (no labels needed) and apply it to the index and to queries")
    p.add_argument("--dim", type=int, help="keep only the top DIM whitened dimensions")
    p.add_argument("--off", action="store_true",
                   help="stop whitening (re-embeds the libraries with the plain model)")

    sub.add_parser("info", parents=[common], help="model, device and index summary")

    p = sub.add_parser("gui", parents=[common], help="start the desktop app")
    p.add_argument("photos", nargs="*", help="photos to search with at start")
    p.add_argument("--demo", action="store_true", help="index the bundled demo photos and search")

    p = sub.add_parser("desktop-entry", help="add the app to the desktop menu (Linux, this user)")
    p.add_argument("--remove", action="store_true", help="remove the menu entry and icons again")
    p.add_argument("--prefix", type=Path, help="data folder to write to (default: $XDG_DATA_HOME "
                   "or ~/.local/share)")
    p.add_argument("-v", "--verbose", action="store_true", help="log debug messages")

    cli_finetune.add_parser(sub, [common])
    return parser


def _config(args: argparse.Namespace, data_dir: Path):
    """The data dir's saved settings with the command's flags applied."""
    from imgsearch_gui.app.config import apply_overrides, load_config

    return apply_overrides(
        load_config(data_dir), backbone=args.backbone, pooling=args.pooling, size=args.size,
        layer=args.layer, multiscale=args.multiscale, device=args.device, weights=args.weights,
        download=args.download or None, batch_size=args.batch_size, workers=args.workers,
        dba=getattr(args, "dba", None),
    )


def _open(args: argparse.Namespace):
    """(library, data_dir, config): loads the model once for the whole command.

    ``--rebuild`` also gets past a catalog that cannot be read (moved aside, not deleted).
    """
    from imgsearch_gui.app.library import ImageLibrary, move_aside_damaged
    from imgsearch_gui.base.errors import CatalogCorruptError
    from imgsearch_gui.ml.embedder import load_embedder

    data_dir = paths.data_dir(args.data_dir)
    config = _config(args, data_dir)
    try:
        embedder = load_embedder(config)
    except ValueError as exc:  # a bad --layer or weights file that does not fit
        raise UserError(str(exc)) from exc
    try:
        library = ImageLibrary.for_config(data_dir, embedder, config.dba)
    except CatalogCorruptError:
        if not getattr(args, "rebuild", False):
            raise
        aside = move_aside_damaged(data_dir)
        print(f"The damaged index was moved to {aside}; rebuilding.", file=sys.stderr)
        library = ImageLibrary.for_config(data_dir, embedder, config.dba)
    return library, data_dir, config


def cmd_index(args: argparse.Namespace) -> int:
    from imgsearch_gui.app.config import save_config
    from imgsearch_gui.base.types import IndexReport, Progress

    for d in args.dirs:
        if not d.is_dir():
            raise UserError(f"not a folder: {d}")
    library, data_dir, config = _open(args)
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
                _print_report(report)
                status = status or (0 if not report.cancelled else 1)
    return status


def _print_report(r) -> None:
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


def cmd_search(args: argparse.Namespace) -> int:
    from imgsearch_gui.base.errors import ImageError
    from imgsearch_gui.base.images import load_image

    for q in args.queries:  # fail fast, before the model loads
        if not q.is_file():
            raise UserError(f"cannot read query image {q}: no such file")
    if args.k < 1:
        raise UserError("-k must be at least 1")
    from imgsearch_gui.ml.query_expansion import QueryExpansion

    expansion = QueryExpansion(args.qe, args.alpha) if args.qe > 0 else None
    library, _, _ = _open(args)
    with library:
        for q in args.queries:
            try:
                image = load_image(q, max_side=library.embedder.config.size)
            except ImageError as exc:
                raise UserError(f"cannot read query image {q}: {exc.reason}") from exc
            t0 = time.perf_counter()
            hits = library.search(image, k=args.k, library=args.library, expansion=expansion)
            log.debug("query %s: %.1f ms", q, (time.perf_counter() - t0) * 1000)
            if args.json:
                line = [{"path": str(Path(h.path).resolve()), "score": round(float(h.score), 6)}
                        for h in hits]
                sys.stdout.write(json.dumps(line) + "\n")
            else:
                if len(args.queries) > 1:
                    print(f"# {q}")
                for h in hits:
                    print(f"{h.rank:3d}  {h.score:.4f}  {h.path}")
            sys.stdout.flush()
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from imgsearch_gui.app.evaluation import PostProcessing, evaluate
    from imgsearch_gui.base.errors import BackboneUnavailableError, EvalError
    from imgsearch_gui.ml.embedder import load_embedder

    if args.model:
        args.weights = args.model
    data_dir = paths.data_dir(args.data_dir)
    try:
        embedder = load_embedder(_config(args, data_dir))
    except (BackboneUnavailableError, ValueError) as exc:
        raise UserError(str(exc)) from exc
    post = PostProcessing(whiten=args.whiten, qe=args.qe, qe_n=args.qe_n, alpha=args.alpha,
                          dba_n=args.dba)
    bar = None

    def progress(event) -> None:
        nonlocal bar
        if not sys.stderr.isatty() or args.json:
            return
        if bar is None:
            from tqdm import tqdm

            bar = tqdm(total=event.total, unit="img", desc="embedding", file=sys.stderr)
        bar.update(event.done - bar.n)

    try:
        result = evaluate(embedder, args.dir, groups=args.groups, oxford_gt=args.oxford_gt,
                          post=post, cache_dir=data_dir / "eval-cache", progress=progress)
    except EvalError as exc:
        raise UserError(str(exc)) from exc
    finally:
        if bar is not None:
            bar.close()
    if args.json:
        out = result.to_dict(per_query=args.per_query)
        out["model"] = embedder.meta.describe()
        print(json.dumps(out))
        return 0
    print(f"model:    {embedder.meta.describe()}")
    print(f"images:   {result.n_images} ({len(result.skipped_images)} unreadable skipped)")
    print(f"queries:  {result.n_queries}" + (f" ({result.skipped_queries} skipped: image missing)"
                                             if result.skipped_queries else ""))
    print(f"mAP:      {100 * result.map:.2f}")
    print(f"mP@1/5/10: {100 * result.mp_at_1:.2f} / {100 * result.mp_at_5:.2f} / "
          f"{100 * result.mp_at_10:.2f}")
    if result.ns_score is not None:
        print(f"N-S:      {result.ns_score:.3f} / 4")
    if args.per_query:
        for name, ap in result.per_query:
            print(f"  {100 * ap:6.2f}  {name}")
    return 0


def cmd_whiten(args: argparse.Namespace) -> int:
    """Learn whitening from unwhitened descriptors: re-embeds first if the index is whitened."""
    from dataclasses import replace

    from imgsearch_gui.app.config import save_config
    from imgsearch_gui.app.library import ImageLibrary
    from imgsearch_gui.base.types import IndexReport

    library, data_dir, config = _open(args)
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
                        _print_report(event)
            config = replace(config, whitening=None)
            save_config(data_dir, config)
        if args.off:
            print("whitening is off")
            return 0
        try:
            path = library.learn_whitening(args.dim)
        except ValueError as exc:
            raise UserError(str(exc)) from exc
        save_config(data_dir, replace(config, whitening=str(path)))
        print(f"whitening learned on {library.stats().vectors} descriptors: {path} "
              f"(dim {library.embedder.meta.dim})")
    finally:
        library.close()
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    library, data_dir, config = _open(args)
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


def cmd_gui(args: argparse.Namespace) -> int:
    from imgsearch_gui.__main__ import main as gui_main

    forwarded = []
    if args.data_dir:
        forwarded += ["--data-dir", str(args.data_dir)]
    for flag in ("backbone", "pooling", "size", "device"):
        if getattr(args, flag) is not None:
            forwarded += [f"--{flag}", str(getattr(args, flag))]
    forwarded += ["--verbose"] * bool(args.verbose) + ["--demo"] * bool(args.demo)
    return int(gui_main([*forwarded, *args.photos]) or 0)


def cmd_desktop_entry(args: argparse.Namespace) -> int:
    from imgsearch_gui.app import desktop

    if not sys.platform.startswith("linux"):
        raise UserError("desktop entries are for Linux desktops; on Windows and macOS start "
                        "imgsearch-gui from the folder of the bundle, or pin it to the taskbar/Dock")
    if args.remove:
        removed = desktop.remove(args.prefix)
        print(f"removed {len(removed)} files under {desktop.data_home(args.prefix)}")
        return 0
    written = desktop.install(args.prefix)
    print(f"wrote {len(written)} files under {desktop.data_home(args.prefix)}; "
          f"the menu entry starts: {' '.join(desktop.gui_command())}")
    return 0


COMMANDS = {"index": cmd_index, "search": cmd_search, "eval": cmd_eval, "whiten": cmd_whiten,
            "info": cmd_info, "gui": cmd_gui, "finetune": cli_finetune.run,
            "desktop-entry": cmd_desktop_entry}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "gui":
        return cmd_gui(args)  # the GUI sets up its own logging (its own log file)
    log_path = setup_logging("imgsearch", verbose=args.verbose)
    try:
        return COMMANDS[args.command](args)
    except (UserError, StorageError) as exc:
        log.info("user error: %s", exc)  # the file keeps it; the console gets the line below
        print(f"imgsearch: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("imgsearch: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: full details in the log file, a short line on the console
        log.exception("unexpected error in `imgsearch %s`", args.command, extra=FILE_ONLY)
        where = f" The details are in {log_path}." if log_path else ""
        print(f"imgsearch: unexpected error: {type(exc).__name__}: {exc}.{where} Please include "
              "them in a bug report (run with --verbose to see them here).", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
