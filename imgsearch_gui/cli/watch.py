"""``imgsearch watch``: keep the index in step with library folders until stopped."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from imgsearch_gui.app.watch import DEBOUNCE_S, POLL_INTERVAL_S
from imgsearch_gui.base.errors import UserError
from imgsearch_gui.base.images import SUPPORTED_FORMATS_TEXT
from imgsearch_gui.base.pathtext import display_path, path_json
from imgsearch_gui.base.types import CancelToken, IndexReport
from imgsearch_gui.cli.common import cancel_on_signals, open_library
from imgsearch_gui.cli.index import print_report, summary

WATCH_EPILOG = """\
It first catches up with what changed since the last run (an incremental pass over each
folder), then passes over a folder again a few seconds after its photos change: new, edited,
moved, renamed and deleted photos are in the index soon after. Network shares (NFS, SMB, sshfs)
and folders where file events cannot be set up are checked by polling instead. A folder that
goes offline (an unplugged drive) keeps its photos in the index; it is caught up when it is
back. Other processes can search the data dir meanwhile; the writer lock is held only while a
pass writes. Ctrl-C or SIGTERM stops it within seconds, keeping what was done.

Each folder's first pass (the catch-up) is reported, and a later pass when it changed the index
or skipped a file it did not skip before. --json prints each as one JSON object (the keys of
`index --json`, plus "library" and "time"), and {"watching": [{"path", "mode"}]} when the
watching starts or a folder's mode changes.

exit status:
  0    stopped (Ctrl-C, SIGTERM): what was done is kept
  1    an unexpected error
  2    bad input (a missing folder that is not a library, a bad option, another model's index)
  3    another process is writing the index (--no-wait)
  130  a second Ctrl-C stopped it at once
"""


def add_parser(sub, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("watch", parents=parents,
                       epilog=f"{WATCH_EPILOG}\n{SUPPORTED_FORMATS_TEXT}",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       help="keep the index in step with DIR... while it runs")
    p.add_argument("dirs", nargs="*", type=Path, metavar="DIR",
                   help="library folders (default: every library of the data dir)")
    p.add_argument("--poll", action="store_true",
                   help="check by polling every folder, not only network shares (for file "
                   "systems that send no events)")
    p.add_argument("--poll-interval", type=_seconds, default=POLL_INTERVAL_S, metavar="S",
                   help=f"seconds between polls (default {POLL_INTERVAL_S:g})")
    p.add_argument("--debounce", type=_seconds, default=DEBOUNCE_S, metavar="S",
                   help="quiet seconds after a change before the folder is passed over "
                   f"(default {DEBOUNCE_S:g})")
    p.add_argument("--json", action="store_true", help="JSON lines on stdout (see below)")


def _seconds(text: str) -> float:
    value = float(text)
    if not 0.05 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"must be between 0.05 and 3600 seconds, not {text}")
    return value


def run(args: argparse.Namespace) -> int:
    from imgsearch_gui.app.watch import PassFailed, Watching, watch_libraries

    for d in args.dirs:
        if d.exists() and not d.is_dir():
            raise UserError(f"not a folder: {d}")
    library, _data_dir, config = open_library(args)
    cancel = CancelToken()
    library.settings = config
    with library, cancel_on_signals(cancel, "stopping ..."):
        roots = [str(d) for d in args.dirs] or [lib.root for lib in library.libraries()]
        if not roots:
            raise UserError("nothing to watch: give the library folders (imgsearch watch DIR)")
        _check_roots(library, roots)
        events = watch_libraries(library, roots, cancel=cancel, poll=True if args.poll else None,
                                 poll_interval_s=args.poll_interval, debounce_s=args.debounce)
        skipped: dict[str, set[str]] = {}  # root -> its files skipped by the last pass
        for event in events:
            if isinstance(event, IndexReport):
                before = skipped.get(event.library)
                if before is None or event.is_news(before):  # a root's first pass: always
                    _show_report(event, args.json)
                if not event.cancelled and not event.offline:
                    skipped[event.library] = {f.path for f in event.skipped}
            elif isinstance(event, Watching):
                _show_watching(event, args.json)
            elif isinstance(event, PassFailed):
                print(f"imgsearch: {display_path(event.root)}: not updated: "
                      f"{display_path(str(event.error))}; trying again at the next change",
                      file=sys.stderr, flush=True)
    print("imgsearch: stopped", file=sys.stderr, flush=True)
    return 0


def _check_roots(library, roots: list[str]) -> None:
    """A missing DIR must be an offline library of this data dir, not a typo."""
    from imgsearch_gui.app.scan import normalize_root

    known = {lib.root for lib in library.libraries()}
    for root in roots:
        if not Path(root).is_dir() and normalize_root(root) not in known:
            raise UserError(f"not a folder: {root}")


def _show_report(report: IndexReport, as_json: bool) -> None:
    if as_json:
        line = {**path_json(report.library, "library"), **summary([report], report.seconds),
                "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        sys.stdout.write(json.dumps(line) + "\n")
    else:
        print(time.strftime("%H:%M:%S "), end="")
        print_report(report)
    sys.stdout.flush()


def _show_watching(event, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps({"watching": [{**path_json(r), "mode": m}
                                                  for r, m in event.modes]}) + "\n")
        sys.stdout.flush()
        return
    for root, mode in event.modes:
        how = {"events": "file events", "polling": "polling", "offline": "offline, waiting "
               "for it to come back"}[mode]
        print(f"imgsearch: watching {display_path(root)} ({how})", file=sys.stderr)
    print("imgsearch: Ctrl-C stops", file=sys.stderr, flush=True)
