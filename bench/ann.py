"""ANN benchmark of the vector store (not run by CI).

For each size: build time, index size on disk, load time, single-query latency p50/p99 at k=10
(one thread: hnswlib num_threads=1, BLAS limited to one thread), recall@10 against exact search,
and the latency of numpy exact search measured in the same run. Prints a markdown table.

Data: synthetic *clustered* descriptors, meant to look like CNN global descriptors (which live
near a low-dimensional subspace): Gaussian clusters in a 128-d latent space with a decaying
(power-law) spectrum, projected into ``--dim`` dimensions by a random orthonormal map, plus
isotropic noise carrying ~10% of the energy, then L2-normalised. Queries are fresh draws from
the same distribution (not in the index). Uniformly random vectors are NOT used: in 1280-d
they have no neighbourhood structure and every ANN method degrades to a scan.

    .venv/bin/python bench/ann.py                         # 10k and 100k, dim 1280
    .venv/bin/python bench/ann.py --sizes 1000000 --dim 256   # 1M needs ~2x(N*dim*4) RAM

Memory: the store keeps raw vectors and the graph (~2 x N x dim x 4 bytes plus links), so
1M x 1280 needs ~11 GB and hours of single-machine build time on 2 cores; run 1M with a
reduced --dim and say so.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # single-core exact search (BLAS)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from imgsearch_gui.index.store import HnswParams, VectorStore  # noqa: E402

LATENT = 128


class ClusteredData:
    def __init__(self, dim: int, clusters: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.dim = dim
        self.scale = (np.arange(1, LATENT + 1) ** -0.5).astype(np.float32)  # power-law spectrum
        self.centers = rng.standard_normal((clusters, LATENT)).astype(np.float32)
        basis, _ = np.linalg.qr(rng.standard_normal((dim, LATENT)))
        self.basis = basis.T.astype(np.float32)  # (LATENT, dim), orthonormal rows
        signal = float(np.sum(self.scale**2) * 2.0)  # centre + spread energy per vector
        self.noise = np.sqrt(0.1 * signal / 0.9 / dim)

    def sample(self, n: int, rng: np.random.Generator, chunk: int = 50_000) -> np.ndarray:
        out = np.empty((n, self.dim), dtype=np.float32)
        for s in range(0, n, chunk):
            m = min(chunk, n - s)
            c = self.centers[rng.integers(0, len(self.centers), m)]
            z = (c + rng.standard_normal((m, LATENT), dtype=np.float32)) * self.scale
            x = z @ self.basis + self.noise * rng.standard_normal((m, self.dim), dtype=np.float32)
            out[s : s + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
        return out


def exact_topk(data: np.ndarray, queries: np.ndarray, k: int, chunk: int = 200_000) -> np.ndarray:
    best_s = np.full((len(queries), 0), -np.inf, dtype=np.float32)
    best_i = np.zeros((len(queries), 0), dtype=np.int64)
    for s in range(0, len(data), chunk):
        sims = queries @ data[s : s + chunk].T
        idx = np.argpartition(-sims, min(k, sims.shape[1] - 1), axis=1)[:, :k]
        cand_s = np.concatenate([best_s, np.take_along_axis(sims, idx, 1)], axis=1)
        cand_i = np.concatenate([best_i, idx + s], axis=1)
        order = np.argsort(-cand_s, axis=1)[:, :k]
        best_s = np.take_along_axis(cand_s, order, 1)
        best_i = np.take_along_axis(cand_i, order, 1)
    return best_i


@dataclass
class Row:
    n: int
    dim: int
    build_s: float
    disk_mb: float
    load_s: float
    p50_ms: float
    p99_ms: float
    recall: float
    exact_p50_ms: float
    exact_p99_ms: float


def bench_size(n: int, args: argparse.Namespace, gen: ClusteredData) -> Row:
    rng = np.random.default_rng(args.seed + n)
    t = time.perf_counter()
    data = gen.sample(n, rng)
    queries = gen.sample(args.queries, rng)
    print(f"[{n}] generated in {time.perf_counter() - t:.1f}s", file=sys.stderr, flush=True)
    params = HnswParams(
        M=args.M, ef_construction=args.ef_construction, ef=args.ef,
        exact_threshold=0, build_threads=args.threads,
    )
    tmp = Path(tempfile.mkdtemp(prefix="ann-bench-", dir=args.tmp))
    try:
        store = VectorStore(tmp / "index", params)
        t = time.perf_counter()
        store.add(np.arange(n), data)
        store.build_graph_if_due()  # one bulk build with all threads
        build_s = time.perf_counter() - t
        assert store.uses_hnsw
        print(f"[{n}] built in {build_s:.1f}s", file=sys.stderr, flush=True)
        store.save()
        disk = sum(p.stat().st_size for p in (tmp / "index").rglob("*") if p.is_file())
        del store
        t = time.perf_counter()
        store = VectorStore.open(tmp / "index", HnswParams(exact_threshold=0))
        load_s = time.perf_counter() - t

        truth = exact_topk(data, queries, 10)
        lat, hits = [], 0
        for i, q in enumerate(queries):
            t = time.perf_counter()
            ((labels, _),) = store.query(q, k=10)
            lat.append(time.perf_counter() - t)
            hits += len(set(labels.tolist()) & set(truth[i].tolist()))
        recall = hits / (10 * len(queries))

        ex_lat = []
        for q in queries[: args.exact_queries]:
            t = time.perf_counter()
            sims = data @ q
            idx = np.argpartition(-sims, 10)[:10]
            idx[np.argsort(-sims[idx])]
            ex_lat.append(time.perf_counter() - t)
        return Row(
            n, gen.dim, build_s, disk / 2**20, load_s,
            float(np.percentile(lat, 50) * 1e3), float(np.percentile(lat, 99) * 1e3), recall,
            float(np.percentile(ex_lat, 50) * 1e3), float(np.percentile(ex_lat, 99) * 1e3),
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    defaults = HnswParams()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000", help="comma-separated index sizes")
    ap.add_argument("--dim", type=int, default=1280)
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--exact-queries", type=int, default=100)
    ap.add_argument("--clusters", type=int, default=1000)
    ap.add_argument("--M", type=int, default=defaults.M)
    ap.add_argument("--ef-construction", type=int, default=defaults.ef_construction)
    ap.add_argument("--ef", type=int, default=defaults.ef)
    ap.add_argument("--threads", type=int, default=0, help="build threads (0 = all cores)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tmp", default=None, help="folder for the temporary index")
    args = ap.parse_args(argv)
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s]
    gen = ClusteredData(args.dim, args.clusters, args.seed)
    rows = []
    for n in sizes:
        rows.append(bench_size(n, args, gen))
        print(f"[{n}] done: {rows[-1]}", file=sys.stderr, flush=True)
    print(
        f"\nHNSW M={args.M}, ef_construction={args.ef_construction}, ef={args.ef}; "
        f"k=10; {args.queries} queries; single-thread query latency; "
        f"build with {args.threads or os.cpu_count()} threads; CPU count {os.cpu_count()}\n"
    )
    print("| vectors | dim | build s | disk MB | load s | p50 ms | p99 ms | recall@10 "
          "| exact p50 ms | exact p99 ms | speed-up (p50) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r.n:,} | {r.dim} | {r.build_s:.1f} | {r.disk_mb:.0f} | {r.load_s:.2f} "
              f"| {r.p50_ms:.3f} | {r.p99_ms:.3f} | {r.recall:.4f} | {r.exact_p50_ms:.2f} "
              f"| {r.exact_p99_ms:.2f} | {r.exact_p50_ms / r.p50_ms:.0f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
