"""Issue 16, part 2: the window watches its libraries while it is open (on by default). Photos
added, deleted or changed in a library folder are in the index and in the results shown a few
seconds later without F5; the window never waits for the watcher; the setting turns it off."""

from __future__ import annotations

import time
from pathlib import Path

from photos import make_photo

from imgsearch_gui.base.types import IndexReport
from imgsearch_gui.ui.prefs import Prefs


def index(qtbot, window, root: Path) -> IndexReport:
    """Add the library; with watching on, also its catch-up pass (the watcher starts with it)."""
    with qtbot.waitSignal(window.indexingFinished, timeout=60_000) as blocker:
        window.add_library(root)
    if window.watching:
        next_pass(qtbot, window)
    return blocker.args[0]


def search(qtbot, window, query: Path):
    with qtbot.waitSignal(window.searchFinished, timeout=30_000) as blocker:
        window.search_paths([query])
    return blocker.args[0]


def next_pass(qtbot, window, timeout: int = 30_000) -> IndexReport:
    """The next index job the watcher started (and the refreshed results after it)."""
    with qtbot.waitSignal(window.indexingFinished, timeout=timeout) as blocker:
        pass
    return blocker.args[0]


def shown_paths(window) -> set[str]:
    return {h.path for h in window.shown_hits}


def test_watching_is_on_by_default_and_kept_in_the_prefs(prefs):
    assert Prefs(prefs.qsettings).watch_folders is True
    prefs.watch_folders = False
    assert Prefs(prefs.qsettings).watch_folders is False


def test_new_and_deleted_photos_reach_the_index_and_the_results_without_f5(
        make_window, library_dir, qtbot):
    window = make_window(watch=True)
    assert window.watch_action.isChecked()
    index(qtbot, window, library_dir)
    qtbot.waitUntil(lambda: window.folder_watcher.modes.get(str(library_dir.resolve()))
                    == "events", timeout=10_000)
    query = library_dir / "sub0" / "photo_00.png"
    hits = search(qtbot, window, query)
    assert len(hits) == 24

    new = make_photo(library_dir / "sub1" / "arrived.png", seed=99, size=(96, 72))
    with qtbot.waitSignal(window.searchFinished, timeout=30_000):  # refreshed after the pass
        report = next_pass(qtbot, window)
    assert report.embedded == 1 and report.indexed == 25
    assert str(new.resolve()) in shown_paths(window)
    assert window.messages.last is not None and "1 new" in window.messages.last.text

    gone = library_dir / "sub2" / "photo_02.png"
    gone.unlink()
    with qtbot.waitSignal(window.searchFinished, timeout=30_000):
        report = next_pass(qtbot, window)
    assert report.removed == 1
    assert str(gone.resolve()) not in shown_paths(window)  # no stale result


def test_a_pass_that_finds_nothing_new_says_nothing(make_window, library_dir, qtbot):
    window = make_window(watch=True)
    index(qtbot, window, library_dir)
    qtbot.waitUntil(lambda: window.folder_watcher.modes.get(str(library_dir.resolve()))
                    == "events", timeout=10_000)
    before = window.messages.last
    brief = make_photo(library_dir / "brief.png", seed=80, size=(96, 72))
    brief.unlink()  # within the quiet time: one batch, and nothing to index
    report = next_pass(qtbot, window)
    assert not report.changed and report.indexed == 24
    assert window.messages.last is before


def test_the_window_catches_up_with_changes_made_while_it_was_closed(
        make_window, library_dir, qtbot):
    window = make_window(watch=False)
    index(qtbot, window, library_dir)
    window.shutdown()
    make_photo(library_dir / "while-closed.png", seed=50, size=(96, 72))
    reopened = make_window(watch=True, wait_model=False)
    report = next_pass(qtbot, reopened, timeout=60_000)
    assert report.embedded == 1 and report.indexed == 25


def test_turning_watching_off_stops_it_and_on_again_catches_up(make_window, library_dir, qtbot):
    window = make_window(watch=True)
    index(qtbot, window, library_dir)
    qtbot.waitUntil(lambda: window.folder_watcher.active, timeout=5_000)
    window.watch_action.trigger()  # Library ▸ Watch folders for changes: off
    assert not window.folder_watcher.active and window.prefs.watch_folders is False
    make_photo(library_dir / "unwatched.png", seed=60, size=(96, 72))
    started = []
    window.indexingStarted.connect(started.append)
    qtbot.wait(3_000)  # longer than the debounce
    assert started == []
    window.watch_action.trigger()  # on: what changed meanwhile is picked up
    report = next_pass(qtbot, window)
    assert report.embedded == 1 and window.prefs.watch_folders is True


def test_an_unplugged_library_is_marked_at_once_and_caught_up_when_back(
        make_window, library_dir, qtbot, tmp_path):
    window = make_window(watch=True)
    index(qtbot, window, library_dir)
    qtbot.waitUntil(lambda: window.folder_watcher.modes.get(str(library_dir.resolve()))
                    == "events", timeout=10_000)
    away = tmp_path / "unplugged"
    library_dir.rename(away)
    qtbot.waitUntil(lambda: window.folder_watcher.modes.get(str(library_dir.resolve()))
                    == "offline", timeout=10_000)
    qtbot.waitUntil(lambda: window.offline_button.isVisible() or any(
        "offline" in a.text() for a in window.library_actions), timeout=10_000)
    make_photo(away / "taken-meanwhile.png", seed=70, size=(96, 72))
    away.rename(library_dir)
    report = next_pass(qtbot, window)
    assert report.embedded == 1 and report.indexed == 25 and not report.offline
    assert not any("offline" in a.text() for a in window.library_actions)


def test_the_window_never_waits_for_the_watches_to_be_set_up(make_window, library_dir, qtbot,
                                                            monkeypatch):
    """Setting up a watch walks the tree (a slow share: seconds): in the watcher's thread. The
    window neither waits for it to start watching nor to stop (the Watch toggle, closing)."""
    from imgsearch_gui.app.watch import FolderWatcher

    real = FolderWatcher._add_watch

    def slow(self, *args):
        time.sleep(2.0)
        return real(self, *args)

    monkeypatch.setattr(FolderWatcher, "_add_watch", slow)
    window = make_window(watch=False)
    with qtbot.waitSignal(window.indexingFinished, timeout=60_000):
        window.add_library(library_dir)
    started = time.perf_counter()
    window.set_watching(True)
    qtbot.wait(200)  # the watcher is inside the slow set-up now
    window.set_watching(False)
    assert time.perf_counter() - started < 1.5


def test_a_refresh_never_replaces_the_search_on_its_way(make_window, library_dir, qtbot):
    """A watcher's pass ends while the user's new search is on its way: the user's query is
    answered (and searched again after it), never the query shown before."""
    window = make_window(watch=False)
    with qtbot.waitSignal(window.indexingFinished, timeout=60_000):
        window.add_library(library_dir)
    first, second = library_dir / "sub0" / "photo_00.png", library_dir / "sub1" / "photo_01.png"
    search(qtbot, window, first)
    answers = []
    window.searchFinished.connect(lambda hits: answers.append(hits[0].path))
    window.search_paths([second])  # on its way
    window.search.refresh()  # a job changed the index meanwhile
    qtbot.waitUntil(lambda: len(answers) >= 2, timeout=30_000)
    qtbot.wait(300)
    assert answers == [str(second.resolve())] * 2  # the user's query, then searched again
    assert str(second) in window.query_panel.caption.text()


def test_a_watchers_pass_over_an_unplugged_drive_asks_nothing(make_window, library_dir, qtbot,
                                                              tmp_path):
    """An emptied folder (an unplugged drive's mount point): the watcher does not pass over it,
    and a quiet pass that finds it offline never asks to remove its photos."""
    window = make_window(watch=False)
    with qtbot.waitSignal(window.indexingFinished, timeout=60_000):
        window.add_library(library_dir)
    asked = []
    window.confirm = lambda title, text: asked.append(title) or True
    for child in list(library_dir.iterdir()):
        child.rename(tmp_path / child.name)  # the mount point is left, empty
    with qtbot.waitSignal(window.indexingFinished, timeout=60_000) as blocker:
        window.index_queue.refresh([str(library_dir)])
    report = blocker.args[0]
    assert report.offline and report.indexed == 24 and asked == []
    assert window.library.stats().files >= 24  # nothing removed


def test_asking_for_a_library_during_its_quiet_pass_shows_the_report(make_window, library_dir,
                                                                     qtbot):
    window = make_window(watch=False)
    with qtbot.waitSignal(window.indexingFinished, timeout=60_000):
        window.add_library(library_dir)
    before = window.messages.last
    with qtbot.waitSignal(window.indexingFinished, timeout=60_000):
        window.index_queue.refresh([str(library_dir)])  # a watcher's pass
        assert window.index_queue.running
        window.index_libraries([str(library_dir)])  # the user presses F5 meanwhile
    assert window.messages.last is not before
    assert window.messages.last.text.startswith(f"{library_dir} is up to date: 24 photos")
