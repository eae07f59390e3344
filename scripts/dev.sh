#!/usr/bin/env bash
# Run docqueue locally: installs what is missing, starts Redis if none answers, and
# serves on the embedded SQLite default (http://127.0.0.1:5634). In development mode
# the log prints a ready-to-use user token and admin token.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

ensure_packages
ensure_redis
# Both programs: the server finds its extractor, docqueue-extract, beside it.
cargo build --release --bins
exec "${CARGO_TARGET_DIR:-target}/release/docqueue" serve "$@"
