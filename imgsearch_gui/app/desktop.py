"""Desktop integration on Linux: a menu entry, icons and AppStream metadata for the current user.

``imgsearch desktop-entry`` writes them under $XDG_DATA_HOME (~/.local/share) with ``Exec``
pointing at the program that runs the command (a pip install's ``imgsearch-gui``, or the
bundle's executable), so the same command serves both kinds of install;
``imgsearch desktop-entry --remove`` takes them away again.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
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
