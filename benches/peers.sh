#!/usr/bin/env bash
# hnswlib and hnswdb side by side on the same data, one right after the other (BENCHMARKS.md).
#
#   benches/peers.sh PEERS_DIR [DATA_DIR] [bigann10k] [minilm50k] [gen100k]   (default: all three)
#   PEERS_DIR=... DATA_DIR=... benches/peers.sh [bigann10k] [minilm50k] [gen100k]
#
# PEERS_DIR: the directory of the comparison scripts, holding peers.py and its requirements.txt
# (an argument, or the environment variable; required). DATA_DIR: the directory of the data
# sets, holding bigann10k/heldout and minilm50k, each a data-set folder holding base.fvecs,
# query.fvecs, gt.ivecs (an argument, or the environment variable; default: the repository's
# tests/data, which holds bigann10k/heldout only). Relative paths are taken from where the
# script is started.
#
# hnswlib runs through PEERS_DIR/peers.py (a Python venv in $TMPDIR/peers-venv, made on first
# use), its single-insert latency through benches/hnswlib_inserts.py; hnswdb through
# `hnswdb bench` on the same base/query/truth files. gen100k is the CLI's generated clustered
# set at 100,000 x 128, saved once with `bench --save-data`. Results go to $OUT (default
# $TMPDIR/hnswdb-peers): a log and the JSON/plot of each run.
set -euo pipefail
usage() {
    echo "usage: benches/peers.sh PEERS_DIR [DATA_DIR] [bigann10k] [minilm50k] [gen100k]" >&2
    echo "   or: PEERS_DIR=... [DATA_DIR=...] benches/peers.sh [data sets]" >&2
    exit 2
}
is_set_name() { case $1 in bigann10k | minilm50k | gen100k) return 0 ;; *) return 1 ;; esac }

if [ -z "${PEERS_DIR:-}" ]; then
    [ $# -gt 0 ] && ! is_set_name "$1" || usage
    PEERS_DIR=$1
    shift
fi
if [ -z "${DATA_DIR:-}" ] && [ $# -gt 0 ] && ! is_set_name "$1"; then
    DATA_DIR=$1
    shift
fi
PEERS_DIR=$(cd "$PEERS_DIR" && pwd)
[ -f "$PEERS_DIR/peers.py" ] || { echo "error: no peers.py in $PEERS_DIR" >&2; exit 2; }
REPO=$(cd "$(dirname "$0")/.." && pwd)
DATA_DIR=$(cd "${DATA_DIR:-$REPO/tests/data}" && pwd)
cd "$REPO"
TMP=${TMPDIR:-/tmp}
OUT=${OUT:-$TMP/hnswdb-peers}
VENV=$TMP/peers-venv
mkdir -p "$OUT"

if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q -r "$PEERS_DIR/requirements.txt"
fi
cargo build --release -q -p hnswdb-cli
BIN=$(pwd)/target/release/hnswdb

run() { # name dir peers-metric hnswdb-metric
    local name=$1 dir=$2 pm=$3 hm=$4
    for file in base.fvecs query.fvecs gt.ivecs; do
        [ -f "$dir/$file" ] || { echo "error: $name: no $file in $dir" >&2; exit 2; }
    done
    echo "=== $name: hnswlib ($(uptime))"
    "$VENV/bin/python" "$PEERS_DIR/peers.py" run "$dir" --metric "$pm" --name "$name" \
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
            bigann10k) run bigann10k "$DATA_DIR/bigann10k/heldout" l2 l2 ;;
            minilm50k) run minilm50k "$DATA_DIR/minilm50k" cos cosine ;;
            gen100k)
                if [ ! -f "$OUT/gen100k/gt.ivecs" ]; then
                    "$BIN" bench --n 100000 --ef 64 --cache on --save-data --out "$OUT/gen100k" > /dev/null
                fi
                run gen100k "$OUT/gen100k" l2 l2 ;;
            *) echo "unknown data set $name (bigann10k, minilm50k, gen100k)" >&2; exit 2 ;;
        esac
    done
done
