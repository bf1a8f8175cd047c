"""Desktop integration: the menu entry points at the running install; remove undoes install."""

from __future__ import annotations

import configparser
import sys

import pytest

from imgsearch_gui import resources
from imgsearch_gui.app import desktop
from imgsearch_gui.cli import main


def read_entry(path):
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str
    entry.read(path, encoding="utf-8")
    return entry["Desktop Entry"]


def test_install_and_remove(tmp_path):
    command = [str(tmp_path / "my apps" / "imgsearch-gui")]
    written = desktop.install(tmp_path / "share", command=command)
    app = tmp_path / "share" / "applications" / f"{resources.APP_ID}.desktop"
    assert app in written
    d = read_entry(app)
    assert d["Exec"] == f'"{command[0]}" %F'  # quoted: the path has a space
    assert d["TryExec"] == command[0]
    assert d["Icon"] == resources.APP_ID
    icons = tmp_path / "share" / "icons" / "hicolor"
    assert (icons / "scalable" / "apps" / f"{resources.APP_ID}.svg").exists()
    assert (icons / "48x48" / "apps" / f"{resources.APP_ID}.png").read_bytes() == \
        resources.icon_png(48).read_bytes()
    assert (tmp_path / "share" / "metainfo" / f"{resources.APP_ID}.metainfo.xml").exists()
    assert not list((tmp_path / "share").rglob(".*.tmp"))

    removed = desktop.remove(tmp_path / "share")
    assert sorted(removed) == sorted(written)
    # what is left is the desktop's own shared caches (update-desktop-database, if installed)
    left = [p for p in (tmp_path / "share").rglob("*") if p.is_file()]
    assert {p.name for p in left} <= {"mimeinfo.cache", "icon-theme.cache"}


def test_gui_command_in_a_bundle(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "imgsearch" / "imgsearch"))
    assert desktop.gui_command() == [str((tmp_path / "imgsearch" / "imgsearch-gui").resolve())]


def test_gui_command_of_a_pip_install(monkeypatch, tmp_path):
    script = tmp_path / "bin" / "imgsearch-gui"
    monkeypatch.setattr(desktop.shutil, "which", lambda name: str(script))
    assert desktop.gui_command() == [str(script.resolve())]
    monkeypatch.setattr(desktop.shutil, "which", lambda name: None)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "py" / "python3"))
    assert desktop.gui_command()[1:] == ["-m", "imgsearch_gui"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="desktop entries are Linux's")
def test_cli_desktop_entry(tmp_path, capsys):
    assert main(["desktop-entry", "--prefix", str(tmp_path)]) == 0
    assert "wrote" in capsys.readouterr().out
    assert (tmp_path / "applications" / f"{resources.APP_ID}.desktop").exists()
    assert main(["desktop-entry", "--remove", "--prefix", str(tmp_path)]) == 0
    assert not (tmp_path / "applications" / f"{resources.APP_ID}.desktop").exists()


RESERVED = ' \t\n"\'\\><~|&;$*?#()`'  # the spec's reserved characters (quoted if present)


def parse_exec(raw: str) -> list[str]:
    """argv of an Exec value as a launcher reads it (Desktop Entry spec 1.5): the string escapes,
    then the quoting rule, then field codes (%F dropped: no files; %% is a literal %)."""
    value, i = "", 0
    escapes = {"s": " ", "n": "\n", "t": "\t", "r": "\r", "\\": "\\"}
    while i < len(raw):
        if raw[i] == "\\" and i + 1 < len(raw) and raw[i + 1] in escapes:
            value += escapes[raw[i + 1]]
            i += 2
        else:
            value += raw[i]
            i += 1
    args, cur, quoted, i = [], None, False, 0
    while i < len(value):
        c = value[i]
        if quoted:
            if c == "\\":
                assert value[i + 1] in '"`$\\', f"bad escape in {value!r}"
                cur += value[i + 1]
                i += 1
            elif c == '"':
                quoted = False
            else:
                assert c not in '"`$', f"unescaped {c!r} in a quoted argument"
                cur += c
        elif c == " ":
            if cur is not None:
                args.append(cur)
            cur = None
        elif c == '"':
            quoted, cur = True, cur or ""
        else:
            assert c not in RESERVED, f"reserved {c!r} outside quotes in {value!r}"
            cur = (cur or "") + c
        i += 1
    assert not quoted
    if cur is not None:
        args.append(cur)
    out = []
    for arg in args:
        if arg == "%F":
            continue
        assert "%" not in arg.replace("%%", ""), f"a stray field code in {arg!r}"
        out.append(arg.replace("%%", "%"))
    return out


@pytest.mark.parametrize("name", ["100% my apps", "back\\slash dir", "a%b\\c d", '$x "q" `t`'])
def test_exec_escapes_percent_backslash_and_quotes(tmp_path, name):
    """A program path with a space, a % and a backslash comes back exactly from Exec."""
    command = [str(tmp_path / name / "imgsearch-gui"), "--flag=50%"]
    app = desktop.install(tmp_path / "share", command=command)[0]
    line = next(x for x in app.read_text(encoding="utf-8").splitlines() if x.startswith("Exec="))
    assert parse_exec(line[len("Exec="):]) == command
    try_exec = next(x for x in app.read_text(encoding="utf-8").splitlines()
                    if x.startswith("TryExec="))
    assert try_exec[len("TryExec="):].replace("\\\\", "\\") == command[0]
