"""What a failed search leaves on screen (issue 17, item 6): a later good search takes the "Search
failed" banner down (warnings about other things stay), and a failed query is shown as itself,
never under the previous query's photo and results."""

from __future__ import annotations

import pytest
from PIL import Image

from imgsearch_gui.ui.messages import Level


@pytest.fixture
def window(make_window, library_dir, qtbot):
    window = make_window()
    with qtbot.waitSignal(window.indexingFinished, timeout=60_000):
        window.add_library(library_dir)
    return window


@pytest.fixture
def empty_jpg(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    return path


def search(qtbot, window, path):
    with qtbot.waitSignal(window.searchFinished, timeout=30_000) as blocker:
        window.search_paths([path])
    return blocker.args[0]


def fail(qtbot, window, path) -> None:
    with qtbot.waitSignal(window.models.queryFailed, timeout=30_000):
        window.search_paths([path])


def test_a_good_search_takes_the_search_failed_banner_down(window, library_dir, empty_jpg,
                                                           qtbot):
    fail(qtbot, window, empty_jpg)
    assert window.banner.isVisibleTo(window) and "Search failed: empty.jpg" in window.banner.text
    assert "Search failed" in window.statusBar().currentMessage()
    hits = search(qtbot, window, library_dir / "sub0" / "photo_00.png")
    assert hits and not window.banner.isVisibleTo(window)
    assert "Search failed" not in window.statusBar().currentMessage()


def test_warnings_about_other_things_stay_after_a_good_search(window, library_dir, empty_jpg,
                                                              qtbot):
    fail(qtbot, window, empty_jpg)
    window.messages.warning("1 library is offline: /media/usb")  # newer, about something else
    search(qtbot, window, library_dir / "sub0" / "photo_00.png")
    assert window.banner.isVisibleTo(window) and "offline" in window.banner.text
    window.messages.warning("Indexing stopped: the disk is full")
    search(qtbot, window, library_dir / "sub0" / "photo_03.png")
    assert "disk is full" in window.banner.text and window.banner.isVisibleTo(window)


def test_a_failed_query_does_not_show_the_previous_photo(window, library_dir, empty_jpg, qtbot):
    search(qtbot, window, library_dir / "sub0" / "photo_00.png")
    assert window.query_panel.view.has_image() and window.shown_hits
    fail(qtbot, window, empty_jpg)
    assert not window.query_panel.view.has_image()  # the placeholder, not photo_00
    assert "empty.jpg" in window.query_caption.text()
    assert "could not be searched" in window.query_caption.text()
    assert window.shown_hits == [] and window.results_panel.summary.text() == "Search failed"
    assert not window.search.has_query  # no region search or refresh of the old photo
    window.search.refresh()
    assert window.shown_hits == []


def test_a_pasted_image_that_fails_stays_shown_as_the_query(window, library_dir, qtbot,
                                                            monkeypatch):
    search(qtbot, window, library_dir / "sub0" / "photo_00.png")
    library = window.library

    def broken(*args, **kwargs):
        raise RuntimeError("the index is out of reach")

    monkeypatch.setattr(library, "search", broken)
    pasted = Image.new("RGB", (80, 60), "red")
    with qtbot.waitSignal(window.models.queryFailed, timeout=30_000):
        window.search_image(pasted, "Pasted image")
    assert window.query_panel.view.has_image()
    assert window.query_caption.text() == "Pasted image: could not be searched"
    assert window.shown_hits == [] and window.messages.last.level is Level.ERROR
