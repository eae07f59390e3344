#!/usr/bin/env bash
# The lint gate: formatting and clippy with warnings as errors (lints: Cargo.toml's
# [lints] and clippy.toml). `.ci/run` runs it first; `scripts/test.sh` runs it too, so
# a developer sees the same verdict before CI.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

for component in rustfmt clippy; do
  cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1 || rustup component add "$component"
done
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
log "cargo fmt --check"
cargo fmt --check
log "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --quiet -- -D warnings
