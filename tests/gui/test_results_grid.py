"""The results grid uses the width it has; a hit's tooltip tells same-named photos apart; Open and
Reveal say why they could not."""

from __future__ import annotations

import os
import sys

import pytest
from photos import make_photo
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication

from imgsearch_gui.base.types import SearchHit
from imgsearch_gui.ui.messages import Level, MessageChannel
from imgsearch_gui.ui.results import (
    ResultsModel,
    ResultsView,
    ThumbnailCache,
    ThumbnailDelegate,
    ThumbnailLoader,
)
from imgsearch_gui.ui.widgets.results_panel import ResultsPanel

CELL = ThumbnailDelegate.CELL.width()


@pytest.fixture
def grid(qtbot, tmp_path):
    loader = ThumbnailLoader(ThumbnailCache(tmp_path / "thumbs"))
    model = ResultsModel(loader)
    view = ResultsView()
    qtbot.addWidget(view)
    view.setModel(model)
    model.set_hits([SearchHit(f"/nowhere/{i}.jpg", 0.9 - i / 100, i + 1) for i in range(60)])
    view.show()
    qtbot.waitExposed(view)
    yield view, model
    loader.shutdown()


def _row(view, model) -> list:
    rects = [view.visualRect(model.index(i)) for i in range(20)]
    return [r for r in rects if r.y() == rects[0].y()]


@pytest.mark.parametrize("width", [760, 1000, 1200, 1600])
def test_the_columns_fill_the_width(grid, qtbot, width):
    view, model = grid
    view.resize(1600 if width != 1600 else 760, 500)  # and then resized to ``width``
    qtbot.wait(10)
    view.resize(width + view.width() - view.viewport().width(), 500)
    qtbot.waitUntil(lambda: view.viewport().width() == width)
    qtbot.wait(10)
    row = _row(view, model)
    assert len(row) == (width - 1) // (CELL + 8)  # as many cells (and gaps of 8 px) as fit
    assert all(r.width() == CELL for r in row)  # cells keep their size: thumbnails not upscaled
    left, right = row[0].left(), width - 1 - row[-1].right()
    assert right < CELL
    assert abs(right - left) <= len(row) + 1  # no empty band on the right: the spare is shared
    gaps = {b.left() - a.right() for a, b in zip(row, row[1:], strict=False)}
    assert max(gaps) - min(gaps) <= 1


def test_the_tooltip_has_the_file_facts_looked_up_when_asked(qtbot, tmp_path):
    from PySide6.QtCore import Qt

    loader = ThumbnailLoader(ThumbnailCache(tmp_path / "thumbs"))
    model = ResultsModel(loader)
    a, b = tmp_path / "trip" / "IMG_1.png", tmp_path / "home" / "IMG_1.png"
    for i, path in enumerate((a, b)):
        make_photo(path, seed=i, size=(64, 48))
    usb = tmp_path / "usb" / "IMG_1.png"
    make_photo(usb, seed=3, size=(64, 48))
    model.set_hits([SearchHit(str(a), 0.9, 1, str(a.parent)),
                    SearchHit(str(b), 0.8, 2, str(b.parent)),
                    SearchHit(str(usb), 0.7, 3, str(usb.parent), offline=True)])
    os.remove(b)  # after the search: its tooltip finds that out when it is asked for

    def tip(row: int) -> list[str]:
        return model.data(model.index(row), Qt.ItemDataRole.ToolTipRole).splitlines()

    first = tip(0)
    assert first[0] == str(a) and first[1].startswith(f"{os.path.getsize(a)} bytes · modified ")
    assert f"library {a.parent}" in first
    assert tip(1)[0] == str(b) and "not found" in tip(1)[1]
    offline = tip(2)  # a photo of an offline library is not stat'ed, though it is there
    assert not any("bytes" in line or "modified" in line for line in offline)
    assert "offline" in offline[-1]
    loader.shutdown()


@pytest.fixture
def panel(qtbot, tmp_path, monkeypatch):
    """A results panel on a system with no program to open files with (PATH is empty)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "runtime"))
    loader = ThumbnailLoader(ThumbnailCache(tmp_path / "thumbs"))
    channel = MessageChannel()
    widget = ResultsPanel(loader, channel, 20, -1.0)
    qtbot.addWidget(widget)
    yield widget, channel
    loader.shutdown()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the Linux desktop's programs")
def test_open_and_reveal_say_why_not_and_copy_the_path(panel, tmp_path):
    widget, channel = panel
    photo = tmp_path / "photos" / "IMG_1.jpg"
    make_photo(photo, seed=1, size=(64, 48))
    hit = SearchHit(str(photo), 0.9, 1, str(photo.parent))
    QGuiApplication.clipboard().clear()

    assert not widget.open_hit(hit).ok
    message = channel.last
    assert message.level is Level.WARNING
    assert message.text.startswith("Could not open IMG_1.jpg: no program to open files with")
    assert message.text.endswith("The path is copied to the clipboard.")
    assert QGuiApplication.clipboard().text() == str(photo)
    assert str(photo) in message.details

    assert not widget.reveal_hit(hit).ok
    assert channel.last.text.startswith(
        "Could not show IMG_1.jpg in its folder: no file manager was found")

    QGuiApplication.clipboard().clear()
    widget.open_hit(SearchHit(str(photo), 0.9, 1, str(photo.parent), offline=True))
    assert "library is offline" in channel.last.text
    assert QGuiApplication.clipboard().text() == ""  # nothing to paste anywhere yet
    menu = widget.build_menu(hit, [hit])
    assert "Copy path" in [a.text() for a in menu.actions()]
    QApplication.processEvents()
