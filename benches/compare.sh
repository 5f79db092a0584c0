#!/usr/bin/env bash
# benches/compare.sh [SIZE] — logwarden beside its peers on the same input, in one run.
#
# Generates (or reuses) a `docker-compose logs`-shaped corpus of SIZE (default 1G) with
# `logwarden demo --generate`, then runs, pair by pair, each side RUNS times (default 3), and prints
# the medians and ratios as a markdown table (also saved to target/compare/latest.md):
#   1. match:  logwarden scan --count      vs  rg -c -f (the pack's patterns, `rules export --rg`);
#              the two line counts must agree, or the script fails;
#   2. index:  logwarden backfill          vs  benches/tantivy_floor.rs (tantivy alone, same
#              schema and documents, events parsed beforehand);
#   3. query:  loggrep on an index of >= 10 M events (QUERY_SIZE, default 2G) vs rg on its file:
#              a rare term, a rare word, a phrase, PostgreSQL errors of one hour (newest 100
#              hits each), and matches per service (`loggrep --count-by service` vs rg printing
#              each line's compose prefix, counted with awk); loggrep twice: asking a running
#              agent over the index (`logwarden run`, as beside a live agent) and alone
#              (`--no-server`, reading the index files); the two outputs must be equal;
#   4. parse:  the PostgreSQL parser alone (benches/parse.rs) vs pgBadger, on the same
#              PostgreSQL stderr log (PG_SAMPLE bytes of the split corpus, default 64M).
#   5. clickhouse: the ClickHouse sink (spooled to disk, then inserted by its thread) vs the raw
#              `clickhouse` crate inserting the same rows (benches/clickhouse_sink.rs, ROWS
#              default 1 M), against a clickhouse-server started here.
# Peers: the newest ripgrep (installed with `cargo install ripgrep` into target/compare/peers when
# missing; RG=... to choose one) and pgBadger (apt-get); PARTS="query parse" runs only those pairs.
# Run after `tests/run` on a quiet machine:
# the figures are noisy (10-30 %), ratios taken in the same run are what to compare.
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE="${1:-1G}"
RUNS="${RUNS:-3}"
QUERY_SIZE="${QUERY_SIZE:-2G}"
PG_SAMPLE="${PG_SAMPLE:-64M}"
# Which pairs to run (all by default): PARTS="query" benches/compare.sh runs only the queries.
PARTS="${PARTS:-match index query parse clickhouse}"
part() { [[ " $PARTS " == *" $1 "* ]]; }
WORK="${COMPARE_DIR:-target/compare}"
mkdir -p "$WORK"
WORK="$(cd "$WORK" && pwd)"

say() { printf '== %s\n' "$*" >&2; }

# --- tools ---------------------------------------------------------------------------------------
say "building logwarden and the bench programs"
cargo build --release --quiet
cargo bench --quiet --no-run --bench tantivy_floor --bench parse 2>/dev/null
LW="$PWD/target/release/logwarden"
LG="$PWD/target/release/loggrep"
bench_bin() { ls -t target/release/deps/"$1"-* | grep -v '\.d$' | head -1; }
FLOOR="$PWD/$(bench_bin tantivy_floor)"
PARSE="$PWD/$(bench_bin parse)"

if [ -z "${RG:-}" ]; then
  if [ ! -x "$WORK/peers/bin/rg" ]; then
    say "installing the newest ripgrep into $WORK/peers (cargo install)"
    cargo install --quiet --root "$WORK/peers" ripgrep >/dev/null 2>&1 || true
  fi
  if [ -x "$WORK/peers/bin/rg" ]; then RG="$WORK/peers/bin/rg"; else RG="$(command -v rg)"; fi
fi
need=()
[ -n "$RG" ] && [ -x "$RG" ] || need+=(ripgrep)
command -v pgbadger >/dev/null || need+=(pgbadger)
[ -x /usr/bin/time ] || need+=(time)
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  sudo_=""; [ "$(id -u)" -eq 0 ] || sudo_="sudo"
  DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq "${need[@]}" >/dev/null
  [ -n "${RG:-}" ] && [ -x "$RG" ] || RG="$(command -v rg)"
fi
say "peers: $("$RG" --version | head -1), pgBadger $(pgbadger --version 2>/dev/null | grep -oE '[0-9]+(\.[0-9]+)+' | head -1)"

# --- helpers -------------------------------------------------------------------------------------
# median of RUNS wall times (seconds) of a command; its stdout goes to $WORK/last.out
timed() {
  local runs="$1"; shift
  local times=()
  for _ in $(seq "$runs"); do
    local t0 t1
    t0=$(date +%s.%N)
    local st=0
    "$@" >"$WORK/last.out" 2>"$WORK/last.err" || st=$?
    t1=$(date +%s.%N)
    # 1 is "nothing matched" for grep-like tools; 2 and more are errors: no figure from them.
    if [ "$st" -ge 2 ]; then
      say "failed ($st): $*"; cat "$WORK/last.err" >&2; exit 1
    fi
    times+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')")
  done
  printf '%s\n' "${times[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}
# "N× faster" (or "N× slower") for a peer time $1 against ours $2
ratio() { awk -v p="$1" -v o="$2" 'BEGIN { if (o <= 0 || p <= 0) print "n/a"; else if (p >= o) printf "%.2f× faster\n", p / o; else printf "%.2f× slower\n", o / p }'; }
gbps() { awk -v b="$1" -v t="$2" 'BEGIN { printf "%.2f", b / t / 1e9 }'; }
secs() { awk -v t="$1" 'BEGIN { printf "%.3f", t }'; }
ms() { awk -v t="$1" 'BEGIN { printf "%.1f", t * 1000 }'; }

corpus() { # corpus SIZE -> path (generated once, reused)
  local f="$WORK/corpus-$1.log"
  [ -s "$f" ] || "$LW" demo --generate "$1" --out "$f" >&2
  echo "$f"
}

TABLE="$WORK/latest.md"
{
  echo "| pair | logwarden | peer | ratio |"
  echo "|---|---|---|---|"
} >"$TABLE"
row() { echo "| $1 | $2 | $3 | $4 |" | tee -a "$TABLE" >&2; }

BYTES=0
if part match || part index; then
CORPUS="$(corpus "$SIZE")"
BYTES=$(stat -c %s "$CORPUS")
say "corpus: $CORPUS ($BYTES bytes, $(wc -l <"$CORPUS") lines); $RUNS runs each, medians"
fi

if part match; then
# --- 1. match ------------------------------------------------------------------------------------
"$LW" rules export --rg >"$WORK/patterns.rg" 2>/dev/null
cat "$CORPUS" >/dev/null # warm the page cache for both
t_rg=$(timed "$RUNS" "$RG" -c -f "$WORK/patterns.rg" "$CORPUS"); n_rg=$(cat "$WORK/last.out")
t_lw=$(timed "$RUNS" "$LW" scan --count --source "auto=$CORPUS"); n_lw=$(cat "$WORK/last.out")
if [ "$n_rg" != "$n_lw" ]; then
  echo "match counts differ: rg $n_rg, logwarden scan $n_lw" >&2
  exit 1
fi
row "match: lines matching the pack ($n_lw)" "$(secs "$t_lw") s ($(gbps "$BYTES" "$t_lw") GB/s)" \
  "rg -c -f: $(secs "$t_rg") s ($(gbps "$BYTES" "$t_rg") GB/s)" "$(ratio "$t_rg" "$t_lw")"

fi

if part index; then
# --- 2. index ------------------------------------------------------------------------------------
backfill_once() {
  rm -rf "$WORK/index-run"
  /usr/bin/time -f '%M' -o "$WORK/rss" "$LW" backfill --data-dir "$WORK/index-run" --source "auto=$CORPUS"
}
t_bf=$(timed "$RUNS" backfill_once)
events=$(grep -oE '→ [0-9]+ events' "$WORK/last.err" | grep -oE '[0-9]+')
rss_mb=$(( $(cat "$WORK/rss") / 1024 ))
"$FLOOR" "$CORPUS" --runs "$RUNS" >"$WORK/floor.out" 2>/dev/null
floor_eps=$(grep -oE '= [0-9]+ events/s' "$WORK/floor.out" | grep -oE '[0-9]+')
bf_eps=$(awk -v e="$events" -v t="$t_bf" 'BEGIN { printf "%.0f", e / t }')
row "index: backfill, $events events" "$(secs "$t_bf") s, $bf_eps events/s, RSS $rss_mb MB" \
  "tantivy alone: $floor_eps events/s" "$(awk -v o="$bf_eps" -v f="$floor_eps" 'BEGIN { printf "%.0f", 100 * o / f }') % of the floor"

fi

if part query; then
# --- 3. query ------------------------------------------------------------------------------------
QCORPUS="$(corpus "$QUERY_SIZE")"
QDIR="$WORK/index-$QUERY_SIZE"
# An index from before a schema change (issue 6 added `rules`/`classes`) is rebuilt.
if [ -s "$QDIR/.built" ] && ! "$LG" --data-dir "$QDIR" --count zzzz >/dev/null 2>"$WORK/schema.err" \
  && grep -q "different schema" "$WORK/schema.err"; then
  say "the cached query index has an older schema: rebuilding it"
  rm -f "$QDIR/.built"
fi
if [ ! -s "$QDIR/.built" ]; then
  say "building the query index of $QCORPUS (once)"
  rm -rf "$QDIR"
  "$LW" backfill --data-dir "$QDIR" --source "auto=$QCORPUS" 2>"$WORK/qbuild.err" >/dev/null
  grep -oE '→ [0-9]+ events' "$WORK/qbuild.err" | grep -oE '[0-9]+' >"$QDIR/.built"
fi
qevents=$(cat "$QDIR/.built")
cat "$QCORPUS" >/dev/null
hour=$(grep -m1 -oE 'postgres-1 +\| [0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}' "$QCORPUS" | grep -oE '[0-9]{4}-[0-9-]+ [0-9]{2}$')
since="$hour:00"
until=$(date -u -d "$since UTC + 1 hour" '+%Y-%m-%d %H:%M')
# A running agent over the query index (`logwarden run`, its sources already indexed to the end):
# loggrep finds it through the data dir's serve.addr and asks it (query::remote), as a user's
# loggrep does beside a live agent. `--no-server` is loggrep reading the index files itself.
"$LW" run --data-dir "$QDIR" --listen 127.0.0.1:0 --source "auto=$QCORPUS" >/dev/null 2>"$WORK/agent.err" &
AGENT=$!
trap 'kill "$AGENT" 2>/dev/null || true' EXIT
for _ in $(seq 600); do [ -s "$QDIR/serve.addr" ] && break; sleep 0.1; done
[ -s "$QDIR/serve.addr" ] || { cat "$WORK/agent.err" >&2; echo "the agent did not start" >&2; exit 1; }
# Both ways must print the same lines.
same() { # loggrep args...
  "$LG" --data-dir "$QDIR" "$@" >"$WORK/agent.out"
  "$LG" --data-dir "$QDIR" --no-server "$@" >"$WORK/alone.out"
  cmp -s "$WORK/agent.out" "$WORK/alone.out" || { echo "agent and index files disagree on: $*" >&2; exit 1; }
}
query_pair() { # label, loggrep args..., --, rg args...
  local label="$1"; shift
  local lg=() rg=()
  while [ "$1" != "--" ]; do lg+=("$1"); shift; done; shift
  rg=("$@")
  local t_lg t_alone t_rgq
  same --limit 100 --color never "${lg[@]}"
  t_lg=$(timed 5 "$LG" --data-dir "$QDIR" --limit 100 --color never "${lg[@]}")
  local n_lg; n_lg=$(wc -l <"$WORK/last.out")
  t_alone=$(timed 5 "$LG" --data-dir "$QDIR" --no-server --limit 100 --color never "${lg[@]}")
  t_rgq=$(timed 5 sh -c '"$0" "$@" | tail -100' "$RG" "${rg[@]}" "$QCORPUS")
  row "query ($qevents events): $label" "$(ms "$t_lg") ms via the agent, $(ms "$t_alone") ms alone ($n_lg lines)" \
    "rg | tail -100: $(ms "$t_rgq") ms ($(wc -l <"$WORK/last.out") lines)" "$(ratio "$t_rgq" "$t_lg") ($(ratio "$t_rgq" "$t_alone") alone)"
}
query_pair "rare term" oom-killer -- oom-killer
query_pair "rare word (an infix of any term)" Killed -- Killed
query_pair "phrase" '"too many clients"' -- 'too many clients'
query_pair "field + 1 h range" --service newsletter-postgres --level error --since "$since" --until "$until" -- \
  -e "newsletter-postgres-1 +\| $hour:[0-9:.]+ [A-Z]+ .*(ERROR|FATAL|PANIC):"
# Every event per service: loggrep counts the `service` fast column; the grep user's way is to cut
# each line's compose prefix (the container) and count it. rg counts lines, so a multi-line
# PostgreSQL entry counts once per line there: the two tallies differ by the continuation lines.
same --count-by service
t_lg=$(timed 5 "$LG" --data-dir "$QDIR" --count-by service)
n_lg=$(wc -l <"$WORK/last.out")
t_alone=$(timed 5 "$LG" --data-dir "$QDIR" --no-server --count-by service)
t_rgq=$(timed 5 sh -c '"$0" --no-filename -o "^[a-z0-9-]+" "$1" | awk "{ c[\$1]++ } END { for (k in c) print c[k], k }"' \
  "$RG" "$QCORPUS")
row "query ($qevents events): --count-by service" "$(ms "$t_lg") ms via the agent, $(ms "$t_alone") ms alone ($n_lg services)" \
  "rg -o prefix \| awk: $(ms "$t_rgq") ms ($(wc -l <"$WORK/last.out") services)" "$(ratio "$t_rgq" "$t_lg") ($(ratio "$t_rgq" "$t_alone") alone)"
kill "$AGENT" 2>/dev/null || true
wait "$AGENT" 2>/dev/null || true

fi

if part parse; then
# --- 4. parse ------------------------------------------------------------------------------------
SPLIT="$WORK/split-$SIZE"
[ -s "$SPLIT/postgresql.log" ] || "$LW" demo --generate "$SIZE" --split --out "$SPLIT" >&2
PG="$WORK/postgresql-$PG_SAMPLE.log"
[ -s "$PG" ] || head -c "$(numfmt --from=iec "$PG_SAMPLE")" "$SPLIT/postgresql.log" | sed '$d' >"$PG"
PGBYTES=$(stat -c %s "$PG")
"$PARSE" "$PG" --format postgres >"$WORK/parse.out" 2>/dev/null
ours=$(grep -oE '[0-9.]+ MB/s' "$WORK/parse.out" | grep -oE '[0-9.]+')
allocs=$(grep -oE '[0-9.]+ allocations per line' "$WORK/parse.out" | grep -oE '^[0-9.]+')
t_pgb=$(timed 1 pgbadger --quiet -j 1 -f stderr --prefix '%m [%p] %q%u@%d ' -o "$WORK/pgbadger.txt" -x text "$PG")
pgb=$(awk -v b="$PGBYTES" -v t="$t_pgb" 'BEGIN { printf "%.1f", b / t / 1e6 }')
row "parse: PostgreSQL stderr, one core ($PGBYTES bytes)" "$ours MB/s, $allocs allocations/line" \
  "pgBadger -j 1: $pgb MB/s" "$(ratio "$ours" "$pgb")"

fi

if part clickhouse; then
# --- 5. clickhouse -------------------------------------------------------------------------------
# The sink (spool to disk, then insert) vs the raw `clickhouse` crate inserting the same rows,
# against Debian's clickhouse-server started here as ../shared/CLICKHOUSE.md does.
command -v clickhouse-server >/dev/null || [ -x /usr/sbin/clickhouse-server ] || {
  sudo_=""; [ "$(id -u)" -eq 0 ] || sudo_="sudo"
  DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq clickhouse-server >/dev/null
}
cargo bench --quiet --no-run --bench clickhouse_sink 2>/dev/null
CHB="$PWD/$(bench_bin clickhouse_sink)"
CH_DIR=$(mktemp -d)
CH_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
CH_TCP=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$CH_DIR/config.xml" <<XML
<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>$CH_DIR/server.log</log><errorlog>$CH_DIR/server.err.log</errorlog></logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>$CH_PORT</http_port>
  <tcp_port>$CH_TCP</tcp_port>
  <path>$CH_DIR/data/</path>
  <tmp_path>$CH_DIR/data/tmp/</tmp_path>
  <user_files_path>$CH_DIR/data/user_files/</user_files_path>
  <mark_cache_size>268435456</mark_cache_size>
  <timezone>UTC</timezone>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <profiles><default/></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></default></users>
  <quotas><default/></quotas>
</yandex>
XML
/usr/sbin/clickhouse-server --config-file="$CH_DIR/config.xml" >"$CH_DIR/stdout.log" 2>&1 &
CH_PID=$!
for _ in $(seq 1 300); do
  [ "$(curl -sf "http://127.0.0.1:$CH_PORT/?query=SELECT%201" 2>/dev/null)" = "1" ] && break
  kill -0 "$CH_PID" 2>/dev/null || { cat "$CH_DIR/stdout.log" >&2; exit 1; }
  sleep 0.1
done
CLICKHOUSE_URL="http://127.0.0.1:$CH_PORT" RUNS="$RUNS" "$CHB" >"$WORK/clickhouse.out"
kill -TERM "$CH_PID"; wait "$CH_PID" 2>/dev/null || true; rm -rf "$CH_DIR"
line=$(cat "$WORK/clickhouse.out")
rows_n=$(sed -E 's/.*, ([0-9]+) rows:.*/\1/' <<<"$line")
t_raw=$(sed -E 's/.*raw crate ([0-9.]+) s.*/\1/' <<<"$line")
t_sink=$(sed -E 's/.*sink ([0-9.]+) s.*/\1/' <<<"$line")
row "ClickHouse insert, $rows_n rows (18.16, same machine)" "sink (spooled): $(secs "$t_sink") s" \
  "clickhouse crate alone: $(secs "$t_raw") s" "$(ratio "$t_raw" "$t_sink")"

fi

{
  echo
  corpus_note=""; [ "$BYTES" -gt 0 ] && corpus_note="corpus $SIZE ($BYTES bytes); "
  echo "$(date -u '+%Y-%m-%d'), $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -m); $corpus_note$("$RG" --version | head -1); medians of $RUNS runs (queries: 5)."
} | tee -a "$TABLE" >&2
echo
cat "$TABLE"
