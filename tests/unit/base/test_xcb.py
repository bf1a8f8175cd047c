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
    def ldd(plugin):
        return ["libxcb-icccm.so.4", "libxcb-keysyms.so.1"]

    missing = xcb.missing_libraries(unresolved=ldd, plugin="libqxcb.so")
    assert [m.soname for m in missing] == ["libxcb-icccm.so.4", "libxcb-keysyms.so.1"]
    advice = xcb.install_advice(missing)
    assert "libxcb-icccm.so.4, libxcb-keysyms.so.1" in advice
    assert "sudo apt install libxcb-icccm4 libxcb-keysyms1" in advice
    assert "sudo dnf install xcb-util-wm xcb-util-keysyms" in advice
    unknown = xcb.missing_libraries(unresolved=lambda p: ["libfuture.so.9"], plugin="x")
    assert "libfuture.so.9" in xcb.install_advice(unknown)


def test_only_what_the_plugin_asks_for_counts():
    """Nothing missing, or no way to tell (no ldd): the app starts."""
    assert xcb.missing_libraries(unresolved=lambda p: [], plugin="x") == []
    assert xcb.missing_libraries(unresolved=lambda p: None, plugin="x") == []


def test_ldd_output_is_read_for_what_is_not_found():
    out = ("\tlinux-vdso.so.1 (0x00007ffd)\n"
           "\tlibQt6XcbQpa.so.6 => /x/PySide6/Qt/lib/libQt6XcbQpa.so.6 (0x00007f26)\n"
           "\tlibxcb-cursor.so.0 => not found\n"
           "\tlibxcb-icccm.so.4 => /lib/x86_64-linux-gnu/libxcb-icccm.so.4 (0x00007f26)\n"
           "\tlibxcb-keysyms.so.1 => not found\n")
    assert xcb.not_found(out) == ["libxcb-cursor.so.0", "libxcb-keysyms.so.1"]
    assert xcb.not_found("") == []


def test_the_app_says_what_to_install_instead_of_aborting(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("DISPLAY", ":99")
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("IMGSEARCH_LOG_DIR", str(tmp_path))
    monkeypatch.setattr(xcb, "_unresolved", lambda plugin: ["libxcb-cursor.so.0"])
    monkeypatch.setattr(xcb, "plugin_file", lambda: "libqxcb.so")
    if not xcb.uses_xcb():
        pytest.skip("not Linux")
    assert app_main.main([]) == 2
    err = capsys.readouterr().err
    assert "libxcb-cursor.so.0" in err and "sudo apt install libxcb-cursor0" in err
