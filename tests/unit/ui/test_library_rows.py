"""What the library panel says about each library (ui/library_rows.py), without Qt."""

from __future__ import annotations

from imgsearch_gui.app.library import LibraryInfo
from imgsearch_gui.ui.library_rows import OFFLINE_TEXT, library_rows

ROOTS = ["/home/me/Pictures", "/media/usb/Holidays 2019"]


def rows(infos=(), offline=None, indexing="", watching=False, modes=None, skipped=()):
    return library_rows(ROOTS, list(infos) if infos is not None else None, offline or {},
                        indexing, watching, modes or {}, skipped)


def test_a_row_per_library_in_the_order_of_the_preferences_with_name_path_and_count():
    got = rows([LibraryInfo(ROOTS[1], 2, 1, 0), LibraryInfo(ROOTS[0], 1234, 1234, 0)])
    assert [r.root for r in got] == ROOTS
    assert (got[0].name, got[0].path, got[0].count_text) == \
        ("Pictures", "/home/me/Pictures", "1,234 photos")
    assert got[1].name == "Holidays 2019" and got[1].count_text == "1 photo"
    assert got[0].state_text == "" and "Double-click" in got[0].tip


def test_before_the_first_job_it_says_not_indexed_and_while_the_model_loads_nothing():
    assert rows([])[0].count_text == "not indexed yet"
    unknown = rows(None)[0]
    assert unknown.photos is None and unknown.count_text == "" and "photo" not in unknown.tip


def test_states_indexing_offline_watching_and_skipped():
    infos = [LibraryInfo(ROOTS[0], 30, 27, 3), LibraryInfo(ROOTS[1], 5, 5, 0, offline=True)]
    got = rows(infos, watching=True)
    assert got[0].state_text == "watching · 3 skipped"
    assert got[1].offline and got[1].state_text == OFFLINE_TEXT and not got[1].watching
    assert "connect the drive" in got[1].state_text and "still found" in got[1].tip
    busy = rows(infos, indexing=ROOTS[0], watching=True)[0]
    assert busy.indexing and busy.state_text == "indexing… · 3 skipped"
    assert not rows(infos, indexing=ROOTS[0])[1].indexing


def test_offline_comes_from_the_window_the_catalog_or_the_watcher():
    assert rows(offline={ROOTS[0]: True})[0].offline
    assert rows(modes={ROOTS[0]: "offline"}, watching=True)[0].state_text == OFFLINE_TEXT
    assert rows(modes={ROOTS[0]: "polling"}, watching=True)[0].state_text == "watching"


def test_skipped_counts_this_sessions_files_under_the_root_or_the_catalogs_if_more():
    skipped = [f"{ROOTS[0]}/a.jpg", f"{ROOTS[0]}/sub/b.jpg", "/home/me/Pictures2/c.jpg"]
    got = rows([LibraryInfo(ROOTS[0], 9, 9, 1)], skipped=skipped)
    assert got[0].skipped == 2 and got[0].state_text == "2 skipped"
    assert got[1].skipped == 0
    assert "2 files could not be indexed" in got[0].tip
