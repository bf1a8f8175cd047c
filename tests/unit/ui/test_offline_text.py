"""What the window says about offline libraries (an unplugged drive), without Qt."""

from __future__ import annotations

from imgsearch_gui.ui import format as fmt


def test_a_library_entry_is_marked_offline_and_its_tip_says_what_brings_it_back():
    assert fmt.library_label("/media/usb/Photos", False) == "/media/usb/Photos"
    assert fmt.library_label("/media/usb/Photos", True) == \
        "/media/usb/Photos — offline (not connected?)"
    tip = fmt.library_tip("/media/usb/Photos", True)
    assert "still found" in tip and "Connect the drive" in tip and "catches up" in tip
    assert "open the folder" in fmt.library_tip("/home/me/Pictures", False)


def test_the_status_bar_note_counts_the_offline_libraries_and_names_them():
    assert fmt.offline_button_text(1) == "⏏ 1 library offline"
    assert fmt.offline_button_text(3) == "⏏ 3 libraries offline"
    tip = fmt.offline_button_tip([f"/media/d{i}" for i in range(10)])
    assert "/media/d0" in tip and "and 2 more" in tip and "Click to check again" in tip


def test_checking_again_says_which_are_back_or_that_they_are_still_offline():
    assert fmt.back_online_text(["/media/usb"], 0).startswith("Back online: /media/usb.")
    assert fmt.back_online_text([], 2).startswith("Still offline: 2 libraries.")
    assert fmt.back_online_text([], 1).startswith("Still offline: 1 library.")
    assert fmt.back_online_text([], 0) == "Every library is online."


def test_an_offline_hit_says_its_thumbnail_is_the_cached_one():
    from imgsearch_gui.base.types import SearchHit

    tip = fmt.hit_tooltip(SearchHit("/usb/a.jpg", 0.5, 1, offline=True))
    assert "offline" in tip and "cached" in tip
    assert "offline" not in fmt.hit_tooltip(SearchHit("/p/a.jpg", 0.5, 1))
