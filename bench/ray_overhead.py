"""Ray's overhead on one machine: photos/s of ``imgsearch index`` through the local path and
through ``--ray local`` (the same command users run, each in a fresh data dir, in one run).

    python bench/ray_overhead.py [--folder ../shared/data/oxford_flowers17] [--n 400] [--repeats 2]

Both runs time the whole command (model load, a Ray cluster's start and its actors' model load
included) and the embedding alone (the report's photos/s). The photos are copied first, so both
read the same files from the page cache.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EXTS = {".jpg", ".jpeg", ".png"}


def copy_photos(src: Path, dst: Path, n: int) -> int:
    photos = sorted(p for p in src.rglob("*") if p.suffix.lower() in EXTS)[:n]
    for i, p in enumerate(photos):
        shutil.copyfile(p, dst / f"{i:05d}{p.suffix.lower()}")
    return len(photos)


def index(folder: Path, data: Path, extra: list[str]) -> dict:
    cmd = [sys.executable, "-m", "imgsearch_gui.cli", "index", str(folder), "--data-dir", str(data),
           "--json", "--quiet", *extra]
    started = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    report = json.loads(out.splitlines()[-1])
    report["wall_s"] = time.perf_counter() - started
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--folder", type=Path, default=Path("../shared/data/oxford_flowers17"))
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--ray-actors", type=int)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="raybench"))
    photos = work / "photos"
    photos.mkdir()
    n = copy_photos(args.folder, photos, args.n)
    ray = ["--ray", "local"] + (["--ray-actors", str(args.ray_actors)] if args.ray_actors else [])
    rows = []
    try:
        for r in range(args.repeats):  # alternate, so drift on a shared machine hits both
            for name, extra in (("local", []), ("ray local", ray)):
                rep = index(photos, work / f"data-{r}-{name.replace(' ', '')}", extra)
                assert rep["embedded"] == n, rep
                rows.append({"path": name, "photos": n, "wall_s": round(rep["wall_s"], 2),
                             "photos_per_s": round(n / rep["wall_s"], 2)})
                print(rows[-1], flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for name in ("local", "ray local"):
        best = max(r["photos_per_s"] for r in rows if r["path"] == name)
        print(f"{name:10s} best {best:.2f} photos/s (whole command)")
    loc = max(r["photos_per_s"] for r in rows if r["path"] == "local")
    ray_best = max(r["photos_per_s"] for r in rows if r["path"] == "ray local")
    print(f"ray/local = {ray_best / loc:.2f}")
    if args.out:
        args.out.write_text(json.dumps({"rows": rows, "ratio": ray_best / loc}, indent=1))


if __name__ == "__main__":
    main()
