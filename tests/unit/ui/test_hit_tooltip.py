"""A hit's tooltip tells same-named photos of two folders apart: path, size, date, library."""

from __future__ import annotations

import time

from imgsearch_gui.base.bands import Band
from imgsearch_gui.base.types import SearchHit
from imgsearch_gui.ui import format as fmt


def test_file_sizes_read_as_a_file_manager_shows_them():
    assert fmt.file_size_text(1) == "1 byte"
    assert fmt.file_size_text(812) == "812 bytes"
    assert fmt.file_size_text(48_213) == "48 KB"
    assert fmt.file_size_text(2_412_000) == "2.4 MB"
    assert fmt.file_size_text(999_999) == "1.0 MB"
    assert fmt.file_size_text(31_000_000_000) == "31 GB"


def test_the_tooltip_has_path_size_date_library_and_score():
    hit = SearchHit("/photos/2023/IMG_0001.JPG", 0.8123, 2, "/photos", band=Band.VERY_SIMILAR)
    stamp = time.mktime((2023, 7, 14, 9, 5, 0, 0, 0, -1))
    assert fmt.hit_tooltip(hit, size=2_412_000, modified=stamp).splitlines() == [
        "/photos/2023/IMG_0001.JPG",
        "2.4 MB · modified 2023-07-14 09:05",
        "library /photos",
        f"#2 · score 0.812 · {Band.VERY_SIMILAR}",
    ]


def test_a_photo_gone_since_indexing_says_so_and_an_offline_one_has_no_size():
    hit = SearchHit("/p/a.jpg", 0.5, 1, "/p")
    assert "not found" in fmt.hit_tooltip(hit, missing=True).splitlines()[1]
    offline = fmt.hit_tooltip(SearchHit("/usb/a.jpg", 0.5, 1, "/usb", offline=True))
    assert offline.splitlines()[:3] == ["/usb/a.jpg", "library /usb", "#1 · score 0.500"]
    assert "offline" in offline.splitlines()[3]
