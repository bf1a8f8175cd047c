"""Tools ▸ Find duplicates…: the groups of identical files and of the same photo saved again
(resized, recoloured, turned, mirrored, cropped) among the indexed photos, and what can safely be
done with them: keep another copy, move the copies to the system trash (undone with Undo last
trash), or say a group is not one. The searching and the writing are the
:class:`~imgsearch_gui.ui.duplicate_finder.DuplicateFinder`'s; this view shows its signals."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QImage
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from imgsearch_gui.app import desktop
from imgsearch_gui.app.duplicates.model import DuplicateGroup, FinderOptions, GroupKind
from imgsearch_gui.base.pathtext import display_path
from imgsearch_gui.base.types import Progress
from imgsearch_gui.ui import duplicate_jobs as jobs
from imgsearch_gui.ui.duplicate_finder import DuplicateFinder
from imgsearch_gui.ui.duplicate_plan import (
    GroupEntry,
    confirm_text,
    copies_of,
    pick,
    rule_choices,
    summary_text,
)
from imgsearch_gui.ui.format import fmt_duration
from imgsearch_gui.ui.messages import Message, MessageBanner, MessageChannel
from imgsearch_gui.ui.open_text import COPY_PATH_FAILURES, open_failure_text
from imgsearch_gui.ui.results import ThumbnailLoader
from imgsearch_gui.ui.widgets.duplicate_group import GroupWidget

log = logging.getLogger(__name__)

Confirm = Callable[[str, str], bool]


class DuplicatesDialog(QDialog):
    """The duplicate view (one per window; closing it hides it and stops a search)."""

    #: groups built per page: a library with thousands of groups opens at once all the same
    PAGE = 40

    def __init__(self, finder: DuplicateFinder, thumbnails: ThumbnailLoader,
                 messages: MessageChannel, libraries: Callable[[], Sequence[str]],
                 confirm: Confirm, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Find duplicates")
        self.finder, self.thumbnails, self.messages = finder, thumbnails, messages
        self.libraries, self.confirm = libraries, confirm
        self.entries: list[GroupEntry] = []
        self.widgets: list[GroupWidget] = []
        self.dims: dict[str, tuple[int, int]] = {}
        self.photos = 0
        self.outcome = ""  # of the last search: "done", "cancelled", "failed"
        self.acted = False  # groups left the view since the search (trash, not duplicates)
        self._batch = None  # what Undo last trash puts back (read when shown and after a change)
        layout = QVBoxLayout(self)
        layout.addLayout(self._options_row())
        layout.addLayout(self._progress_row())
        self.banner = MessageBanner()
        layout.addWidget(self.banner)
        layout.addLayout(self._summary_row())
        layout.addWidget(self._groups_area(), 1)
        layout.addLayout(self._buttons_row())
        for button in self.findChildren(QPushButton):
            button.setAutoDefault(False)  # Enter never moves files
        self._connect()
        self.resize(1100, 760)

    # ==== building ==========================================================================
    def _options_row(self) -> QHBoxLayout:
        self.scope = QComboBox()
        self.scope.setToolTip("Which photos are compared")
        self.rule = QComboBox()
        for label, rule, tip in rule_choices():
            self.rule.addItem(label, rule)
            self.rule.setItemData(self.rule.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
        self.rule.setToolTip("Which copy of each group is kept (ties go to the next criterion);"
                             " changing it picks again without searching again")
        self.find_button = QPushButton("&Find again")
        self.find_button.clicked.connect(self.find)
        row = QHBoxLayout()
        row.addWidget(QLabel("Look in:"))
        row.addWidget(self.scope, 1)
        row.addSpacing(12)
        row.addWidget(QLabel("&Keep:"))
        row.itemAt(row.count() - 1).widget().setBuddy(self.rule)
        row.addWidget(self.rule)
        row.addWidget(self.find_button)
        return row

    def _progress_row(self) -> QHBoxLayout:
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setTextVisible(False)
        self.progress.setMaximumWidth(260)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.cancel_button = QPushButton("&Cancel")
        self._set_running(False)
        self.cancel_button.clicked.connect(self.cancel)
        row = QHBoxLayout()
        row.addWidget(self.progress)
        row.addWidget(self.status, 1)
        row.addWidget(self.cancel_button)
        return row

    def _summary_row(self) -> QHBoxLayout:
        self.summary = QLabel("")
        font = self.summary.font()
        font.setBold(True)
        self.summary.setFont(font)
        row = QHBoxLayout()
        row.addWidget(self.summary, 1)
        row.addWidget(QLabel("Check:"))
        self.check_buttons = {}
        for text, which in (("All", "all"), ("Identical only", "exact"), ("None", "none")):
            button = QToolButton()
            button.setText(text)
            button.clicked.connect(lambda _c=False, w=which: self.check_groups(w))
            self.check_buttons[which] = button
            row.addWidget(button)
        return row

    def _groups_area(self) -> QScrollArea:
        self.groups_box = QWidget()
        self.groups_layout = QVBoxLayout(self.groups_box)
        self.groups_layout.setContentsMargins(0, 0, 0, 0)
        self.more_button = QPushButton()
        self.more_button.clicked.connect(self.show_more)
        self.groups_layout.addWidget(self.more_button, 0, Qt.AlignmentFlag.AlignHCenter)
        self.groups_layout.addStretch(1)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setWidget(self.groups_box)
        return self.scroll

    def _buttons_row(self) -> QHBoxLayout:
        self.undo_button = QPushButton("&Undo last trash")
        self.undo_button.clicked.connect(self.undo)
        self.trash_button = QPushButton("Move copies to the trash…")
        self.trash_button.clicked.connect(self.trash)
        close = QPushButton("Close")
        close.clicked.connect(self.reject)
        row = QHBoxLayout()
        row.addWidget(self.undo_button)
        row.addStretch(1)
        row.addWidget(self.trash_button)
        row.addWidget(close)
        return row

    def _connect(self) -> None:
        f = self.finder
        f.findStarted.connect(self._find_started)
        f.findProgress.connect(self._progress)
        f.found.connect(self._found)
        f.findEnded.connect(self._find_ended)
        f.trashed.connect(self._trashed)
        f.restored.connect(lambda _outcome: self._read_journal())
        f.reindexed.connect(self._reindexed)
        f.markedDistinct.connect(self._distinct)
        f.notice.connect(self._notice)
        f.writingChanged.connect(lambda _on: self._update_buttons())
        self.thumbnails.loaded.connect(self._thumbnail)
        self.rule.currentIndexChanged.connect(self._rule_changed)

    # ==== searching =========================================================================
    def find(self) -> None:
        roots = self.scope.currentData() or ()
        self.finder.find(FinderOptions(roots=tuple(roots), keep_rule=self.keep_rule))

    @property
    def keep_rule(self) -> tuple[str, ...]:
        return tuple(self.rule.currentData())

    def cancel(self) -> None:
        self.finder.cancel()
        self.status.setText("Cancelling…")
        self.cancel_button.setEnabled(False)

    def _find_started(self) -> None:
        self._set_entries([])
        self.outcome, self.acted = "", False
        self.banner.hide()
        self.summary.setText("")
        self.progress.setRange(0, 0)
        waiting = self.finder.models.library is None
        self.status.setText("Waiting for the model to load…" if waiting
                            else "Reading the catalog…")
        self._set_running(True)

    def _progress(self, event: Progress) -> None:
        if event.total > 0:
            self.progress.setRange(0, event.total)
            self.progress.setValue(event.done)
        else:
            self.progress.setRange(0, 0)
        text = event.message or event.stage
        if event.total > 0:
            unit = " pairs" if event.stage == "verify" else ""
            text += f"… {event.done:,} / {event.total:,}{unit}"
            if event.eta_s is not None and event.done < event.total:
                text += f" · {fmt_duration(event.eta_s)} left"
        else:
            text += "…"
        if self.finder.index_queue.running:
            text += " (indexing runs: photos it has not reached yet are not compared)"
        self.status.setText(text)

    def _found(self, found: jobs.Found) -> None:
        report = found.report
        self.dims, self.photos = found.dims, report.photos
        rule = self.keep_rule
        entries = [GroupEntry.of(g) for g in report.groups]
        for entry in entries:
            entry.keep = pick(entry.found, rule)  # the rule chosen while it searched
        self._set_entries(entries)
        took = f"Compared {report.pairs_checked:,} look-alike pairs in {report.seconds:.1f} s."
        if report.unreadable:
            took += f" {len(report.unreadable):,} photos were not compared (changed or unreadable)."
        self.status.setText(took)
        self.status.setToolTip("\n".join(f"{display_path(s.path)}: {s.reason}"
                                         for s in report.unreadable[:50]))

    def _find_ended(self, outcome: str) -> None:
        self.outcome = outcome
        self._set_running(False)
        if outcome == "cancelled":
            self.status.setText("Cancelled: nothing was changed. Find again to start over.")
        elif outcome == "failed":
            self.status.setText("The search failed: see the message above.")
        self._update_buttons()

    def _set_running(self, running: bool) -> None:
        """The progress bar and Cancel are there while it searches."""
        self.progress.setVisible(running)
        self.cancel_button.setVisible(running)
        self.cancel_button.setEnabled(running)
        self.find_button.setEnabled(not running)

    # ==== the groups ========================================================================
    def _set_entries(self, entries: list[GroupEntry]) -> None:
        """Show ``entries`` (the first page, or as many as were shown before)."""
        shown = max(self.PAGE, len(self.widgets)) if entries else 0
        for widget in self.widgets:
            widget.setParent(None)
            widget.deleteLater()
        self.widgets, self.tiles = [], {}
        self.entries = entries
        self._add_widgets(min(shown, len(entries)))
        self._update_summary()

    def _add_widgets(self, count: int) -> None:
        for entry in self.entries[len(self.widgets):len(self.widgets) + count]:
            widget = GroupWidget(entry, len(self.widgets) + 1, self.dims)
            widget.changed.connect(self._update_summary)
            widget.distinctRequested.connect(self.mark_distinct)
            widget.openRequested.connect(lambda p: self.open_file(p))
            widget.revealRequested.connect(lambda p: self.open_file(p, reveal=True))
            self.groups_layout.insertWidget(len(self.widgets), widget)
            self.widgets.append(widget)
            for path, tile in widget.tiles.items():
                self.tiles[path] = tile
                self.thumbnails.request(path)
        left = len(self.entries) - len(self.widgets)
        self.more_button.setText(f"Show {min(self.PAGE, left):,} more groups ({left:,} not "
                                 "shown)")
        self.more_button.setVisible(left > 0)

    def show_more(self) -> None:
        self._add_widgets(self.PAGE)

    def _thumbnail(self, path: str, image: QImage) -> None:
        tile = self.tiles.get(path)
        if tile is not None:
            tile.set_thumbnail(image)

    @property
    def groups(self) -> list[DuplicateGroup]:
        """Every group of the view as it keeps its files now."""
        return [e.group for e in self.entries]

    def check_groups(self, which: str) -> None:
        for entry in self.entries:
            entry.checked = which == "all" or (which == "exact"
                                               and entry.found.kind is GroupKind.EXACT)
        for widget in self.widgets:
            widget.refresh()
        self._update_summary()

    def _rule_changed(self) -> None:
        """Each group keeps what the rule picks now (the user's picks give way to it)."""
        rule = self.keep_rule
        for entry in self.entries:
            entry.keep = pick(entry.found, rule)
        for widget in self.widgets:
            widget.refresh()
        self._update_summary()

    def _update_summary(self) -> None:
        if self.entries or self.outcome == "done" or self.photos:
            self.summary.setText(summary_text(self.groups, self.photos, self.acted))
        self._update_buttons()

    def _update_buttons(self) -> None:
        writing = self.finder.writing
        copies = len(copies_of(e.group for e in self.entries if e.checked))
        self.trash_button.setText(f"Move {copies:,} {'copy' if copies == 1 else 'copies'} to "
                                  "the trash…" if copies else "Move copies to the trash…")
        self.trash_button.setEnabled(bool(copies) and not writing)
        batch = self._batch
        self.undo_button.setEnabled(batch is not None and not writing)
        self.undo_button.setToolTip(
            f"Put back the {len(batch.files):,} files moved to the trash at "
            f"{time.strftime('%H:%M on %d %b', time.localtime(batch.time))}"
            if batch is not None else "Nothing moved to the trash to put back")
        for widget in self.widgets:
            widget.distinct_button.setEnabled(not writing
                                              and widget.entry.found.kind is not GroupKind.EXACT)
        for button in self.check_buttons.values():
            button.setEnabled(bool(self.entries))

    # ==== acting ============================================================================
    def trash(self) -> None:
        chosen = [e.group for e in self.entries if e.checked]
        if not copies_of(chosen):
            return
        title, text = confirm_text(chosen)
        if self.confirm(title, text):
            self.finder.trash(chosen, self.groups)

    def _trashed(self, outcome: jobs.TrashOutcome) -> None:
        """The moved files leave their groups; a group left with one file goes."""
        moved = {t.path for t in outcome.report.trashed}
        entries = []
        for entry in self.entries:
            group = entry.group  # keeps entry.keep, which never moves
            files = tuple(f for f in group.files if f.path not in moved)
            if len(files) > 1:
                entries.append(GroupEntry(replace(group, files=files), entry.keep,
                                          entry.checked))
        self.photos -= len(moved)
        self.acted = True
        self._set_entries(entries)
        self._read_journal()

    def _read_journal(self) -> None:
        self._batch = jobs.last_batch(self.finder.data_dir)
        self._update_buttons()

    def undo(self) -> None:
        self.finder.undo()

    def mark_distinct(self, entry: GroupEntry) -> None:
        self.finder.mark_distinct(entry.found)

    def _distinct(self, group: DuplicateGroup) -> None:
        self.acted = True
        self._set_entries([e for e in self.entries if e.found is not group])

    def _reindexed(self) -> None:
        """The photos an undo put back are indexed again: their groups are found again."""
        if self.isVisible() and not self.finder.finding:
            self.find()

    def _notice(self, message: Message) -> None:
        self.banner.show_message(message)

    def open_file(self, path: str, reveal: bool = False) -> desktop.OpenResult:
        """Open the photo (or show it in its folder) as the results do, or say why not."""
        result = desktop.reveal_path(path) if reveal else desktop.open_path(path)
        if not result.ok:
            copied = result.reason in COPY_PATH_FAILURES
            if copied:
                QGuiApplication.clipboard().setText(result.path)
            details = "\n".join([result.path, *([result.detail] if result.detail else [])])
            self._notice(self.messages.warning(
                open_failure_text(result, reveal=reveal, copied=copied), details))
        return result

    # ==== showing and closing ===============================================================
    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        self._fill_scope()
        self._read_journal()
        if self.outcome in ("", "cancelled", "failed") and not self.finder.finding:
            self.find()

    def _fill_scope(self) -> None:
        current = self.scope.currentData()
        self.scope.blockSignals(True)
        self.scope.clear()
        self.scope.addItem("All libraries", ())
        for root in self.libraries():
            self.scope.addItem(display_path(root), (root,))
        index = self.scope.findData(current) if current else 0
        self.scope.setCurrentIndex(max(0, index))
        self.scope.blockSignals(False)

    def done(self, code: int) -> None:  # Close, Esc and the window's close button
        if self.finder.finding:
            self.finder.cancel()
        super().done(code)

