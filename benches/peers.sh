#!/usr/bin/env bash
# hnswlib and hnswdb side by side on the same data, one right after the other (BENCHMARKS.md).
#
#   benches/peers.sh [bigann10k] [minilm50k] [gen100k]     (default: all three)
#
# hnswlib runs through ../shared/bench/peers.py (a Python venv in $TMPDIR/peers-venv, made on
# first use), its single-insert latency through benches/hnswlib_inserts.py; hnswdb through
# `hnswdb bench` on the same base/query/truth files. gen100k is the
# CLI's generated clustered set at 100,000 x 128, saved once with `bench --save-data`. Results go
# to $OUT (default $TMPDIR/hnswdb-peers): a log and the JSON/plot of each run.
set -euo pipefail
cd "$(dirname "$0")/.."
TMP=${TMPDIR:-/tmp}
OUT=${OUT:-$TMP/hnswdb-peers}
VENV=$TMP/peers-venv
SHARED=$(cd ../shared && pwd)
mkdir -p "$OUT"

if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q -r "$SHARED/bench/requirements.txt"
fi
cargo build --release -q -p hnswdb-cli
BIN=$(pwd)/target/release/hnswdb

run() { # name dir peers-metric hnswdb-metric
    local name=$1 dir=$2 pm=$3 hm=$4
    echo "=== $name: hnswlib ($(uptime))"
    "$VENV/bin/python" "$SHARED/bench/peers.py" run "$dir" --metric "$pm" --name "$name" \
        --libs hnswlib --out "$OUT" --workdir "$OUT/work" > "$OUT/$name-peers.log" 2>&1
    cat "$OUT/${name}_python.md"
    "$VENV/bin/python" benches/hnswlib_inserts.py "$dir" "$pm" | tee "$OUT/$name-inserts.log"
    echo "=== $name: hnswdb ($(uptime))"
    "$BIN" bench --input "$dir/base.fvecs" --query "$dir/query.fvecs" --truth "$dir/gt.ivecs" \
        --metric "$hm" --out "$OUT/$name-hnswdb" | tee "$OUT/$name-hnswdb.log"
}

for set in "${@:-bigann10k minilm50k gen100k}"; do
    for name in $set; do
        case $name in
            bigann10k) run bigann10k "$SHARED/data/bigann10k/heldout" l2 l2 ;;
            minilm50k) run minilm50k "$SHARED/data/minilm50k" cos cosine ;;
            gen100k)
                if [ ! -f "$OUT/gen100k/gt.ivecs" ]; then
                    "$BIN" bench --n 100000 --ef 64 --cache on --save-data --out "$OUT/gen100k" > /dev/null
                fi
                run gen100k "$OUT/gen100k" l2 l2 ;;
            *) echo "unknown data set $name (bigann10k, minilm50k, gen100k)" >&2; exit 2 ;;
        esac
    done
done
