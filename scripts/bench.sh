#!/usr/bin/env bash
# Benchmarks that print figures (never pass/fail):
# bench.sh queue|pipeline|fidelity|search|progress|upload|e2e|all
# bench.sh compare   docqueue's queue figures beside BullMQ's on one Redis (not in all:
#                    it needs Node and the npm registry)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_packages

# A Redis of the benchmark's own, so figures are not disturbed by other clients and
# nothing is left in the shared one.
own_redis() {
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  mkdir -p data/bench-redis
  redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --save "" --appendonly no \
    --dir "$PWD/data/bench-redis" --pidfile "$PWD/data/bench-redis/redis.pid" \
    --logfile "$PWD/data/bench-redis/redis.log"
  for _ in $(seq 1 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  BENCH_REDIS_URL="redis://127.0.0.1:$port/"
  export BENCH_REDIS_URL
  trap 'redis-cli -p '"$port"' shutdown nosave >/dev/null 2>&1 || true' EXIT
}

# The pool figures on PostgreSQL too, when one answers at BENCH_POSTGRES_URL (by default
# the tests' server); SQLite alone otherwise.
postgres_for_bench() {
  command -v pg_isready >/dev/null || apt_install postgresql-client
  local url="${BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
  if pg_isready -d "$url" -q; then
    export BENCH_POSTGRES_URL="$url"
  else
    log "PostgreSQL does not answer at $url: figures on SQLite only"
    unset BENCH_POSTGRES_URL
  fi
}

# BullMQ's figures (benches/bullmq) and docqueue's (benches/queue.rs) on one Redis of the
# run's own, emptied between them, group by group: each of BullMQ's groups runs right
# before docqueue's same group, so a pair meets the shared machine in the same state
# (its speed drifts by tens of percent within minutes). The raw lines and the table are
# kept under target/bench-compare/.
compare() {
  { command -v node >/dev/null && command -v npm >/dev/null; } || apt_install nodejs npm
  log "npm ci in benches/bullmq"
  (cd benches/bullmq && npm ci --no-audit --no-fund --silent)
  # Built before Redis starts, so the build does not share the machine with BullMQ's run.
  cargo bench --quiet --bench queue --no-run
  postgres_for_bench
  own_redis
  local out=target/bench-compare stamp bullmq
  stamp=$(date +%Y-%m-%d-%H%M%S)
  bullmq=$(node -p 'require("./benches/bullmq/node_modules/bullmq/package.json").version')
  mkdir -p "$out"
  : >"$out/$stamp-raw.jsonl"
  # BullMQ's group, then docqueue's groups that stand beside it in the table.
  local pair
  for pair in enqueue:enqueue,users noop:noop,pool latency:latency kill:kill; do
    log "BullMQ $bullmq: ${pair%%:*}"
    BULLMQ_BENCH_ONLY=${pair%%:*} node benches/bullmq/bench.mjs | tee -a "$out/$stamp-raw.jsonl"
    redis-cli -u "$BENCH_REDIS_URL" flushall >/dev/null
    log "docqueue: ${pair#*:}"
    QUEUE_BENCH_ONLY=${pair#*:} cargo bench --quiet --bench queue | tee -a "$out/$stamp-raw.jsonl"
    redis-cli -u "$BENCH_REDIS_URL" flushall >/dev/null
  done
  python3 scripts/bench_compare.py "$out/$stamp-raw.jsonl" \
    "docqueue vs BullMQ $bullmq on one private Redis $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p'), $(date '+%Y-%m-%d %H:%M'), $(nproc) cores" |
    tee "$out/$stamp-table.md"
  log "saved $out/$stamp-raw.jsonl and $out/$stamp-table.md"
}

run() {
  case "$1" in
    queue) postgres_for_bench; own_redis; cargo bench --quiet --bench queue ;;
    pipeline) cargo bench --quiet --bench pipeline ;;
    fidelity) cargo bench --quiet --bench fidelity ;;
    search) own_redis; cargo bench --quiet --bench search ;;
    progress) own_redis; cargo bench --quiet --bench progress ;;
    upload) ensure_redis; cargo bench --quiet --bench upload_memory ;;
    e2e) postgres_for_bench; own_redis; cargo bench --quiet --bench e2e ;;
    compare) compare ;;
    *) echo "usage: scripts/bench.sh queue|pipeline|fidelity|search|progress|upload|e2e|all|compare" >&2; exit 2 ;;
  esac
}

target="${1:-all}"
if [ "$target" = all ]; then
  for b in queue pipeline fidelity search progress upload e2e; do run "$b"; done
else
  run "$target"
fi
