"""Tools ▸ Find duplicates…: groups shown, another copy kept, the keep rule re-picks without a new
search, copies moved to the (redirected) trash leave the catalog and the results, undo brings them
back, "Not duplicates" is remembered, refusals are said in one message, Cancel.

The photos: the astronaut and a mirrored, smaller JPEG of it (the same photo), the coffee photo
and a byte-identical copy (identical files), and the cat (no copy). The freedesktop trash is
redirected into tmp_path as tests/unit/app/test_trash.py does: $XDG_DATA_HOME and $HOME point
there, and send2trash's backend (which reads them once, at import) is pointed there too.
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest
from PIL import Image, ImageOps
from PySide6.QtCore import Qt

from imgsearch_gui.app import trash
from imgsearch_gui.app.duplicates.keep import sort_key
from imgsearch_gui.app.duplicates.model import GroupKind
from imgsearch_gui.ui.messages import Level

pytestmark = pytest.mark.skipif(not trash.FREEDESKTOP, reason="the freedesktop trash is Linux/BSD only")


@pytest.fixture
def dup_dir(tmp_path: Path) -> Path:
    from skimage import data

    root = tmp_path / "holiday"
    (root / "phone").mkdir(parents=True)
    astronaut = Image.fromarray(data.astronaut()).resize((256, 256))
    astronaut.save(root / "astronaut.png")
    ImageOps.mirror(astronaut).resize((192, 192)).save(root / "phone" / "astronaut-mirrored.jpg",
                                                       quality=88)
    Image.fromarray(data.coffee()).resize((240, 160)).save(root / "coffee.jpg", quality=92)
    shutil.copyfile(root / "coffee.jpg", root / "phone" / "coffee (1).jpg")
    Image.fromarray(data.chelsea()).resize((225, 150)).save(root / "cat.jpg", quality=92)
    return root


@pytest.fixture
def window(make_window, dup_dir, qtbot, home_trash):
    window = make_window()
    with qtbot.waitSignal(window.indexingFinished, timeout=60_000):
        window.add_library(dup_dir)
    return window


def open_view(window, qtbot):
    """Tools ▸ Find duplicates…, waiting for the search it starts."""
    with qtbot.waitSignal(window.duplicates.findEnded, timeout=60_000) as blocker:
        window.duplicates_action.trigger()
    dialog = window._duplicates_dialog
    assert blocker.args == ["done"]
    return dialog


def find_again(dialog, qtbot) -> None:
    with qtbot.waitSignal(dialog.finder.findEnded, timeout=60_000):
        dialog.find_button.click()


def by_kind(dialog, kind: GroupKind):
    return next(w for w in dialog.widgets if w.entry.found.kind is kind)


def names(group) -> set[str]:
    return {os.path.basename(f.path) for f in group.files}


def indexed(window) -> set[str]:
    return {os.path.basename(r.path) for r in window.library.catalog.indexed_files()}


def wait_write(dialog, qtbot) -> None:
    qtbot.waitUntil(lambda: not dialog.finder.writing, timeout=30_000)


def search_with(window, qtbot, path: Path) -> list[str]:
    with qtbot.waitSignal(window.searchFinished, timeout=30_000):
        window.search_paths([path])
    return [os.path.basename(h.path) for h in window.shown_hits]


# ==== what the view shows ======================================================================
def test_the_menu_opens_a_view_of_the_groups(window, qtbot):
    action = window.duplicates_action
    tools = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Tools")
    entries = tools.actions()
    assert entries.index(action) == entries.index(window.finetune_action) + 1
    dialog = open_view(window, qtbot)
    assert {w.entry.found.kind for w in dialog.widgets} == {GroupKind.EXACT, GroupKind.NEAR}
    exact, near = by_kind(dialog, GroupKind.EXACT), by_kind(dialog, GroupKind.NEAR)
    assert names(exact.entry.found) == {"coffee.jpg", "coffee (1).jpg"}
    assert names(near.entry.found) == {"astronaut.png", "astronaut-mirrored.jpg"}
    assert dialog.summary.text().startswith("2 groups, 2 copies, ")
    assert dialog.summary.text().endswith("to free (among 5 photos)")
    assert dialog.trash_button.text() == "Move 2 copies to the trash…"
    # the kept one is marked: the larger astronaut (most pixels), framed green and badged
    kept = near.tiles[str(dup_dir_of(window) / "astronaut.png")]
    copy = near.tiles[str(dup_dir_of(window) / "phone" / "astronaut-mirrored.jpg")]
    assert kept.keep_button.isChecked() and kept.property("kept") and kept.badge.text() == "KEEP"
    assert not copy.keep_button.isChecked() and copy.badge.text() == "copy"
    assert copy.facts_label.text().endswith("192 × 192")
    assert copy.match_label.text().startswith("same photo · match 0.")
    assert sorted(t.match_label.text() for t in exact.tiles.values()) == [
        "identical (same bytes)", "kept"]
    assert not exact.distinct_button.isEnabled()  # the same bytes are copies
    qtbot.waitUntil(lambda: all(t.thumb.pixmap() is not None and not t.thumb.pixmap().isNull()
                                for w in dialog.widgets for t in w.tiles.values()),
                    timeout=10_000)


def dup_dir_of(window) -> Path:
    return Path(window.prefs.libraries[0])


def test_another_copy_can_be_kept_and_the_rule_picks_again_without_a_search(window, qtbot):
    dialog = open_view(window, qtbot)
    near = by_kind(dialog, GroupKind.NEAR)
    mirrored = str(dup_dir_of(window) / "phone" / "astronaut-mirrored.jpg")
    near.tiles[mirrored].keep_button.click()
    assert near.entry.keep == mirrored and near.entry.group.kept.path == mirrored
    assert near.tiles[mirrored].badge.text() == "KEEP"
    other = near.tiles[str(dup_dir_of(window) / "astronaut.png")]
    assert other.badge.text() == "copy" and other.match_label.text().startswith("same photo")
    assert "frees" in near.check.text()
    # the keep rule: each group's kept file is the rule's first, no new search
    started = []
    dialog.finder.findStarted.connect(lambda: started.append(1))
    for label in ("Largest file", "Newest", "Most pixels"):
        dialog.rule.setCurrentIndex(dialog.rule.findText(label))
        rule = dialog.keep_rule
        for widget in dialog.widgets:
            files = widget.entry.found.files
            assert widget.entry.keep == min(files, key=sort_key(rule)).path
            assert widget.tiles[widget.entry.keep].keep_button.isChecked()
    assert near.entry.keep == str(dup_dir_of(window) / "astronaut.png")  # the most pixels
    assert started == [] and dialog.finder.find_worker is None


# ==== acting on the groups =====================================================================
def test_trash_moves_the_copies_out_of_the_results_and_undo_brings_them_back(window, qtbot,
                                                                             home_trash):
    root = dup_dir_of(window)
    assert {"coffee (1).jpg", "astronaut-mirrored.jpg"} <= set(
        search_with(window, qtbot, root / "coffee.jpg")
        + search_with(window, qtbot, root / "astronaut.png"))
    dialog = open_view(window, qtbot)
    asked = []
    window.confirm = lambda title, text: asked.append((title, text)) or True
    with qtbot.waitSignal(window.searchFinished, timeout=30_000):  # the results searched again
        dialog.trash_button.click()
    wait_write(dialog, qtbot)
    title, text = asked[0]
    assert title == "Move 2 files to the trash?"
    assert "1 identical copy and 1 look-alike copy" in text and "Undo last trash" in text
    copies = [root / "phone" / "coffee (1).jpg", root / "phone" / "astronaut-mirrored.jpg"]
    assert not any(p.exists() for p in copies)
    assert sorted(p.name for p in (home_trash / "files").iterdir()) == sorted(p.name for p in copies)
    assert (root / "coffee.jpg").exists() and (root / "astronaut.png").exists()
    assert indexed(window) == {"astronaut.png", "coffee.jpg", "cat.jpg"}
    assert not {"coffee (1).jpg", "astronaut-mirrored.jpg"} & set(
        os.path.basename(h.path) for h in window.shown_hits)
    assert dialog.widgets == [] and dialog.summary.text() == "No duplicates left among 3 photos."
    done = window.messages.last
    assert done.text.startswith("Moved 2 files (") and done.level is Level.INFO
    assert "not moved" not in done.text  # only copies were asked for: nothing refused
    assert dialog.banner.text == window.messages.last.text
    # undo: back where they were, and indexed again by the window's index queue
    assert dialog.undo_button.isEnabled()
    with qtbot.waitSignal(window.indexingFinished, timeout=60_000) as blocker:
        dialog.undo_button.click()
    assert blocker.args[0] is not None and blocker.args[0].embedded >= 1
    assert all(p.exists() for p in copies)
    assert indexed(window) == {"astronaut.png", "astronaut-mirrored.jpg", "coffee.jpg",
                               "coffee (1).jpg", "cat.jpg"}
    assert any(m.text.startswith("Put 2 files back from the trash; indexing them again")
               for m in window.messages.history)
    assert not dialog.undo_button.isEnabled()
    # once they are indexed, the view finds their groups again
    qtbot.waitUntil(lambda: len(dialog.widgets) == 2 and not dialog.finder.finding,
                    timeout=60_000)


def test_undo_indexes_again_a_library_the_window_never_added(window, qtbot, home_trash):
    """A folder indexed by `imgsearch index` is in the catalog, not in the window's list: the
    photos an undo puts back are still indexed again."""
    root = dup_dir_of(window)
    window.prefs.libraries = []  # as if only the command line had indexed it
    dialog = open_view(window, qtbot)
    window.confirm = lambda title, text: True
    dialog.trash_button.click()
    wait_write(dialog, qtbot)
    assert indexed(window) == {"astronaut.png", "coffee.jpg", "cat.jpg"}
    with qtbot.waitSignal(window.indexingFinished, timeout=60_000):
        dialog.undo_button.click()
    assert (root / "phone" / "coffee (1).jpg").exists()
    assert "coffee (1).jpg" in indexed(window)


def test_a_refused_file_stays_and_is_said_in_one_message(window, qtbot, home_trash):
    root = dup_dir_of(window)
    dialog = open_view(window, qtbot)
    changed = root / "phone" / "coffee (1).jpg"
    os.utime(changed, ns=(1, 1))  # changed since it was indexed: not the file the catalog saw
    posted = []
    window.messages.posted.connect(posted.append)
    dialog.trash_button.click()
    wait_write(dialog, qtbot)
    assert changed.exists() and not (root / "phone" / "astronaut-mirrored.jpg").exists()
    [message] = [m for m in posted if m.level is not Level.INFO]
    assert message.level is Level.WARNING
    assert message.text.startswith("Moved 1 file (")
    assert "1 file was not moved, nothing was deleted: 1 changed since it was indexed." in message.text
    assert str(changed) in message.details
    # the refused copy's group stays; the other group is done
    assert [names(w.entry.found) for w in dialog.widgets] == [{"coffee.jpg", "coffee (1).jpg"}]
    assert "coffee (1).jpg" in indexed(window)


def test_not_duplicates_is_remembered_by_the_next_search(window, qtbot):
    dialog = open_view(window, qtbot)
    near = by_kind(dialog, GroupKind.NEAR)
    with qtbot.waitSignal(dialog.finder.markedDistinct, timeout=30_000):
        near.distinct_button.click()
    wait_write(dialog, qtbot)
    assert [w.entry.found.kind for w in dialog.widgets] == [GroupKind.EXACT]
    assert window.messages.last.text.startswith("Remembered that ")
    find_again(dialog, qtbot)
    assert [w.entry.found.kind for w in dialog.widgets] == [GroupKind.EXACT]
    assert dialog.summary.text().startswith("1 group, 1 copy, ")


def test_indexing_asked_for_during_a_change_waits_for_it(window, qtbot, monkeypatch):
    """A write holds the library's job lock: an indexing job started meanwhile would fail
    ("another indexing job is running"); the index queue waits for the write instead."""
    dialog = open_view(window, qtbot)
    catalog = window.library.catalog
    original = catalog.add_distinct_pairs
    inside = threading.Event()

    def slow(pairs):  # runs under the job lock
        inside.set()
        threading.Event().wait(0.5)
        return original(pairs)

    monkeypatch.setattr(catalog, "add_distinct_pairs", slow)
    by_kind(dialog, GroupKind.NEAR).distinct_button.click()
    qtbot.waitUntil(inside.is_set, timeout=10_000)
    with qtbot.waitSignal(window.indexingFinished, timeout=60_000) as blocker:
        window.index_libraries(window.prefs.libraries)
    assert blocker.args[0] is not None  # not failed
    assert not any(m.text.startswith("Indexing") and "failed" in m.text
                   for m in window.messages.history)


def test_cancel_ends_the_search_without_groups(window, qtbot, monkeypatch):
    library = window.library
    original = library.find_duplicates
    started = threading.Event()

    def held(options=None, cancel=None):  # the real finder, held after its first step
        events = original(options, cancel)
        yield next(events)
        started.set()
        while not cancel.cancelled:
            threading.Event().wait(0.01)
        yield from events

    monkeypatch.setattr(library, "find_duplicates", held)
    window.duplicates_action.trigger()
    dialog = window._duplicates_dialog
    qtbot.waitUntil(started.is_set, timeout=10_000)
    assert dialog.cancel_button.isEnabled() and dialog.progress.maximum() == 0
    assert dialog.status.text().startswith("Reading the catalog")
    with qtbot.waitSignal(dialog.finder.findEnded, timeout=30_000) as blocker:
        dialog.cancel_button.click()
    assert blocker.args == ["cancelled"]
    assert dialog.widgets == [] and dialog.status.text().startswith("Cancelled")
    assert not dialog.cancel_button.isEnabled() and dialog.find_button.isEnabled()


def test_open_and_reveal_as_the_results_do(window, qtbot, recorded_opener):
    dialog = open_view(window, qtbot)
    near = by_kind(dialog, GroupKind.NEAR)
    path = near.entry.keep
    tile = near.tiles[path]
    qtbot.mouseDClick(tile, Qt.MouseButton.LeftButton)
    actions = {a.text(): a for a in tile.build_menu().actions() if a.text()}
    assert set(actions) == {"Open", "Reveal in file manager", "Copy path", "Keep this one"}
    assert not actions["Keep this one"].isEnabled()
    actions["Reveal in file manager"].trigger()
    assert recorded_opener() == [path, os.path.dirname(path)]


def test_a_model_switch_stops_the_search_before_the_library_closes(window, qtbot, monkeypatch,
                                                                   tiny_model):
    from dataclasses import replace

    library = window.library
    original, close = library.find_duplicates, library.close
    started, order = threading.Event(), []

    def held(options=None, cancel=None):
        events = original(options, cancel)
        yield next(events)
        started.set()
        while not cancel.cancelled:  # only a cancel ends it
            threading.Event().wait(0.01)
        yield from events
        order.append("search ended")

    monkeypatch.setattr(library, "find_duplicates", held)
    monkeypatch.setattr(library, "close", lambda: order.append("closed") or close())
    window.duplicates_action.trigger()
    qtbot.waitUntil(started.is_set, timeout=10_000)
    with qtbot.waitSignals([window.duplicates.findEnded, window.modelReady], timeout=60_000):
        assert window.apply_model(replace(tiny_model, pooling="mac"))
    assert window.library is not library and order == ["search ended", "closed"]
