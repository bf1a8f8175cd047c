"""The window's words and numbers (ui/format.py), tested without Qt."""

from __future__ import annotations

import math
import subprocess
import sys

from imgsearch_gui.base.bands import Band
from imgsearch_gui.base.types import IndexReport, SearchHit, SkippedFile
from imgsearch_gui.ui import format as fmt


def report(**changes) -> IndexReport:
    values = dict(library="/photos", embedded=1200, unchanged=0, moved=0, removed=0, duplicates=0,
                  skipped=(), seconds=75.4, images_per_s=15.92)
    values.update(changes)
    return IndexReport(**values)


def hits(*scores: float) -> list[SearchHit]:
    return [SearchHit(f"/p/{i}.jpg", s, i + 1) for i, s in enumerate(scores)]


def test_durations():
    assert fmt.fmt_duration(0) == "0:00"
    assert fmt.fmt_duration(59.6) == "1:00"
    assert fmt.fmt_duration(75) == "1:15"
    assert fmt.fmt_duration(3600 + 62) == "1:01:02"
    for unknown in (None, math.nan, -1):
        assert fmt.fmt_duration(unknown) == "–"


def test_index_summary_names_only_what_happened_in_plain_sentences():
    assert fmt.index_summary(report()) == (
        "Indexed /photos: 1,200 new photos in 1:15 (15.9 photos/s).")
    text = fmt.index_summary(report(
        embedded=3, unchanged=2000, moved=4, removed=5, duplicates=1, cancelled=True,
        skipped=(SkippedFile("/photos/a.jpg", "broken"), SkippedFile("/photos/b.jpg", "empty"))))
    assert text == ("Indexing /photos was cancelled after 3 new photos, 4 moved or renamed, "
                    "5 removed, 1 duplicate in 1:15 (15.9 photos/s); what was done is kept, the "
                    "rest is indexed next time. 2 files could not be used (Library ▸ Show "
                    "skipped files).")
    assert fmt.index_summary(report(embedded=0, unchanged=560, images_per_s=0.0)) == (
        "/photos is up to date: 560 photos, nothing new.")
    assert fmt.index_summary(report(embedded=0, cancelled=True, images_per_s=0.0)).startswith(
        "Indexing /photos was cancelled before anything new was indexed; what was done is kept")
    assert fmt.index_summary(report(embedded=1, unchanged=9)) == (
        "Indexed /photos: 1 new photo (9 unchanged) in 1:15 (15.9 photos/s).")


def test_query_and_region_labels():
    assert fmt.query_label(["/a/one.jpg"]) == "/a/one.jpg"
    assert fmt.query_label(["/a/1.jpg", "/b/2.jpg"]) == "2 photos (mean query): 1.jpg, 2.jpg"
    five = [f"/a/{i}.jpg" for i in range(5)]
    assert fmt.query_label(five) == "5 photos (mean query): 0.jpg, 1.jpg, 2.jpg, 3.jpg…"
    assert fmt.region_label("/a/one.jpg", None) == "/a/one.jpg"
    assert fmt.region_label("/a/one.jpg", (10, 20, 50, 80)) == "/a/one.jpg\nregion 40×60 at (10, 20)"


def test_results_summary_counts_what_the_minimum_score_hides():
    assert fmt.results_summary([], 0, 50, 0.0, has_query=False) == "No query yet"
    assert fmt.results_summary([], 0, 50, 0.0, has_query=True) == "No results"
    fetched = hits(0.9, 0.7, 0.4, 0.2)
    assert fmt.results_summary(fetched, 4, 50, 0.0, True) == "4 results"
    assert fmt.results_summary(fetched, 2, 50, 0.5, True) == "2 results (2 below 0.50 hidden)"
    # only the hits within the count are counted as hidden
    assert fmt.results_summary(fetched, 1, 3, 0.5, True) == "1 result (1 below 0.50 hidden)"


def test_paths_sort_into_folders_photos_and_the_rest(tmp_path):
    folder = tmp_path / "holiday"
    folder.mkdir()
    photo, notes = tmp_path / "a.JPG", tmp_path / "notes.txt"
    photo.write_bytes(b"x")
    notes.write_text("x")
    missing = str(tmp_path / "gone.jpg")
    folders, photos, others = fmt.sort_paths([str(folder), str(photo), str(notes), missing],
                                             ["https://example.org/b.jpg"])
    assert folders == [str(folder)] and photos == [str(photo)]
    assert others == [str(notes), missing, "https://example.org/b.jpg"]


def test_drop_hints():
    assert fmt.drop_hint(False, [], []) == "Drop to search with this image"
    assert fmt.drop_hint(True, ["/f"], []) == "Drop to add this folder as a library"
    assert fmt.drop_hint(True, ["/f", "/g"], []) == "Drop to add these 2 folders as libraries"
    assert fmt.drop_hint(True, ["/f"], ["/a.jpg"]) == "Drop to search with this photo"
    assert fmt.drop_hint(True, [], ["/a.jpg", "/b.jpg"]) == "Drop to search with these 2 photos"
    assert fmt.drop_hint(True, [], []) == "Not a photo or folder"


def test_messages_about_what_is_not_a_photo(tmp_path):
    for i in range(5):
        (tmp_path / f"{i}.txt").write_text("x")
    notes = tmp_path / "notes.txt"
    notes.write_text("x")
    assert fmt.ignored_text([str(notes)]) == "Ignored what is not a photo: notes.txt."
    many = [str(tmp_path / f"{i}.txt") for i in range(5)]
    assert fmt.ignored_text(many) == "Ignored what is not a photo: 0.txt, 1.txt, 2.txt and 2 more."
    text = fmt.not_a_photo_text([str(notes), "https://example.org/"])
    assert text.startswith("Not a photo: notes.txt, https://example.org/. Drop image files (")
    assert "JPG" in text and "PNG" in text and "JPEG" not in text
    assert text.endswith(") to search, or a folder to add it as a library.")
    assert fmt.copied_text(1) == "Copied 1 path." and fmt.copied_text(3) == "Copied 3 paths."


def test_a_file_that_does_not_exist_is_not_found_not_not_a_photo(tmp_path):
    """``imgsearch-gui nonexistent.jpg`` (issue 17): the file was not found, say so."""
    gone = str(tmp_path / "nonexistent.jpg")
    assert fmt.not_a_photo_text([gone]).startswith("Not found: nonexistent.jpg. Was it moved")
    notes = tmp_path / "notes.txt"
    notes.write_text("x")
    assert fmt.ignored_text([gone, str(notes)]) == (
        "Ignored what is not found: nonexistent.jpg; not a photo: notes.txt.")
    mixed = fmt.not_a_photo_text([str(notes), gone])
    assert mixed.startswith("Not a photo: notes.txt (not found: nonexistent.jpg). Drop")


def test_scores_their_bands_and_tooltips():
    assert fmt.score_text(0.98765) == "0.988"
    assert fmt.score_band(SearchHit("/p/a.jpg", 0.5, 3)) == "unknown"
    assert fmt.score_band(SearchHit("/p/a.jpg", 0.5, 3, band=Band.SIMILAR)) == "similar"
    assert fmt.hit_tooltip(SearchHit("/p/a.jpg", 0.5, 3)) == "/p/a.jpg\n#3 · score 0.500"
    assert fmt.hit_tooltip(SearchHit("/p/a.jpg", 0.5, 3, band=Band.SIMILAR)) == \
        "/p/a.jpg\n#3 · score 0.500 · similar"


def test_the_summary_says_what_the_best_hit_is():
    def hits(*bands):
        return [SearchHit(f"/p/{i}", 0.9 - i / 10, i + 1, band=b) for i, b in enumerate(bands)]

    assert fmt.results_summary(hits(None, None), 2, 50, 0.0, True) == "2 results"
    assert fmt.results_summary(hits(Band.SAME_PHOTO, Band.SAME_PHOTO, Band.SIMILAR), 3, 50, 0.0,
                               True) == "3 results · 2 the same photo"
    assert fmt.results_summary(hits(Band.VERY_SIMILAR, Band.SIMILAR), 2, 50, 0.0, True) == \
        "2 results · best: very similar"
    assert fmt.results_summary(hits(Band.UNRELATED), 1, 50, 0.0, True) == \
        "1 result · no close match: even the best is unrelated"


def test_is_under(tmp_path):
    root = str(tmp_path / "photos")
    assert fmt.is_under(root, root)
    assert fmt.is_under(str(tmp_path / "photos" / "sub" / "a.jpg"), root)
    assert not fmt.is_under(str(tmp_path / "photos2" / "a.jpg"), root)


def test_image_filter_lists_every_supported_extension():
    from imgsearch_gui.base.images import SUPPORTED_EXTENSIONS

    assert fmt.IMAGE_FILTER.startswith("Images (") and fmt.IMAGE_FILTER.endswith(")")
    # both cases: Qt's file dialog matches patterns case-sensitively on Linux (IMG_0001.JPG)
    assert set(fmt.IMAGE_FILTER[len("Images ("):-1].split()) == {
        p for e in SUPPORTED_EXTENSIONS for p in (f"*{e}", f"*{e.upper()}")}


def test_the_qt_free_ui_modules_import_no_qt():
    """format.py and jobs.py are tested here, without a display: they must stay free of Qt."""
    code = ("import sys, imgsearch_gui.ui.format, imgsearch_gui.ui.jobs; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'shiboken6')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_hit_of_an_offline_library_says_so_under_its_thumbnail():
    from imgsearch_gui.base.types import SearchHit

    assert fmt.hit_caption(SearchHit("/photos/a/cat.jpg", 0.9, 1)) == "cat.jpg"
    assert fmt.hit_caption(SearchHit("/usb/cat.jpg", 0.9, 1, offline=True)) == "cat.jpg (offline)"


def test_the_indexing_panel_says_when_it_waits_for_another_writer():
    from imgsearch_gui.base.types import Progress

    assert fmt.progress_stats(Progress("wait", 0, 0, message="Waiting for pid 7")).startswith(
        "waiting for another process")
    assert fmt.progress_stats(Progress("scan", 12, 0)) == "scanning… 12 files found"
    assert fmt.progress_stats(Progress("save", 3, 9)) == "saving…"
    assert fmt.progress_stats(Progress("embed", 3, 9, images_per_s=2.5, eta_s=4)) == "2.5 images/s · ETA 0:04"


def test_a_thumbnail_of_an_offline_library_is_not_called_unreadable():
    from imgsearch_gui.base.types import SearchHit

    offline = SearchHit("/usb/a.jpg", 0.5, 1, offline=True)
    assert fmt.placeholder_text(offline, failed=False) == "offline"
    assert fmt.placeholder_text(offline, failed=True) == "offline\nno thumbnail cached"
    assert fmt.placeholder_text(SearchHit("/p/a.jpg", 0.5, 1), failed=True) == "unreadable"
    assert fmt.placeholder_text(SearchHit("/p/a.jpg", 0.5, 1), failed=False) == "…"


def test_a_run_that_embedded_nothing_gives_no_rate():
    text = fmt.index_summary(report(embedded=0, unchanged=12, images_per_s=0.0))
    assert "12 photos" in text and "photos/s" not in text


def test_the_summary_shows_a_library_name_that_is_not_utf8_readably():
    text = fmt.index_summary(report(library="/photos/caf\udce9"))
    assert "/photos/caf\\xe9" in text
    text.encode("utf-8")  # Qt gets valid text


def test_runtime_labels_are_the_registrys_not_the_devices():
    from imgsearch_gui.base import registry

    assert registry.DEFAULT_RUNTIME == "auto" == registry.DEFAULT_DEVICE  # the same name
    assert fmt.runtime_label("auto") == registry.RUNTIMES["auto"].label + " (default)"
    assert fmt.runtime_label("torch") == registry.RUNTIMES["torch"].label
    assert fmt.runtime_label("tensorrt") == "tensorrt"


def test_the_runtime_in_the_status_bar():
    assert fmt.runtime_name("openvino") == "OpenVINO" and fmt.runtime_name("torch") == "PyTorch"
    assert fmt.runtime_name("tensorrt") == "tensorrt"
    assert fmt.model_ready_text("efficientnet_lite0", "openvino") == \
        "efficientnet_lite0 · ready · OpenVINO"
    assert fmt.model_ready_text("tiny", None) == "tiny · ready"  # an embedder that does not say
    assert fmt.runtime_note("auto", "torch") == "Runs in PyTorch."
    assert fmt.runtime_note("torch", "torch") == "Runs in PyTorch."
    fell_back = fmt.runtime_note("openvino", "torch")
    assert fell_back.startswith("Runs in PyTorch. OpenVINO was chosen but cannot run here")
    assert fmt.runtime_note("openvino", None) == ""


def test_the_band_legend_says_what_each_colour_means_and_its_range():
    from imgsearch_gui.base.bands import ScoreBands

    tip = fmt.band_legend_tip(ScoreBands(same_photo=0.997, very_similar=0.93, similar=0.80))
    assert "same photo: 0.997 and above" in tip and "very similar: 0.93 to 0.997" in tip
    assert "similar: 0.80 to 0.93" in tip and "unrelated: below 0.80" in tip
    assert "not measured" in fmt.band_legend_tip(None)
    assert [name for name, _ in fmt.BAND_MEANINGS] == [str(b) for b in (
        Band.SAME_PHOTO, Band.VERY_SIMILAR, Band.SIMILAR, Band.UNRELATED)]
