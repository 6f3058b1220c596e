#!/usr/bin/env bash
# Restart-to-first-step with JAX's persistent compilation cache (docs/PERFORMANCE.md,
# "Restarts and the compilation cache"):
#   bash benchmarks/restart_timing.sh paper|paper_hrnet [OUT_DIR]
# (1) a fresh workdir, empty cache (compiles and fills WORKDIR/xla_cache), (2) a restart on
# it (warm cache). Each: seconds from the command's start to its first new committed
# checkpoint, then SIGTERM (the trainer saves and exits). Prints peak memory and the load.
set -euo pipefail
CONFIG=${1:?usage: restart_timing.sh paper|paper_hrnet [OUT_DIR]}
OUT=${2:-/tmp/restart_timing_$CONFIG}
REPO=$(cd "$(dirname "$0")/.." && pwd)
W=$OUT/work; DATA=$OUT/data
rm -rf "$W"; mkdir -p "$W" "$DATA"
cd "$REPO"
[ -d "$DATA/synthetic_humans" ] || python -m hybrik_jax.prepare_data --dataset synthetic_humans --config tiny --data_dir "$DATA" >/dev/null
newest() { ls "$W/checkpoints" 2>/dev/null | grep -E '^[0-9]+$' | sort -n | tail -1; }
one() {
  local name=$1 before; before=$(newest); before=${before:-0}
  local t0; t0=$(date +%s.%N)
  python -m hybrik_jax.train --config "benchmarks/restart_config.py:$CONFIG" --workdir "$W" \
      --config.data.data_dir="$DATA" > "$OUT/$name.out" 2> "$OUT/$name.err" &
  local pid=$! peak=0 rss
  while [ ! -d "$W/checkpoints/$((before + 1))" ]; do
    sleep 1
    kill -0 $pid 2>/dev/null || { echo "$name: the trainer exited early; see $OUT/$name.err"; return 1; }
    rss=$(awk '/VmHWM/{print $2}' /proc/$pid/status 2>/dev/null || true); [ -n "$rss" ] && peak=$rss
  done
  local t1; t1=$(date +%s.%N)
  kill -TERM $pid; wait $pid || true
  echo "$CONFIG $name: $(echo "$t1 - $t0" | bc) s to checkpoint $((before + 1)); peak RSS $((peak / 1024)) MiB; load $(cut -d' ' -f1-3 /proc/loadavg)"
}
one cold_cache
one warm_cache
