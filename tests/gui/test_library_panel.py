"""Issue 17 item 13: the library panel says which libraries there are, how many photos each
has and how each one is (indexing, offline, watching, skipped files); its actions re-index,
remove (after asking) and open the folder."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt

from imgsearch_gui.ui.library_rows import OFFLINE_TEXT


def index(qtbot, window, root: Path):
    with qtbot.waitSignal(window.indexingFinished, timeout=60_000) as blocker:
        window.add_library(root)
    return blocker.args[0]


def test_first_run_the_panel_offers_to_add_a_library(make_window):
    window = make_window()
    panel = window.library_panel
    assert panel.rows == []
    assert panel.empty_box.isVisibleTo(panel) and not panel.list.isVisibleTo(panel)
    assert "No library yet" in panel.empty_label.text()


def test_after_indexing_a_row_shows_name_path_count_and_skipped(make_window, library_dir, qtbot):
    window = make_window()
    index(qtbot, window, library_dir)
    panel = window.library_panel
    root = str(library_dir)
    row = panel.row(root)
    assert row is not None and [r.root for r in panel.rows] == [root]
    assert (row.name, row.photos, row.count_text) == ("photos", 24, "24 photos")
    assert row.skipped == 1 and row.state_text == "1 skipped"  # broken.jpg
    widget = panel.row_widget(root)
    assert widget.name_label.text() == "photos" and widget.name_label.font().bold()
    assert widget.path_label.text() == root and widget.count_label.text() == "24 photos"
    assert panel.list.isVisibleTo(panel) and not panel.empty_box.isVisibleTo(panel)
    assert panel.current_root() == root and panel.reindex_button.isEnabled()


def test_a_renamed_folder_is_offline_after_a_refresh_and_back_after(make_window, library_dir,
                                                                    qtbot):
    window = make_window()
    index(qtbot, window, library_dir)
    root = str(library_dir)
    unplugged = library_dir.with_name("unplugged")
    library_dir.rename(unplugged)
    window.refresh_library_state()
    row = window.library_panel.row(root)
    assert row.offline and OFFLINE_TEXT in row.state_text and row.photos == 24
    assert OFFLINE_TEXT in window.library_panel.row_widget(root).state_label.text()
    assert not window.library_panel.reveal_button.isEnabled()
    unplugged.rename(library_dir)
    window.refresh_library_state()
    assert not window.library_panel.row(root).offline


def test_the_row_says_indexing_while_a_job_runs_and_watching_after(make_window, library_dir,
                                                                  qtbot):
    window = make_window()
    seen = []
    window.indexingStarted.connect(
        lambda root: seen.append(window.library_panel.row(root).state_text))
    index(qtbot, window, library_dir)
    assert seen == ["indexing…"]
    root = str(library_dir)
    assert "indexing" not in window.library_panel.row(root).state_text
    window.watch_action.setChecked(True)
    assert window.library_panel.row(root).state_text.startswith("watching")
    window.watch_action.setChecked(False)
    assert "watching" not in window.library_panel.row(root).state_text


def test_reindex_queues_a_job_of_that_library(make_window, library_dir, qtbot):
    window = make_window()
    index(qtbot, window, library_dir)
    panel = window.library_panel
    with qtbot.waitSignal(window.indexingFinished, timeout=60_000):
        with qtbot.waitSignal(window.indexingStarted, timeout=10_000) as started:
            qtbot.mouseClick(panel.reindex_button, Qt.MouseButton.LeftButton)
    assert started.args == [str(library_dir)]
    menu = panel.build_menu(str(library_dir))
    reindex = next(a for a in menu.actions() if a.text() == "Re-index")
    with qtbot.waitSignal(window.indexingFinished, timeout=60_000):
        reindex.trigger()


def test_remove_asks_then_forgets_the_library(make_window, library_dir, qtbot):
    window = make_window()
    index(qtbot, window, library_dir)
    asked = []
    answer = [False]
    window.confirm = lambda title, text: asked.append(title) or answer[0]
    panel = window.library_panel
    qtbot.mouseClick(panel.remove_button, Qt.MouseButton.LeftButton)
    assert asked == ["Remove library?"] and window.prefs.libraries == [str(library_dir)]
    assert panel.row(str(library_dir)) is not None
    answer[0] = True
    remove = next(a for a in panel.build_menu(str(library_dir)).actions()
                  if a.text() == "Remove…")
    with qtbot.waitSignal(window.messages.posted, timeout=30_000,
                          check_params_cb=lambda m: m.text.startswith("Removed")):
        remove.trigger()
        assert len(asked) == 2 and window.prefs.libraries == []
        assert panel.rows == [] and panel.empty_box.isVisibleTo(panel)


def test_show_and_double_click_open_the_folder(make_window, library_dir, qtbot,
                                               recorded_opener):
    """Through app.desktop, like a photo's Open (an xdg-open on PATH records what it gets)."""
    window = make_window()
    index(qtbot, window, library_dir)
    panel = window.library_panel
    qtbot.mouseClick(panel.reveal_button, Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(panel.revealRequested) as blocker:
        panel.list.itemDoubleClicked.emit(panel.list.item(0))
    assert blocker.args == [str(library_dir)]
    assert recorded_opener() == [str(library_dir), str(library_dir)]


# ==== the file dialogs start in the last folder used ==========================================
def test_the_dialogs_start_in_pictures_then_in_the_last_folder_used(make_window, library_dir,
                                                                   tmp_path, qtbot, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    home = tmp_path / "home"
    (home / "Pictures").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    starts = []
    answers = [str(library_dir), ""]
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(
        lambda parent, caption, start: starts.append(start) or answers.pop(0)))
    photo = library_dir / "sub1" / "photo_01.png"
    files = [([str(photo)], ""), ([], "")]
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", staticmethod(
        lambda parent, caption, start, filter_: starts.append(start) or files.pop(0)))
    window = make_window()
    assert window.prefs.last_library_dir == window.prefs.last_open_dir == str(home / "Pictures")

    with qtbot.waitSignal(window.indexingFinished, timeout=60_000):
        window.choose_library()
    window.choose_library()  # cancelled
    assert starts == [str(home / "Pictures"), str(library_dir.parent)]

    with qtbot.waitSignal(window.searchFinished, timeout=30_000):
        window.open_query_dialog()
    window.open_query_dialog()
    assert starts[2:] == [str(home / "Pictures"), str(photo.parent)]
    window.prefs.sync()
    assert window.prefs.qsettings.value("dialogs/last_open_dir") == str(photo.parent)


def test_a_remembered_folder_that_is_gone_falls_back_to_pictures_or_home(prefs, tmp_path,
                                                                        monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    prefs.last_library_dir = str(tmp_path / "gone")
    assert prefs.last_library_dir == str(tmp_path / "home")  # no Pictures folder there
    (tmp_path / "home" / "Pictures").mkdir()
    assert prefs.last_library_dir == str(tmp_path / "home" / "Pictures")
    (tmp_path / "gone").mkdir()
    assert prefs.last_library_dir == str(tmp_path / "gone")
