"""File names whose bytes are not UTF-8 on the command line (issue 12, review findings 3 and 8):
every path ``index``, ``info``, ``search`` and the error lines print is readable text (``\\xNN``
escapes), never a crash on a strict UTF-8 stdout nor raw bytes that are not UTF-8; ``index --json``
stays valid UTF-8 JSON and gives the exact bytes in ``*_b64`` keys, as ``search --json`` does."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from imgsearch_gui.base.types import IndexReport, SkippedFile
from imgsearch_gui.cli import dispatch as cli
from imgsearch_gui.cli.common import _print_waiting
from imgsearch_gui.cli.index import summary

REPO = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="bytes file names are POSIX")

ODD_DIR = b"lib\xff"
ODD_FILE = b"bad\xfe.png"
#: a strict UTF-8 stdout (as under en_US.UTF-8), and Python's UTF-8 mode (surrogateescape: raw bytes)
ENVS = {"strict": {"PYTHONIOENCODING": "utf-8"}, "c.utf8": {"LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}}


def _png(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (40, 32), (seed * 70 % 256, 90, 30)).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def odd_library(tmp_path) -> bytes:
    """A library folder named ``lib\\xff`` with two photos and a broken file named ``bad\\xfe.png``."""
    root = os.fsencode(tmp_path) + b"/" + ODD_DIR
    os.mkdir(root)
    for i in range(2):
        with open(root + f"/p{i}.png".encode(), "wb") as fh:
            fh.write(_png(i))
    with open(root + b"/" + ODD_FILE, "wb") as fh:
        fh.write(b"not an image")
    return root


def _cli(env_name: str, tmp_path: Path, *args: str | bytes) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONIOENCODING", "LC_ALL", "LANG")}
    env.update(PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", **ENVS[env_name])
    return subprocess.run([sys.executable, "-m", "imgsearch_gui.cli", *args,
                           "--data-dir", str(tmp_path / "data")],
                          env=env, capture_output=True, timeout=180)


def _ok(done: subprocess.CompletedProcess[bytes]) -> str:
    assert done.returncode == 0, done.stderr.decode("utf-8", "replace")
    return done.stdout.decode("utf-8")  # strict: what was printed is valid UTF-8


@pytest.mark.parametrize("env_name", sorted(ENVS))
def test_index_and_info_print_a_non_utf8_name_readably(odd_library, tmp_path, env_name):
    """Before: ``index`` and ``info`` exited 1 (UnicodeEncodeError) on a strict stdout, and wrote
    bytes that are not UTF-8 in UTF-8 mode."""
    shown = os.fsdecode(odd_library).encode("utf-8", "surrogateescape").decode("utf-8",
                                                                                "backslashreplace")
    assert shown.endswith("lib\\xff")
    text = _ok(_cli(env_name, tmp_path, "index", odd_library, "--backbone", "tiny", "--size", "64",
                    "--dba", "0"))
    assert text.startswith(f"{shown}: 2 searchable;"), text
    assert f"  skipped {shown}/bad\\xfe.png: not an image" in text
    info = _ok(_cli(env_name, tmp_path, "info"))
    assert f"library:   {shown} (2 indexed, 1 skipped)" in info
    # two queries: each is named in a '# QUERY' line
    found = _ok(_cli(env_name, tmp_path, "search", odd_library + b"/p0.png", odd_library + b"/p1.png",
                     "-k", "1"))
    assert found.splitlines()[0] == f"# {shown}/p0.png"


def test_index_json_gives_the_exact_bytes_of_a_non_utf8_name(odd_library, tmp_path):
    """Before: the paths were lone-surrogate escapes (``\\udcff``), which jq and other JSON readers
    turn into U+FFFD: the name was lost."""
    out = _ok(_cli("strict", tmp_path, "index", odd_library, "--json", "--backbone", "tiny",
                   "--size", "64", "--dba", "0"))
    rep = json.loads(out)
    json.dumps(rep, ensure_ascii=False).encode("utf-8")  # no lone surrogates anywhere
    [skipped] = rep["skipped"]
    assert skipped["path"].endswith("lib\\xff/bad\\xfe.png")
    assert base64.b64decode(skipped["path_b64"]) == odd_library + b"/" + ODD_FILE
    assert skipped["reason"]


def _report(library: str, **kw) -> IndexReport:
    fields = dict(library=library, indexed=0, embedded=0, unchanged=0, moved=0, removed=0,
                  duplicates=0, skipped=(), seconds=1.0, images_per_s=0.0)
    return IndexReport(**(fields | kw))


def test_index_json_offline_and_unreadable_carry_b64_only_where_needed():
    odd = os.fsdecode(b"/m/caf\xe9")
    reports = [_report(odd, offline=True), _report("/m/plain", offline=True),
               _report("/p", unreadable=(odd + "/sub", "/p/ok"),
                       skipped=(SkippedFile("/p/a.png", "too small"),))]
    out = summary(reports, 1.0)
    json.dumps(out, ensure_ascii=False).encode("utf-8")
    assert out["offline"] == ["/m/caf\\xe9", "/m/plain"]
    assert [base64.b64decode(b) if b else None for b in out["offline_b64"]] == [b"/m/caf\xe9", None]
    assert out["unreadable"] == ["/m/caf\\xe9/sub", "/p/ok"]
    assert base64.b64decode(out["unreadable_b64"][0]) == b"/m/caf\xe9/sub"
    assert out["unreadable_b64"][1] is None
    assert out["skipped"] == [{"path": "/p/a.png", "reason": "too small"}]  # exact: no path_b64
    plain = summary([_report("/p", offline=True)], 1.0)
    assert "offline_b64" not in plain and "unreadable_b64" not in plain


def test_an_error_line_naming_a_non_utf8_path_is_readable(tmp_path, capsys):
    """A UserError's path shows \\xNN escapes (before: Python's stderr fallback, ``\\udcfd``)."""
    missing = os.fsdecode(os.fsencode(tmp_path) + b"/nope\xfd.png")
    code = cli.main(["search", missing, "--data-dir", str(tmp_path / "data")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.rstrip("\n").endswith("nope\\xfd.png: no such file"), err
    err.encode("utf-8")


def test_the_wait_message_is_readable(capsys):
    _print_waiting(os.fsdecode(b"waiting for the writer of /d/caf\xe9 ..."))
    err = capsys.readouterr().err
    assert err == "imgsearch: waiting for the writer of /d/caf\\xe9 ...\n"


def test_a_name_printed_without_display_path_never_fails_the_command(tmp_path):
    """The safety net under display_path: a strict UTF-8 console gets an escape, not a crash."""
    code = ("import sys\n"
            "from imgsearch_gui.cli import dispatch\n"
            "dispatch.COMMANDS['info'] = lambda args: print('caf\\udce9.jpg') or 0\n"
            "sys.exit(dispatch.main(['info']))\n")
    env = {**os.environ, "PYTHONIOENCODING": "utf-8", "IMGSEARCH_LOG_DIR": str(tmp_path / "logs"),
           "IMGSEARCH_DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode("utf-8") == "caf\\udce9.jpg\n"
