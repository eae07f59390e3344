#!/usr/bin/env bash
# Runs the checks of docs/troubleshooting.md against a running docqueue and prints one
# line per check: OK, WARN (with what to do) or SKIP (something it needs is down), and
# the figure it found. Exits 1 when any check warns or is skipped.
#
#   scripts/doctor.sh [BASE_URL] [ADMIN_TOKEN]
#
# BASE_URL: an API process, or the proxy in front of it (default $DOCTOR_URL, else
# http://127.0.0.1:5634). ADMIN_TOKEN: default $DOCTOR_ADMIN_TOKEN, else one made by
# `docqueue token --user ops --admin` when docqueue is on PATH. The rest is read from
# the environment docqueue itself reads: REDIS_URL (else REDIS_HOST, REDIS_PORT),
# DOCQUEUE_REDIS__PREFIX (else the prefix the server reports), DATABASE_URL (PostgreSQL
# connections are counted when it is a postgres:// URL), DOCQUEUE_EMBEDDING__* (the
# embedding endpoint is tried when the provider is openai). Optional: DOCTOR_LOG, a
# file holding the server's log, to count known trouble lines; DOCTOR_APP_ORIGIN, the
# chat app's origin, to check CORS for it; DOCTOR_JOB, a job id to look at closely;
# DOCTOR_USER, a user id whose events to count. (The doctor's own settings are DOCTOR_*:
# docqueue reads every DOCQUEUE_* variable as configuration and refuses unknown ones.)
#
# Every command a check runs is written here exactly as the guide prints it, and every
# fix the guide prints is one a WARN line gives (tests/operations.rs holds them equal).
# Needs curl, jq and redis-cli.
set -uo pipefail

URL=${1:-${DOCTOR_URL:-http://127.0.0.1:5634}}
URL=${URL%/}
ADMIN=${2:-${DOCTOR_ADMIN_TOKEN:-}}
if [ -z "$ADMIN" ] && command -v docqueue >/dev/null; then
  ADMIN=$(docqueue token --user ops --admin)
fi
REDIS_URL=${REDIS_URL:-redis://${REDIS_HOST:-127.0.0.1}:${REDIS_PORT:-6379}/}
# Every redis-cli call with a key has -c: on a Redis Cluster it follows MOVED to the
# node that holds docqueue's keys (they share the prefix's hash tag); on one server it
# changes nothing. Calls without a key go to KEYS_URL or NODE_URLS (below).
LOG=${DOCTOR_LOG:-}
JOB_ID=${DOCTOR_JOB:-}
USER_ID=${DOCTOR_USER:-}
# The longest a document may run before the guide calls it stuck: processing.max_seconds.
MAX_RUN_SECONDS=${DOCQUEUE_PROCESSING__MAX_SECONDS:-600}

for tool in curl jq redis-cli; do
  command -v "$tool" >/dev/null || { echo "scripts/doctor.sh needs $tool" >&2; exit 2; }
done

# No request waits longer than this, whatever hangs.
curl() { command curl --max-time 10 "$@"; }

problems=0
# report STATUS CHECK FIGURE [WHAT TO DO…]: one line, then the hints indented under it.
report() {
  local status=$1 check=$2 figure=$3
  shift 3
  printf '%-4s  %-13s %s\n' "$status" "$check" "$figure"
  for hint in "$@"; do printf '%21s%s\n' '' "$hint"; done
  [ "$status" = OK ] || problems=$((problems + 1))
}
section() { echo "see docs/troubleshooting.md#$1"; }
# A figure from a Prometheus text scrape: the sum of the samples of one metric whose
# labels contain $2 (all when empty).
metric() {
  grep -E "^$1(\{|[[:space:]])" <<<"$scrape" | grep -F -- "${2:-}" | awk '{ sum += $NF } END { printf "%d", sum }'
}

# --- the process: liveness, readiness, metrics, the admin token -----------------------
health=$(curl -s -o /dev/null -w '%{http_code}' "$URL/healthz")
if [ "$health" = 200 ]; then
  report OK healthz "HTTP 200 from $URL"
else
  report WARN healthz "HTTP $health from $URL/healthz: the process does not answer" "$(section redis-unreachable-or-evicting)"
fi

ready=$(curl -s "$URL/readyz")
if [ "$(jq -r '.status' <<<"$ready" 2>/dev/null)" = ok ]; then
  report OK readyz "database ok, redis ok"
else
  message=$(jq -r '.error.message // empty' <<<"$ready" 2>/dev/null)
  report WARN readyz "${message:-no answer from $URL/readyz}" "$(section redis-unreachable-or-evicting)"
fi

metrics_status=$(curl -s -o /dev/null -w '%{http_code}' "$URL/metrics")
scrape=""
if [ "$metrics_status" = 200 ]; then
  scrape=$(curl -s "$URL/metrics")
  report OK metrics "HTTP 200, $(grep -c '^docqueue_' <<<"$scrape") docqueue samples"
else
  report WARN metrics "HTTP $metrics_status from /metrics: it answers 503 while Redis cannot be reached" \
    "$(section redis-unreachable-or-evicting)"
fi

admin_status=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $ADMIN" "$URL/api/admin/queue/status")
status_json=""
case $admin_status in
  200)
    status_json=$(curl -s -H "Authorization: Bearer $ADMIN" "$URL/api/admin/queue/status")
    report OK admin "the admin token is accepted" ;;
  401) report WARN admin "HTTP 401: the token is expired, malformed, or signed with another auth.jwt_secret" \
    "make one: docqueue token --user ops --admin" "$(section progress-not-reaching-the-browser)" ;;
  403) report WARN admin "HTTP 403: the token is not an admin's (docqueue token --admin)" ;;
  *) report WARN admin "HTTP $admin_status from /api/admin/queue/status" "$(section redis-unreachable-or-evicting)" ;;
esac

# The key prefix: the operator's, else the one the server reports, else the default.
server_prefix=$(jq -r '.redis_prefix // empty' <<<"$status_json" 2>/dev/null)
P=${DOCQUEUE_REDIS__PREFIX:-${server_prefix:-docq:}}

# --- Redis ----------------------------------------------------------------------------
redis_up=""
pong=$(redis-cli -c -u "$REDIS_URL" PING 2>&1)
if [ "$pong" = PONG ]; then
  redis_up=1
  report OK redis "PONG from $REDIS_URL, key prefix $P"
else
  report WARN redis "Redis does not answer at $REDIS_URL: ${pong:-no reply}" \
    "uploads are kept as queued and enqueued by the reconciler once Redis is back" \
    "$(section redis-unreachable-or-evicting)"
fi
skip_without_redis() { report SKIP "$1" "Redis does not answer"; }

# Where a command without a key goes. On one server, REDIS_URL. On a Redis Cluster,
# docqueue's keys share the prefix's hash tag and live on the one master that owns its
# slot: `-c` follows a command with a key there, but one without (INFO, --scan) answers
# for the node it reaches, so it goes to that master's URL, KEYS_URL. NODE_URLS are every
# node's: each API process subscribes to events on one of them, and other deployments'
# keys may live on any.
KEYS_URL=$REDIS_URL
NODE_URLS=$REDIS_URL
# REDIS_URL with its host:port replaced by $1, keeping its scheme, password and database.
node_url() { sed -E "s#^(rediss?://([^@/]*@)?)[^/]*#\1$1#" <<<"$REDIS_URL"; }
if [ -n "$redis_up" ] && redis-cli -u "$REDIS_URL" INFO cluster | grep -q '^cluster_enabled:1'; then
  slot=$(redis-cli -u "$REDIS_URL" CLUSTER KEYSLOT "$P")
  # CLUSTER NODES: id, ip:port@bus-port[,hostname], flags, master id, …, then slot ranges.
  nodes=$(redis-cli -u "$REDIS_URL" CLUSTER NODES | awk '$3 !~ /fail|noaddr|handshake/ { sub(/@.*/, "", $2); print }')
  home=$(awk -v slot="$slot" '$3 ~ /master/ { for (i = 9; i <= NF; i++) if ($i ~ /^[0-9]/) { n = split($i, r, "-"); if (slot >= r[1] && slot <= r[n]) print $2 } }' <<<"$nodes")
  [ -n "$home" ] && KEYS_URL=$(node_url "$home")
  NODE_URLS=$(awk '{ print $2 }' <<<"$nodes" | while read -r node; do node_url "$node"; done | paste -sd ' ')
fi

if [ -n "$redis_up" ]; then
  memory=$(redis-cli -c -u "$KEYS_URL" INFO memory | tr -d '\r')
  evicted=$(redis-cli -c -u "$KEYS_URL" INFO stats | tr -d '\r' | sed -n 's/^evicted_keys://p')
  used=$(sed -n 's/^used_memory://p' <<<"$memory")
  max=$(sed -n 's/^maxmemory://p' <<<"$memory")
  policy=$(sed -n 's/^maxmemory_policy://p' <<<"$memory")
  kept=$(($(redis-cli -c -u "$REDIS_URL" ZCARD "${P}completed") + $(redis-cli -c -u "$REDIS_URL" ZCARD "${P}failed") + $(redis-cli -c -u "$REDIS_URL" ZCARD "${P}cancelled")))
  figure="used $((used / 1048576)) MiB, maxmemory $([ "$max" -gt 0 ] && echo "$((max / 1048576)) MiB" || echo "none"), policy $policy, $evicted keys evicted, $kept finished jobs kept"
  if [ "$policy" != noeviction ] || [ "${evicted:-0}" -gt 0 ]; then
    report WARN redis-memory "$figure: an evicting Redis drops jobs" \
      'fix: redis-cli -c -u "$KEYS_URL" CONFIG SET maxmemory-policy noeviction' \
      "$(section redis-unreachable-or-evicting)"
  elif [ "$max" -gt 0 ] && [ $((used * 10)) -gt $((max * 9)) ]; then
    report WARN redis-memory "$figure: over 90 % of maxmemory; at the limit enqueues fail" \
      "$(section redis-unreachable-or-evicting)"
  else
    report OK redis-memory "$figure"
  fi
else
  skip_without_redis redis-memory
fi

if [ -n "$scrape" ]; then
  report OK lost-jobs "the reconciler re-enqueued $(metric docqueue_reconciler_requeued_total) jobs Redis had lost (since its stats began)"
else
  report SKIP lost-jobs "/metrics does not answer"
fi

# --- jobs stuck queued ------------------------------------------------------------------
if [ -n "$redis_up" ]; then
  waiting=$(redis-cli -c -u "$REDIS_URL" ZCARD "${P}queue")
  delayed=$(redis-cli -c -u "$REDIS_URL" ZCARD "${P}delayed")
  if [ "$(redis-cli -c -u "$REDIS_URL" EXISTS "${P}paused")" = 1 ]; then
    report WARN paused "claiming is paused: $waiting waiting until it is resumed" \
      'fix: curl -s -X POST -H "Authorization: Bearer $ADMIN" "$URL/api/admin/queue/resume"' \
      "$(section jobs-stuck-queued)"
  else
    report OK paused "claiming runs"
  fi

  processes=$(redis-cli -c -u "$KEYS_URL" --scan --pattern "${P}alive:*" | wc -l)
  workers=$(redis-cli -c -u "$REDIS_URL" HLEN "${P}workers")
  if [ "$processes" -eq 0 ]; then
    report WARN workers "no live worker process on prefix $P: jobs will wait ($waiting waiting now)" \
      "start one: docqueue serve --role worker (or --role all), with the same redis.prefix" \
      "$(section jobs-stuck-queued)"
  else
    report OK workers "$processes worker processes alive, $workers workers registered"
  fi

  # Worker processes of every prefix on this Redis (another deployment, or a pool
  # started with the wrong redis.prefix).
  others=$(for node in $NODE_URLS; do redis-cli -u "$node" --scan --pattern '*alive:*'; done | sed 's/alive:.*//' | sort -u | grep -vxF -- "$P" | tr '\n' ' ')
  if [ "$processes" -eq 0 ] && [ -n "$others" ]; then
    report WARN prefix "workers are alive on other prefixes: ${others% }; none on $P" \
      "if one of them is this deployment's pool, give it redis.prefix = \"$P\" (DOCQUEUE_REDIS__PREFIX) and restart it" \
      "$(section jobs-stuck-queued)"
  else
    report OK prefix "$P${others:+ (other prefixes with live workers: ${others% })}"
  fi

  oldest=$(redis-cli -c -u "$REDIS_URL" ZRANGE "${P}waiting_since" 0 0 WITHSCORES)
  now_ms=$(redis-cli -c -u "$REDIS_URL" TIME | awk 'NR == 1 { s = $1 } NR == 2 { printf "%d", s * 1000 + $1 / 1000 }')
  if [ -n "$oldest" ]; then
    oldest_job=$(head -n 1 <<<"$oldest")
    oldest_age=$(((now_ms - $(tail -n 1 <<<"$oldest")) / 1000))
  else
    oldest_job="" oldest_age=0
  fi
  figure="$waiting waiting, $delayed waiting to retry, the longest wait ${oldest_age} s${oldest_job:+ (job $oldest_job)}"
  if [ "$oldest_age" -gt 30 ]; then
    report WARN backlog "$figure: over the 30 s target" "$(section jobs-stuck-queued)"
  else
    report OK backlog "$figure"
  fi
else
  for check in paused workers prefix backlog; do skip_without_redis "$check"; done
fi

# --- jobs stuck processing ----------------------------------------------------------------
if [ -n "$redis_up" ]; then
  running=0 expired=0 orphaned=0 longest=0 longest_job=""
  # Each running job with its lease deadline (ms since the epoch), as rescue_stalled.lua sees it.
  while read -r job lease_until; do
    [ -n "$job" ] || continue
    running=$((running + 1))
    [ "${lease_until%.*}" -lt "$now_ms" ] && expired=$((expired + 1))
    # '|' between fields: an empty one (no process, no stage yet) must keep its place.
    IFS='|' read -r started process stage < <(redis-cli -c -u "$REDIS_URL" HMGET "${P}job:$job" started_at process stage | paste -sd '|')
    if [ -n "$process" ] && [ "$(redis-cli -c -u "$REDIS_URL" EXISTS "${P}alive:$process")" = 0 ]; then
      orphaned=$((orphaned + 1))
    fi
    if [ -n "$started" ] && [ $(((now_ms - started) / 1000)) -gt "$longest" ]; then
      longest=$(((now_ms - started) / 1000)) longest_job="$job${stage:+, $stage}"
    fi
  done < <(redis-cli -c -u "$REDIS_URL" ZRANGE "${P}active" 0 -1 WITHSCORES | paste - -)
  figure="$running running, the longest for ${longest} s${longest_job:+ (job $longest_job)}, $expired leases expired, $orphaned of dead processes"
  if [ "$expired" -gt 0 ] || [ "$orphaned" -gt 0 ]; then
    report WARN processing "$figure: no process is rescuing them (rescue runs in every worker process)" \
      "$(section jobs-stuck-processing)"
  elif [ "$longest" -gt "$MAX_RUN_SECONDS" ]; then
    report WARN processing "$figure: past processing.max_seconds = $MAX_RUN_SECONDS" \
      "look closer: DOCTOR_JOB=${longest_job%%,*} scripts/doctor.sh" \
      'cancel it: curl -s -X DELETE -H "Authorization: Bearer $ADMIN" "$URL/api/admin/queue/cancel/$JOB_ID"' \
      "$(section jobs-stuck-processing)"
  else
    report OK processing "$figure"
  fi
else
  skip_without_redis processing
fi

# --- one job, closely --------------------------------------------------------------------
if [ -z "$JOB_ID" ]; then
  report OK job "none named: set DOCTOR_JOB to a job id to look at it"
elif [ -n "$redis_up" ]; then
  record=$(redis-cli -c -u "$REDIS_URL" HMGET "${P}job:$JOB_ID" state stage progress worker attempts stalls lease_until | paste -sd '|')
  rank=$(redis-cli -c -u "$REDIS_URL" ZRANK "${P}queue" "$JOB_ID")
  story=$(curl -s -H "Authorization: Bearer $ADMIN" "$URL/api/admin/queue/jobs/$JOB_ID" | jq -c 'if .error then .error.message else {document: .document.queue_status, error: .document.error, attempts: [.attempts[] | {worker_id, outcome, error, extractor_outcome}]} end')
  IFS='|' read -r state stage progress worker attempts stalls lease_until <<<"$record"
  if [ -z "$state" ]; then
    report WARN job "$JOB_ID: Redis has no record of it; the document: $story" \
      "the reconciler enqueues an unfinished document's job again within reconcile_interval_secs" \
      "$(section jobs-stuck-queued)"
  else
    # A finished job keeps its last run's stage, progress and lease: they mean something
    # only while it runs.
    [ "$state" = active ] || stage="" lease_until=""
    figure="$JOB_ID: $state${rank:+, position $((rank + 1))}${stage:+, $stage $progress %}${worker:+ on $worker}, attempt ${attempts:-0}, ${stalls:-0} stalls"
    [ -n "$lease_until" ] && figure="$figure, lease for $(((lease_until - now_ms) / 1000)) s more"
    report OK job "$figure; the document: $story"
  fi
else
  skip_without_redis job
fi

# --- events to the browser ----------------------------------------------------------------
if [ -n "$redis_up" ]; then
  hubs=$(for node in $NODE_URLS; do redis-cli -u "$node" PUBSUB NUMSUB "${P}events" | tail -n 1; done | awk '{ n += $1 } END { print n + 0 }')
  figure="$hubs processes receive events"
  if [ -n "$USER_ID" ]; then
    seq=$(redis-cli -c -u "$REDIS_URL" GET "${P}events:seq:$USER_ID")
    kept=$(redis-cli -c -u "$REDIS_URL" XLEN "${P}events:stream:$USER_ID")
    figure="$figure; $USER_ID's last seq ${seq:-0}, $kept events kept for resume"
  fi
  if [ "$hubs" -eq 0 ]; then
    report WARN events "$figure: no API process listens, so no browser gets progress" \
      "$(section progress-not-reaching-the-browser)"
  else
    report OK events "$figure"
  fi
else
  skip_without_redis events
fi

# --- what ended badly -----------------------------------------------------------------------
# Over the last 15 minutes, like the alert: finished jobs are scored by when they ended.
if [ -n "$redis_up" ]; then
  since=$((now_ms - 900000))
  recent_completed=$(redis-cli -c -u "$REDIS_URL" ZCOUNT "${P}completed" "$since" +inf)
  recent_failed=$(redis-cli -c -u "$REDIS_URL" ZCOUNT "${P}failed" "$since" +inf)
  figure="in the last 15 min $recent_completed completed, $recent_failed failed"
  reasons=""
  if [ -n "$status_json" ] && [ "$recent_failed" -gt 0 ]; then
    reasons=$(curl -s -H "Authorization: Bearer $ADMIN" "$URL/api/admin/queue/jobs?state=failed&limit=20" | jq -r '.jobs[].error' | sort | uniq -c | sort -rn)
    reasons="; the latest reasons: $(head -n 3 <<<"$reasons" | sed -E 's/^ *([0-9]+) (.*)$/"\2" ×\1/' | paste -sd ';')"
  fi
  if [ $((recent_failed * 20)) -gt $((recent_completed + recent_failed)) ]; then
    report WARN failures "$figure: over 5 %$reasons" \
      'once the cause is fixed: curl -s -X POST -H "Authorization: Bearer $ADMIN" "$URL/api/admin/queue/retry-failed"' \
      "$(section reading-why-jobs-failed)"
  else
    report OK failures "$figure$reasons"
  fi
else
  skip_without_redis failures
fi

if [ -n "$scrape" ]; then
  extractor_runs=$(metric docqueue_extractor_outcomes_total)
  abnormal=$(grep -E '^docqueue_extractor_outcomes_total\{outcome="(crash|memory_limit|cpu_limit|timed_out|killed|not_started)"\}' <<<"$scrape" | awk '$NF > 0')
  abnormal_count=$(awk '{ sum += $NF } END { printf "%d", sum }' <<<"$abnormal")
  endings=$(sed -E 's/.*outcome="([a-z_]+)".* ([0-9.]+)$/\1 ×\2/' <<<"$abnormal" | paste -sd ' ')
  figure="$extractor_runs extractor runs; crashes and limits: ${endings:-none}"
  if [ $((abnormal_count * 20)) -gt "$extractor_runs" ]; then
    report WARN extractor "$figure: over 5 % of runs" "$(section hostile-files-hitting-limits)"
  else
    report OK extractor "$figure"
  fi

  refused=$(grep -E '^docqueue_http_requests_total\{.*status="(408|413|415|429|507)"' <<<"$scrape" | sed -E 's/.*status="([0-9]+)".* ([0-9.]+)$/\1 \2/' | awk '{ n[$1] += $2 } END { for (s in n) printf "%s×%d\n", s, n[s] }' | paste -sd ' ')
  report OK uploads "refused answers (408, 413, 415, 429, 507): ${refused:-none}"

  server_errors=$(grep -E '^docqueue_http_requests_total\{.*status="5[0-9][0-9]"' <<<"$scrape" | sed -E 's/.*route="([^"]*)".*status="([0-9]+)".* ([0-9.]+)$/\2 \1 \3/' | awk '{ printf "%s %s ×%d; ", $1, $2, $3 }')
  if [ -n "$server_errors" ]; then
    report WARN http-errors "${server_errors%; }" "$(section database-locked-or-exhausted)"
  else
    report OK http-errors "no 5xx answers since this process started"
  fi
else
  for check in extractor uploads http-errors; do report SKIP "$check" "/metrics does not answer"; done
fi

# --- the database ------------------------------------------------------------------------------
db_state=$(jq -r '.checks.database // empty' <<<"$ready" 2>/dev/null)
ready_time=$(curl -s -o /dev/null -w '%{time_total}' "$URL/readyz")
figure="readyz says ${db_state:-nothing}, answered in ${ready_time} s"
if [[ ${DATABASE_URL:-} == postgres* ]] && command -v psql >/dev/null; then
  connections=$(psql "$DATABASE_URL" -Atc "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
  max_connections=$(psql "$DATABASE_URL" -Atc "SHOW max_connections")
  figure="$figure; PostgreSQL connections $connections of max_connections $max_connections"
fi
if [ "$db_state" != ok ]; then
  report WARN database "$figure" "$(section database-locked-or-exhausted)"
elif [ -n "${connections:-}" ] && [ $((connections * 10)) -gt $((max_connections * 8)) ]; then
  report WARN database "$figure: over 80 % used" "$(section database-locked-or-exhausted)"
else
  report OK database "$figure"
fi

# --- progress to the browser ----------------------------------------------------------------------
# A WebSocket handshake as a browser makes it, token in the query: 101 and, within two
# seconds, the first frame (the snapshot). Through a proxy that buffers, the 101 comes
# but the frame does not.
ws_reply=$(curl -s -i -N --http1.1 --max-time 2 -H 'Connection: Upgrade' -H 'Upgrade: websocket' -H 'Sec-WebSocket-Version: 13' -H 'Sec-WebSocket-Key: ZG9jcXVldWUtZG9jdG9yLTE=' "$URL/ws?token=$ADMIN" | tr -d '\0')
ws_status=$(head -n 1 <<<"$ws_reply" | awk '{ print $2 }')
if [ "$ws_status" = 101 ] && grep -q '"type":"snapshot"' <<<"$ws_reply"; then
  report OK websocket "101 Switching Protocols, then the snapshot frame"
elif [ "$ws_status" = 101 ] && [ -z "$redis_up" ]; then
  report SKIP websocket "101, but the snapshot needs Redis"
elif [ "$ws_status" = 101 ]; then
  report WARN websocket "101, but no snapshot frame within 2 s: a proxy is buffering the stream" \
    "$(section progress-not-reaching-the-browser)"
else
  report WARN websocket "HTTP ${ws_status:-no answer} to the WebSocket handshake (401: the token; 400 or 404: a proxy does not forward Upgrade)" \
    "$(section progress-not-reaching-the-browser)"
fi

origin=${DOCTOR_APP_ORIGIN:-https://chat.example.com}
allowed=$(curl -s -o /dev/null -D - -X OPTIONS -H "Origin: $origin" -H 'Access-Control-Request-Method: POST' "$URL/api/documents/upload" | tr -d '\r' | sed -n 's/^[Aa]ccess-[Cc]ontrol-[Aa]llow-[Oo]rigin: //p')
if [ "$health" != 200 ]; then
  report SKIP cors "the process does not answer"
elif [ -n "$allowed" ]; then
  report OK cors "$origin may call the API (Access-Control-Allow-Origin: $allowed)"
elif [ -n "${DOCTOR_APP_ORIGIN:-}" ]; then
  report WARN cors "no Access-Control-Allow-Origin for $origin: a page there cannot call the API (server.cors_allowed_origins)" \
    "$(section progress-not-reaching-the-browser)"
else
  report OK cors "no CORS headers: pages on the same origin only (set DOCTOR_APP_ORIGIN to check another)"
fi

# --- the embedding endpoint -----------------------------------------------------------------------
if [ "${DOCQUEUE_EMBEDDING__PROVIDER:-hash}" = openai ]; then
  EMBEDDING_URL=${DOCQUEUE_EMBEDDING__BASE_URL:-http://localhost:11434/v1}
  EMBEDDING_MODEL=${DOCQUEUE_EMBEDDING__MODEL:-nomic-embed-text}
  EMBEDDING_KEY=${DOCQUEUE_EMBEDDING__API_KEY:-}
  embedding=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' --max-time 30 -H 'Content-Type: application/json' -H "Authorization: Bearer $EMBEDDING_KEY" -d "{\"model\": \"$EMBEDDING_MODEL\", \"input\": [\"docqueue doctor\"]}" "$EMBEDDING_URL/embeddings")
  case ${embedding%% *} in
    200) report OK embedding "$EMBEDDING_URL answers 200 in ${embedding#* } s" ;;
    429) report WARN embedding "$EMBEDDING_URL answers 429: rate-limited" "$(section embedding-endpoint-failing-or-rate-limiting)" ;;
    *) report WARN embedding "$EMBEDDING_URL answers ${embedding%% *} (000: unreachable)" "$(section embedding-endpoint-failing-or-rate-limiting)" ;;
  esac
else
  report OK embedding "the built-in hash provider: no endpoint to call"
fi

# --- the server's log ---------------------------------------------------------------------------
if [ -n "$LOG" ] && [ -r "$LOG" ]; then
  found=""
  for pattern in 'queue error' 'cannot reach Redis' 'claim failed' 'enqueue failed' 'progress hub' 'database is locked' 'database unavailable' 'embedding request to' 'stalled (' 'reconciler:' 'extractor crashed'; do
    count=$(grep -c -F -- "$pattern" "$LOG")
    [ "$count" -gt 0 ] && found="$found\"$pattern\" ×$count, "
  done
  if [ -n "$found" ]; then
    report WARN log "${found%, } in $LOG" "the guide's sections say which symptom each line belongs to"
  else
    report OK log "no known trouble lines in $LOG"
  fi
else
  report OK log "not searched: set DOCTOR_LOG to a file of the server's log"
fi

exit $((problems > 0))
