"""Issue 17, item 3: the results shown follow the index. After adding a folder, after Cancel and
when indexing finishes, the query shown is searched again (no "No results" left from before)."""

from __future__ import annotations

from photos import make_photo


def test_a_query_made_before_the_library_is_answered_again_once_it_is_indexed(
        make_window, library_dir, qtbot):
    window = make_window()
    query = library_dir / "sub0" / "photo_00.png"
    with qtbot.waitSignal(window.searchFinished, timeout=30_000) as first:
        window.search_paths([query])
    assert first.args[0] == []  # nothing indexed yet
    with qtbot.waitSignal(window.searchFinished, timeout=60_000) as again:
        window.add_library(library_dir)  # indexing finishes, then the query is searched again
    assert len(again.args[0]) == 24 and window.shown_hits[0].path == str(query.resolve())


def test_after_cancel_the_results_show_what_was_indexed(make_window, tmp_path, qtbot):
    root = tmp_path / "big"
    for i in range(400):  # enough that Cancel, pressed once the first photos are done, comes in time
        make_photo(root / f"{i:03d}.png", seed=i, size=(96, 72))
    window = make_window()
    query = root / "000.png"
    with qtbot.waitSignal(window.searchFinished, timeout=30_000):
        window.search_paths([query])
    progress = []
    window.indexingProgress.connect(progress.append)
    with qtbot.waitSignal(window.searchFinished, timeout=60_000) as refreshed:
        with qtbot.waitSignal(window.indexingFinished, timeout=60_000) as finished:
            window.add_library(root)
            qtbot.waitUntil(lambda: any(p.stage == "embed" and p.done > 0 for p in progress),
                            timeout=30_000)
            window.cancel_indexing()
    report = finished.args[0]
    assert report.cancelled and 0 < report.embedded < 400
    assert len(refreshed.args[0]) >= min(report.embedded, 50) > 0
