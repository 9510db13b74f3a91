#!/usr/bin/env bash
# Realtime benchmark: the sitewarden daemon on each of its realtime
# sources (`realtime: { source: inotify }`, then `source: fanotify`) side by
# side with `inotifywait -m -r` (inotify-tools), in one run. Every section
# runs once per source, on fresh copies and state; inotifywait runs beside
# the daemon both times, and the table shows its figures from the run beside
# the inotify daemon (the other run's are in the raw data):
#
#   1. reads: existing .php files of the watched site opened, read whole
#      and closed, again and again: the kernel events the daemon read
#      (`kernel_events` of `status --json`, target 0; inotify only, as under
#      fanotify it counts every change on the whole filesystem) beside the
#      lines of an inotifywait with its default events (open/access/
#      close_nowrite too); for both sources the daemon's CPU over the reads
#      and the alert records (target 0);
#   2. latency: new .php files created one at a time in a watched folder,
#      from creation to the alert record (p50 / p90 / p99 / max);
#   3. chunked: new .php files each written in several 4 KiB chunks and
#      closed once: records per file (target 1), close -> alert record;
#   4. storm: files written into new folders as fast as possible (mkdir,
#      then fill each folder at once): how many each tool reports;
#   5. idle: the daemon over the WordPress corpus of bench/baseline.sh:
#      time to `ready`, then RSS and CPU over an idle window;
#   6. busy neighbour: with the daemon over the same corpus, a writer
#      outside every site root but on the same filesystem ($BENCH_DIR/
#      realtime-busy) makes BUSY_RATE small write() calls per second for
#      BUSY_SECONDS (appends to log files, small files rewritten): the
#      daemon's CPU over that window (target < 5% of one core; fanotify
#      reads every change of the filesystem and filters in user space,
#      inotify does not watch those paths), the achieved write rate, and no
#      alert record on those paths.
#
# fanotify needs root (CAP_SYS_ADMIN) and a kernel that allows filesystem
# marks; a daemon asked for it that ends up on inotify is reported under
# "Anything odd" with the reason `status --json` gives.
#
#   bench/realtime.sh [--sites N] [--quick]
#
# Environment:
#   SITES=40             WordPress sites for the idle measurement
#   BENCH_DIR=/var/tmp/sitewarden-bench   corpus (shared with baseline.sh), work files
#   READ_FILES=100       existing .php files of the site read ...
#   READ_ROUNDS=100      ... this many times each
#   LATENCY_FILES=200    files created one at a time
#   PAUSE_MS=75          pause between two of them (latency and chunked)
#   CHUNKED_FILES=50     files written in chunks, one at a time
#   CHUNKS=10            4 KiB write() calls per chunked file ...
#   CHUNK_PAUSE_MS=5     ... with this pause between two of them
#   STORM_DIRS=100       new folders in the storm
#   STORM_FILES=100      files written into each of them
#   IDLE_SECONDS=60      length of the idle window
#   BUSY_RATE=10000      write() calls per second of the busy neighbour ...
#   BUSY_SECONDS=15      ... for this long
#   QUIET_PERIOD=        scan.quiet_period for the daemon (empty: its default, 200ms)
#   SITEWARDEN_BIN=      use this binary instead of building target/release
#
# --quick is a smoke run: SITES=2 READ_ROUNDS=20 LATENCY_FILES=50
# CHUNKED_FILES=20 STORM_DIRS=10 STORM_FILES=100 IDLE_SECONDS=10
# BUSY_SECONDS=5. Its figures are not ones to publish.
#
# The table is printed and written as Markdown to bench/results-realtime.md.
# Work files (configs, state, alert logs, raw timings) stay in
# $BENCH_DIR/realtime/SOURCE and $BENCH_DIR/realtime-idle/SOURCE; the busy
# neighbour's files in $BENCH_DIR/realtime-busy.

set -euo pipefail

# usage, say, note, die, now, since; install_missing; the process helpers
# (PIDS, alive, stop, wait_line, proc_kb, mb); the report helpers; the corpus
# of bench/baseline.sh: site_name, build_corpus, ...
source "$(dirname "${BASH_SOURCE[0]}")/corpus.sh"

# ---------------------------------------------------------------- arguments

SITES=${SITES:-40}
BENCH_DIR=${BENCH_DIR:-/var/tmp/sitewarden-bench}
READ_FILES=${READ_FILES:-100}
READ_ROUNDS=${READ_ROUNDS:-100}
LATENCY_FILES=${LATENCY_FILES:-200}
PAUSE_MS=${PAUSE_MS:-75}
CHUNKED_FILES=${CHUNKED_FILES:-50}
CHUNKS=${CHUNKS:-10}
CHUNK_PAUSE_MS=${CHUNK_PAUSE_MS:-5}
STORM_DIRS=${STORM_DIRS:-100}
STORM_FILES=${STORM_FILES:-100}
IDLE_SECONDS=${IDLE_SECONDS:-60}
BUSY_RATE=${BUSY_RATE:-10000}
BUSY_SECONDS=${BUSY_SECONDS:-15}
QUIET_PERIOD=${QUIET_PERIOD:-}
QUICK=no

while [ $# -gt 0 ]; do
    case $1 in
        --sites) SITES=${2:?--sites needs a number}; shift 2 ;;
        --sites=*) SITES=${1#*=}; shift ;;
        --quick)
            QUICK=yes SITES=2 READ_ROUNDS=20 LATENCY_FILES=50 CHUNKED_FILES=20
            STORM_DIRS=10 STORM_FILES=100 IDLE_SECONDS=10 BUSY_SECONDS=5
            shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done
for v in SITES READ_FILES READ_ROUNDS LATENCY_FILES PAUSE_MS CHUNKED_FILES CHUNKS CHUNK_PAUSE_MS \
    STORM_DIRS STORM_FILES IDLE_SECONDS BUSY_RATE BUSY_SECONDS; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "$v must be a positive integer (got '${!v}')" >&2; exit 2; }
done
[[ -z $QUIET_PERIOD || $QUIET_PERIOD =~ ^[0-9]+(ms|s)$ ]] \
    || { echo "QUIET_PERIOD must look like 200ms or 1s (got '$QUIET_PERIOD')" >&2; exit 2; }

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HELPER=$REPO/bench/realtime_helper.py
RESULTS_MD=$REPO/bench/results-realtime.md
# -P: the daemon names files under the root as configured, inotifywait under
# the path it was given; both must be the canonical one to compare.
BENCH_DIR=$(mkdir -p "$BENCH_DIR" && cd "$BENCH_DIR" && pwd -P)
CORPUS=$BENCH_DIR/corpus
STORM_TOTAL=$((STORM_DIRS * STORM_FILES))
READ_TOTAL=$((READ_FILES * READ_ROUNDS))
SOURCES=(inotify fanotify)        # the daemon's realtime sources, in this order

SINCE_DECIMALS=2                 # `since`: hundredths of a second

# ------------------------------------------------------------ requirements

missing=()
command -v inotifywait >/dev/null || missing+=(inotify-tools)
command -v python3 >/dev/null || missing+=(python3)
command -v stdbuf >/dev/null || missing+=(coreutils)
command -v openssl >/dev/null || missing+=(openssl)
[ -f /usr/share/wordpress/wp-settings.php ] || missing+=(wordpress)
install_missing "${missing[@]}"
PY=(python3 "$HELPER")

# ------------------------------------------------------------------- build

build_sitewarden
IW_VERSION=$(inotifywait --help 2>&1 | head -n1 || true)

# -------------------------------------------------------------- processes
#
# Every process started here is in PIDS (bench/corpus.sh) and stopped by the
# EXIT trap; an inotifywait started by the Python reader is found through its
# pid file.

declare -a CHILD_PIDFILES=()

kill_child_from() { # PIDFILE: an inotifywait left by a killed reader
    local pid
    pid=$(cat "$1" 2>/dev/null) || return 0
    [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = inotifywait ] \
        && kill -TERM "$pid" 2>/dev/null || true
}

cleanup() {
    local pid f
    for pid in "${PIDS[@]}"; do stop "$pid" 5 || true; done
    for f in "${CHILD_PIDFILES[@]}"; do kill_child_from "$f"; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_line (bench/corpus.sh) looks every 0.02 s here.
WAIT_POLL=0.02

# start_daemon CONFIG LOG: starts `sitewarden run`, sets DAEMON; waits for
# the ready line and sets READY_S (seconds from the start), READY_LINE.
start_daemon() {
    local t0
    t0=$(now)
    "$SW" -c "$1" run 2>"$2" &
    DAEMON=$!
    PIDS+=("$DAEMON")
    wait_line "$2" '^sitewarden: ready \(' 900 "$DAEMON" "$WAIT_POLL" || die "the daemon did not become ready ($1)"
    READY_S=$(since "$t0")
    READY_LINE=$(grep -m1 -E '^sitewarden: ready \(' "$2")
}

# start_iw OUT ERR PIDFILE [--all-events] DIR...: inotifywait -m -r behind
# the timestamping reader; sets IW_READER, IW_PID, IW_READY_S (time to
# "Watches established."). It prints '%w%f' for the events $IW_EVENTS;
# with --all-events, '%w%f<TAB>%e' for its default set (no -e: every event,
# open, access and close_nowrite included).
IW_EVENTS=create,close_write,moved_to
start_iw() {
    local out=$1 err=$2 pidfile=$3 t0
    shift 3
    local -a opts=(--format '%w%f' -e "$IW_EVENTS")
    if [ "${1:-}" = --all-events ]; then
        opts=(--format $'%w%f\t%e')
        shift
    fi
    t0=$(now)
    rm -f "$pidfile"
    "${PY[@]}" iw-reader "$out" "$pidfile" -- \
        stdbuf -oL inotifywait -m -r "${opts[@]}" "$@" 2>"$err" &
    IW_READER=$!
    PIDS+=("$IW_READER")
    CHILD_PIDFILES+=("$pidfile")
    wait_line "$err" '^Watches established' 900 "$IW_READER" "$WAIT_POLL" || die "inotifywait did not start"
    IW_READY_S=$(since "$t0")
    IW_PID=$(cat "$pidfile")
}

write_config() { # FILE STATE_DIR ALERT_LOG (site lines on stdin)
    {
        echo "state_dir: $2"
        echo "alerts:"
        echo "  log: $3"
        if [ -n "$QUIET_PERIOD" ]; then
            echo "scan:"
            echo "  quiet_period: $QUIET_PERIOD"
        fi
        echo "sites:"
        cat
    } >"$1"
    "$SW" -c "$1" config-check >/dev/null || die "sitewarden rejects $1"
}

# ================================================================== the run

LOAD_BEFORE=$(cut -d' ' -f1 /proc/loadavg)
say "load average before: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cores, shared machine)"
if awk -v l="$LOAD_BEFORE" 'BEGIN { exit !(l > 0.5) }'; then
    note "!! other work is running: latencies and CPU figures will be noisy"
fi
note "inotify: max_user_watches=$(cat /proc/sys/fs/inotify/max_user_watches)," \
    "max_user_instances=$(cat /proc/sys/fs/inotify/max_user_instances)," \
    "max_queued_events=$(cat /proc/sys/fs/inotify/max_queued_events)"
QP_TEXT=${QUIET_PERIOD:-200ms, the default}
declare -a ODD=()     # anything unexpected, for the report

# ------------------------------- 1 to 4: reads, latency, chunked and storm

RT=$BENCH_DIR/realtime
SITE=$RT/site
BENCH_PREFIX=$SITE/wp-content/plugins/sw-bench-
LAT_DIR=${BENCH_PREFIX}latency
CHUNK_DIR=${BENCH_PREFIX}chunked
STORM_ROOT=${BENCH_PREFIX}storm
say "reads, latency, chunked and storm: one WordPress site in $SITE, quiet period $QP_TEXT"
rm -rf "$RT"
mkdir -p "$RT"
cp -a /usr/share/wordpress "$SITE"
# They exist before anything starts: the latency and chunked files go into
# folders already watched; the storm's folders are new, under an existing one.
mkdir -p "$LAT_DIR" "$CHUNK_DIR" "$STORM_ROOT"
printf '  - name: rt\n    root: %s\n    profile: wordpress\n' "$SITE" \
    | write_config "$RT/sitewarden.yaml" "$RT/state" "$RT/alerts.jsonl"
"$SW" -c "$RT/sitewarden.yaml" baseline >"$RT/baseline.log" 2>&1 \
    || { tail -n 20 "$RT/baseline.log"; die "sitewarden baseline failed"; }

start_daemon "$RT/sitewarden.yaml" "$RT/daemon.log"
RT_DAEMON=$DAEMON
note "$READY_LINE (after $READY_S s)"
start_iw "$RT/iw.tsv" "$RT/iw.err" "$RT/iw.pid" "$SITE"
RT_IW_READER=$IW_READER RT_IW=$IW_PID
note "inotifywait -m -r: watches established after $IW_READY_S s"
"${PY[@]}" tail "$RT/alerts.jsonl" "$RT/alerts-seen.tsv" &
RT_TAIL=$!
PIDS+=("$RT_TAIL")
sleep 1
RT_ALERTS_BEFORE=$(wc -l <"$RT/alerts.jsonl" 2>/dev/null || echo 0)
[ "$RT_ALERTS_BEFORE" -eq 0 ] || ODD+=("$RT_ALERTS_BEFORE alert(s) before the first file was created (fresh baseline of an unchanged copy)")

say "reads: $READ_FILES unchanged .php files of the site read $READ_ROUNDS times each ($READ_TOTAL reads)"
# A second inotifywait on the site, with its default events, for the reads only.
start_iw "$RT/iw-all.tsv" "$RT/iw-all.err" "$RT/iw-all.pid" --all-events "$SITE"
RD_IW_READER=$IW_READER RD_IW=$IW_PID
note "inotifywait -m -r (default events): watches established after $IW_READY_S s"
# kernel_events is refreshed in the status file every 10 s: the figure is
# taken once it has held for 11 s, before and after the reads.
read -r RD_EV0 t why < <("${PY[@]}" kernel-events "$SW" "$RT/sitewarden.yaml" 11 120)
note "sitewarden kernel_events before the reads: $RD_EV0 (${why//_/ }, after $t s)"
[[ $why == unchanged* ]] || ODD+=("kernel_events did not settle before the reads (${why//_/ })")
RD_ALERTS0=$(wc -l <"$RT/alerts.jsonl" 2>/dev/null || echo 0)
"${PY[@]}" reads "$SITE" "$READ_FILES" "$READ_ROUNDS" "$RT/reads.sh" exclude="$BENCH_PREFIX" \
    list="$RT/reads-files.txt" quiet="$RT/iw-all.tsv" sw="$RT_DAEMON" iw="$RD_IW"
# shellcheck source=/dev/null
. "$RT/reads.sh"
stop "$RD_IW_READER"
read -r RD_EV1 t why < <("${PY[@]}" kernel-events "$SW" "$RT/sitewarden.yaml" 11 120)
note "sitewarden kernel_events after the reads: $RD_EV1 (${why//_/ }, after $t s)"
[[ $why == unchanged* ]] || ODD+=("kernel_events did not settle after the reads (${why//_/ })")
RD_ALERTS=$(($(wc -l <"$RT/alerts.jsonl" 2>/dev/null || echo 0) - RD_ALERTS0))
if [[ $RD_EV0 =~ ^[0-9]+$ && $RD_EV1 =~ ^[0-9]+$ ]]; then
    READS_SW_EVENTS=$((RD_EV1 - RD_EV0))
else
    READS_SW_EVENTS=n/a
    ODD+=("no kernel_events from \`sitewarden status --json\` (before: $RD_EV0, after: $RD_EV1)")
fi
"${PY[@]}" analyze-reads iw="$RT/iw-all.tsv" start="$READS_START_NS" end="$READS_SETTLED_NS" \
    out="$RT/reads-iw.sh"
# shellcheck source=/dev/null
. "$RT/reads-iw.sh"
note "$READS_N reads ($READS_BYTES bytes) in $READS_S s: sitewarden read $READS_SW_EVENTS kernel events, inotifywait printed $READS_IW_LINES lines"
[ "$RD_ALERTS" -eq 0 ] || ODD+=("$RD_ALERTS alert(s) while unchanged files were read")
[ "$READS_IW_OVERFLOW" -eq 0 ] || ODD+=("inotifywait (default events) overflowed its queue $READS_IW_OVERFLOW time(s) during the reads: its line count is short of the events")
[ "$READS_IW_AFTER" -eq 0 ] || ODD+=("inotifywait (default events) printed $READS_IW_AFTER line(s) after the reads had settled")

say "latency: $LATENCY_FILES new .php files, one every $PAUSE_MS ms, in ${LAT_DIR#"$SITE"/}"
"${PY[@]}" create-latency "$LAT_DIR" "$LATENCY_FILES" "$PAUSE_MS" "$RT/latency.tsv"
read -r n t why < <("${PY[@]}" wait alerts "$RT/alerts.jsonl" "$LAT_DIR" "$LATENCY_FILES" 5 60)
note "sitewarden: $n/$LATENCY_FILES files alerted (${why//_/ }, waited $t s after the last file)"
read -r n t why < <("${PY[@]}" wait iw "$RT/iw.tsv" "$LAT_DIR" "$LATENCY_FILES" 2 10)
note "inotifywait: $n/$LATENCY_FILES files named (${why//_/ })"

say "chunked: $CHUNKED_FILES new .php files, each written in $CHUNKS chunks of 4 KiB $CHUNK_PAUSE_MS ms apart and closed once, one every $PAUSE_MS ms, in ${CHUNK_DIR#"$SITE"/}"
"${PY[@]}" create-chunked "$CHUNK_DIR" "$CHUNKED_FILES" "$CHUNKS" "$CHUNK_PAUSE_MS" "$PAUSE_MS" "$RT/chunked.tsv"
read -r n t why < <("${PY[@]}" wait alerts "$RT/alerts.jsonl" "$CHUNK_DIR" "$CHUNKED_FILES" 5 60)
note "sitewarden: $n/$CHUNKED_FILES files alerted (${why//_/ }, waited $t s after the last file)"
read -r n t why < <("${PY[@]}" wait iw "$RT/iw.tsv" "$CHUNK_DIR" "$CHUNKED_FILES" 2 10)
note "inotifywait: $n/$CHUNKED_FILES files named (${why//_/ })"
# A second record on a chunked file would come within MAX_COALESCE (2 s).
sleep 2.5

say "storm: $STORM_TOTAL files in $STORM_DIRS new folders under ${STORM_ROOT#"$SITE"/}"
"${PY[@]}" storm "$STORM_ROOT" "$STORM_DIRS" "$STORM_FILES" "$RT/storm.json"
read -r n t why < <("${PY[@]}" wait alerts "$RT/alerts.jsonl" "$STORM_ROOT" "$STORM_TOTAL" 15 300)
note "sitewarden: $n/$STORM_TOTAL files alerted (${why//_/ }, waited $t s after the storm)"
# A path is checked at the latest 2 s after its first event (MAX_COALESCE):
# give any second alert on a storm file the time to show up.
sleep 2.5
read -r n t why < <("${PY[@]}" wait iw "$RT/iw.tsv" "$STORM_ROOT" "$STORM_TOTAL" 3 30)
note "inotifywait: $n/$STORM_TOTAL files named (${why//_/ })"

RT_SW_RSS=$(mb "$(proc_kb "$RT_DAEMON" VmRSS)")
RT_SW_HWM=$(mb "$(proc_kb "$RT_DAEMON" VmHWM)")
RT_IW_HWM=$(mb "$(proc_kb "$RT_IW" VmHWM)")
read -r _ RT_SW_WATCHES < <("${PY[@]}" watches "$RT_DAEMON")
read -r _ RT_IW_WATCHES < <("${PY[@]}" watches "$RT_IW")
stop "$RT_IW_READER"
stop "$RT_DAEMON" 15
RT_DAEMON_RC=$STOP_RC RT_DAEMON_STOP_S=$STOP_S
sleep 0.2                      # a last poll of the alert log
stop "$RT_TAIL"
[ "$RT_DAEMON_RC" = 0 ] || ODD+=("latency/storm daemon exited with code $RT_DAEMON_RC on SIGTERM (see $RT/daemon.log)")

"${PY[@]}" analyze alerts="$RT/alerts.jsonl" tail="$RT/alerts-seen.tsv" iw="$RT/iw.tsv" \
    latency="$RT/latency.tsv" latency_dir="$LAT_DIR" storm="$RT/storm.json" \
    storm_root="$STORM_ROOT" out="$RT/results.sh"
# shellcheck source=/dev/null
. "$RT/results.sh"
"${PY[@]}" analyze-chunked alerts="$RT/alerts.jsonl" iw="$RT/iw.tsv" chunked="$RT/chunked.tsv" \
    dir="$CHUNK_DIR" out="$RT/chunked.sh"
# shellcheck source=/dev/null
. "$RT/chunked.sh"

RT_WARNINGS=$(warnings_in "$RT/daemon.log")
[ -z "$RT_WARNINGS" ] || ODD+=("latency/storm daemon logged $RT_WARNINGS")
[ "$LAT_SW_SEEN" -eq "$LAT_N" ] || ODD+=("sitewarden alerted $LAT_SW_SEEN of the $LAT_N latency files")
[ "$LAT_SW_EXTRA_ALERTS" -eq 0 ] || ODD+=("sitewarden gave $LAT_SW_EXTRA_ALERTS extra alert(s) on the latency files (more than one per file)")
[ "$LAT_SW_NEGATIVE" -eq 0 ] || ODD+=("$LAT_SW_NEGATIVE alert(s) stamped before their file was created (clock?)")
[ "$LAT_SW_STRAY" -eq 0 ] || ODD+=("$LAT_SW_STRAY alert(s) on paths in the latency folder that were not created")
[ "$STORM_SW_FILES" -eq "$STORM_EXPECTED" ] || ODD+=("sitewarden reported $STORM_SW_FILES of the $STORM_EXPECTED storm files")
[ "$STORM_SW_RECORDS" -eq "$STORM_SW_FILES" ] || ODD+=("sitewarden wrote $STORM_SW_RECORDS alert records for $STORM_SW_FILES storm files ($STORM_SW_EVENTS)")
[ "$ALERT_BAD_LINES" -eq 0 ] || ODD+=("$ALERT_BAD_LINES line(s) of alerts.jsonl are not JSON")
[ "$CH_SW_EARLY" -eq 0 ] || ODD+=("$CH_SW_EARLY chunked file(s) alerted with a record stamped before their close")
[ "$CH_SW_STRAY" -eq 0 ] || ODD+=("$CH_SW_STRAY alert(s) on paths in the chunked folder that were not created")
[ "$CH_IW_TWO" -eq "$CH_N" ] || ODD+=("inotifywait named $CH_IW_TWO of the $CH_N chunked files exactly twice (create + close_write expected)")

# ------------------------------------------------------------------ 5: idle

say "idle: corpus of $SITES WordPress sites in $CORPUS"
build_corpus                # unlike baseline.sh: sites beyond $SITES stay
if [ -e "$BENCH_DIR/changes.applied" ]; then
    note "!! $BENCH_DIR/changes.applied exists: bench/baseline.sh is running or was interrupted; the corpus holds its scripted changes"
    ODD+=("bench/baseline.sh's scripted changes were applied to the corpus during the idle measurement")
fi
IDLE=$BENCH_DIR/realtime-idle
rm -rf "$IDLE"
mkdir -p "$IDLE"
ROOTS=()
for ((i = 1; i <= SITES; i++)); do ROOTS+=("$CORPUS/$(site_name "$i")"); done
N_DIRS=$(find "${ROOTS[@]}" -type d | wc -l)
N_FILES=$(find "${ROOTS[@]}" -type f | wc -l)
CORPUS_DESC="$SITES WordPress sites, $N_FILES files, $N_DIRS folders"
note "$CORPUS_DESC"
MAX_WATCHES=$(cat /proc/sys/fs/inotify/max_user_watches)
if [ $((2 * N_DIRS)) -gt "$MAX_WATCHES" ]; then
    note "!! sitewarden and inotifywait together may need $((2 * N_DIRS)) watches; fs.inotify.max_user_watches is $MAX_WATCHES"
fi
for ((i = 1; i <= SITES; i++)); do
    printf '  - name: %s\n    root: %s\n    profile: wordpress\n' "$(site_name "$i")" "${ROOTS[i - 1]}"
done | write_config "$IDLE/sitewarden.yaml" "$IDLE/state" "$IDLE/alerts.jsonl"

t0=$(now)
"$SW" -c "$IDLE/sitewarden.yaml" baseline >"$IDLE/baseline.log" 2>&1 \
    || { tail -n 20 "$IDLE/baseline.log"; die "sitewarden baseline failed"; }
IDLE_BASELINE_S=$(since "$t0")
note "sitewarden baseline: $IDLE_BASELINE_S s (also warms the page cache)"

# inotifywait first: its setup and the daemon's start do not overlap, and
# both are idle over the same window.
start_iw "$IDLE/iw.tsv" "$IDLE/iw.err" "$IDLE/iw.pid" "${ROOTS[@]}"
IDLE_IW_READER=$IW_READER IDLE_IW=$IW_PID IDLE_IW_READY_S=$IW_READY_S
note "inotifywait -m -r: watches established after $IDLE_IW_READY_S s"
start_daemon "$IDLE/sitewarden.yaml" "$IDLE/daemon.log"
IDLE_DAEMON=$DAEMON IDLE_READY_S=$READY_S
note "$READY_LINE (after $READY_S s, with a baseline: watches + catch-up scan)"
IDLE_READY_DIRS=$(sed -nE 's/.*, ([0-9]+) directories watched.*/\1/p' <<<"$READY_LINE")
IDLE_READY_SITES=$(sed -nE 's/.*ready \(([0-9]+) sites.*/\1/p' <<<"$READY_LINE")
[ "$IDLE_READY_SITES" = "$SITES" ] || ODD+=("ready line names $IDLE_READY_SITES sites, expected $SITES: $READY_LINE")
IDLE_ALERTS_AT_READY=$(wc -l <"$IDLE/alerts.jsonl" 2>/dev/null || echo 0)

say "idle window: $IDLE_SECONDS s"
"${PY[@]}" idle "$IDLE_SECONDS" "$IDLE/idle.sh" sw="$IDLE_DAEMON" iw="$IDLE_IW"
# shellcheck source=/dev/null
. "$IDLE/idle.sh"
IDLE_ALERTS_DURING=$(($(wc -l <"$IDLE/alerts.jsonl" 2>/dev/null || echo 0) - IDLE_ALERTS_AT_READY))
stop "$IDLE_IW_READER"
stop "$IDLE_DAEMON" 15
IDLE_DAEMON_RC=$STOP_RC IDLE_STOP_S=$STOP_S
[ "$IDLE_DAEMON_RC" = 0 ] || ODD+=("idle daemon exited with code $IDLE_DAEMON_RC on SIGTERM (see $IDLE/daemon.log)")
[ "$IDLE_ALERTS_AT_READY" -eq 0 ] || ODD+=("$IDLE_ALERTS_AT_READY alert(s) from the catch-up scan of an unchanged corpus")
[ "$IDLE_ALERTS_DURING" -eq 0 ] || ODD+=("$IDLE_ALERTS_DURING alert(s) during the idle window")
[ "$sw_INOTIFY_WATCHES" = "$IDLE_READY_DIRS" ] \
    || ODD+=("ready line says $IDLE_READY_DIRS directories watched, the kernel holds $sw_INOTIFY_WATCHES inotify watches for the daemon")
IDLE_WARNINGS=$(warnings_in "$IDLE/daemon.log")
[ -z "$IDLE_WARNINGS" ] || ODD+=("idle daemon logged $IDLE_WARNINGS")

# ================================================================= report

LOAD_AFTER=$(cut -d' ' -f1 /proc/loadavg)
# meets VALUE OP TARGET -> yes/NO/n/a
meets() { awk -v v="$1" -v t="$3" -v op="$2" 'BEGIN { if (v == "n/a" || v == "") { print "n/a"; exit } r = (op == "==") ? (v == t) : (op == "<=") ? (v <= t) : (v < t); print r ? "yes" : "NO" }'; }

declare -a ROWS=()   # section|measurement|sitewarden|inotifywait|target|met
row() { ROWS+=("$1|$2|$3|$4|$5|$6"); }
RD="reads ($READS_N of $READS_FILES files)"
row "$RD" "kernel_events increase / lines (default events)" \
    "$READS_SW_EVENTS" "$READS_IW_LINES" "0" "$(meets "$READS_SW_EVENTS" == 0)"
row "$RD" "CPU time from the first read until settled (s)" "$sw_READS_CPU_S" "$iw_READS_CPU_S" "-" "-"
row "$RD" "alert records during the reads" "$RD_ALERTS" "-" "0" "$(meets "$RD_ALERTS" == 0)"
LAT="latency ($LATENCY_FILES files)"
row "$LAT" "files reported" "$LAT_SW_SEEN / $LAT_N" "$LAT_IW_SEEN / $LAT_N" "all" \
    "$(meets "$LAT_SW_SEEN" == "$LAT_N")"
row "$LAT" "p50 creation -> alert (ms)" "$LAT_SW_P50" "$LAT_IW_P50" "-" "-"
row "$LAT" "p90 (ms)" "$LAT_SW_P90" "$LAT_IW_P90" "-" "-"
row "$LAT" "p99 (ms)" "$LAT_SW_P99" "$LAT_IW_P99" "< 20" "$(meets "$LAT_SW_P99" "<" 20)"
row "$LAT" "max (ms)" "$LAT_SW_MAX" "$LAT_IW_MAX" "-" "-"
row "$LAT" "min (ms)" "$LAT_SW_MIN" "$LAT_IW_MIN" "-" "-"
row "$LAT" "p50 / p99 until readable in alerts.jsonl (ms)" "$LAT_DISK_P50 / $LAT_DISK_P99" "-" "-" "-"
row "$LAT" "p50 / p99 from the file's mtime instead (ms)" "$LAT_MTIME_P50 / $LAT_MTIME_P99" "-" "-" "-"
CH="chunked ($CH_N files, $CHUNKS x 4 KiB)"
row "$CH" "files reported" "$CH_SW_FILES / $CH_N" "$CH_IW_FILES / $CH_N" "all" "$(meets "$CH_SW_FILES" == "$CH_N")"
row "$CH" "files with exactly one alert record (records in all)" "$CH_SW_ONE / $CH_N ($CH_SW_RECORDS)" "-" \
    "$CH_N" "$(meets "$CH_SW_ONE" == "$CH_N")"
row "$CH" "records of the whole file ($((CHUNKS * 4)) KiB)" "$CH_SW_FULL / $CH_SW_RECORDS" "-" "all" \
    "$(meets "$CH_SW_FULL" == "$CH_SW_RECORDS")"
row "$CH" "p50 close -> alert / close_write line (ms)" "$CH_SW_P50" "$CH_IW_P50" "-" "-"
row "$CH" "p99 (ms)" "$CH_SW_P99" "$CH_IW_P99" "-" "-"
row "$CH" "max (ms)" "$CH_SW_MAX" "$CH_IW_MAX" "-" "-"
STORM="storm ($STORM_EXPECTED files, $STORM_DIRS new dirs)"
row "$STORM" "distinct files reported" "$STORM_SW_FILES / $STORM_EXPECTED" "$STORM_IW_FILES / $STORM_EXPECTED" \
    "$STORM_EXPECTED" "$(meets "$STORM_SW_FILES" == "$STORM_EXPECTED")"
row "$STORM" "new dirs with every file named" "-" "$STORM_IW_FULL_DIRS / $STORM_DIRS" "-" "-"
row "$STORM" "storm start -> last alert / line (s)" "$STORM_SW_LAST_S" "$STORM_IW_LAST_S" "-" "-"
row "$STORM" "storm start -> last alert readable (s)" "$STORM_DISK_LAST_S" "-" "-" "-"
row "$STORM" "peak RSS after the storm (MB)" "$RT_SW_HWM" "$RT_IW_HWM" "-" "-"
IDL="idle ($SITES sites, ${IDLE_ELAPSED} s)"
row "$IDL" "time to ready / watches established (s)" "$IDLE_READY_S" "$IDLE_IW_READY_S" "-" "-"
row "$IDL" "directories watched (ready line / kernel)" "$IDLE_READY_DIRS / $sw_INOTIFY_WATCHES" "- / $iw_INOTIFY_WATCHES" "-" "-"
row "$IDL" "CPU over the idle window (% of one core)" "$sw_CPU_PCT" "$iw_CPU_PCT" "~0 (< 1)" "$(meets "$sw_CPU_PCT" "<" 1)"
row "$IDL" "CPU time over the idle window (s)" "$sw_CPU_S" "$iw_CPU_S" "-" "-"
row "$IDL" "VmRSS at the end (MB)" "$sw_RSS_MB" "$iw_RSS_MB" "< 100" "$(meets "$sw_RSS_MB" "<" 100)"
row "$IDL" "highest VmRSS sampled in the window (MB)" "$sw_RSSMAX_MB" "$iw_RSSMAX_MB" "< 100" "$(meets "$sw_RSSMAX_MB" "<" 100)"
row "$IDL" "VmHWM, since start (MB)" "$sw_HWM_MB" "$iw_HWM_MB" "-" "-"
row "$IDL" "threads" "$sw_THREADS" "$iw_THREADS" "-" "-"
row "$IDL" "wake-ups per second (voluntary context switches)" "$sw_WAKEUPS_PER_S" "$iw_WAKEUPS_PER_S" "-" "-"

SMOKE=
if [ "$QUICK" = yes ] || [ "$SITES" -lt 40 ] || [ "$LATENCY_FILES" -lt 200 ] || [ "$IDLE_SECONDS" -lt 60 ] \
    || [ "$READ_TOTAL" -lt 10000 ] || [ "$CHUNKED_FILES" -lt 50 ]; then
    SMOKE="smoke run ($SITES sites, $READS_N reads, $LATENCY_FILES latency files, $CH_N chunked files, $STORM_EXPECTED storm files, ${IDLE_SECONDS} s idle): not figures to publish"
fi
PCT_NOTE="nearest-rank percentiles over the $LAT_N files (p99 is sample $(awk -v n="$LAT_N" 'BEGIN { k = int(0.99 * n); if (k < 0.99 * n) k++; printf "%d", k }') of $LAT_N in rising order)"
CH_PCT_NOTE="nearest-rank percentiles over the $CH_SW_SEEN files alerted"
NOTES=(
    "The machine is shared (2 cores, other builds and tests running): latencies and CPU are noisy. Load average (1 min) before / after: $LOAD_BEFORE / $LOAD_AFTER."
    "Reads: $READS_FILES existing .php files of the site (spread over its sorted list; in $RT/reads-files.txt) read $READS_ROUNDS times each by one Python loop (open O_RDONLY, read() to the end, close: $READS_N reads, $READS_BYTES bytes, in $READS_S s) while the daemon ran. sitewarden: increase of \`kernel_events\` in \`sitewarden status --json\` (inotify events its reader took from the kernel), each figure read once it had held for 11 s (the status file is refreshed every 10 s); the daemon's mask has no open/access/close_nowrite. inotifywait: a second \`inotifywait -m -r --format '%w%f<TAB>%e'\` with no -e (its default set, as a mask with IN_OPEN would be) on the same site, started for the reads and stopped after; its lines from the first read until its output had been still for 1 s ($READS_WINDOW_S s) are counted, by event: $READS_IW_EVENTS; $READS_IW_BEFORE line(s) before the reads come from its own start and from the walk that listed the files (folders opened and read), which the reads wait out (1 s without a line). CPU: utime+stime delta from /proc/PID/stat over the same window (10 ms ticks)."
    "Latency: from just before open(O_CREAT) in the creating script (time.time_ns) to the alert's \`time\` field (ms, taken before the record is written and fsynced); $PCT_NOTE. a file its writer closed is checked at once (the close-write fast path); only a path still open for writing, or rewritten within the last quiet period ($QP_TEXT), waits for it. Target: p99 < 20 ms for a file written in one go."
    "\"Until readable in alerts.jsonl\": when a 5 ms poller first read the line from the log (after write + fsync). \"From the file's mtime\": alert \`time\` minus \`after.mtime\` of the record, a cross-check only (the kernel stamps mtimes from a coarse clock)."
    "inotifywait: \`inotifywait -m -r --format '%w%f' -e $IW_EVENTS\` on the same site, line-buffered (stdbuf -oL), each line stamped with time.time_ns() by the reader on arrival; its latency is the first event for the path (the create). It only names paths, it checks nothing."
    "Storm: created by one Python loop in $STORM_CREATE_S s (mkdir, then $STORM_FILES files written into the folder at once). inotifywait -r only adds a watch to a new folder after it has read the folder's create event, so files written before that are never named; sitewarden watches the new folder and then walks it. sitewarden storm alerts by event/detector: $STORM_SW_EVENTS ($STORM_SW_RECORDS records, $STORM_SW_OTHER_RECORDS not on .php files)."
    "Latency alerts by event/detector: $LAT_SW_EVENTS."
    "Chunked: $CH_N new .php files, one every $PAUSE_MS ms, each opened once, written in $CHUNKS write() calls of 4 KiB $CHUNK_PAUSE_MS ms apart (p50 open -> close $CH_WRITE_P50_MS ms) and closed. Latency: from just before close() to the \`time\` of the file's first alert record (truncated to the millisecond, so up to 1 ms low; a value between -1 and 0 is a record stamped in the millisecond of the close), beside the arrival of inotifywait's line for the same close (its first line for the path after close() began: with -e $IW_EVENTS a new file gives a create line at the open and a close_write line at the close); $CH_PCT_NOTE. A file still open for writing waits; its close is judged at once. Records by event/detector: $CH_SW_EVENTS; most records on one file: $CH_SW_MOST."
    "Idle: sitewarden started on an existing baseline (built first in $IDLE_BASELINE_S s), so \`ready\` includes the watches and a catch-up scan; inotifywait -m -r watched the same $SITES roots (every folder, including uploads and caches) over the same window. CPU = utime+stime delta of the whole process from /proc/PID/stat; RSS from /proc/PID/status; watches counted in /proc/PID/fdinfo. Shutdown on SIGTERM took $IDLE_STOP_S s (exit $IDLE_DAEMON_RC)."
    "The latency/storm daemon watched $RT_SW_WATCHES directories at the end (inotifywait: $RT_IW_WATCHES); shutdown took $RT_DAEMON_STOP_S s (exit $RT_DAEMON_RC)."
)

say "results"
[ -z "$SMOKE" ] || echo "!! $SMOKE"
FMT='%-44s %-44s %15s %15s %9s %4s\n'
printf "$FMT" "section" "measurement" "sitewarden" "inotifywait" "target" "met"
printf "$FMT" "-------" "-----------" "----------" "-----------" "------" "---"
for r in "${ROWS[@]}"; do
    IFS='|' read -r sec m a b t ok <<<"$r"
    printf "$FMT" "$sec" "$m" "$a" "$b" "$t" "$ok"
done
echo
print_notes

COMMIT=$(checkout_commit)
{
    md_head "sitewarden realtime benchmark" "$SMOKE" "; shared and noisy"
    echo "- sitewarden: $SW_VERSION, commit $COMMIT; quiet period $QP_TEXT; profile wordpress"
    echo "- inotifywait: $IW_VERSION"
    echo "- Reads: $READS_N reads (open, read whole, close) of $READS_FILES unchanged .php files of one WordPress site ($READS_ROUNDS each)"
    echo "- Latency: $LATENCY_FILES new .php files, $PAUSE_MS ms apart, in an existing folder of one WordPress site (wp-content/plugins/)"
    echo "- Chunked: $CH_N new .php files, $PAUSE_MS ms apart, each written in $CHUNKS chunks of 4 KiB ($CHUNK_PAUSE_MS ms between two) and closed once, in another existing folder of the same site"
    echo "- Storm: $STORM_EXPECTED .php files in $STORM_DIRS new folders ($STORM_FILES each) under wp-content/plugins/ of the same site"
    echo "- Idle: $CORPUS_DESC (the corpus of bench/baseline.sh), $IDLE_SECONDS s"
    echo
    echo "| Section | Measurement | sitewarden | inotifywait -m -r | Target | Met |"
    echo "|---|---|---:|---:|---:|:---:|"
    for r in "${ROWS[@]}"; do
        IFS='|' read -r sec m a b t ok <<<"$r"
        echo "| $sec | $m | $a | $b | $t | $ok |"
    done
    echo
    md_notes
} >"$RESULTS_MD"
echo
echo "Markdown written to $RESULTS_MD (raw data in $RT and $IDLE)"
