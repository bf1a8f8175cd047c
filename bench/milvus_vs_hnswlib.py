"""hnswlib vs Milvus Lite on N descriptors (float32, 256 dims, as PCA-reduced photo descriptors):
build time, memory, p50/p99 single-query latency, recall@10 against exact search.

    python bench/milvus_vs_hnswlib.py [--n 100000] [--dim 256] [--queries 500] [--out FILE]

The vectors have cluster structure (2,000 centres + noise, unit length), not uniform noise; the
queries are held-out vectors of the same distribution. Both engines: HNSW, M=16,
efConstruction=200, inner product, ef 128 at search (the settings cluster/milvus.py uses).
Memory is the growth of this process's RSS (Milvus Lite runs in-process) plus the files written.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def dir_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def make_vectors(n: int, dim: int, queries: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((2000, dim)).astype(np.float32)
    def draw(m: int) -> np.ndarray:
        v = centres[rng.integers(0, len(centres), m)] + 0.6 * rng.standard_normal((m, dim)).astype(
            np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)
    return draw(n), draw(queries)


def exact_top(base: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    sims = q @ base.T
    return np.argsort(-sims, axis=1)[:, :k]


def recall(found: list[np.ndarray], truth: np.ndarray) -> float:
    return float(np.mean([len(set(f.tolist()) & set(t.tolist())) / len(t)
                          for f, t in zip(found, truth, strict=True)]))


def timed_queries(search, q: np.ndarray) -> tuple[list[np.ndarray], float, float]:
    found, times = [], []
    for row in q:
        t0 = time.perf_counter()
        found.append(search(row))
        times.append((time.perf_counter() - t0) * 1000)
    return found, float(np.percentile(times, 50)), float(np.percentile(times, 99))


def bench_hnswlib(base, q, truth, work: Path) -> dict:
    import hnswlib

    before = rss_mb()
    t0 = time.perf_counter()
    index = hnswlib.Index(space="ip", dim=base.shape[1])
    index.init_index(max_elements=len(base), M=16, ef_construction=200)
    index.add_items(base, np.arange(len(base)), num_threads=-1)
    build = time.perf_counter() - t0
    index.save_index(str(work / "h.bin"))
    index.set_ef(128)
    found, p50, p99 = timed_queries(lambda r: index.knn_query(r, k=10)[0][0], q)
    return {"engine": "hnswlib HNSW", "build_s": build, "rss_mb": rss_mb() - before,
            "disk_mb": dir_mb(work), "p50_ms": p50, "p99_ms": p99, "recall@10": recall(found, truth)}


def bench_milvus(base, q, truth, work: Path) -> dict:
    from pymilvus import DataType, MilvusClient

    before = rss_mb()
    t0 = time.perf_counter()
    c = MilvusClient(str(work / "m.db"))
    s = c.create_schema(auto_id=False, enable_dynamic_field=False)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("vector", DataType.FLOAT_VECTOR, dim=base.shape[1])
    ip = c.prepare_index_params()
    ip.add_index(field_name="vector", index_type="HNSW", metric_type="IP",
                 params={"M": 16, "efConstruction": 200})
    c.create_collection("v", schema=s, index_params=ip)
    for start in range(0, len(base), 10000):
        part = base[start:start + 10000]
        c.insert("v", [{"id": start + i, "vector": row.tolist()} for i, row in enumerate(part)])
    c.flush("v")
    c.load_collection("v")
    c.search("v", data=[q[0].tolist()], limit=10)  # searchable (the index is built)
    build = time.perf_counter() - t0
    params = {"metric_type": "IP", "params": {"ef": 128}}
    found, p50, p99 = timed_queries(
        lambda r: np.array([h["id"] for h in c.search("v", data=[r.tolist()], limit=10,
                                                       search_params=params)[0]]), q)
    return {"engine": "Milvus Lite HNSW", "build_s": build, "rss_mb": rss_mb() - before,
            "disk_mb": dir_mb(work), "p50_ms": p50, "p99_ms": p99, "recall@10": recall(found, truth)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    base, q = make_vectors(args.n, args.dim, args.queries)
    truth = exact_top(base, q, 10)
    rows = []
    for bench in (bench_hnswlib, bench_milvus):
        work = Path(tempfile.mkdtemp(prefix="vecbench"))
        try:
            rows.append({"n": args.n, "dim": args.dim, **bench(base, q, truth, work)})
        finally:
            shutil.rmtree(work, ignore_errors=True)
        r = rows[-1]
        print(f"{r['engine']:18s} n={r['n']} build {r['build_s']:.1f} s  RSS +{r['rss_mb']:.0f} MB  "
              f"disk {r['disk_mb']:.0f} MB  p50 {r['p50_ms']:.2f} ms  p99 {r['p99_ms']:.2f} ms  "
              f"recall@10 {r['recall@10']:.3f}", flush=True)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
