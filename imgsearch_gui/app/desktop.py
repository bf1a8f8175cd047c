"""Desktop integration on Linux: a menu entry, icons and AppStream metadata for the current user;
and opening a photo, or showing it in its folder, with the programs of the desktop.

``imgsearch desktop-entry`` writes them under $XDG_DATA_HOME (~/.local/share) with ``Exec``
pointing at the program that runs the command (a pip install's ``imgsearch-gui``, or the
bundle's executable), so the same command serves both kinds of install;
``imgsearch desktop-entry --remove`` takes them away again.

:func:`open_path` and :func:`reveal_path` say why they could not (:class:`OpenFailure`: no
program to hand files to, none set for the file's type, no file manager...) and what they tried,
so the window can say it in words rather than "Could not open".
"""

from __future__ import annotations

import logging
import mimetypes
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path

from imgsearch_gui import resources

log = logging.getLogger(__name__)


def data_home(override: str | os.PathLike[str] | None = None) -> Path:
    if override is not None:
        return Path(override).expanduser()
    env = os.environ.get("XDG_DATA_HOME")
    return Path(env).expanduser() if env else Path.home() / ".local" / "share"


def gui_command() -> list[str]:
    """How to start the GUI from a menu: the bundle's executable, the installed script or python -m."""
    if getattr(sys, "frozen", False):
        return [str(Path(sys.executable).resolve().with_name("imgsearch-gui"))]
    script = shutil.which("imgsearch-gui")
    if script is None:  # next to the running interpreter (a venv that is not activated)
        candidate = Path(sys.executable).with_name("imgsearch-gui")
        script = str(candidate) if candidate.exists() else None
    if script is not None:
        return [str(Path(script).resolve())]
    return [str(Path(sys.executable).resolve()), "-m", "imgsearch_gui"]


_RESERVED = ' \t\n"\'\\><~|&;$*?#()`'


def _quote(arg: str) -> str:
    """One Exec argument as the Desktop Entry spec's quoting rule asks: an argument with a reserved
    character goes in double quotes, where a double quote, backtick, dollar sign or backslash is
    escaped by a backslash; a literal ``%`` is doubled (else it starts a field code)."""
    if any(c in arg for c in _RESERVED):
        escaped = "".join("\\" + c if c in '"`$\\' else c for c in arg)
        arg = f'"{escaped}"'
    return arg.replace("%", "%%")


def _escape_string(value: str) -> str:
    """The spec's escapes of a string value, applied over the quoting rule: ``\\`` ``\\n`` ``\\t``
    ``\\r`` (so a backslash in a quoted path is written as four)."""
    return (value.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t")
            .replace("\r", "\\r"))


def desktop_entry_text(command: list[str]) -> str:
    exec_line = " ".join(_quote(a) for a in command) + " %F"
    lines = []
    for line in resources.desktop_file().read_text(encoding="utf-8").splitlines():
        if line.startswith("Exec="):
            line = f"Exec={_escape_string(exec_line)}"
        elif line.startswith("TryExec="):
            line = f"TryExec={_escape_string(command[0])}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def targets(prefix: Path) -> dict[Path, Path | None]:
    """Destination -> source (None: the desktop entry, generated) of every file we install."""
    app_id = resources.APP_ID
    files: dict[Path, Path | None] = {prefix / "applications" / f"{app_id}.desktop": None}
    files[prefix / "metainfo" / f"{app_id}.metainfo.xml"] = resources.metainfo_file()
    files[prefix / "icons" / "hicolor" / "scalable" / "apps" / f"{app_id}.svg"] = resources.icon_svg()
    for size in resources.ICON_SIZES:
        files[prefix / "icons" / "hicolor" / f"{size}x{size}" / "apps" / f"{app_id}.png"] = (
            resources.icon_png(size)
        )
    return files


def install(prefix: str | os.PathLike[str] | None = None,
            command: list[str] | None = None) -> list[Path]:
    """Write the menu entry, icons and metadata; returns the files written."""
    root = data_home(prefix)
    written = []
    for dst, src in targets(root).items():
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(f".{dst.name}.tmp")
        if src is None:
            tmp.write_text(desktop_entry_text(command or gui_command()), encoding="utf-8")
        else:
            shutil.copyfile(src, tmp)
        tmp.replace(dst)
        written.append(dst)
    _refresh_caches(root)
    log.info("desktop entry installed under %s", root)
    return written


def remove(prefix: str | os.PathLike[str] | None = None) -> list[Path]:
    """Delete what :func:`install` wrote; returns the files that were there."""
    root = data_home(prefix)
    removed = []
    for dst in targets(root):
        if dst.exists():
            dst.unlink()
            removed.append(dst)
    _refresh_caches(root)
    return removed


def _refresh_caches(root: Path) -> None:
    """Tell the desktop about the change where the usual tools exist (best effort)."""
    for tool, arg in (("update-desktop-database", root / "applications"),
                      ("gtk-update-icon-cache", root / "icons" / "hicolor")):
        exe = shutil.which(tool)
        if exe and arg.is_dir():
            try:
                subprocess.run([exe, "-q", str(arg)], check=False, timeout=30,
                               capture_output=True)
            except (OSError, subprocess.SubprocessError) as exc:  # pragma: no cover
                log.debug("%s failed: %s", tool, exc)


# ==== opening a photo, showing it in its folder ===========================================
class OpenFailure(str, Enum):
    """Why a photo (or its folder) could not be opened."""

    OFFLINE = "offline"  # its library is not reachable (not even tried)
    NOT_FOUND = "not found"  # moved or deleted since it was indexed
    NO_OPENER = "no opener"  # no program to hand files to (xdg-open, gio, ...) is installed
    NO_APPLICATION = "no application"  # no program is set to open files of its type
    NO_FILE_MANAGER = "no file manager"  # nothing could show the folder
    FAILED = "failed"  # the program tried said no (``detail`` has its words)


@dataclass(frozen=True)
class OpenResult:
    path: str
    reason: OpenFailure | None = None  # None: handed over to the desktop
    tried: tuple[str, ...] = ()  # the programs asked, in order ("xdg-open", "gio open")
    kind: str | None = None  # the file's MIME type where known ("image/jpeg")
    detail: str = ""  # what the last program said (exit status, its error output)

    @property
    def ok(self) -> bool:
        return self.reason is None


#: How long a launcher may take to say it could not (a launcher hands the file over and
#: returns; xdg-open outside a desktop runs the viewer itself and returns when it is closed).
LAUNCH_WAIT_S = 1.5

_LINUX_OPENERS = (("xdg-open",), ("gio", "open"), ("kde-open5",), ("kde-open",), ("exo-open",))
_FILE_MANAGER1 = "org.freedesktop.FileManager1"


def open_path(path: str, *, offline: bool = False) -> OpenResult:
    """Open ``path`` with the desktop's program for its type. ``offline``: its library is not
    reachable; nothing is tried (a stat of a share that is down can hang)."""
    kind = mimetypes.guess_type(path)[0]
    early = _unreachable(path, offline, kind)
    if early is not None:
        return early
    if sys.platform == "win32":  # pragma: no cover - not run on Linux
        return _startfile(path, kind)
    if sys.platform == "darwin":  # pragma: no cover
        return _launch([["open", path]], path, kind)
    return _launch(_available(_LINUX_OPENERS, path), path, kind)


def reveal_path(path: str, *, offline: bool = False) -> OpenResult:
    """Show ``path`` in a file manager: selected in its folder where the file manager offers
    that (org.freedesktop.FileManager1 over D-Bus), else the folder opened."""
    early = _unreachable(path, offline, "inode/directory")
    if early is not None:
        return early
    if sys.platform == "win32":  # pragma: no cover - explorer's exit status means nothing
        subprocess.Popen(["explorer", f"/select,{os.path.normpath(path)}"])
        return OpenResult(path, tried=("explorer",))
    if sys.platform == "darwin":  # pragma: no cover
        return _launch([["open", "-R", path]], path, "inode/directory")
    shown = _show_items(path)
    if shown.ok:
        return shown
    folder = os.path.dirname(os.path.abspath(path))
    opened = _launch(_available(_LINUX_OPENERS, folder), path, "inode/directory")
    if opened.ok:
        return opened
    reason = (OpenFailure.FAILED if opened.reason is OpenFailure.FAILED
              else OpenFailure.NO_FILE_MANAGER)
    return OpenResult(path, reason, shown.tried + opened.tried, "inode/directory",
                      opened.detail or shown.detail)


def _unreachable(path: str, offline: bool, kind: str | None) -> OpenResult | None:
    if offline:
        return OpenResult(path, OpenFailure.OFFLINE, kind=kind)
    if not os.path.exists(path):
        return OpenResult(path, OpenFailure.NOT_FOUND, kind=kind)
    return None


def _available(openers: tuple[tuple[str, ...], ...], target: str) -> list[list[str]]:
    found = []
    for program, *args in openers:
        exe = shutil.which(program)
        if exe is not None:
            found.append([exe, *args, target])
    return found


def _show_items(path: str) -> OpenResult:
    """Ask the session's file manager to show ``path`` selected (Nautilus, Dolphin, Nemo...)."""
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR")
    if not (os.environ.get("DBUS_SESSION_BUS_ADDRESS")
            or runtime_dir and os.path.exists(os.path.join(runtime_dir, "bus"))):
        return OpenResult(path, OpenFailure.NO_FILE_MANAGER)  # no session bus to ask
    uri = Path(os.path.abspath(path)).as_uri()  # quotes and commas percent-encoded
    commands = []
    gdbus, dbus_send = shutil.which("gdbus"), shutil.which("dbus-send")
    if gdbus:
        commands.append([gdbus, "call", "--session", "--dest", _FILE_MANAGER1, "--object-path",
                         "/org/freedesktop/FileManager1", "--timeout", "3", "--method",
                         f"{_FILE_MANAGER1}.ShowItems", f"['{uri}']", ""])
    elif dbus_send:
        commands.append([dbus_send, "--session", "--print-reply", "--reply-timeout=3000",
                         f"--dest={_FILE_MANAGER1}", "/org/freedesktop/FileManager1",
                         f"{_FILE_MANAGER1}.ShowItems", f"array:string:{uri}", "string:"])
    result = _launch(commands, path, "inode/directory")
    return replace(result, tried=("file manager over D-Bus",) if commands else ())


def _launch(commands: list[list[str]], path: str, kind: str | None) -> OpenResult:
    """Try ``commands`` in turn until one takes the file; the most telling failure otherwise."""
    if not commands:
        return OpenResult(path, OpenFailure.NO_OPENER, (), kind)
    tried: list[str] = []
    reason, detail = OpenFailure.FAILED, ""
    for argv in commands:
        name = " ".join([os.path.basename(argv[0]), *argv[1:-1]][:2])
        tried.append(name)
        status, said = _run(argv)
        if status in (0, None):
            log.info("opened %s with %s", path, name)
            return OpenResult(path, None, tuple(tried), kind)
        log.info("%s could not open %s (exit status %s): %s", name, path, status, said)
        # xdg-open: 3 "no method available" (no program for the type); gio: "Failed to find
        # default application"; open(1) on macOS: "No application knows how to open"
        if status == 3 and name == "xdg-open" or "application" in said.lower():
            reason = OpenFailure.NO_APPLICATION
        detail = f"{name}: exit status {status}" + (f": {said}" if said else "")
    return OpenResult(path, reason, tuple(tried), kind, detail)


def _run(argv: list[str]) -> tuple[int | None, str]:
    """Start ``argv`` in a session of its own; its exit status and error output if it ends
    within :data:`LAUNCH_WAIT_S`, else None (it runs on: the viewer itself, or slow to hand
    over, which is not a failure). Its error output goes to a file, not a pipe: a viewer it
    starts inherits it and would hold a pipe open."""
    with tempfile.TemporaryFile() as err:
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=err, start_new_session=True, env=_child_env())
        except OSError as exc:
            return 127, str(exc)
        try:
            status = proc.wait(timeout=LAUNCH_WAIT_S)
        except subprocess.TimeoutExpired:
            threading.Thread(target=proc.wait, daemon=True, name="reap-opener").start()
            return None, ""
        err.seek(0)
        return status, err.read(4000).decode("utf-8", "replace").strip()


def _child_env() -> dict[str, str]:
    """The environment of a program we start: a bundle's own libraries left out (PyInstaller
    keeps the user's LD_LIBRARY_PATH as ``*_ORIG``), else a viewer may load ours and fail."""
    env = dict(os.environ)
    if getattr(sys, "frozen", False):
        for var in ("LD_LIBRARY_PATH", "DYLD_LIBRARY_PATH"):
            original = env.pop(f"{var}_ORIG", None)
            if original is not None:
                env[var] = original
            else:
                env.pop(var, None)
    return env


def _startfile(path: str, kind: str | None) -> OpenResult:  # pragma: no cover - Windows
    try:
        os.startfile(path)  # type: ignore[attr-defined]
    except OSError as exc:
        no_association = getattr(exc, "winerror", None) == 1155
        return OpenResult(path, OpenFailure.NO_APPLICATION if no_association
                          else OpenFailure.FAILED, ("Windows",), kind, str(exc))
    return OpenResult(path, None, ("Windows",), kind)
