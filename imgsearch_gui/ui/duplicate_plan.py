"""The duplicate view's logic without Qt: which copy a group keeps (the user's pick or a keep
rule's), what moving the copies to the trash asks for, and what the view says about a search, a
trash and an undo (the CLI's ``imgsearch duplicates`` words, as sentences)."""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from imgsearch_gui.app.duplicates import trash_requests
from imgsearch_gui.app.duplicates.keep import CRITERIA, DEFAULT_RULE, sort_key
from imgsearch_gui.app.duplicates.model import DuplicateFile, DuplicateGroup, GroupKind
from imgsearch_gui.app.scan import fast_hash_is_full
from imgsearch_gui.app.trash import RefusalReason, RestoreReport, TrashReport, TrashRequest
from imgsearch_gui.base.pathtext import display_path
from imgsearch_gui.ui.format import file_size_text

#: the keep rule's first criterion as the combo box names it (the others follow as tie-breakers)
RULE_LABELS = {
    "resolution": "Most pixels",
    "original": "Camera's own format (RAW, HEIC)",
    "size": "Largest file",
    "oldest": "Oldest",
    "newest": "Newest",
    "shortest-path": "Shortest path",
}


def rule_starting_with(first: str) -> tuple[str, ...]:
    """``first``, then the default rule's other criteria to break its ties."""
    return (first, *(c for c in DEFAULT_RULE if c != first))


def rule_choices() -> list[tuple[str, tuple[str, ...], str]]:
    """(label, rule, tooltip) for each criterion the keep rule can start with."""
    out = []
    for name in CRITERIA:
        rule = rule_starting_with(name)
        tip = "Keep the copy with: " + "; then ".join(CRITERIA[c] for c in rule)
        out.append((RULE_LABELS.get(name, CRITERIA[name].capitalize()), rule, tip))
    return out


# ==== which copy is kept ========================================================================
@dataclass
class GroupEntry:
    """One group in the view: as the finder found it, the path the user keeps, and whether its
    copies go with "Move copies to the trash"."""

    found: DuplicateGroup
    keep: str
    checked: bool = True

    @classmethod
    def of(cls, group: DuplicateGroup) -> GroupEntry:
        return cls(group, group.kept.path)

    @property
    def group(self) -> DuplicateGroup:
        return repick(self.found, self.keep)


def pick(group: DuplicateGroup, rule: Sequence[str]) -> str:
    """The path ``rule`` keeps in ``group`` (no new search: the files' facts are in the group)."""
    return min(group.files, key=sort_key(rule)).path


def repick(found: DuplicateGroup, keep: str) -> DuplicateGroup:
    """``found`` keeping ``keep`` instead, each file's ``identical`` and ``score`` told against
    it as far as the search measured: the same bytes are known (the finder's identical set, or a
    fast hash that covers the whole file); a copy of the first pick scores as the first pick
    did; two copies compared only through the first pick get the weaker of their two scores."""
    first = found.kept
    if keep == first.path:
        return found
    new = next(f for f in found.files if f.path == keep)
    files = tuple(_against(f, new) for f in found.files)
    return replace(found, files=files)


def _against(file: DuplicateFile, kept: DuplicateFile) -> DuplicateFile:
    if file.path == kept.path:
        return replace(file, keep=True, identical=True, score=1.0)
    same = (file.identical and kept.identical) or (
        bool(file.fast_hash) and file.fast_hash == kept.fast_hash and fast_hash_is_full(file.size))
    if same:
        score = 1.0
    elif kept.identical:  # the new pick has the first pick's bytes: its score holds
        score = file.score
    elif file.identical:
        score = kept.score
    else:
        score = min(file.score, kept.score)
    return replace(file, keep=False, identical=same, score=score)


# ==== what the view says =========================================================================
def _n(count: int, one: str, many: str | None = None) -> str:
    return f"{count:,} {one if count == 1 else many or one + 's'}"


def copies_of(groups: Iterable[DuplicateGroup]) -> list[DuplicateFile]:
    return [f for g in groups for f in g.files if not f.keep]


def summary_text(groups: Sequence[DuplicateGroup], photos: int, left: bool = False) -> str:
    """"12 groups, 31 copies, 48 MB to free (among 2,400 photos)", or that there are none
    (``left``: none left, after the user acted on the groups)."""
    if not groups:
        return f"No duplicates {'left ' if left else ''}among {_n(photos, 'photo')}."
    copies = copies_of(groups)
    freed = sum(f.size for f in copies)
    return (f"{_n(len(groups), 'group')}, {_n(len(copies), 'copy', 'copies')}, "
            f"{file_size_text(freed)} to free (among {_n(photos, 'photo')})")


def group_title(group: DuplicateGroup) -> str:
    what = {GroupKind.EXACT: "Identical files", GroupKind.NEAR: "Same photo"}.get(
        group.kind, "Look-alike photos")
    return f"{what} · {_n(len(group.files), 'file')} · frees {file_size_text(group.freed)}"


def match_text(file: DuplicateFile) -> str:
    """What a tile says of how it matches the kept copy."""
    if file.keep:
        return "kept"
    if file.identical:
        return "identical (same bytes)"
    # rounded down: 1.00 would read as the same pixels
    return f"same photo · match {math.floor(file.score * 100) / 100:.2f}"


def facts_text(file: DuplicateFile, dims: tuple[int, int] | None) -> str:
    """"2.4 MB · 4032 × 3024" (the pixel count where the header gave no size)."""
    if dims is not None:
        shape = f"{dims[0]} × {dims[1]}"
    elif file.pixels:
        shape = f"{file.pixels / 1e6:.1f} MP" if file.pixels >= 100_000 else f"{file.pixels:,} px"
    else:
        shape = "size unknown"
    return f"{file_size_text(file.size)} · {shape}"


# ==== moving copies to the trash ================================================================
def trash_plan(chosen: Sequence[DuplicateGroup], shown: Sequence[DuplicateGroup]
               ) -> tuple[list[TrashRequest], list[str]]:
    """The copies of the ``chosen`` groups to move, as the catalog saw them (a file changed
    since is refused), and every kept file of the ``shown`` groups, which must stay."""
    return trash_requests(chosen), [g.kept.path for g in shown]


def confirm_text(chosen: Sequence[DuplicateGroup]) -> tuple[str, str]:
    """The question before a trash: how many files go where, and that it can be undone."""
    copies = copies_of(chosen)
    same = sum(1 for f in copies if f.identical)
    kinds = [part for part in (
        _n(same, "identical copy", "identical copies") if same else "",
        _n(len(copies) - same, "look-alike copy", "look-alike copies") + " (re-saved, resized, "
        "edited, turned or cropped)" if len(copies) > same else "") if part]
    size = file_size_text(sum(f.size for f in copies))
    return (f"Move {_n(len(copies), 'file')} to the trash?",
            f"Move {_n(len(copies), 'file')} ({size}) of {_n(len(chosen), 'group')} to the "
            f"system trash? {' and '.join(kinds)}; the kept photo of each group "
            "stays where it is.\n\nNothing is deleted: Undo last trash puts them back (so can "
            "the system trash).")


_REFUSED = {
    RefusalReason.KEPT: "is a kept copy",
    RefusalReason.MISSING: "is no longer there",
    RefusalReason.NOT_A_FILE: "is not a regular file",
    RefusalReason.CHANGED: "changed since it was indexed",
    RefusalReason.PERMISSION: "may not be moved (permissions)",
    RefusalReason.NO_TRASH: "has no trash on its drive",
    RefusalReason.FAILED: "could not be moved to the trash",
}


@dataclass(frozen=True)
class Said:
    """A message for the channel: its text, whether it is a warning, and its details."""

    text: str
    warning: bool = False
    details: str = ""


def trash_said(report: TrashReport, forget_error: str = "") -> Said:
    """What a trash did, in one message: what moved, what was refused and why (nothing deleted)."""
    parts = []
    if report.trashed:
        size = file_size_text(sum(f.size for f in report.trashed))
        parts.append(f"Moved {_n(len(report.trashed), 'file')} ({size}) to the trash; "
                     "Undo last trash puts them back.")
    if report.refused:
        why = Counter(r.reason for r in report.refused)
        reasons = "; ".join(f"{n} {_REFUSED.get(reason, reason.value)}"
                            for reason, n in why.most_common())
        parts.append(f"{_n(len(report.refused), 'file was', 'files were')} not moved, nothing "
                     f"was deleted: {reasons}.")
    if report.journal_error:
        parts.append(f"The undo list could not be saved ({report.journal_error}): put them back "
                     "from the system trash if need be.")
    if forget_error:
        parts.append(f"The index could not be updated ({forget_error}): Library ▸ Re-index all "
                     "(F5) takes them out of the results.")
    if not parts:
        parts.append("Nothing to move to the trash.")
    details = "\n".join(f"{display_path(r.path)}: {r.detail or r.reason.value}"
                        for r in report.refused)
    warning = bool(report.refused or report.journal_error or forget_error)
    return Said(" ".join(parts), warning, details)


def restore_said(report: RestoreReport | None, reindexing: bool) -> Said:
    """What an undo did; ``reindexing``: their libraries are being indexed again (else their
    folders are no library any more)."""
    if report is None:
        return Said("Nothing to undo: no photos were moved to the trash by imgsearch.")
    parts = []
    if report.restored:
        then = ("indexing them again so that searches find them" if reindexing else
                "their folders are not libraries any more: add them to search these photos")
        parts.append(f"Put {_n(len(report.restored), 'file')} back from the trash; {then}.")
    if report.failed:
        why = Counter(f.problem.value for f in report.failed)
        reasons = "; ".join(f"{n} {problem}" for problem, n in why.most_common())
        parts.append(f"{_n(len(report.failed), 'file was', 'files were')} not put back: "
                     f"{reasons}.")
    details = "\n".join(f"{display_path(f.file.path)}: {f.detail or f.problem.value}"
                        for f in report.failed)
    return Said(" ".join(parts) or "Nothing was put back.", bool(report.failed), details)


def distinct_said(group: DuplicateGroup) -> Said:
    names = ", ".join(os.path.basename(f.path) for f in group.files[:3])
    more = f" and {len(group.files) - 3} more" if len(group.files) > 3 else ""
    same = any(f.identical and not f.keep for f in group.files)
    tail = " (files with the same bytes stay a group)" if same else ""
    return Said(f"Remembered that {display_path(names)}{more} are not duplicates: the next search "
                f"leaves them apart{tail}.")
