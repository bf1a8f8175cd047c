"""Opening a photo and showing it in its folder: a failure says why (a typed reason) and what was
tried. The desktop's programs are small scripts on PATH that record how they were called."""

from __future__ import annotations

import os
import shutil
import sys
import time

import pytest

from imgsearch_gui.app import desktop
from imgsearch_gui.app.desktop import OpenFailure

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="the Linux desktop's programs")


@pytest.fixture
def bin_dir(tmp_path, monkeypatch):
    """An empty PATH (no xdg-open, gio, gdbus...) and no session bus; add programs with
    :func:`program`."""
    path = tmp_path / "bin"
    path.mkdir()
    monkeypatch.setenv("PATH", str(path))
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "runtime"))
    return path


def program(bin_dir, name: str, body: str) -> object:
    """A script ``name`` that appends its arguments to ``<name>.calls`` and runs ``body``."""
    calls = bin_dir / f"{name}.calls"
    script = bin_dir / name
    script.write_text(f'#!/bin/sh\necho "$@" >> "{calls}"\n{body}\n')
    script.chmod(0o755)
    return calls


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photos" / "IMG 0001.jpg"
    path.parent.mkdir()
    path.write_bytes(b"\xff\xd8\xff")
    return str(path)


def test_no_program_to_open_files_with(bin_dir, photo):
    result = desktop.open_path(photo)
    assert not result.ok and result.reason is OpenFailure.NO_OPENER
    assert result.tried == () and result.kind == "image/jpeg" and result.path == photo


def test_no_program_set_for_the_type(bin_dir, photo):
    xdg = program(bin_dir, "xdg-open", "exit 3")  # xdg-open: "no method available"
    gio = program(bin_dir, "gio", "echo \"gio: Failed to find default application for "
                                  "content type 'image/jpeg'\" >&2; exit 2")
    result = desktop.open_path(photo)
    assert result.reason is OpenFailure.NO_APPLICATION
    assert result.tried == ("xdg-open", "gio open")
    assert "default application" in result.detail
    assert xdg.read_text().strip() == photo and gio.read_text().strip() == f"open {photo}"


def test_the_first_program_that_takes_it_opens_it(bin_dir, photo):
    program(bin_dir, "xdg-open", "exit 4")  # "the action failed"
    gio = program(bin_dir, "gio", "exit 0")
    result = desktop.open_path(photo)
    assert result.ok and result.reason is None and result.tried == ("xdg-open", "gio open")
    assert gio.read_text().strip() == f"open {photo}"


def test_a_program_that_fails_says_so(bin_dir, photo):
    program(bin_dir, "xdg-open", "echo 'viewer crashed' >&2; exit 4")
    result = desktop.open_path(photo)
    assert result.reason is OpenFailure.FAILED
    assert result.detail == "xdg-open: exit status 4: viewer crashed"


def test_a_viewer_run_in_the_foreground_is_not_waited_for(bin_dir, photo):
    sleep = shutil.which("sleep", path=os.defpath)
    program(bin_dir, "xdg-open", f"exec {sleep} 5")  # xdg-open without a desktop runs the viewer
    start = time.monotonic()
    result = desktop.open_path(photo)
    assert result.ok and time.monotonic() - start < desktop.LAUNCH_WAIT_S + 2


def test_a_missing_or_offline_photo_is_not_handed_over(bin_dir, photo, tmp_path):
    xdg = program(bin_dir, "xdg-open", "exit 0")
    gone = desktop.open_path(str(tmp_path / "moved.jpg"))
    assert gone.reason is OpenFailure.NOT_FOUND
    offline = desktop.open_path(photo, offline=True)  # there, but its library counts offline
    assert offline.reason is OpenFailure.OFFLINE
    assert desktop.reveal_path(photo, offline=True).reason is OpenFailure.OFFLINE
    assert not xdg.exists()


def test_reveal_without_a_file_manager(bin_dir, photo):
    assert desktop.reveal_path(photo).reason is OpenFailure.NO_FILE_MANAGER
    program(bin_dir, "xdg-open", "exit 3")
    result = desktop.reveal_path(photo)
    assert result.reason is OpenFailure.NO_FILE_MANAGER and result.tried == ("xdg-open",)


def test_reveal_asks_the_file_manager_to_select_the_photo(bin_dir, photo, monkeypatch):
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent")
    gdbus = program(bin_dir, "gdbus", "exit 0")
    xdg = program(bin_dir, "xdg-open", "exit 0")
    result = desktop.reveal_path(photo)
    assert result.ok and result.tried == ("file manager over D-Bus",)
    call = gdbus.read_text()
    assert "org.freedesktop.FileManager1.ShowItems" in call
    assert "/photos/IMG%200001.jpg']" in call and not xdg.exists()


def test_reveal_opens_the_folder_where_no_file_manager_answers_on_dbus(bin_dir, photo,
                                                                       monkeypatch):
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent")
    program(bin_dir, "gdbus", "echo 'The name org.freedesktop.FileManager1 was not provided "
                              "by any .service files' >&2; exit 1")
    xdg = program(bin_dir, "xdg-open", "exit 0")
    result = desktop.reveal_path(photo)
    assert result.ok and result.tried == ("xdg-open",)
    assert xdg.read_text().strip() == os.path.dirname(photo)
