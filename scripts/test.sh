#!/usr/bin/env bash
# Run every test: installs what is missing, starts Redis if none answers, checks the
# lint gate, then runs the suite against SQLite and, when PostgreSQL answers, against
# PostgreSQL too; then the clients (clients/): their unit tests, their tests against a
# running docqueue, and the reference chat page's tests in Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

ensure_packages
command -v pg_isready >/dev/null || apt_install postgresql-client
# The clients are TypeScript, built and tested with Node and npm (Debian's packages).
command -v npm >/dev/null || apt_install nodejs npm
# The dashboard's browser test drives Debian's Chromium through chromedriver; the chat
# page's tests drive the same Chromium through playwright-core (never its own download).
{ command -v chromium >/dev/null && command -v chromedriver >/dev/null; } || apt_install chromium chromium-driver
# The alert rules are tested by promtool, which Debian ships in the prometheus package.
command -v promtool >/dev/null || apt_install prometheus
# The OpenAPI description is validated against the 3.1 specification (PyPI's
# openapi-spec-validator, the validator the OpenAPI tooling lists).
python3 -c 'import openapi_spec_validator' 2>/dev/null || {
  command -v pip3 >/dev/null || python3 -m pip --version >/dev/null 2>&1 || apt_install python3-pip
  python3 -m pip install --quiet --disable-pip-version-check openapi-spec-validator 2>/dev/null \
    || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages openapi-spec-validator
}
ensure_redis

export TEST_POSTGRES_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
# The tests build their own configuration; keep the operator's environment out of it.
unset DATABASE_URL REDIS_URL DOC_WORKER_CONCURRENCY QUEUE_MAX_RETRIES
while IFS='=' read -r name _; do unset "$name"; done < <(env | grep '^DOCQUEUE_' || true)

# A reused target directory keeps a second run fast; CI clones afresh, so it builds once.
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# The lint gate first (quick when .ci/run has just run it).
scripts/lint.sh
log "promtool: the alert rules and their tests (docker/prometheus)"
promtool check config docker/prometheus/prometheus.yml
promtool test rules docker/prometheus/alerts_test.yml
log "docs/openapi.json against OpenAPI 3.1 (tests/openapi.rs keeps it equal to what is served)"
python3 -m openapi_spec_validator docs/openapi.json
cargo build --tests --bins --quiet

log "tests on SQLite"
started=$SECONDS
TEST_DATABASE=sqlite cargo test --no-fail-fast -- --test-threads=4
log "tests on SQLite took $((SECONDS - started)) s"

if pg_isready -d "$TEST_POSTGRES_URL" -q; then
  log "tests on PostgreSQL ($TEST_POSTGRES_URL)"
  started=$SECONDS
  TEST_DATABASE=postgres cargo test --no-fail-fast -- --test-threads=4
  log "tests on PostgreSQL took $((SECONDS - started)) s"
else
  log "PostgreSQL does not answer at $TEST_POSTGRES_URL: PostgreSQL run skipped"
fi

# The clients run against the docqueue binary just built (clients/test-support starts
# it with SQLite and its own Redis prefix), so once is enough.
log "clients: npm ci and build (clients/)"
(cd clients && npm ci --no-audit --no-fund --loglevel=error && npm run build)
started=$SECONDS
log "clients: unit tests (Vitest)"
(cd clients && npm test)
log "clients: against a running docqueue, and the chat page in Chromium"
(cd clients && npm run test:server && npm run test:browser)
log "clients' tests took $((SECONDS - started)) s (screenshots: clients/react/test-output/)"
