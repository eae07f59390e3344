#!/usr/bin/env bash
# Benchmarks that print figures (never pass/fail):
# bench.sh queue|pipeline|fidelity|search|progress|upload|all
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

run() {
  case "$1" in
    queue) own_redis; cargo bench --quiet --bench queue ;;
    pipeline) cargo bench --quiet --bench pipeline ;;
    fidelity) cargo bench --quiet --bench fidelity ;;
    search) own_redis; cargo bench --quiet --bench search ;;
    progress) own_redis; cargo bench --quiet --bench progress ;;
    upload) ensure_redis; cargo bench --quiet --bench upload_memory ;;
    *) echo "usage: scripts/bench.sh queue|pipeline|fidelity|search|progress|upload|all" >&2; exit 2 ;;
  esac
}

target="${1:-all}"
if [ "$target" = all ]; then
  for b in queue pipeline fidelity search progress upload; do run "$b"; done
else
  run "$target"
fi
