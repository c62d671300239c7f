#!/usr/bin/env bash
# hnswlib (its native C++ harness) and hnswdb's quantizations side by side on one data set, one
# right after the other, in one sitting (BENCHMARKS.md, "Quantized search").
#
#   benches/quantized.sh NATIVE_DIR SET_DIR l2|cosine [QUANTIZATION=BUDGET ...]
#
# NATIVE_DIR: the hnswlib native harness (its build.sh and bench.cpp). SET_DIR: a data-set
# folder holding base.fvecs, query.fvecs and gt.ivecs. Runs, with m 16, ef_construction 200 and
# 2 build threads on both sides:
#   1. hnswlib: build, save, load, then one query per call on one thread for every ef;
#   2. `hnswdb bench --quantization all --cache on`: none, int8 and binary with the whole
#      layer 0 in memory;
#   3. for each QUANTIZATION=BUDGET (e.g. int8=30000000): `hnswdb bench --quantization Q
#      --cache-bytes BUDGET`, a memory budget that holds only part of the index (codes and
#      lists, say), then `hnswdb search --truth` on that index in a fresh process for its
#      resident memory.
# Logs, JSON and plots go to $OUT (default $TMPDIR/hnswdb-quantized/<set name>).
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: benches/quantized.sh NATIVE_DIR SET_DIR l2|cosine [Q=BUDGET ...]" >&2; exit 2; }
NATIVE_DIR=$(cd "$1" && pwd)
SET=$(cd "$2" && pwd)
METRIC=$3
shift 3
case $METRIC in l2) NATIVE_METRIC=l2 ;; cosine) NATIVE_METRIC=cos ;; *) echo "metric: l2 or cosine" >&2; exit 2 ;; esac
REPO=$(cd "$(dirname "$0")/.." && pwd)
TMP=${TMPDIR:-/tmp}
OUT=${OUT:-$TMP/hnswdb-quantized/$(basename "$SET")}
EFS=${EFS:-10,16,24,32,48,64,96,128,256}
mkdir -p "$OUT"
cd "$REPO"
cargo build --release -q -p hnswdb-cli
BIN=$REPO/target/release/hnswdb
NATIVE=$(sh "$NATIVE_DIR/build.sh" "$TMP/hnswlib-native-bench" | tail -1)
DATA=(--input "$SET/base.fvecs" --query "$SET/query.fvecs" --truth "$SET/gt.ivecs" --metric "$METRIC")

echo "=== hnswlib native ($(uptime))"
"$NATIVE" "$SET" "$NATIVE_METRIC" --threads 2 --efs "$EFS" | tee "$OUT/hnswlib.log"
echo "=== hnswdb, every quantization, layer 0 in memory ($(uptime))"
"$BIN" bench "${DATA[@]}" --threads 2 --ef "$EFS" --quantization all --cache on \
    --out "$OUT/all" | tee "$OUT/hnswdb-all.log"
for setting in "$@"; do
    q=${setting%%=*}
    budget=${setting#*=}
    echo "=== hnswdb $q, budget $budget bytes ($(uptime))"
    "$BIN" bench "${DATA[@]}" --threads 2 --ef "$EFS" --quantization "$q" \
        --cache-bytes "$budget" --out "$OUT/$q-$budget" | tee "$OUT/hnswdb-$q-$budget.log"
    # The resident memory of a process that opens the index with that budget and searches.
    "$BIN" build "$OUT/$q-$budget.hnsw" --input "$SET/base.fvecs" --metric "$METRIC" \
        --quantization "$q" --cache-bytes "$budget" --batch 1000000 > /dev/null
    "$BIN" search "$OUT/$q-$budget.hnsw" --query "$SET/query.fvecs" --truth "$SET/gt.ivecs" \
        --ef 64 | tee -a "$OUT/hnswdb-$q-$budget.log"
    rm -f "$OUT/$q-$budget.hnsw"
done
echo "logs in $OUT"
