"""kill -9 at random moments while indexing: nothing committed is lost or redone, the rest is."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from imgsearch_gui.app.library import ImageLibrary

WORKER = Path(__file__).with_name("kill_worker.py")
REPO = Path(__file__).resolve().parents[3]


def committed_indexed(data: Path) -> set[str]:
    db = data / "catalog.sqlite3"
    if not db.exists():
        return set()
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT path FROM files WHERE status = 'indexed'").fetchall()
    except sqlite3.OperationalError:  # killed before the schema was committed
        return set()
    finally:
        conn.close()
    return {r[0] for r in rows}


def read_log(path: Path) -> list[str]:
    if not path.exists():
        return []
    # the last line may be cut by the kill
    return [line for line in path.read_text().splitlines() if line.endswith(".png")]


def test_sigkill_at_random_moments(tmp_path, embedder, write_image):
    rng = random.Random(int(os.environ.get("KILL_TEST_SEED", "1234")))  # vary to stress
    root, data = tmp_path / "photos", tmp_path / "data"
    seed = 0
    for _ in range(200):
        write_image(root / f"a{seed:04d}.png", seed)
        seed += 1
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    # kill points: right after start (open/reconcile), and after a random number of embedded
    # images (mid-embedding, inside or between saves); each run has >= 40 new images to do
    targets = [0, *(rng.randint(1, 30) for _ in range(5))]
    rng.shuffle(targets)
    kills = 0
    for run, target in enumerate(targets):
        for _ in range(40):  # always something new to do
            write_image(root / f"r{run}" / f"b{seed:04d}.png", seed)
            seed += 1
        before = committed_indexed(data)
        log = tmp_path / f"run{run}.log"
        proc = subprocess.Popen(
            [sys.executable, str(WORKER), str(data), str(root), str(log), "0.004"],
            stdout=subprocess.PIPE, env=env, cwd=str(REPO),
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"READY"
        deadline = time.monotonic() + 30
        while len(read_log(log)) < target and proc.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.002)
        time.sleep(rng.uniform(0, 0.03))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(timeout=60)
        redone = set(read_log(log)) & before
        after = committed_indexed(data)
        print(f"run {run}: kill after {target} images, committed {len(before)} -> {len(after)}, "
              f"embedded {len(read_log(log))}, killed={proc.returncode == -signal.SIGKILL}")
        assert not redone, f"run {run}: committed files embedded again: {sorted(redone)[:5]}"
    assert kills >= 5

    # a normal run finishes the job; nothing committed is embedded again
    before = committed_indexed(data)
    embedder.reset()
    with ImageLibrary(data, embedder) as lib:
        reports = list(lib.index_library(root))
        report = reports[-1]
        assert not (set(embedder.calls) & before)
        assert all(n == 1 for n in embedder.calls.values())
        on_disk = {str(p) for p in root.rglob("*.png")}
        files = lib.catalog.all_files()
        assert {f.path for f in files} == on_disk and len(files) == len(on_disk)
        assert all(f.status == "indexed" and f.vector_id is not None for f in files)
        vector_ids = {f.vector_id for f in files}
        assert len(vector_ids) == len(on_disk)  # every (distinct) file has its own vector
        assert set(lib.store.labels().tolist()) == lib.catalog.vector_ids() == vector_ids
        assert report.embedded + report.unchanged == len(on_disk)
        probe = sorted(on_disk)[::37]
        for path in probe:
            hit = lib.search(path, k=1)[0]
            assert hit.path == path and hit.score > 0.999
    with ImageLibrary(data, embedder) as again:  # and it stays that way
        embedder.reset()
        list(again.index_library(root))
        assert embedder.calls == {}
