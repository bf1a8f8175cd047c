"""``imgsearch index --json``, offline libraries on the command line, ``--prune``,
``--retry-skipped`` and the documented exit statuses (issue 12)."""

from __future__ import annotations

import io
import json
import os
import signal

import pytest
from PIL import Image

from imgsearch_gui.base.types import CancelToken
from imgsearch_gui.cli import dispatch as cli
from imgsearch_gui.cli.common import cancel_on_signals

MODEL = ["--backbone", "tiny", "--size", "64"]
TINY = [*MODEL, "--dba", "0"]
KEYS = {"indexed", "embedded", "unchanged", "moved", "removed", "duplicates", "skipped",
        "offline", "unreadable", "cancelled", "seconds"}


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def index_json(capsys, *argv) -> tuple[int, dict]:
    code, out, _ = run(capsys, "index", *argv, "--json", *TINY)
    lines = out.splitlines()
    assert len(lines) == 1, out  # one JSON object, nothing else on stdout
    return code, json.loads(lines[0])


def png_bytes(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (48, 40), (seed * 40 % 256, 90, 30)).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def library(tmp_path):
    root = tmp_path / "drive" / "photos"
    (root / "sub").mkdir(parents=True)
    for i in range(5):
        (root / ("sub" if i % 2 else "") / f"p{i}.png").write_bytes(png_bytes(i))
    (root / "broken.png").write_bytes(b"\0" * len(png_bytes(7)))  # same size as the fix below
    return root


def test_index_json_keys_and_values(library, tmp_path, capsys):
    data = str(tmp_path / "data")
    code, first = index_json(capsys, str(library), "--data-dir", data)
    assert code == 0 and set(first) >= KEYS
    assert (first["indexed"], first["embedded"], first["unchanged"], first["moved"],
            first["removed"], first["duplicates"]) == (5, 5, 0, 0, 0, 0)
    assert [s["path"] for s in first["skipped"]] == [str(library / "broken.png")]
    assert first["skipped"][0]["reason"]
    assert first["offline"] == [] and first["cancelled"] is False
    assert isinstance(first["seconds"], float) and first["seconds"] > 0
    (library / "p0.png").rename(library / "sub" / "moved.png")
    (library / "p2.png").unlink()
    code, again = index_json(capsys, str(library), "--data-dir", data)
    assert (again["indexed"], again["embedded"], again["unchanged"], again["moved"],
            again["removed"]) == (4, 0, 3, 1, 1)
    assert len(again["skipped"]) == 1


def test_an_offline_library_is_kept_reported_and_marked(library, tmp_path, capsys):
    data = str(tmp_path / "data")
    index_json(capsys, str(library), "--data-dir", data)
    away = library.with_name("unplugged")
    library.rename(away)

    code, rep = index_json(capsys, str(library), "--data-dir", data)
    assert code == 0 and rep["offline"] == [str(library)]
    assert (rep["removed"], rep["embedded"], rep["indexed"]) == (0, 0, 5)
    code, out, _ = run(capsys, "info", "--data-dir", data, *MODEL)
    assert code == 0 and "5 vectors" in out and "OFFLINE" in out
    code, out, _ = run(capsys, "search", str(away / "p0.png"), "--json", "-k", "3",
                       "--data-dir", data, *MODEL)
    hits = json.loads(out)
    assert code == 0 and hits[0]["path"] == str(library / "p0.png")
    assert all(h["offline"] is True for h in hits)

    away.rename(library)
    code, rep = index_json(capsys, str(library), "--data-dir", data)
    assert (rep["embedded"], rep["unchanged"], rep["offline"]) == (0, 5, [])
    code, out, _ = run(capsys, "search", str(library / "p0.png"), "--json", "--data-dir", data,
                       *MODEL)
    assert not any("offline" in h for h in json.loads(out))


def test_an_emptied_library_needs_prune(library, tmp_path, capsys):
    data = str(tmp_path / "data")
    index_json(capsys, str(library), "--data-dir", data)
    library.rename(tmp_path / "elsewhere")
    library.mkdir()  # an empty mount point
    code, rep = index_json(capsys, str(library), "--data-dir", data)
    assert code == 0 and rep["offline"] == [str(library)] and rep["removed"] == 0
    code, rep = index_json(capsys, str(library), "--prune", "--data-dir", data)
    assert code == 0 and rep["offline"] == [] and rep["removed"] == 6 and rep["indexed"] == 0


def test_retry_skipped_tries_an_unchanged_skipped_file_again(library, tmp_path, capsys):
    data = str(tmp_path / "data")
    broken = library / "broken.png"
    index_json(capsys, str(library), "--data-dir", data)
    st = broken.stat()
    broken.write_bytes(png_bytes(7))  # fixed, same size; the old mtime put back
    os.utime(broken, ns=(st.st_atime_ns, st.st_mtime_ns))
    _, rep = index_json(capsys, str(library), "--data-dir", data)
    assert rep["embedded"] == 0 and len(rep["skipped"]) == 1  # unchanged: not tried
    _, rep = index_json(capsys, str(library), "--retry-skipped", "--data-dir", data)
    assert rep["embedded"] == 1 and rep["skipped"] == [] and rep["indexed"] == 6


def test_a_missing_folder_that_is_no_library_is_bad_input(tmp_path, capsys):
    code, out, err = run(capsys, "index", str(tmp_path / "nowhere"), "--json",
                         "--data-dir", str(tmp_path / "data"), *TINY)
    assert code == 2 and "not a folder" in err and out == ""


def test_index_help_documents_json_and_exit_statuses(capsys):
    with pytest.raises(SystemExit):
        cli.main(["index", "--help"])
    out = capsys.readouterr().out
    for line in ("0  done", "1  cancelled", "2  bad input", "3  another process",
                 "4  storage error"):
        assert line in out
    for key in KEYS - {"moved", "removed", "duplicates"}:
        assert key in out
    for fmt in (".heic", ".avif", ".cr2", ".dng", "RAW+JPEG"):  # the formats it looks for
        assert fmt in out


def test_the_first_ctrl_c_cancels_the_job_instead_of_killing_it():
    token = CancelToken()
    before = signal.getsignal(signal.SIGINT)
    with cancel_on_signals(token):
        os.kill(os.getpid(), signal.SIGINT)
        assert token.cancelled
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before  # the handler of before is back


def test_sigterm_cancels_the_job_too_and_the_handlers_are_restored():
    token = CancelToken()
    before = signal.getsignal(signal.SIGTERM)
    with cancel_on_signals(token):
        os.kill(os.getpid(), signal.SIGTERM)
        assert token.cancelled
        os.kill(os.getpid(), signal.SIGTERM)  # a second SIGTERM: still a clean wind-down
    assert signal.getsignal(signal.SIGTERM) is before
