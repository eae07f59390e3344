# Shared by dev.sh, test.sh and bench.sh: install what is missing, start what is not
# running. Sourced, not run.

REDIS_HOST="${REDIS_HOST:-127.0.0.1}"
REDIS_PORT="${REDIS_PORT:-6379}"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_updated=""
apt_install() {
  if [ -z "$apt_updated" ]; then
    log "apt-get update"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    apt_updated=1
  fi
  log "apt-get install $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# Build and run dependencies: Redis (server and CLI), libpq for Diesel's PostgreSQL
# driver, pkg-config and a C compiler for the bundled SQLite, poppler's C++ library
# and a C++ compiler (the build makes docqueue-pdftext, which reads short PDFs, with
# them), poppler's pdftotext,
# which reads PDFs inside the extractor process (and its pdftoppm, which renders scanned
# pages for OCR) with poppler-data's CMaps (CJK fonts' codes, vertical writing: a
# recommendation of poppler-utils that --no-install-recommends skips), Tesseract with its English data for OCR of scans and images, and curl
# and jq for scripts/doctor.sh.
ensure_packages() {
  local missing=()
  command -v redis-server >/dev/null || missing+=(redis-server)
  command -v redis-cli >/dev/null || missing+=(redis-tools)
  command -v curl >/dev/null || missing+=(curl)
  command -v jq >/dev/null || missing+=(jq)
  command -v cc >/dev/null || missing+=(gcc libc6-dev)
  command -v pkg-config >/dev/null || missing+=(pkg-config)
  [ -e /usr/include/postgresql/libpq-fe.h ] || missing+=(libpq-dev)
  command -v pdftotext >/dev/null || missing+=(poppler-utils)
  command -v g++ >/dev/null || missing+=(g++)
  [ -e /usr/include/poppler/cpp/poppler-page.h ] || missing+=(libpoppler-cpp-dev)
  [ -d /usr/share/poppler/cMap ] || missing+=(poppler-data)
  command -v tesseract >/dev/null || missing+=(tesseract-ocr)
  { command -v tesseract >/dev/null && tesseract --list-langs 2>/dev/null | grep -qx eng; } || missing+=(tesseract-ocr-eng)
  if [ ${#missing[@]} -gt 0 ]; then apt_install "${missing[@]}"; fi
  command -v cargo >/dev/null || { echo "cargo not found: install Rust (https://rustup.rs)" >&2; exit 1; }
}

redis_answers() {
  redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG
}

# Starts a Redis of the project's own under ./data/redis (append-only on) when none
# answers at REDIS_HOST:REDIS_PORT.
ensure_redis() {
  if redis_answers; then
    return
  fi
  log "no Redis at $REDIS_HOST:$REDIS_PORT; starting one under data/redis"
  mkdir -p data/redis
  redis-server --daemonize yes --bind "$REDIS_HOST" --port "$REDIS_PORT" \
    --dir "$PWD/data/redis" --appendonly yes --save "" \
    --logfile "$PWD/data/redis/redis.log" --pidfile "$PWD/data/redis/redis.pid"
  for _ in $(seq 1 50); do
    redis_answers && return
    sleep 0.1
  done
  echo "Redis did not start; see data/redis/redis.log" >&2
  exit 1
}
