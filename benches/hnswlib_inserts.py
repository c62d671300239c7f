"""hnswlib's single-insert latency, to set beside `hnswdb bench`'s "single inserts" lines.

    python benches/hnswlib_inserts.py DIR l2|cos [N]

Builds an hnswlib index over DIR/base.fvecs (m 16, ef_construction 200, one thread, as
peers.py does), then times N (default 300) calls of `add_items` with one vector each, taken
from DIR/query.fvecs, and prints their p50 and p99 (the Python call included).
"""
import sys
import time

import hnswlib
import numpy as np


def fvecs(path):
    raw = np.fromfile(path, dtype=np.int32)
    dim = raw[0]
    return raw.reshape(-1, dim + 1)[:, 1:].view(np.float32).copy()


def main():
    directory, space = sys.argv[1], {"l2": "l2", "cos": "cosine"}[sys.argv[2]]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 300
    base, queries = fvecs(f"{directory}/base.fvecs"), fvecs(f"{directory}/query.fvecs")
    index = hnswlib.Index(space=space, dim=base.shape[1])
    index.init_index(max_elements=len(base) + n, M=16, ef_construction=200, random_seed=1)
    index.set_num_threads(1)
    index.add_items(base, np.arange(len(base)))
    times = []
    for i in range(n):
        vector = queries[i % len(queries)][None, :]
        start = time.perf_counter()
        index.add_items(vector, [len(base) + i])
        times.append(time.perf_counter() - start)
    times.sort()
    rank = lambda p: times[max(1, int(np.ceil(p * len(times)))) - 1] * 1e6
    print(f"hnswlib single add_items: {n} calls, p50 {rank(0.5):.0f} µs, p99 {rank(0.99):.0f} µs")


if __name__ == "__main__":
    main()
