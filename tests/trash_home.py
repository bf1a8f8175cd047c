"""Point send2trash's home trash at a test folder (importable from any test)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def redirect_trash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The home trash inside ``tmp_path``, which send2trash and app/trash both use; skips where
    the freedesktop trash is not what send2trash uses."""
    import send2trash

    from imgsearch_gui.app import trash

    if not trash.FREEDESKTOP:
        pytest.skip("the freedesktop trash is Linux/BSD only")
    from send2trash import plat_other

    home, data_home = tmp_path / "home", tmp_path / "xdg"
    home.mkdir(exist_ok=True)
    data_home.mkdir(exist_ok=True)
    if os.stat(home).st_dev != os.stat(tmp_path).st_dev:  # pragma: no cover - odd tmp mounts
        pytest.skip("tmp_path spans devices: send2trash would not use the home trash")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(data_home))
    monkeypatch.setattr(plat_other, "XDG_DATA_HOME", os.fsencode(data_home))
    monkeypatch.setattr(plat_other, "HOMETRASH_B", os.fsencode(data_home / "Trash"))
    monkeypatch.setattr(plat_other, "HOMETRASH", str(data_home / "Trash"))
    monkeypatch.setattr(send2trash, "send2trash", plat_other.send2trash)
    return data_home / "Trash"
