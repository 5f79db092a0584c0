#!/usr/bin/env bash
# Soak: an hour of the stack's logs at a steady high rate, with rotations, feed clients and
# queries, against one `logwarden run`; memory and descriptors must stay flat and nothing may be
# lost. Not run in CI (issue 9).
#
#   benches/soak.sh                           # one hour, 5000 events/s, 50 feed clients
#   SOAK_SECONDS=180 benches/soak.sh          # a short run
#
# What runs, in a temporary directory (WORK):
#   - the writer (benches/soak/writer.py) replays a `logwarden demo --generate SOAK_POOL` corpus
#     into app.log and worker.log (pino), postgresql.log (stderr, multi-line entries), redis.log
#     and kern.log at SOAK_RATE events/s, every time rewritten to the wall clock, and counts the
#     events it writes per service. Every ROTATE_SECONDS it runs the real logrotate: rename +
#     create with delaycompress for app/postgresql/redis, rename + create for kern, copytruncate +
#     compress for worker (`rotate 2`); every SAMPLE_SECONDS it appends a marker line to app.log
#     and times it until the agent's /api/v1/count finds it (append → searchable);
#   - `logwarden run` on those files (a profile in WORK), serving HTTP on a free loopback port;
#   - FEED_CLIENTS SSE clients of /api/v1/feed (benches/soak/feed.py), each checking it gets
#     every incident change once, in order, and reconnecting with Last-Event-ID if cut off; the
#     first one times each change from its line's write to its arrival (SOAK_OUT/…-incident-delays.csv);
#   - every QUERY_SECONDS four loggrep queries (a term, a phrase, a service+level+time range,
#     --count-by service) through the running agent, timed;
#   - every SAMPLE_SECONDS a row of SOAK_OUT/soak-DATE.csv: RSS (VmRSS, and its anonymous and
#     file-backed parts), threads, open descriptors, lag (bytes not read yet), events written and
#     indexed, index commits a second and their mean duration, the last marker's latency, feed
#     clients connected, the incident log's sequence number and the open incidents.
# Before the run the writer's framing is checked: its per-service event counts of the pool must
# equal what `logwarden backfill` indexes from the same entries, so the count check is exact.
#
# At the end (the writer stopped, the agent given DRAIN_SECONDS to catch up) it fails, saying why,
#   - unless every service's events written == indexed (`loggrep --count-by service`) and the
#     /metrics `logwarden_events_total` agree;
#   - unless every feed client is connected and has every change up to the incident log's last
#     one, with no gap and no repeat;
#   - if memory or descriptors grew: over the samples after the warm-up (WARMUP_SECONDS, default
#     max(60 s, 10 %)), the mean of the last quarter against the mean of the second quarter, and
#     the least-squares line's rise across the window, may not exceed RSS_GROWTH_MAX % (default
#     10) of the mean for RssAnon (the heap: file-backed pages are the index's mmapped segments,
#     the kernel's to drop, reported beside it) nor FD_GROWTH_MAX (default 8) for descriptors and
#     for threads; fewer than 8 samples after the warm-up is a failure too (run longer);
#   - if a marker was never found, if a loggrep query failed, if no incident change was made in
#     the whole run, or if `logwarden run` did not stop cleanly on SIGTERM.
# Reported, not judged: VmRSS and its file-backed part, lag, commits, open incidents, the data
# dir's size, the latencies (markers, incident changes, queries).
# It prints a summary table (also SOAK_OUT/soak-DATE.md). Knobs (environment): SOAK_SECONDS
# (3600), SOAK_RATE (5000), ROTATE_SECONDS (60), FEED_CLIENTS (50), SAMPLE_SECONDS (10),
# QUERY_SECONDS (30), SOAK_POOL (32M), WARMUP_SECONDS, RSS_GROWTH_MAX (10), FD_GROWTH_MAX (8),
# DRAIN_SECONDS (120), SOAK_OUT (target/soak), SOAK_KEEP (1: keep WORK; default: kept only when
# a check fails), SOAK_WORK (where WORK goes, default /tmp), SOAK_BUILD (0: use the binaries as
# they are), LW_ARGS (more flags for `logwarden run`: "--lateness 10s", "--index-memory 16").
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

SOAK_SECONDS="${SOAK_SECONDS:-3600}"
SOAK_RATE="${SOAK_RATE:-5000}"
ROTATE_SECONDS="${ROTATE_SECONDS:-60}"
FEED_CLIENTS="${FEED_CLIENTS:-50}"
SAMPLE_SECONDS="${SAMPLE_SECONDS:-10}"
QUERY_SECONDS="${QUERY_SECONDS:-30}"
SOAK_POOL="${SOAK_POOL:-32M}"
WARMUP_SECONDS="${WARMUP_SECONDS:-$(( SOAK_SECONDS / 10 > 60 ? SOAK_SECONDS / 10 : 60 ))}"
RSS_GROWTH_MAX="${RSS_GROWTH_MAX:-10}"
FD_GROWTH_MAX="${FD_GROWTH_MAX:-8}"
DRAIN_SECONDS="${DRAIN_SECONDS:-120}"
SOAK_OUT="${SOAK_OUT:-target/soak}"
SOAK_KEEP="${SOAK_KEEP:-on-failure}"
mkdir -p "$SOAK_OUT"
SOAK_OUT="$(cd "$SOAK_OUT" && pwd)"
STAMP="$(date -u +%Y%m%d-%H%M%S)"
CSV="$SOAK_OUT/soak-$STAMP.csv"
QCSV="$SOAK_OUT/soak-$STAMP-queries.csv"
MCSV="$SOAK_OUT/soak-$STAMP-markers.csv"
DCSV="$SOAK_OUT/soak-$STAMP-incident-delays.csv"
SUMMARY="$SOAK_OUT/soak-$STAMP.md"

say() { printf '== %s\n' "$*" >&2; }
now() { date +%s.%N; }
ms_since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", (b - a) * 1000 }'; }

# --- binaries ------------------------------------------------------------------------------------
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release"
if [ "${SOAK_BUILD:-1}" != 0 ]; then
  say "building the release binaries"
  cargo build --release --bins --quiet
fi
LW="$BIN/logwarden"
LG="$BIN/loggrep"
[ -x "$LW" ] && [ -x "$LG" ] || { echo "soak: no release binaries in $BIN" >&2; exit 2; }
command -v logrotate >/dev/null || [ -x /usr/sbin/logrotate ] || { echo "soak: logrotate is needed (apt-get install logrotate)" >&2; exit 2; }
export PATH="$PATH:/usr/sbin"
for t in python3 curl jq; do command -v "$t" >/dev/null || { echo "soak: $t is needed" >&2; exit 2; }; done

# --- the work directory and the children ---------------------------------------------------------
WORK="$(mktemp -d "${SOAK_WORK:-/tmp}/logwarden-soak.XXXXXX")"
LOGS="$WORK/logs"; DATA="$WORK/data"
mkdir -p "$LOGS"
LW_PID=""; FEED_PID=""; WRITER_PID=""
FAILED=0
stop_pid() { # stop_pid PID SECONDS: SIGTERM, then SIGKILL after SECONDS; returns its exit status
  local pid="$1" secs="$2" st=0
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq $(( secs * 10 ))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null && { say "pid $pid did not stop within ${secs} s: killed"; }
  wait "$pid" 2>/dev/null || st=$?
  return "$st"
}
cleanup() {
  local st=$?
  trap - EXIT INT TERM
  stop_pid "$WRITER_PID" 10 || true
  stop_pid "$FEED_PID" 5 || true
  stop_pid "$LW_PID" 30 || true
  [ "$st" -ne 0 ] && FAILED=1
  if [ "$SOAK_KEEP" = 1 ] || { [ "$SOAK_KEEP" = on-failure ] && [ "$FAILED" -ne 0 ]; }; then
    say "kept $WORK (logs, data dir, logwarden.err)"
  else
    rm -rf "$WORK"
  fi
  exit "$st"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
trap 'echo "soak: line $LINENO: \`$BASH_COMMAND\` failed ($?)" >&2' ERR
die() { FAILED=1; echo "soak: $*" >&2; exit 1; }

# --- the pool, the profile, logrotate's config, the framing check --------------------------------
say "work dir $WORK; pool of $SOAK_POOL"
"$LW" demo --generate "$SOAK_POOL" --out "$WORK/pool.log" >/dev/null 2>&1

profile() { # profile DIR: the stack's five files in DIR
  cat <<TOML
description = "soak: the newsletter stack's files, rotated by logrotate"
[[source]]
service = "app"
format = "pino"
path = "$1/app.log"
[[source]]
service = "worker"
format = "pino"
path = "$1/worker.log"
[[source]]
service = "postgres"
format = "postgres"
prefix = "%m [%p] %q%u@%d "
path = "$1/postgresql.log"
[[source]]
service = "redis"
format = "redis"
path = "$1/redis.log"
[[source]]
service = "kernel"
format = "syslog"
path = "$1/kern.log"
TOML
}
profile "$LOGS" >"$WORK/profile.toml"
cat >"$WORK/logrotate.conf" <<CONF
$LOGS/app.log $LOGS/postgresql.log $LOGS/redis.log {
    rotate 2
    missingok
    compress
    delaycompress
    create 0644
}
$LOGS/kern.log {
    rotate 2
    missingok
    create 0644
}
$LOGS/worker.log {
    rotate 2
    missingok
    compress
    copytruncate
}
CONF

say "checking the writer's framing against a backfill of the same entries"
mkdir -p "$WORK/check"
python3 benches/soak/writer.py "$WORK/pool.log" --dump "$WORK/check/logs" >"$WORK/check/expected.json"
profile "$WORK/check/logs" >"$WORK/check/profile.toml"
"$LW" backfill --data-dir "$WORK/check/data" --profile "$WORK/check/profile.toml" >/dev/null 2>"$WORK/check/backfill.err" \
  || { cat "$WORK/check/backfill.err" >&2; die "the framing check's backfill failed"; }
count_by_service() { # count_by_service DATA: {"app": N, …} of the index
  "$LG" --data-dir "$1" --count-by service --color never 2>/dev/null \
    | awk 'BEGIN { printf "{" } NF == 2 { printf "%s\"%s\": %s", (n++ ? ", " : ""), $2, $1 } END { print "}" }'
}
count_by_service "$WORK/check/data" >"$WORK/check/indexed.json"
if [ "$(jq -S -c . "$WORK/check/expected.json")" != "$(jq -S -c . "$WORK/check/indexed.json")" ]; then
  die "the writer frames the pool differently from logwarden: writer $(cat "$WORK/check/expected.json"), backfill $(cat "$WORK/check/indexed.json")"
fi
say "framing agrees: $(jq -S -c . "$WORK/check/indexed.json") events per pass of the pool"
rm -rf "$WORK/check"

# --- logwarden, the feed clients, the writer -----------------------------------------------------
for f in app.log worker.log postgresql.log redis.log kern.log; do : >"$LOGS/$f"; done
# shellcheck disable=SC2086 # LW_ARGS: words
"$LW" run --data-dir "$DATA" --profile "$WORK/profile.toml" --listen 127.0.0.1:0 ${LW_ARGS:-} >"$WORK/logwarden.out" 2>"$WORK/logwarden.err" &
LW_PID=$!
for _ in $(seq 300); do [ -s "$DATA/serve.addr" ] && break; kill -0 "$LW_PID" 2>/dev/null || break; sleep 0.1; done
[ -s "$DATA/serve.addr" ] || { cat "$WORK/logwarden.err" >&2; die "logwarden run did not start serving within 30 s"; }
ADDR="$(head -1 "$DATA/serve.addr" | tr -d '[:space:]')"
ADDR="${ADDR#http://}"
API="http://$ADDR"
say "logwarden run: pid $LW_PID, $API"

metric_sum() { # metric_sum NAME [LABEL_FILTER]: the sum of a series' samples in $WORK/metrics
  awk -v n="$1" -v f="${2:-}" '($1 == n || index($1, n "{") == 1) && index($1, f) { s += $NF } END { printf "%.0f", s }' "$WORK/metrics"
}
scrape() { curl -sf --max-time 10 "$API/metrics" >"$WORK/metrics" || : >"$WORK/metrics"; }

: >"$DCSV"
python3 benches/soak/feed.py "$API" "$FEED_CLIENTS" "$WORK/feed.json" "$DCSV" 2>"$WORK/feed.err" &
FEED_PID=$!
for _ in $(seq 300); do
  scrape
  [ "$(metric_sum logwarden_feed_clients 'transport="sse"')" -ge "$FEED_CLIENTS" ] && break
  kill -0 "$FEED_PID" 2>/dev/null || break
  sleep 0.1
done
[ "$(metric_sum logwarden_feed_clients 'transport="sse"')" -ge "$FEED_CLIENTS" ] \
  || die "the $FEED_CLIENTS feed clients did not all connect within 30 s ($(metric_sum logwarden_feed_clients) did)"
say "$FEED_CLIENTS feed clients connected"

: >"$MCSV"
python3 benches/soak/writer.py "$WORK/pool.log" --dir "$LOGS" --rate "$SOAK_RATE" \
  --rotate-seconds "$ROTATE_SECONDS" --logrotate-conf "$WORK/logrotate.conf" --state "$WORK/logrotate.state" \
  --totals "$WORK/totals.json" --progress "$WORK/progress" \
  --markers "$MCSV" --marker-seconds "$SAMPLE_SECONDS" --api "$API" 2>"$WORK/writer.err" &
WRITER_PID=$!
START=$(now)
say "writing $SOAK_RATE events/s for $SOAK_SECONDS s, rotating every $ROTATE_SECONDS s; samples every $SAMPLE_SECONDS s into $CSV"

# --- the run -------------------------------------------------------------------------------------
echo "t_s,rss_mb,rss_anon_mb,rss_file_mb,threads,fds,lag_bytes,events_written,events_indexed,index_eps,commits_per_s,commit_ms,marker_ms,feed_connected,feed_min_last_id,incident_seq,incidents_open,rotations,data_mb,heap_alloc_mb,heap_resident_mb" >"$CSV"
echo "t_s,query,ms,rc,lines" >"$QCSV"
status_kb() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$LW_PID/status"; }
prev_idx=0; prev_t=0; prev_commits=0; prev_commit_s=0
QUERY_FAILURES=0
sample() {
  local t rss anon file threads fds lag written idx eps commits commit_s cps cms marker feed_conn feed_min seq open rot data halloc hres
  t=$(awk -v a="$START" -v b="$(now)" 'BEGIN { printf "%.0f", b - a }')
  rss=$(( $(status_kb VmRSS) / 1024 )); anon=$(( $(status_kb RssAnon) / 1024 )); file=$(( $(status_kb RssFile) / 1024 ))
  threads=$(status_kb Threads)
  # (a descriptor closed while it is listed, a file deleted while du walks the index (merges)
  # make these fail: that must not end the run)
  fds=$( (find "/proc/$LW_PID/fd" -mindepth 1 -maxdepth 1 2>/dev/null || true) | wc -l)
  scrape
  lag=$(metric_sum logwarden_source_lag_bytes)
  idx=$(metric_sum logwarden_events_total)
  eps=$(awk -v i="$idx" -v p="$prev_idx" -v t="$t" -v q="$prev_t" 'BEGIN { printf "%.0f", (t > q ? (i - p) / (t - q) : 0) }')
  # index commits in the interval: how many a second, and their mean duration
  commits=$(metric_sum logwarden_index_commit_duration_seconds_count)
  commit_s=$(awk '$1 == "logwarden_index_commit_duration_seconds_sum" { print $NF }' "$WORK/metrics")
  cps=$(awk -v c="$commits" -v p="$prev_commits" -v t="$t" -v q="$prev_t" 'BEGIN { printf "%.1f", (t > q ? (c - p) / (t - q) : 0) }')
  cms=$(awk -v c="$commits" -v p="$prev_commits" -v s="${commit_s:-0}" -v r="$prev_commit_s" 'BEGIN { printf "%.1f", (c > p ? (s - r) / (c - p) * 1000 : 0) }')
  prev_commits=$commits; prev_commit_s=${commit_s:-0}
  open=$(metric_sum logwarden_incidents_open)
  # jemalloc's own figures: what the program holds, and what the allocator keeps resident
  halloc=$(( $(metric_sum logwarden_heap_allocated_bytes) >> 20 )); hres=$(( $(metric_sum logwarden_heap_resident_bytes) >> 20 ))
  prev_idx=$idx; prev_t=$t
  read -r written rot _ <"$WORK/progress" 2>/dev/null || { written=0; rot=0; }
  marker=$(awk -F, '$3 != "" { m = $3 } END { print m }' "$MCSV")
  read -r feed_conn feed_min < <(jq -r '[([.clients[] | select(.connected)] | length), ([.clients[].last_id] | min)] | @tsv' "$WORK/feed.json" 2>/dev/null || echo "0 0")
  seq=$( (curl -sf --max-time 10 "$API/api/v1/incidents?open=true" || true) | jq -r '.seq' 2>/dev/null || true)
  data=$( (du -sm "$DATA" 2>/dev/null || true) | awk '{ print $1 }')
  echo "$t,$rss,$anon,$file,$threads,$fds,$lag,$written,$idx,$eps,$cps,$cms,$marker,$feed_conn,$feed_min,$seq,$open,$rot,$data,$halloc,$hres" >>"$CSV"
  printf '   t=%5ss rss %4s MB (anon %4s, heap %4s) fds %3s threads %2s lag %8s B written %9s indexed %9s (%5s/s) commits %4s/s %5s ms marker %6s ms feed %s/%s seq %s open %s\n' \
    "$t" "$rss" "$anon" "$halloc" "$fds" "$threads" "$lag" "$written" "$idx" "$eps" "$cps" "$cms" "${marker:-?}" "$feed_conn" "$FEED_CLIENTS" "$seq" "$open" >&2
}
query() { # query NAME loggrep-args...
  local name="$1" t0 rc=0 ms lines t; shift
  t=$(awk -v a="$START" -v b="$(now)" 'BEGIN { printf "%.0f", b - a }')
  t0=$(now)
  "$LG" --data-dir "$DATA" --color never "$@" >"$WORK/query.out" 2>"$WORK/query.err" || rc=$?
  ms=$(ms_since "$t0")
  lines=$(wc -l <"$WORK/query.out")
  echo "$t,$name,$ms,$rc,$lines" >>"$QCSV"
  # 1 is "nothing matched"; a failure is counted (and fails the run at the end), not fatal now
  [ "$rc" -le 1 ] || { QUERY_FAILURES=$(( QUERY_FAILURES + 1 )); say "loggrep $* failed ($rc): $(head -3 "$WORK/query.err")"; }
}
queries() {
  query term --limit 100 ECONNREFUSED
  query phrase --limit 100 '"too many clients"'
  query range --limit 100 --service postgres --level error --since 5m
  query count-by-service --count-by service
}
alive() {
  kill -0 "$LW_PID" 2>/dev/null || { tail -20 "$WORK/logwarden.err" >&2; die "logwarden run died"; }
  kill -0 "$WRITER_PID" 2>/dev/null || { cat "$WORK/writer.err" >&2; die "the writer died"; }
  kill -0 "$FEED_PID" 2>/dev/null || { cat "$WORK/feed.err" >&2; die "the feed clients died"; }
}

next_sample=$SAMPLE_SECONDS; next_query=$QUERY_SECONDS
while :; do
  el=$(awk -v a="$START" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }')
  if awk -v e="$el" -v s="$SOAK_SECONDS" 'BEGIN { exit !(e >= s) }'; then break; fi
  if awk -v e="$el" -v s="$next_sample" 'BEGIN { exit !(e >= s) }'; then
    alive; sample || say "a sample failed (t=$el s)"; next_sample=$(( next_sample + SAMPLE_SECONDS ))
  fi
  if awk -v e="$el" -v s="$next_query" 'BEGIN { exit !(e >= s) }'; then
    queries; next_query=$(( next_query + QUERY_SECONDS ))
  fi
  sleep 0.2
done
alive
sample || say "a sample failed"

# --- the end: drain, count, feed -----------------------------------------------------------------
say "stopping the writer"
stop_pid "$WRITER_PID" 30 || die "the writer did not stop cleanly: $(cat "$WORK/writer.err")"
WRITER_PID=""
[ -s "$WORK/totals.json" ] || die "the writer left no totals"
jq -e '.rotate_failures == 0' "$WORK/totals.json" >/dev/null || die "logrotate failed: $(cat "$WORK/writer.err")"
written_json=$(jq -S -c '.events' "$WORK/totals.json")
say "written: $written_json ($(jq '.rotations' "$WORK/totals.json") rotations); waiting up to $DRAIN_SECONDS s for the index"
drain_start=$(now); indexed_json=""
while :; do
  indexed_json=$( (count_by_service "$DATA" || true) | jq -S -c . 2>/dev/null || true)
  scrape
  [ "$indexed_json" = "$written_json" ] && [ "$(metric_sum logwarden_source_lag_bytes)" = 0 ] && break
  awk -v a="$drain_start" -v b="$(now)" -v d="$DRAIN_SECONDS" 'BEGIN { exit !(b - a >= d) }' && break
  sleep 1
done
drain_ms=$(ms_since "$drain_start")
metrics_json=$(awk '$1 ~ /^logwarden_events_total\{/ { match($1, /source="[^"]*"/); s = substr($1, RSTART + 8, RLENGTH - 9); printf "%s\"%s\": %s", (n++ ? ", " : ""), s, $NF }' "$WORK/metrics" | sed 's/^/{/; s/$/}/' | jq -S -c .)

# The feed: every client must reach the incident log's last change (which may still move: incidents
# resolve on the wall clock), connected.
feed_ok=0
for _ in $(seq 300); do
  seq=$( (curl -sf --max-time 10 "$API/api/v1/incidents?open=true" || true) | jq -r '.seq' 2>/dev/null || true)
  if jq -e --argjson s "$seq" --argjson n "$FEED_CLIENTS" \
    '(.clients | length) == $n and all(.clients[]; .connected and .last_id == $s and .gaps == 0 and .repeats == 0)' \
    "$WORK/feed.json" >/dev/null 2>&1; then feed_ok=1; break; fi
  sleep 0.1
done
stop_pid "$FEED_PID" 5 || true
FEED_PID=""
final_seq=$seq

sample || say "a sample failed"
say "stopping logwarden run (SIGTERM)"
lw_rc=0; stop_pid "$LW_PID" 60 || lw_rc=$?
LW_PID=""

# --- analysis ------------------------------------------------------------------------------------
dropped=$(grep -c 'feed client dropped' "$WORK/logwarden.err" || true)
errors=$(grep -cE '\b(ERROR|WARN)\b' "$WORK/logwarden.err" || true)
python3 - "$CSV" "$QCSV" "$MCSV" "$DCSV" "$SUMMARY" <<PY || FAILED=1
import csv, json, math, statistics, sys
csv_path, q_path, m_path, d_path, out_path = sys.argv[1:6]
warmup, rss_max, fd_max = float("$WARMUP_SECONDS"), float("$RSS_GROWTH_MAX"), float("$FD_GROWTH_MAX")
rows = [r for r in csv.DictReader(open(csv_path))]
rows = rows[:-1]  # the last row is taken after the writer stopped
post = [r for r in rows if float(r["t_s"]) >= warmup]
lines, failures = [], []
def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, math.ceil(p / 100 * len(xs)) - 1))] if xs else float("nan")  # nearest rank
def slope(ts, ys):
    mt, my = statistics.fmean(ts), statistics.fmean(ys)
    d = sum((t - mt) ** 2 for t in ts)
    return sum((t - mt) * (y - my) for t, y in zip(ts, ys)) / d if d else 0.0
lines.append("| series | min | median | max | Q2 mean → Q4 mean | trend (least squares) | verdict |")
lines.append("|---|---|---|---|---|---|---|")
def series(col, unit, limit_pct=None, limit_abs=None):
    allv = [float(r[col]) for r in rows if r[col] != ""]
    if len(post) < 8:
        lines.append("| %s | %s | %s | %s | too few samples after the warm-up (%d) | | not judged |" % (
            col, min(allv), statistics.median(allv), max(allv), len(post)))
        if limit_pct is not None or limit_abs is not None:
            failures.append("%s: only %d samples after the %.0f s warm-up: run longer (or lower WARMUP_SECONDS)" % (col, len(post), warmup))
        return
    ts = [float(r["t_s"]) for r in post]; ys = [float(r[col]) for r in post]
    q = len(ys) // 4
    q2, q4 = statistics.fmean(ys[q:2 * q]), statistics.fmean(ys[len(ys) - q:])
    s = slope(ts, ys); rise = s * (ts[-1] - ts[0]); mean = statistics.fmean(ys)
    verdict = "flat"
    if limit_pct is not None:
        lim = mean * limit_pct / 100
        if q4 - q2 > lim: failures.append("%s grew: last-quarter mean %.1f %s vs second-quarter mean %.1f %s, more than %g %% (%.1f %s)" % (col, q4, unit, q2, unit, limit_pct, lim, unit))
        if rise > lim: failures.append("%s trends up: the least-squares line rises %.1f %s over %.0f s (%.2f %s/h), more than %g %% of its mean (%.1f %s)" % (col, rise, unit, ts[-1] - ts[0], s * 3600, unit, limit_pct, lim, unit))
        verdict = "flat (≤ %g %%)" % limit_pct if q4 - q2 <= lim and rise <= lim else "**GREW**"
    elif limit_abs is not None:
        if q4 - q2 > limit_abs: failures.append("%s grew: last-quarter mean %.1f vs second-quarter mean %.1f, more than %g" % (col, q4, q2, limit_abs))
        if rise > limit_abs: failures.append("%s trends up: the least-squares line rises %.1f over %.0f s, more than %g" % (col, rise, ts[-1] - ts[0], limit_abs))
        verdict = "flat (≤ %g)" % limit_abs if q4 - q2 <= limit_abs and rise <= limit_abs else "**GREW**"
    else:
        verdict = "reported"
    lines.append("| %s (%s) | %g | %g | %g | %.1f → %.1f | %+.2f %s/h (%+.1f over the window) | %s |" % (
        col, unit, min(allv), statistics.median(allv), max(allv), q2, q4, s * 3600, unit, rise, verdict))
series("rss_anon_mb", "MB", limit_pct=rss_max)
series("rss_mb", "MB")
series("rss_file_mb", "MB")
series("heap_alloc_mb", "MB")
series("heap_resident_mb", "MB")
series("fds", "fds", limit_abs=fd_max)
series("threads", "threads", limit_abs=fd_max)
series("lag_bytes", "B")
series("commits_per_s", "commits/s")
series("commit_ms", "ms")
series("incidents_open", "incidents")
series("data_mb", "MB")
lines.append("")
lines.append("| latency | n | p50 | p99 | max |")
lines.append("|---|---|---|---|---|")
marks = [r for r in csv.reader(open(m_path)) if r]
found = [float(r[2]) for r in marks if len(r) > 2 and r[2] != ""]
lines.append("| marker: append → searchable (ms) | %d | %.0f | %.0f | %.0f |" % (len(found), pct(found, 50), pct(found, 99), max(found) if found else float("nan")))
missing = [r[0] for r in marks if len(r) < 3 or r[2] == ""]
if missing: failures.append("markers never found: %s" % ", ".join(missing[:10]))
if not found: failures.append("no marker was timed")
# line written → incident change on the feed (opened/updated/escalated/reopened: their \`at\` is a
# line's event time, the wall clock of its write); resolutions are timed by event time instead
delays = [float(r[4]) for r in csv.reader(open(d_path)) if len(r) == 5 and r[2] != "resolved"]
lines.append("| incident change: line written → feed (ms) | %d | %.0f | %.0f | %.0f |" % (
    len(delays), pct(delays, 50), pct(delays, 99), max(delays) if delays else float("nan")))
qs = {}
for r in csv.DictReader(open(q_path)): qs.setdefault(r["query"], []).append(float(r["ms"]))
for k, v in qs.items():
    lines.append("| loggrep %s (ms) | %d | %.0f | %.0f | %.0f |" % (k, len(v), pct(v, 50), pct(v, 99), max(v)))
eps = [float(r["index_eps"]) for r in post if r["index_eps"]]
if eps: lines.append("| indexing rate (events/s, per sample) | %d | %.0f | %.0f (p1) | %.0f |" % (len(eps), pct(eps, 50), pct(eps, 1), max(eps)))
open(out_path, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
for f in failures: print("FAIL: " + f, file=sys.stderr)
sys.exit(1 if failures else 0)
PY

{
  echo
  echo "| count check | app | worker | postgres | redis | kernel |"
  echo "|---|---|---|---|---|---|"
  for k in written indexed metrics; do
    case $k in written) j=$written_json;; indexed) j=$indexed_json;; metrics) j=$metrics_json;; esac
    echo "| $k | $(jq -r '[.app, .worker, .postgres, .redis, .kernel] | map(tostring) | join(" | ")' <<<"$j") |"
  done
  echo
  echo "feed: $FEED_CLIENTS clients; $(jq -r --argjson s "$final_seq" '[.clients[] | select(.connected and .last_id == $s)] | length' "$WORK/feed.json") connected with every change up to seq $final_seq; reconnects $(jq '[.clients[].reconnects] | add' "$WORK/feed.json"), gaps $(jq '[.clients[].gaps] | add' "$WORK/feed.json"), repeats $(jq '[.clients[].repeats] | add' "$WORK/feed.json"); 'feed client dropped' lines: $dropped"
  echo "writer: $(jq -r '"\(.events | add) events in \(.seconds | floor) s (\(.markers) markers), \(.rotations) rotations"' "$WORK/totals.json"); drain after the writer stopped: $drain_ms ms; WARN/ERROR lines in logwarden's log: $errors; logwarden run exit status on SIGTERM: $lw_rc"
  echo "$(date -u '+%Y-%m-%d %H:%M') UTC, $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB; SOAK_SECONDS=$SOAK_SECONDS SOAK_RATE=$SOAK_RATE ROTATE_SECONDS=$ROTATE_SECONDS FEED_CLIENTS=$FEED_CLIENTS SOAK_POOL=$SOAK_POOL WARMUP_SECONDS=$WARMUP_SECONDS LW_ARGS=${LW_ARGS:-}; CSV $CSV"
} | tee -a "$SUMMARY"

[ "$indexed_json" = "$written_json" ] || { FAILED=1; echo "FAIL: events lost or repeated: written $written_json, indexed $indexed_json (after $DRAIN_SECONDS s of drain)" >&2; }
[ "$metrics_json" = "$written_json" ] || { FAILED=1; echo "FAIL: /metrics logwarden_events_total $metrics_json ≠ written $written_json" >&2; }
[ "$feed_ok" = 1 ] || { FAILED=1; echo "FAIL: not every feed client has every change up to seq $final_seq once, connected: $(jq -c '[.clients[] | {connected, last_id, gaps, repeats, reconnects}] | unique' "$WORK/feed.json")" >&2; }
[ "$final_seq" -gt 0 ] 2>/dev/null || { FAILED=1; echo "FAIL: no incident change in the whole run: the feed was not exercised" >&2; }
[ "$lw_rc" = 0 ] || { FAILED=1; echo "FAIL: logwarden run exited $lw_rc on SIGTERM" >&2; }
[ "$QUERY_FAILURES" = 0 ] || { FAILED=1; echo "FAIL: $QUERY_FAILURES loggrep queries failed (rc ≥ 2 in $QCSV)" >&2; }
if [ "$FAILED" -ne 0 ]; then echo "soak: FAILED (see above; $CSV)" >&2; exit 1; fi
say "soak passed: $SUMMARY"
