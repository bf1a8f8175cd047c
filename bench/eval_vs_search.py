"""Does ``imgsearch eval`` measure what ``imgsearch search`` returns? Both through the CLI a user
runs, on one data dir with the shipped defaults.

UKBench (``ukbench_dev300``): the photos are indexed (``imgsearch index``), every photo is then a
query of ``imgsearch search -k 4 --json`` (one process, all queries), and the N-S score is
counted from those hits; ``imgsearch eval --groups`` reports its own N-S and the settings it
measured. The two must agree (the issue's bound: within 0.02).

    python bench/eval_vs_search.py [--work /tmp/imgsearch-evs]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from common import DATA, require, ukbench


def cli(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "imgsearch_gui.cli", *args], check=True,
                          capture_output=True, text=True)
    return done.stdout


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path)
    args = ap.parse_args()
    paths, groups = ukbench()
    require(paths)
    root = DATA / "ukbench_dev300"
    with tempfile.TemporaryDirectory(prefix="imgsearch-evs-") as tmp:
        data = str(args.work or Path(tmp))
        cli("index", str(root / "images"), "--data-dir", data)
        measured = json.loads(cli("eval", str(root), "--groups", str(root / "groups.csv"),
                                  "--json", "--data-dir", data))
        lines = cli("search", *map(str, paths), "-k", "4", "--json", "--data-dir", data)
    group_of = {str(p.resolve()): g for p, g in zip(paths, groups, strict=True)}
    hits = [json.loads(line) for line in lines.splitlines()]
    ns = sum(sum(group_of[h["path"]] == g for h in row)
             for row, g in zip(hits, groups, strict=True)) / len(paths)
    print(json.dumps({"eval_ns": round(measured["ns_score"], 4), "search_ns": round(ns, 4),
                      "difference": round(abs(measured["ns_score"] - ns), 4),
                      "eval_map": round(measured["map"], 4), "settings": measured["settings"]},
                     indent=1))


if __name__ == "__main__":
    main()
