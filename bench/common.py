"""Helpers shared by the benchmarks (datasets in ../shared/data, timing)."""

from __future__ import annotations

import csv
import os
from pathlib import Path

DATA = Path(os.environ.get("IMGSEARCH_BENCH_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def flowers17(root: Path = DATA / "oxford_flowers17") -> tuple[list[Path], list[str]]:
    paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    return paths, [p.parent.name for p in paths]


def ukbench(root: Path = DATA / "ukbench_dev300") -> tuple[list[Path], list[str]]:
    with open(root / "groups.csv") as fh:
        rows = list(csv.DictReader(fh))
    return [root / "images" / r["filename"] for r in rows], [r["group"] for r in rows]


def require(paths: list[Path]) -> None:
    if not paths:
        raise SystemExit(f"no images found; set IMGSEARCH_BENCH_DATA (looked in {DATA})")
