"""``imgsearch duplicates``: exact and near-duplicate groups of the indexed photos.

Prints the groups (the copy to keep first), or ``--json``::

    {"groups": [{"kind": "exact"|"near", "freed": BYTES,
                 "files": [{"path": ..., "score": ..., "keep": true|false, ...}, ...]}, ...],
     "photos": N, "pairs_checked": N, "seconds": S, "unreadable": [...]}

groups ordered by the bytes they would free. ``--trash`` moves every copy but the kept one to
the system trash (never deletes), ``--undo`` puts the last batch back, ``--not-duplicates``
remembers that photos are not copies of each other.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from imgsearch_gui.base.errors import UserError
from imgsearch_gui.base.pathtext import display_path, path_json
from imgsearch_gui.cli.common import cancel_on_signals, open_library

log = logging.getLogger(__name__)


def add_parser(sub, parents: list[argparse.ArgumentParser]) -> None:
    from imgsearch_gui.app.duplicates.keep import CRITERIA, DEFAULT_RULE

    p = sub.add_parser("duplicates", parents=parents,
                       help="exact and near-duplicate photos among the indexed ones",
                       description="Groups of the same photo: identical files, and copies that "
                                   "were re-saved, resized, recoloured, turned, mirrored or "
                                   "cropped. Other shots of the same scene are not grouped.")
    p.add_argument("folders", nargs="*", type=Path, metavar="DIR",
                   help="only photos under these folders (default: every indexed library)")
    p.add_argument("--json", action="store_true", help="the groups as one JSON object")
    p.add_argument("--kind", choices=("all", "exact", "near", "similar"), default="all",
                   help="which groups to show and act on (default all; --trash leaves similar "
                        "groups alone unless --kind similar)")
    p.add_argument("--similar", action="store_true",
                   help="also group photos that are merely alike (other shots of the same scene),"
                        " as kind 'similar'")
    p.add_argument("--keep-rule", default=",".join(DEFAULT_RULE), metavar="RULE",
                   help="criteria, in order, for the copy to keep: "
                        + "; ".join(f"{k}: {v}" for k, v in CRITERIA.items())
                        + f" (default {','.join(DEFAULT_RULE)})")
    act = p.add_mutually_exclusive_group()
    act.add_argument("--trash", action="store_true",
                     help="move every copy but the kept one to the system trash (undo: --undo)")
    act.add_argument("--undo", action="store_true",
                     help="put the files of the last --trash back where they were")
    act.add_argument("--not-duplicates", nargs="+", type=Path, metavar="PHOTO",
                     help="remember that these indexed photos are not duplicates of each other")


def run(args: argparse.Namespace) -> int:
    from imgsearch_gui.app.duplicates import FinderOptions, parse_rule

    rule = parse_rule(args.keep_rule)
    for folder in args.folders:
        if not folder.is_dir():
            raise UserError(f"not a folder: {folder}")
    if args.undo:
        return _undo(args)
    library, data_dir, _ = open_library(args)
    with library:
        if args.not_duplicates:
            return _not_duplicates(library, args.not_duplicates)
        similar = args.similar or args.kind == "similar"
        report = _find(library, FinderOptions(roots=tuple(str(f) for f in args.folders),
                                              keep_rule=rule, similar=similar), args)
        if report is None:
            print("cancelled", file=sys.stderr)
            return 1
        groups = _of_kind(report.groups, args.kind)
        if args.json:
            sys.stdout.write(json.dumps(report_json(report, groups)) + "\n")
        else:
            _print_groups(report, groups)
        targets = [g for g in groups if args.kind == "similar" or str(g.kind) != "similar"]
        if args.trash and targets:
            return _trash(library, data_dir, targets, args.json)
    return 0


def _of_kind(groups, kind: str) -> list:
    """The groups ``--kind`` shows: ``exact`` also takes the identical files out of near groups
    (the kept file and the files of its bytes), so it acts on same-bytes copies only."""
    if kind == "all":
        return list(groups)
    if kind == "exact":
        parts = (g.identical_part() for g in groups)
        return sorted((p for p in parts if p is not None), key=lambda g: -g.freed)
    return [g for g in groups if str(g.kind) == kind]


def _find(library, options, args: argparse.Namespace):
    from imgsearch_gui.app.duplicates import DuplicateReport
    from imgsearch_gui.base.types import CancelToken, Progress

    cancel = CancelToken()
    show = not getattr(args, "quiet", False) and sys.stderr.isatty()
    bar = None
    try:
        with cancel_on_signals(cancel):
            for event in library.find_duplicates(options, cancel):
                if isinstance(event, DuplicateReport):
                    return event
                if isinstance(event, Progress) and show and event.stage == "verify":
                    if bar is None:
                        from tqdm import tqdm

                        bar = tqdm(total=event.total, unit="pair", desc="comparing",
                                   dynamic_ncols=True, file=sys.stderr)
                    bar.update(event.done - bar.n)
    finally:
        if bar is not None:
            bar.close()
    return None


def report_json(report, groups) -> dict[str, object]:
    return {
        "groups": [{"kind": str(g.kind), "freed": g.freed,
                    "files": [path_json(f.path) | {"score": f.score, "keep": f.keep,
                                                   "identical": f.identical, "size": f.size,
                                                   "width": f.width, "height": f.height}
                              for f in g.files]}
                   for g in groups],
        "photos": report.photos,
        "pairs_checked": report.pairs_checked,
        "seconds": round(report.seconds, 3),
        "unreadable": [path_json(s.path) | {"reason": s.reason} for s in report.unreadable],
    }


def _print_groups(report, groups) -> None:
    for n, g in enumerate(groups, start=1):
        print(f"# group {n}: {g.kind}, {len(g.files)} files, frees {_size(g.freed)}")
        for f in g.files:
            mark = "keep " if f.keep else "     "
            how = "identical" if f.identical and not f.keep else f"{f.score:.2f}"
            print(f"  {mark}{how:>9s}  {display_path(f.path)}")
    freed = sum(g.freed for g in groups)
    print(f"{len(groups)} groups among {report.photos} photos ({report.pairs_checked} pairs "
          f"compared in {report.seconds:.1f} s); removing the copies would free {_size(freed)}")
    for s in report.unreadable:
        print(f"  not compared: {display_path(s.path)} ({s.reason})", file=sys.stderr)


def _size(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return str(n)


def _trash(library, data_dir: Path, groups, quiet_json: bool) -> int:
    from imgsearch_gui.app.duplicates import trash_requests
    from imgsearch_gui.app.trash import TrashJournal, trash_files

    requests = trash_requests(groups)
    keep = [g.kept.path for g in groups]
    report = trash_files(requests, TrashJournal(data_dir), keep=keep)
    forgot = True
    if report.trashed:
        try:
            library.forget_files([t.path for t in report.trashed])
        except Exception as exc:  # noqa: BLE001 - they are in the trash all the same: say so
            log.warning("moved to the trash, but not taken out of the index", exc_info=True)
            print(f"warning: the index still lists them ({exc}); `imgsearch index` on their "
                  "folders removes them", file=sys.stderr)
            forgot = False
    out = sys.stderr if quiet_json else sys.stdout
    n = len(report.trashed)
    print(f"moved {n} file{'' if n == 1 else 's'} to the trash (undo: imgsearch duplicates --undo)",
          file=out)
    for r in report.refused:
        print(f"  kept {display_path(r.path)}: {r.detail or r.reason}", file=sys.stderr)
    if report.journal_error:
        print(f"warning: the undo list could not be saved: {report.journal_error}",
              file=sys.stderr)
    return 0 if not report.refused and forgot else 1


def _undo(args: argparse.Namespace) -> int:
    from imgsearch_gui.app.trash import TrashJournal, restore
    from imgsearch_gui.base import paths

    journal = TrashJournal(paths.data_dir(args.data_dir))
    batches = journal.batches()
    if not batches:
        raise UserError("nothing to undo: no files were moved to the trash by imgsearch")
    report = restore(batches[-1], journal)
    for f in report.restored:
        print(f"restored {display_path(f.path)}")
    for fail in report.failed:
        print(f"not restored {display_path(fail.file.path)}: {fail.detail or fail.problem}",
              file=sys.stderr)
    if report.restored:
        print("run `imgsearch index` on their folders to search them again", file=sys.stderr)
    return 0 if not report.failed else 1


def _not_duplicates(library, photos: list[Path]) -> int:
    if len(photos) < 2:
        raise UserError("--not-duplicates needs at least two photos")
    new = library.mark_not_duplicates([str(p) for p in photos])
    print(f"remembered: {len(photos)} photos are not duplicates of each other ({new} new pairs)")
    return 0
