"""The LRU size budget of cache folders (thumbnails)."""

from __future__ import annotations

import os

from imgsearch_gui.app import diskcache
from imgsearch_gui.base.types import CancelToken


def fill(root, n, size=1000):
    paths = []
    for i in range(n):
        path = root / f"{i % 3}" / f"f{i:02d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * size)
        os.utime(path, (1_000_000 + i, 1_000_000 + i))  # f00 is the least recently used
        paths.append(path)
    return paths


def test_within_budget_nothing_goes(tmp_path):
    fill(tmp_path, 10)
    report = diskcache.prune(tmp_path, max_bytes=10_000)
    assert report == diskcache.PruneReport(10, 10_000, 0, 10_000)


def test_over_budget_the_least_recently_used_go_down_to_the_low_water_mark(tmp_path):
    paths = fill(tmp_path, 20)
    diskcache.touch(paths[0])  # used just now: kept
    report = diskcache.prune(tmp_path, max_bytes=10_000, low_water=0.8)
    assert report.removed == 12 and report.bytes_after == 8_000
    left = sorted(p.name for p in tmp_path.rglob("*.jpg"))
    assert left == sorted(["f00.jpg"] + [f"f{i:02d}.jpg" for i in range(13, 20)])


def test_cancel_stops_pruning(tmp_path):
    fill(tmp_path, 20)
    token = CancelToken()
    token.cancel()
    assert diskcache.prune(tmp_path, max_bytes=1_000, cancel=token).removed == 0


def test_missing_folder_is_an_empty_cache(tmp_path):
    assert diskcache.prune(tmp_path / "nope", max_bytes=1).files == 0
