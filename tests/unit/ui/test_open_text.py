"""When a photo cannot be opened, the window says why in words, from the typed reason."""

from __future__ import annotations

from imgsearch_gui.app.desktop import OpenFailure, OpenResult
from imgsearch_gui.ui.open_text import COPY_PATH_FAILURES, file_kind, open_failure_text


def test_no_program_for_the_type_names_the_format_and_what_was_tried():
    result = OpenResult("/p/IMG_1.JPG", OpenFailure.NO_APPLICATION, ("xdg-open", "gio open"),
                        "image/jpeg")
    assert open_failure_text(result, copied=True) == (
        "Could not open IMG_1.JPG: no program is set to open JPEG files on this system "
        "(tried xdg-open, gio open). The path is copied to the clipboard.")


def test_each_reason_in_words():
    def text(reason, reveal=False, detail=""):
        return open_failure_text(OpenResult("/p/a.cr2", reason, (), None, detail), reveal)

    assert "no program to open files with was found" in text(OpenFailure.NO_OPENER)
    assert text(OpenFailure.NO_FILE_MANAGER, reveal=True) == (
        "Could not show a.cr2 in its folder: no file manager was found to show the folder.")
    assert "library is offline" in text(OpenFailure.OFFLINE)
    assert "no longer at /p/a.cr2" in text(OpenFailure.NOT_FOUND)
    assert "xdg-open: exit status 4" in text(OpenFailure.FAILED, detail="xdg-open: exit status 4")
    assert file_kind("/p/a.cr2") == "camera RAW" and file_kind("/p/a.xyz") == "XYZ"
    # the path is worth having only where the file is there
    assert OpenFailure.OFFLINE not in COPY_PATH_FAILURES
    assert OpenFailure.NOT_FOUND not in COPY_PATH_FAILURES
