"""atomic_write: tmp, flush, fsync, os.replace, fsync the folder; and the three writers that use it
(embedder.json, whitenings, checkpoints): durable, and intact under a full disk."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from imgsearch_gui.base.atomic import atomic_write

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def syscalls(monkeypatch):
    """The fsyncs (of a file or a folder, by path) and renames, in order."""
    calls: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        calls.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src, dst):
        calls.append(("replace", str(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return calls


def _durable(calls: list[tuple[str, str]], target: Path) -> None:
    """The temp file was fsynced, then moved over ``target``, then the folder fsynced."""
    names = [c[0] for c in calls]
    assert names == ["fsync", "replace", "fsync"], calls
    assert Path(calls[0][1]).parent == target.parent and calls[0][1] != str(target)
    assert calls[1] == ("replace", str(target))
    assert calls[2] == ("fsync", str(target.parent))


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="needs /proc")
def test_atomic_write_fsyncs_file_then_folder(tmp_path, syscalls):
    target = tmp_path / "x.json"
    target.write_text("old")
    atomic_write(target, b"new")
    assert target.read_bytes() == b"new"
    _durable(syscalls, target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.json"]


def test_a_failing_write_keeps_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / "x.bin"
    target.write_bytes(b"old")

    def write(fh):
        fh.write(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        atomic_write(target, write)
    assert target.read_bytes() == b"old" and sorted(tmp_path.iterdir()) == [target]


def test_new_files_get_the_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write(tmp_path / "a", b"x")
    finally:
        os.umask(old)
    assert (tmp_path / "a").stat().st_mode & 0o777 == 0o644


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="needs /proc")
def test_config_whitening_and_checkpoint_writes_are_durable(tmp_path, syscalls):
    import numpy as np
    import torch

    from imgsearch_gui.app.config import save_config
    from imgsearch_gui.base.config import EmbedderConfig
    from imgsearch_gui.ml.checkpoint import Checkpoint, save_checkpoint
    from imgsearch_gui.ml.whitening import Whitening

    save_config(tmp_path, EmbedderConfig(backbone="tiny"))
    _durable(syscalls, tmp_path / "embedder.json")
    syscalls.clear()
    w = Whitening(mean=np.zeros(4, np.float32), projection=np.eye(4, dtype=np.float32), kind="pca")
    w.save(tmp_path / "w.npz")
    _durable(syscalls, tmp_path / "w.npz")
    assert np.array_equal(Whitening.load(tmp_path / "w.npz").projection, w.projection)
    syscalls.clear()
    save_checkpoint(tmp_path / "c.pt", Checkpoint("tiny", {"w": torch.ones(2)}, "gem", {"p": 3.0}, 64))
    _durable(syscalls, tmp_path / "c.pt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pt", "embedder.json", "w.npz"]


_FULL_DISK = textwrap.dedent("""
    import resource, signal, sys
    from pathlib import Path
    import numpy as np, torch
    from imgsearch_gui.app.config import save_config
    from imgsearch_gui.base.config import EmbedderConfig
    from imgsearch_gui.ml.checkpoint import Checkpoint, save_checkpoint
    from imgsearch_gui.ml.whitening import Whitening

    d = Path(sys.argv[1])
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
    big = np.ones((64, 64), np.float32)  # 16 KiB: over the limit
    writes = {
        "embedder.json": lambda: save_config(d, EmbedderConfig(weights="x" * 8000)),
        "w.npz": lambda: Whitening(mean=big[0], projection=big, kind="pca").save(d / "w.npz"),
        "c.pt": lambda: save_checkpoint(d / "c.pt", Checkpoint("tiny", {"w": torch.ones(8192)},
                                                                "gem", {}, 64)),
    }
    for name, write in writes.items():
        try:
            write()
        except Exception as exc:  # torch.save wraps the OSError in a RuntimeError
            cause = exc if isinstance(exc, OSError) else exc.__context__
            print(name, "EFBIG" if getattr(cause, "errno", None) == 27 else "failed")
        else:
            print(name, "written")
""")


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
def test_a_full_disk_leaves_the_previous_files_and_no_temp(tmp_path):
    """A per-file size limit in a child process (as a full disk): every write fails with EFBIG,
    the previous file stays whole and no half-written temporary file is left beside it."""
    old = {"embedder.json": b'{"backbone": "tiny"}', "w.npz": b"old whitening", "c.pt": b"old ckpt"}
    for name, content in old.items():
        (tmp_path / name).write_bytes(content)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", _FULL_DISK, str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == old
    assert done.stdout.split() == ["embedder.json", "EFBIG", "w.npz", "EFBIG", "c.pt", "EFBIG"]



@pytest.mark.parametrize(("code", "full"), [(28, True), (27, True), (5, False)])
def test_a_failing_write_is_a_storage_error_that_is_still_an_oserror(tmp_path, code, full):
    """ENOSPC/EFBIG (and EDQUOT) are FileFullError, other errnos FileWriteError: StorageErrors
    (exit status 4) with the errno, and OSErrors for callers that catch those; also when the
    writer wrapped the OSError (torch.save raises a RuntimeError from it)."""
    from imgsearch_gui.base.errors import FileFullError, FileWriteError, StorageFullError

    target = tmp_path / "x.bin"
    target.write_bytes(b"old")

    def plain(fh):
        raise OSError(code, os.strerror(code))

    def wrapped(fh):
        try:
            plain(fh)
        except OSError as exc:
            raise RuntimeError("[enforce fail at inline_container.cc] unexpected pos") from exc

    for write in (plain, wrapped):
        with pytest.raises(FileWriteError) as info:
            atomic_write(target, write)
        exc = info.value
        assert isinstance(exc, OSError) and exc.errno == code
        assert isinstance(exc, StorageFullError) == full == isinstance(exc, FileFullError)
        assert str(target) in str(exc) and os.strerror(code) in str(exc)
        assert target.read_bytes() == b"old" and sorted(tmp_path.iterdir()) == [target]


def test_errors_that_are_not_about_the_disk_pass_through(tmp_path):
    def write(fh):
        raise ValueError("not serialisable")

    with pytest.raises(ValueError, match="not serialisable"):
        atomic_write(tmp_path / "x", write)
    assert list(tmp_path.iterdir()) == []


def test_a_folder_that_cannot_take_the_temporary_file_is_a_write_error(tmp_path):
    from imgsearch_gui.base.errors import FileWriteError

    with pytest.raises(FileWriteError) as info:
        atomic_write(tmp_path / "missing" / "x.json", b"{}")
    assert info.value.errno == 2
