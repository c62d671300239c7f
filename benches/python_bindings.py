"""Python bindings against hnswlib: build time, batch-search throughput and recall at equal ef.

    python benches/python_bindings.py DATA_DIR --metric cosine [--ef 32,64,128,256] [--threads N]
        [--quantization none|int8|binary]

DATA_DIR holds base.fvecs, query.fvecs and gt.ivecs (TEXMEX format: each row an int32 count,
then that many float32 or int32 values; gt holds the exact neighbours' row numbers). Both
libraries build with the same m and ef_construction on the same threads, and search the whole
query set in one call (hnswdb's search with a 2-D array, hnswlib's knn_query) on the same
threads. Every measurement is repeated (--repeat, the two libraries alternating) and the
median printed; one throughput measurement searches the query set again and again for at
least --seconds. Needs numpy,
hnswlib (pip install hnswlib) and hnswdb (pip install ./python).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time

import numpy as np

import hnswdb


def read_vecs(path: str, dtype) -> np.ndarray:
    """A .fvecs (float32) or .ivecs (int32) file as an (n, d) array."""
    raw = np.fromfile(path, dtype=np.int32)
    if raw.size == 0:
        raise ValueError(f"{path} is empty")
    dim = int(raw[0])
    if dim <= 0 or raw.size % (dim + 1) != 0:
        raise ValueError(f"{path} is not a vecs file (dim {dim}, {raw.size} words)")
    rows = raw.reshape(-1, dim + 1)
    if not (rows[:, 0] == dim).all():
        raise ValueError(f"{path}: rows of differing dimensions")
    return np.ascontiguousarray(rows[:, 1:]).view(dtype)


def recall(found: np.ndarray, truth: np.ndarray, k: int) -> float:
    hits = sum(len(set(row[:k].tolist()) & set(want[:k].tolist())) for row, want in zip(found, truth))
    return hits / (len(found) * k)


def timed(call) -> tuple[float, object]:
    start = time.perf_counter()
    result = call()
    return time.perf_counter() - start, result


def throughput(search, queries: int, seconds: float) -> float:
    """Queries per second of `search` (all `queries` in one call), called again and again for
    at least `seconds`."""
    calls = 0
    start = time.perf_counter()
    while True:
        search()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return calls * queries / elapsed


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data", help="folder with base.fvecs, query.fvecs, gt.ivecs")
    parser.add_argument("--metric", choices=["l2", "cosine"], required=True)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--m", type=int, default=16)
    parser.add_argument("--ef-construction", type=int, default=200)
    parser.add_argument("--ef", default="16,32,64,128,256", help="comma-separated ef values")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeat", type=int, default=3, help="runs of every measurement")
    parser.add_argument("--seconds", type=float, default=1.0,
                        help="least time of one throughput measurement")
    parser.add_argument("--quantization", choices=["none", "int8", "binary"], default="none",
                        help="hnswdb's quantization (re-ranking its default rescore)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    efs = [int(x) for x in args.ef.split(",")]

    import hnswlib  # imported here: --help works without it

    base = read_vecs(os.path.join(args.data, "base.fvecs"), np.float32)
    queries = read_vecs(os.path.join(args.data, "query.fvecs"), np.float32)
    truth = read_vecs(os.path.join(args.data, "gt.ivecs"), np.int32)
    n, dim = base.shape
    keys = np.arange(n, dtype=np.uint64)
    print(f"data {args.data}: {n} x {dim}, {len(queries)} queries, metric {args.metric}, "
          f"k {args.k}, m {args.m}, ef_construction {args.ef_construction}, "
          f"threads {args.threads}, hnswdb quantization {args.quantization}, "
          f"{args.repeat} runs each; load {load()}")

    builds = {"hnswdb": [], "hnswlib": []}
    results = {"hnswdb": {}, "hnswlib": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(args.repeat):
            path = os.path.join(tmp, f"bench{run}.hnsw")
            seconds, db = timed(lambda: _build_hnswdb(path, base, keys, args))
            builds["hnswdb"].append(seconds)
            seconds, lib = timed(lambda: _build_hnswlib(hnswlib, base, args))
            builds["hnswlib"].append(seconds)
            print(f"build run {run + 1}: hnswdb {builds['hnswdb'][-1]:.2f} s, "
                  f"hnswlib {builds['hnswlib'][-1]:.2f} s; load {load()}")
            if run + 1 < args.repeat:
                db.close()
                del lib
        for ef in efs:
            lib.set_ef(ef)
            searches = {
                "hnswdb": lambda: db.search(queries, k=args.k, ef=ef, threads=args.threads)[0],
                "hnswlib": lambda: lib.knn_query(queries, k=args.k, num_threads=args.threads)[0],
            }
            qps = {name: [] for name in searches}
            for name, search in searches.items():
                results[name][ef] = {"recall": recall(search(), truth, args.k)}  # also a warm-up
            # Alternating, so that a change of the machine's load hits both alike.
            for _ in range(args.repeat):
                for name, search in searches.items():
                    qps[name].append(throughput(search, len(queries), args.seconds))
            for name in searches:
                results[name][ef]["qps"] = statistics.median(qps[name])
                results[name][ef]["qps_runs"] = qps[name]
        stats = db.stats()
        db.close()

    print(f"\nbuild (median of {args.repeat}): hnswdb {statistics.median(builds['hnswdb']):.2f} s, "
          f"hnswlib {statistics.median(builds['hnswlib']):.2f} s")
    print("\n| ef | hnswdb recall@%d | hnswdb queries/s | hnswlib recall@%d | hnswlib queries/s | "
          "hnswdb / hnswlib |" % (args.k, args.k))
    print("|---:|---:|---:|---:|---:|---:|")
    for ef in efs:
        a, b = results["hnswdb"][ef], results["hnswlib"][ef]
        print(f"| {ef} | {a['recall']:.4f} | {a['qps']:,.0f} | {b['recall']:.4f} | "
              f"{b['qps']:,.0f} | {a['qps'] / b['qps']:.2f}x |")
    mib = 1 << 20
    print(f"\nhnswdb memory: upper layers {stats['upper_bytes'] / mib:.1f} MiB, codes "
          f"{stats['codes_bytes'] / mib:.1f} MiB, layer-0 lists {stats['links_bytes'] / mib:.1f} MiB, "
          f"f32 vectors {stats['vectors_bytes'] / mib:.1f} MiB; hnswlib's index "
          f"{lib.index_file_size() / 1e6:.1f} MB")
    print(f"\nload after: {load()}")
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"args": vars(args), "builds": builds, "results": results}, out, indent=1)


def _build_hnswdb(path, base, keys, args):
    index = hnswdb.Index.create(path, dim=base.shape[1], metric=args.metric, m=args.m,
                                ef_construction=args.ef_construction,
                                build_threads=args.threads, quantization=args.quantization)
    index.add(keys, base)
    return index


def _build_hnswlib(hnswlib, base, args):
    index = hnswlib.Index(space=args.metric, dim=base.shape[1])
    index.init_index(max_elements=len(base), ef_construction=args.ef_construction, M=args.m)
    index.set_num_threads(args.threads)
    index.add_items(base, np.arange(len(base)))
    return index


if __name__ == "__main__":
    main()
