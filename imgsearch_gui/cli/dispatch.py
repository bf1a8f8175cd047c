"""Command line: ``imgsearch index|watch|search|eval|whiten|info|finetune|duplicates|gui|...``.

Every command takes ``--data-dir`` (where the index lives) and the model flags; without model
flags the settings the data dir was indexed with are used, so ``search`` matches ``index``.
Exit status: 0 ok, 1 cancelled or an unexpected error, 2 for a user error (bad path, unreadable
query, model mismatch, a damaged index), 3 when another process is writing to the data dir (with
``--no-wait``), 4 when the index cannot be written (disk full, I/O error; the previous index is
kept).
Each command group lives in its own module (``add_parsers`` + ``run...``); this one dispatches.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Sequence

from imgsearch_gui import __version__
from imgsearch_gui.base.errors import StorageError, StorageWriteError, UserError, WriterBusyError
from imgsearch_gui.base.logs import FILE_ONLY, setup_logging
from imgsearch_gui.base.pathtext import display_path
from imgsearch_gui.cli import desktop, duplicates, index, milvus, search, watch
from imgsearch_gui.cli import eval as eval_cmd
from imgsearch_gui.cli import finetune as finetune_cmd
from imgsearch_gui.cli.common import common_parser, fill_global_defaults, global_options

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="imgsearch", description="Find photos by their content.",
                                     epilog="--data-dir, --verbose and --no-wait may come before "
                                     "the command or after it.")
    parser.add_argument("--version", action="version", version=f"imgsearch {__version__}")
    global_options(parser)
    sub = parser.add_subparsers(dest="command", required=True)
    parents = [common_parser()]
    index.add_parsers(sub, parents)
    watch.add_parser(sub, parents)
    search.add_parsers(sub, parents)
    eval_cmd.add_parsers(sub, parents)
    desktop.add_parsers(sub, parents)
    finetune_cmd.add_parser(sub, parents)
    duplicates.add_parser(sub, parents)
    milvus.add_parser(sub, parents)
    return parser


COMMANDS = {"index": index.run_index, "watch": watch.run, "search": search.run, "eval": eval_cmd.run,
            "whiten": index.run_whiten, "info": index.run_info, "gui": desktop.run_gui,
            "finetune": finetune_cmd.run, "desktop-entry": desktop.run_desktop_entry,
            "duplicates": duplicates.run, "export": milvus.run_export}


#: what an expected error exits with, first match wins (README, `imgsearch index --help`)
_EXIT_STATUS: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], int, str], ...] = (
    (WriterBusyError, 3, ""),  # another process is writing the data dir
    (StorageWriteError, 4, "error: "),  # a full disk or a write error: the old index is kept
    ((UserError, StorageError), 2, "error: "),  # bad input, another model's index...
)
_EXPECTED = (WriterBusyError, UserError, StorageError)


def _never_fail_on_odd_names() -> None:
    """A file name that is not UTF-8 and was printed without ``display_path`` shows escaped
    instead of failing the command (a strict UTF-8 console cannot write lone surrogates)."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, ValueError):  # not a TextIOWrapper
            stream.reconfigure(errors="backslashreplace")


def main(argv: Sequence[str] | None = None) -> int:
    args = fill_global_defaults(build_parser().parse_args(argv))
    if args.command == "gui":
        return desktop.run_gui(args)  # the GUI sets up its own logging (its own log file)
    log_path = setup_logging("imgsearch", verbose=args.verbose)
    _never_fail_on_odd_names()
    try:
        return COMMANDS[args.command](args)
    except _EXPECTED as exc:
        status, prefix = next((s, p) for kind, s, p in _EXIT_STATUS if isinstance(exc, kind))
        log.info("exit %d: %s", status, exc)  # the file keeps it; the console gets one line
        print(f"imgsearch: {prefix}{display_path(str(exc))}", file=sys.stderr)
        return status
    except KeyboardInterrupt:
        print("imgsearch: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: full details in the log file, a short line on the console
        log.exception("unexpected error in `imgsearch %s`", args.command, extra=FILE_ONLY)
        where = f" The details are in {log_path}." if log_path else ""
        print(display_path(f"imgsearch: unexpected error: {type(exc).__name__}: {exc}.{where} "
                           "Please include them in a bug report (run with --verbose to see them "
                           "here)."), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
