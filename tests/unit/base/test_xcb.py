"""A missing X11 library is named with its package before Qt could abort (issue 17, item 1)."""

from __future__ import annotations

import pytest

from imgsearch_gui import __main__ as app_main
from imgsearch_gui.base import xcb


def test_which_platform_qt_will_start():
    assert xcb.uses_xcb({"DISPLAY": ":0"}, "linux")
    assert not xcb.uses_xcb({"DISPLAY": ":0", "QT_QPA_PLATFORM": "offscreen"}, "linux")
    assert xcb.uses_xcb({"QT_QPA_PLATFORM": "xcb"}, "linux")
    assert not xcb.uses_xcb({"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0",
                             "XDG_SESSION_TYPE": "wayland"}, "linux")
    assert not xcb.uses_xcb({"DISPLAY": ":0"}, "darwin")


def test_missing_libraries_are_named_with_their_packages():
    gone = {"libxcb-icccm.so.4", "libxcb-keysyms.so.1"}
    missing = xcb.missing_libraries(load=lambda soname: soname not in gone)
    assert {m.soname for m in missing} == gone
    advice = xcb.install_advice(missing)
    assert "libxcb-icccm.so.4, libxcb-keysyms.so.1" in advice
    assert "sudo apt install libxcb-icccm4 libxcb-keysyms1" in advice
    assert "sudo dnf install xcb-util-wm xcb-util-keysyms" in advice


def test_every_library_of_the_list_loads_here():
    """This machine runs the GUI tests' real window under Xvfb: nothing of the list is missing
    (a wrong soname in the list would be reported to every user)."""
    assert xcb.missing_libraries() == []


def test_the_app_says_what_to_install_instead_of_aborting(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("DISPLAY", ":99")
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("IMGSEARCH_LOG_DIR", str(tmp_path))
    monkeypatch.setattr(xcb, "_loads", lambda soname: soname != "libxcb-cursor.so.0")
    if not xcb.uses_xcb():
        pytest.skip("not Linux")
    assert app_main.main([]) == 2
    err = capsys.readouterr().err
    assert "libxcb-cursor.so.0" in err and "sudo apt install libxcb-cursor0" in err
