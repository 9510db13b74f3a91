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
[ -f /usr/share/wordpress/wp-content/languages/fa_IR.mo ] || missing+=(wordpress-l10n)
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

write_config() { # FILE STATE_DIR ALERT_LOG SOURCE (site lines on stdin)
    {
        echo "state_dir: $2"
        echo "alerts:"
        echo "  log: $3"
        echo "realtime:"
        echo "  source: $4"
        if [ -n "$QUIET_PERIOD" ]; then
            echo "scan:"
            echo "  quiet_period: $QUIET_PERIOD"
        fi
        echo "sites:"
        cat
    } >"$1"
    "$SW" -c "$1" config-check >/dev/null || die "sitewarden rejects $1"
}

# ------------------------------------------------------------ the results
#
# Each pass runs with the daemon on one source and leaves its figures in R,
# keyed SOURCE.NAME: the helper's KEY=VALUE files (capture) and the
# script's own variables (keep). The report reads them back with `v`.

declare -A R=()
capture() { # SOURCE FILE...
    local src=$1 f line val
    shift
    for f in "$@"; do
        while IFS= read -r line; do
            [[ $line =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || continue
            # The helper writes shlex-quoted values.
            eval "val=${line#*=}"
            R[$src.${line%%=*}]=$val
        done <"$f"
    done
}
keep() { # SOURCE VARIABLE...
    local src=$1 name
    shift
    for name in "$@"; do R[$src.$name]=${!name-}; done
}
v() { printf '%s' "${R[$1.$2]-n/a}"; } # SOURCE NAME

# ev_delta EV0 NS0 EV1 NS1: "N over S s (R/s)" between two status refreshes
ev_delta() {
    awk -v a="$1" -v t0="$2" -v b="$3" -v t1="$4" 'BEGIN {
        if (a !~ /^[0-9]+$/ || b !~ /^[0-9]+$/ || t1 <= t0) { print "n/a"; exit }
        s = (t1 - t0) / 1e9
        printf "%d over %.0f s (%.0f/s)", b - a, s, (b - a) / s }'
}

# kernel_events_next CONFIG STATE_DIR -> "VALUE NS" at the next status refresh
kernel_events_next() { "${PY[@]}" kernel-events-next "$SW" "$1" "$2/daemon.json" 15; }

# odd TEXT: something unexpected in the running pass, for the report.
odd() { ODD+=("[$TAG] $*"); }

# check_source CONFIG SOURCE EXPECTED_SITES: every site of the running
# daemon is on SOURCE (status --json); sets SOURCE_SEEN.
check_source() {
    local why
    read -r SOURCE_SEEN why < <("${PY[@]}" sources "$SW" "$1")
    note "status --json: sources $SOURCE_SEEN${why:+ (${why//_/ })}"
    [ "$SOURCE_SEEN" = "$2=$3" ] \
        || odd "asked for source $2, status --json says $SOURCE_SEEN (reason: ${why//_/ }): its figures are not $2's"
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
FS_DESC=$(findmnt -n -o FSTYPE,SOURCE,TARGET -T "$BENCH_DIR" 2>/dev/null | awk '{ print $1 " (" $2 " on " $3 ")" }' || true)
FS_DESC=${FS_DESC:-unknown}
note "filesystem of $BENCH_DIR: $FS_DESC"
[ "$(id -u)" -eq 0 ] || note "!! not root: the daemon cannot have fanotify; its pass will say so"
QP_TEXT=${QUIET_PERIOD:-200ms, the default}
declare -a ODD=()     # anything unexpected, for the report

# ------------------------------- 1 to 4: reads, latency, chunked and storm

RT_TOP=$BENCH_DIR/realtime
rm -rf "$RT_TOP"

# rt_pass SOURCE: sections 1 to 4 with the daemon on SOURCE, on a fresh
# copy of WordPress in $RT_TOP/SOURCE.
rt_pass() {
    local src=$1 n t why ev0 ns0 ev1 ns1 ev2 ns2 c0 c1
    TAG=$src
    RT=$RT_TOP/$src
    SITE=$RT/site
    BENCH_PREFIX=$SITE/wp-content/plugins/sw-bench-
    LAT_DIR=${BENCH_PREFIX}latency
    CHUNK_DIR=${BENCH_PREFIX}chunked
    STORM_ROOT=${BENCH_PREFIX}storm
    say "[$src] reads, latency, chunked and storm: one WordPress site in $SITE, quiet period $QP_TEXT"
    mkdir -p "$RT"
    cp -a /usr/share/wordpress "$SITE"
    # They exist before anything starts: the latency and chunked files go into
    # folders already watched; the storm's folders are new, under an existing one.
    mkdir -p "$LAT_DIR" "$CHUNK_DIR" "$STORM_ROOT"
    printf '  - name: rt\n    root: %s\n    profile: wordpress\n' "$SITE" \
        | write_config "$RT/sitewarden.yaml" "$RT/state" "$RT/alerts.jsonl" "$src"
    "$SW" -c "$RT/sitewarden.yaml" baseline >"$RT/baseline.log" 2>&1 \
        || { tail -n 20 "$RT/baseline.log"; die "sitewarden baseline failed"; }

    start_daemon "$RT/sitewarden.yaml" "$RT/daemon.log"
    RT_DAEMON=$DAEMON
    note "$READY_LINE (after $READY_S s)"
    check_source "$RT/sitewarden.yaml" "$src" 1
    RT_SOURCE=$SOURCE_SEEN
    start_iw "$RT/iw.tsv" "$RT/iw.err" "$RT/iw.pid" "$SITE"
    RT_IW_READER=$IW_READER RT_IW=$IW_PID
    note "inotifywait -m -r: watches established after $IW_READY_S s"
    "${PY[@]}" tail "$RT/alerts.jsonl" "$RT/alerts-seen.tsv" &
    RT_TAIL=$!
    PIDS+=("$RT_TAIL")
    sleep 1
    RT_ALERTS_BEFORE=$(wc -l <"$RT/alerts.jsonl" 2>/dev/null || echo 0)
    [ "$RT_ALERTS_BEFORE" -eq 0 ] || odd "$RT_ALERTS_BEFORE alert(s) before the first file was created (fresh baseline of an unchanged copy)"

    say "[$src] reads: $READ_FILES unchanged .php files of the site read $READ_ROUNDS times each ($READ_TOTAL reads)"
    # On inotify: a second inotifywait on the site, with its default events,
    # for the reads only, and kernel_events, refreshed in the status file
    # every 10 s: the figure is taken once it has held for 11 s, before and
    # after the reads. On fanotify neither: kernel_events counts every
    # change on the filesystem (the daemon's own status file included) and
    # never holds, and the 6000 lines that inotifywait's reader would write
    # to a file here are changes fanotify reads; the reads' window then
    # ends 1 s after the last read.
    local -a rd_opts=(sw="$RT_DAEMON")
    if [ "$src" = inotify ]; then
        start_iw "$RT/iw-all.tsv" "$RT/iw-all.err" "$RT/iw-all.pid" --all-events "$SITE"
        RD_IW_READER=$IW_READER RD_IW=$IW_PID
        note "inotifywait -m -r (default events): watches established after $IW_READY_S s"
        rd_opts=(quiet="$RT/iw-all.tsv" sw="$RT_DAEMON" iw="$RD_IW")
        read -r RD_EV0 t why < <("${PY[@]}" kernel-events "$SW" "$RT/sitewarden.yaml" 11 120)
        note "sitewarden kernel_events before the reads: $RD_EV0 (${why//_/ }, after $t s)"
        [[ $why == unchanged* ]] || odd "kernel_events did not settle before the reads (${why//_/ })"
    else
        # The whole filesystem's changes read around the reads (none are
        # the reads'): what the daemon's CPU over them went to. Also lets
        # the start settle, as the inotify pass's wait does.
        read -r ev0 ns0 < <(kernel_events_next "$RT/sitewarden.yaml" "$RT/state")
    fi
    RD_ALERTS0=$(wc -l <"$RT/alerts.jsonl" 2>/dev/null || echo 0)
    "${PY[@]}" reads "$SITE" "$READ_FILES" "$READ_ROUNDS" "$RT/reads.sh" exclude="$BENCH_PREFIX" \
        list="$RT/reads-files.txt" "${rd_opts[@]}"
    # shellcheck source=/dev/null
    . "$RT/reads.sh"
    READS_SW_EVENTS=- READS_IW_LINES=- READS_FS_EVENTS=-
    if [ "$src" = fanotify ]; then
        read -r ev1 ns1 < <(kernel_events_next "$RT/sitewarden.yaml" "$RT/state")
        READS_FS_EVENTS=$(ev_delta "$ev0" "$ns0" "$ev1" "$ns1")
        note "sitewarden kernel_events between the status refreshes around the reads: $READS_FS_EVENTS"
    else
        stop "$RD_IW_READER"
        read -r RD_EV1 t why < <("${PY[@]}" kernel-events "$SW" "$RT/sitewarden.yaml" 11 120)
        note "sitewarden kernel_events after the reads: $RD_EV1 (${why//_/ }, after $t s)"
        [[ $why == unchanged* ]] || odd "kernel_events did not settle after the reads (${why//_/ })"
        if [[ $RD_EV0 =~ ^[0-9]+$ && $RD_EV1 =~ ^[0-9]+$ ]]; then
            READS_SW_EVENTS=$((RD_EV1 - RD_EV0))
        else
            READS_SW_EVENTS=n/a
            odd "no kernel_events from \`sitewarden status --json\` (before: $RD_EV0, after: $RD_EV1)"
        fi
    fi
    RD_ALERTS=$(($(wc -l <"$RT/alerts.jsonl" 2>/dev/null || echo 0) - RD_ALERTS0))
    if [ "$src" = inotify ]; then
        "${PY[@]}" analyze-reads iw="$RT/iw-all.tsv" start="$READS_START_NS" end="$READS_SETTLED_NS" \
            out="$RT/reads-iw.sh"
        # shellcheck source=/dev/null
        . "$RT/reads-iw.sh"
        capture "$src" "$RT/reads-iw.sh"
        [ "$READS_IW_OVERFLOW" -eq 0 ] || odd "inotifywait (default events) overflowed its queue $READS_IW_OVERFLOW time(s) during the reads: its line count is short of the events"
        [ "$READS_IW_AFTER" -eq 0 ] || odd "inotifywait (default events) printed $READS_IW_AFTER line(s) after the reads had settled"
    fi
    note "$READS_N reads ($READS_BYTES bytes) in $READS_S s: sitewarden read $READS_SW_EVENTS kernel events," \
        "used $sw_READS_CPU_S s of CPU over $READS_WINDOW_S s, wrote $RD_ALERTS alert(s); inotifywait printed $READS_IW_LINES lines"
    [ "$RD_ALERTS" -eq 0 ] || odd "$RD_ALERTS alert(s) while unchanged files were read"

    # kernel_events over sections 2 to 4, between status refreshes (on
    # fanotify, the one just after the reads).
    [ "$src" = fanotify ] || read -r ev1 ns1 < <(kernel_events_next "$RT/sitewarden.yaml" "$RT/state")

    say "[$src] latency: $LATENCY_FILES new .php files, one every $PAUSE_MS ms, in ${LAT_DIR#"$SITE"/}"
    "${PY[@]}" create-latency "$LAT_DIR" "$LATENCY_FILES" "$PAUSE_MS" "$RT/latency.tsv"
    read -r n t why < <("${PY[@]}" wait alerts "$RT/alerts.jsonl" "$LAT_DIR" "$LATENCY_FILES" 5 60)
    note "sitewarden: $n/$LATENCY_FILES files alerted (${why//_/ }, waited $t s after the last file)"
    read -r n t why < <("${PY[@]}" wait iw "$RT/iw.tsv" "$LAT_DIR" "$LATENCY_FILES" 2 10)
    note "inotifywait: $n/$LATENCY_FILES files named (${why//_/ })"

    say "[$src] chunked: $CHUNKED_FILES new .php files, each written in $CHUNKS chunks of 4 KiB $CHUNK_PAUSE_MS ms apart and closed once, one every $PAUSE_MS ms, in ${CHUNK_DIR#"$SITE"/}"
    "${PY[@]}" create-chunked "$CHUNK_DIR" "$CHUNKED_FILES" "$CHUNKS" "$CHUNK_PAUSE_MS" "$PAUSE_MS" "$RT/chunked.tsv"
    read -r n t why < <("${PY[@]}" wait alerts "$RT/alerts.jsonl" "$CHUNK_DIR" "$CHUNKED_FILES" 5 60)
    note "sitewarden: $n/$CHUNKED_FILES files alerted (${why//_/ }, waited $t s after the last file)"
    read -r n t why < <("${PY[@]}" wait iw "$RT/iw.tsv" "$CHUNK_DIR" "$CHUNKED_FILES" 2 10)
    note "inotifywait: $n/$CHUNKED_FILES files named (${why//_/ })"
    # A second record on a chunked file would come within MAX_COALESCE (2 s).
    sleep 2.5

    say "[$src] storm: $STORM_TOTAL files in $STORM_DIRS new folders under ${STORM_ROOT#"$SITE"/}"
    c0=$("${PY[@]}" cpu "$RT_DAEMON")
    "${PY[@]}" storm "$STORM_ROOT" "$STORM_DIRS" "$STORM_FILES" "$RT/storm.json"
    read -r n t why < <("${PY[@]}" wait alerts "$RT/alerts.jsonl" "$STORM_ROOT" "$STORM_TOTAL" 15 300)
    c1=$("${PY[@]}" cpu "$RT_DAEMON")
    # From the storm's start until every file was alerted (or the wait gave
    # up: then 15 s of nothing new are in it too).
    STORM_SW_CPU_S=$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.2f", b - a }')
    note "sitewarden: $n/$STORM_TOTAL files alerted (${why//_/ }, waited $t s after the storm)"
    # A path is checked at the latest 2 s after its first event (MAX_COALESCE):
    # give any second alert on a storm file the time to show up.
    sleep 2.5
    read -r n t why < <("${PY[@]}" wait iw "$RT/iw.tsv" "$STORM_ROOT" "$STORM_TOTAL" 3 30)
    note "inotifywait: $n/$STORM_TOTAL files named (${why//_/ })"

    RT_SW_RSS=$(mb "$(proc_kb "$RT_DAEMON" VmRSS)")
    RT_SW_HWM=$(mb "$(proc_kb "$RT_DAEMON" VmHWM)")
    RT_IW_HWM=$(mb "$(proc_kb "$RT_IW" VmHWM)")
    read -r ev2 ns2 < <(kernel_events_next "$RT/sitewarden.yaml" "$RT/state")
    PASS_EVENTS=$(ev_delta "$ev1" "$ns1" "$ev2" "$ns2")
    note "sitewarden kernel_events over sections 2 to 4 (status refreshes): $PASS_EVENTS"
    read -r _ RT_SW_WATCHES _ RT_SW_MARKS < <("${PY[@]}" watches "$RT_DAEMON")
    read -r _ RT_IW_WATCHES _ _ < <("${PY[@]}" watches "$RT_IW")
    stop "$RT_IW_READER"
    stop "$RT_DAEMON" 15
    RT_DAEMON_RC=$STOP_RC RT_DAEMON_STOP_S=$STOP_S
    sleep 0.2                      # a last poll of the alert log
    stop "$RT_TAIL"
    [ "$RT_DAEMON_RC" = 0 ] || odd "latency/storm daemon exited with code $RT_DAEMON_RC on SIGTERM (see $RT/daemon.log)"

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
    [ -z "$RT_WARNINGS" ] || odd "latency/storm daemon logged $RT_WARNINGS"
    [ "$LAT_SW_SEEN" -eq "$LAT_N" ] || odd "sitewarden alerted $LAT_SW_SEEN of the $LAT_N latency files"
    [ "$LAT_SW_EXTRA_ALERTS" -eq 0 ] || odd "sitewarden gave $LAT_SW_EXTRA_ALERTS extra alert(s) on the latency files (more than one per file)"
    [ "$LAT_SW_NEGATIVE" -eq 0 ] || odd "$LAT_SW_NEGATIVE alert(s) stamped before their file was created (clock?)"
    [ "$LAT_SW_STRAY" -eq 0 ] || odd "$LAT_SW_STRAY alert(s) on paths in the latency folder that were not created"
    [ "$STORM_SW_FILES" -eq "$STORM_EXPECTED" ] || odd "sitewarden reported $STORM_SW_FILES of the $STORM_EXPECTED storm files"
    [ "$STORM_SW_RECORDS" -eq "$STORM_SW_FILES" ] || odd "sitewarden wrote $STORM_SW_RECORDS alert records for $STORM_SW_FILES storm files ($STORM_SW_EVENTS)"
    [ "$ALERT_BAD_LINES" -eq 0 ] || odd "$ALERT_BAD_LINES line(s) of alerts.jsonl are not JSON"
    [ "$CH_SW_EARLY" -eq 0 ] || odd "$CH_SW_EARLY chunked file(s) alerted with a record stamped before their close"
    [ "$CH_SW_STRAY" -eq 0 ] || odd "$CH_SW_STRAY alert(s) on paths in the chunked folder that were not created"
    [ "$CH_IW_TWO" -eq "$CH_N" ] || odd "inotifywait named $CH_IW_TWO of the $CH_N chunked files exactly twice (create + close_write expected)"
    if [ "$src" = fanotify ]; then
        [ "$ALERT_ACTOR" -eq "$ALERT_LINES" ] || odd "$ALERT_ACTOR of $ALERT_LINES alert records name their writer (actor.pid)"
        [ "$RT_SW_WATCHES" -eq 0 ] || odd "the fanotify daemon holds $RT_SW_WATCHES inotify watches"
    fi

    capture "$src" "$RT/reads.sh" "$RT/results.sh" "$RT/chunked.sh"
    keep "$src" READY_S READS_SW_EVENTS READS_FS_EVENTS PASS_EVENTS STORM_SW_CPU_S RD_ALERTS RT_SW_RSS RT_SW_HWM RT_IW_HWM RT_SW_WATCHES RT_SW_MARKS \
        RT_IW_WATCHES RT_DAEMON_RC RT_DAEMON_STOP_S RT_SOURCE
}

for src in "${SOURCES[@]}"; do rt_pass "$src"; done

# --------------------------------------------- 5 and 6: idle, busy neighbour

say "idle and busy neighbour: corpus of $SITES WordPress sites in $CORPUS"
build_corpus                # unlike baseline.sh: sites beyond $SITES stay
if [ -e "$BENCH_DIR/changes.applied" ]; then
    note "!! $BENCH_DIR/changes.applied exists: bench/baseline.sh is running or was interrupted; the corpus holds its scripted changes"
    ODD+=("bench/baseline.sh's scripted changes were applied to the corpus during the idle measurement")
fi
IDLE_TOP=$BENCH_DIR/realtime-idle
BUSY_DIR=$BENCH_DIR/realtime-busy
rm -rf "$IDLE_TOP" "$BUSY_DIR"
mkdir -p "$IDLE_TOP"
ROOTS=()
for ((i = 1; i <= SITES; i++)); do ROOTS+=("$CORPUS/$(site_name "$i")"); done
N_DIRS=$(find "${ROOTS[@]}" -type d | wc -l)
N_FILES=$(find "${ROOTS[@]}" -type f | wc -l)
CORPUS_DESC="$SITES WordPress sites, $N_FILES files, $N_DIRS folders"
note "$CORPUS_DESC"
MAX_WATCHES=$(cat /proc/sys/fs/inotify/max_user_watches)
if [ $((2 * N_DIRS)) -gt "$MAX_WATCHES" ]; then
    note "!! sitewarden (inotify) and inotifywait together may need $((2 * N_DIRS)) watches; fs.inotify.max_user_watches is $MAX_WATCHES"
fi
# $BUSY_DIR is made in $BENCH_DIR: the same device as the sites?
[ "$(stat -c %d "$BENCH_DIR")" = "$(stat -c %d "$CORPUS")" ] \
    || ODD+=("the busy neighbour's folder $BUSY_DIR is not on the corpus's filesystem: the section measures nothing")

# inotifywait first, once for both passes: its setup and the daemons' starts
# do not overlap, and it is idle over the same windows.
start_iw "$IDLE_TOP/iw.tsv" "$IDLE_TOP/iw.err" "$IDLE_TOP/iw.pid" "${ROOTS[@]}"
IDLE_IW_READER=$IW_READER IDLE_IW=$IW_PID IDLE_IW_READY_S=$IW_READY_S
note "inotifywait -m -r: watches established after $IDLE_IW_READY_S s"

# idle_pass SOURCE: the daemon on SOURCE over the corpus (own config and
# state in $IDLE_TOP/SOURCE): baseline, ready, the idle window, then the
# busy neighbour.
idle_pass() {
    local src=$1 i t0 ev0 ns0 ev1 ns1 ev2 ns2 under all
    TAG=$src
    IDLE=$IDLE_TOP/$src
    mkdir -p "$IDLE"
    for ((i = 1; i <= SITES; i++)); do
        printf '  - name: %s\n    root: %s\n    profile: wordpress\n' "$(site_name "$i")" "${ROOTS[i - 1]}"
    done | write_config "$IDLE/sitewarden.yaml" "$IDLE/state" "$IDLE/alerts.jsonl" "$src"

    say "[$src] idle: baseline, then the daemon"
    t0=$(now)
    "$SW" -c "$IDLE/sitewarden.yaml" baseline >"$IDLE/baseline.log" 2>&1 \
        || { tail -n 20 "$IDLE/baseline.log"; die "sitewarden baseline failed"; }
    IDLE_BASELINE_S=$(since "$t0")
    note "sitewarden baseline: $IDLE_BASELINE_S s (also warms the page cache)"
    start_daemon "$IDLE/sitewarden.yaml" "$IDLE/daemon.log"
    IDLE_DAEMON=$DAEMON IDLE_READY_S=$READY_S
    note "$READY_LINE (after $READY_S s, with a baseline: watches + catch-up scan)"
    check_source "$IDLE/sitewarden.yaml" "$src" "$SITES"
    IDLE_SOURCE=$SOURCE_SEEN
    IDLE_READY_DIRS=$(sed -nE 's/.*, ([0-9]+) directories watched.*/\1/p' <<<"$READY_LINE")
    IDLE_READY_SITES=$(sed -nE 's/.*ready \(([0-9]+) sites.*/\1/p' <<<"$READY_LINE")
    [ "$IDLE_READY_SITES" = "$SITES" ] || odd "ready line names $IDLE_READY_SITES sites, expected $SITES: $READY_LINE"
    IDLE_ALERTS_AT_READY=$(wc -l <"$IDLE/alerts.jsonl" 2>/dev/null || echo 0)

    # kernel_events at the status refreshes (every 10 s) around each window.
    read -r ev0 ns0 < <(kernel_events_next "$IDLE/sitewarden.yaml" "$IDLE/state")
    say "[$src] idle window: $IDLE_SECONDS s"
    "${PY[@]}" idle "$IDLE_SECONDS" "$IDLE/idle.sh" sw="$IDLE_DAEMON" iw="$IDLE_IW"
    # shellcheck source=/dev/null
    . "$IDLE/idle.sh"
    IDLE_ALERTS_DURING=$(($(wc -l <"$IDLE/alerts.jsonl" 2>/dev/null || echo 0) - IDLE_ALERTS_AT_READY))
    read -r ev1 ns1 < <(kernel_events_next "$IDLE/sitewarden.yaml" "$IDLE/state")
    IDLE_EVENTS=$(ev_delta "$ev0" "$ns0" "$ev1" "$ns1")
    note "sitewarden: CPU $sw_CPU_PCT % of one core, VmRSS $sw_RSS_MB MB; kernel_events $IDLE_EVENTS"

    say "[$src] busy neighbour: $BUSY_RATE write() calls per second for $BUSY_SECONDS s in $BUSY_DIR (no site root; same filesystem)"
    BUSY_ALERTS0=$(wc -l <"$IDLE/alerts.jsonl" 2>/dev/null || echo 0)
    "${PY[@]}" busy "$BUSY_DIR" "$BUSY_RATE" "$BUSY_SECONDS" "$IDLE/busy.sh" sw="$IDLE_DAEMON" iw="$IDLE_IW"
    # shellcheck source=/dev/null
    . "$IDLE/busy.sh"
    read -r ev2 ns2 < <(kernel_events_next "$IDLE/sitewarden.yaml" "$IDLE/state")
    BUSY_EVENTS=$(ev_delta "$ev1" "$ns1" "$ev2" "$ns2")
    read -r under all < <("${PY[@]}" count-alerts "$IDLE/alerts.jsonl" "$BUSY_DIR")
    BUSY_ALERTS_UNDER=$under
    BUSY_ALERTS_DURING=$((all - BUSY_ALERTS0))
    note "$BUSY_WRITES write() calls in $BUSY_WRITE_S s: $BUSY_RATE_DONE per second (slowest second $BUSY_RATE_MIN; the writer used $BUSY_WRITER_CPU_PCT % of a core)"
    note "sitewarden: CPU $sw_BUSY_CPU_PCT % of one core over $BUSY_WINDOW_S s; kernel_events $BUSY_EVENTS;" \
        "alert records on the writer's paths: $BUSY_ALERTS_UNDER, in all since the writer started: $BUSY_ALERTS_DURING"

    stop "$IDLE_DAEMON" 15
    IDLE_DAEMON_RC=$STOP_RC IDLE_STOP_S=$STOP_S
    rm -rf "$BUSY_DIR"             # ~10 MB of log lines; the figures are in busy.sh
    [ "$IDLE_DAEMON_RC" = 0 ] || odd "idle daemon exited with code $IDLE_DAEMON_RC on SIGTERM (see $IDLE/daemon.log)"
    [ "$IDLE_ALERTS_AT_READY" -eq 0 ] || odd "$IDLE_ALERTS_AT_READY alert(s) from the catch-up scan of an unchanged corpus"
    [ "$IDLE_ALERTS_DURING" -eq 0 ] || odd "$IDLE_ALERTS_DURING alert(s) during the idle window"
    [ "$BUSY_ALERTS_UNDER" -eq 0 ] || odd "$BUSY_ALERTS_UNDER alert record(s) on the busy neighbour's paths, outside every site root"
    [ "$BUSY_ALERTS_DURING" -eq 0 ] || odd "$BUSY_ALERTS_DURING alert record(s) while the busy neighbour wrote"
    if [ "$src" = fanotify ]; then
        [ "$sw_INOTIFY_WATCHES" -eq 0 ] && [ "$sw_FANOTIFY_MARKS" -ge 1 ] \
            || odd "the fanotify daemon holds $sw_INOTIFY_WATCHES inotify watches and $sw_FANOTIFY_MARKS fanotify marks"
    else
        [ "$sw_INOTIFY_WATCHES" = "$IDLE_READY_DIRS" ] \
            || odd "ready line says $IDLE_READY_DIRS directories watched, the kernel holds $sw_INOTIFY_WATCHES inotify watches for the daemon"
    fi
    awk -v r="$BUSY_RATE_DONE" -v t="$BUSY_RATE" 'BEGIN { exit !(r < 0.95 * t) }' \
        && odd "the busy neighbour wrote $BUSY_RATE_DONE times per second, short of $BUSY_RATE"
    IDLE_WARNINGS=$(warnings_in "$IDLE/daemon.log")
    [ -z "$IDLE_WARNINGS" ] || odd "idle/busy daemon logged $IDLE_WARNINGS"

    capture "$src" "$IDLE/idle.sh" "$IDLE/busy.sh"
    keep "$src" IDLE_BASELINE_S IDLE_READY_S IDLE_READY_DIRS IDLE_STOP_S IDLE_DAEMON_RC IDLE_EVENTS \
        BUSY_EVENTS BUSY_ALERTS_UNDER BUSY_ALERTS_DURING IDLE_SOURCE
}

for src in "${SOURCES[@]}"; do idle_pass "$src"; done
stop "$IDLE_IW_READER"

# ================================================================= report

LOAD_AFTER=$(cut -d' ' -f1 /proc/loadavg)
# meets VALUE OP TARGET -> yes/NO/n/a
meets() { awk -v v="$1" -v t="$3" -v op="$2" 'BEGIN { if (v == "n/a" || v == "" || v == "-") { print "n/a"; exit } r = (op == "==") ? (v == t) : (op == "<=") ? (v <= t) : (v < t); print r ? "yes" : "NO" }'; }
# meets2 NAME OP TARGET: meets for each source's R value, "inotify / fanotify"
meets2() { echo "$(meets "$(v inotify "$1")" "$2" "$3") / $(meets "$(v fanotify "$1")" "$2" "$3")"; }
# the count and the rate of an ev_delta ("12 over 20 s (1/s)" -> 12, 1)
num() { awk '{ print $1 }' <<<"$1"; }
per_s() { awk '{ if (match($0, /\(([^)]*)\/s\)$/)) print substr($0, RSTART + 1, RLENGTH - 4); else print "n/a" }' <<<"$1"; }

declare -a ROWS=()   # section|measurement|inotify|fanotify|inotifywait|target|met
row() { ROWS+=("$1|$2|$3|$4|$5|$6|$7"); }
# srow SECTION MEASUREMENT NAME IW TARGET MET: both sources' R value of NAME
srow() { row "$1" "$2" "$(v inotify "$3")" "$(v fanotify "$3")" "$4" "$5" "$6"; }
I=inotify F=fanotify
RD="reads ($(v $I READS_N) of $(v $I READS_FILES) files)"
row "$RD" "kernel_events increase / lines (default events)" \
    "$(v $I READS_SW_EVENTS)" "-" "$(v $I READS_IW_LINES)" "0" "$(meets "$(v $I READS_SW_EVENTS)" == 0) / -"
srow "$RD" "CPU time from the first read until settled (s)" sw_READS_CPU_S "$(v $I iw_READS_CPU_S)" "-" "-"
row "$RD" "kernel_events per second around the reads (fanotify: whole fs)" "-" \
    "$(per_s "$(v $F READS_FS_EVENTS)")" "-" "-" "-"
srow "$RD" "alert records during the reads" RD_ALERTS "-" "0" "$(meets2 RD_ALERTS == 0)"
LAT="latency ($LATENCY_FILES files)"
row "$LAT" "files reported" "$(v $I LAT_SW_SEEN) / $(v $I LAT_N)" "$(v $F LAT_SW_SEEN) / $(v $F LAT_N)" \
    "$(v $I LAT_IW_SEEN) / $(v $I LAT_N)" "all" \
    "$(meets "$(v $I LAT_SW_SEEN)" == "$(v $I LAT_N)") / $(meets "$(v $F LAT_SW_SEEN)" == "$(v $F LAT_N)")"
srow "$LAT" "p50 creation -> alert (ms)" LAT_SW_P50 "$(v $I LAT_IW_P50)" "-" "-"
srow "$LAT" "p90 (ms)" LAT_SW_P90 "$(v $I LAT_IW_P90)" "-" "-"
srow "$LAT" "p99 (ms)" LAT_SW_P99 "$(v $I LAT_IW_P99)" "< 20" "$(meets2 LAT_SW_P99 "<" 20)"
srow "$LAT" "max (ms)" LAT_SW_MAX "$(v $I LAT_IW_MAX)" "-" "-"
srow "$LAT" "min (ms)" LAT_SW_MIN "$(v $I LAT_IW_MIN)" "-" "-"
row "$LAT" "p50 / p99 until readable in alerts.jsonl (ms)" "$(v $I LAT_DISK_P50) / $(v $I LAT_DISK_P99)" \
    "$(v $F LAT_DISK_P50) / $(v $F LAT_DISK_P99)" "-" "-" "-"
row "$LAT" "p50 / p99 from the file's mtime instead (ms)" "$(v $I LAT_MTIME_P50) / $(v $I LAT_MTIME_P99)" \
    "$(v $F LAT_MTIME_P50) / $(v $F LAT_MTIME_P99)" "-" "-" "-"
CH="chunked ($(v $I CH_N) files, $CHUNKS x 4 KiB)"
row "$CH" "files reported" "$(v $I CH_SW_FILES) / $(v $I CH_N)" "$(v $F CH_SW_FILES) / $(v $F CH_N)" \
    "$(v $I CH_IW_FILES) / $(v $I CH_N)" "all" \
    "$(meets "$(v $I CH_SW_FILES)" == "$(v $I CH_N)") / $(meets "$(v $F CH_SW_FILES)" == "$(v $F CH_N)")"
row "$CH" "files with exactly one alert record (records in all)" "$(v $I CH_SW_ONE) / $(v $I CH_N) ($(v $I CH_SW_RECORDS))" \
    "$(v $F CH_SW_ONE) / $(v $F CH_N) ($(v $F CH_SW_RECORDS))" "-" "$CHUNKED_FILES" \
    "$(meets "$(v $I CH_SW_ONE)" == "$(v $I CH_N)") / $(meets "$(v $F CH_SW_ONE)" == "$(v $F CH_N)")"
row "$CH" "records of the whole file ($((CHUNKS * 4)) KiB)" "$(v $I CH_SW_FULL) / $(v $I CH_SW_RECORDS)" \
    "$(v $F CH_SW_FULL) / $(v $F CH_SW_RECORDS)" "-" "all" \
    "$(meets "$(v $I CH_SW_FULL)" == "$(v $I CH_SW_RECORDS)") / $(meets "$(v $F CH_SW_FULL)" == "$(v $F CH_SW_RECORDS)")"
srow "$CH" "p50 close -> alert / close_write line (ms)" CH_SW_P50 "$(v $I CH_IW_P50)" "-" "-"
srow "$CH" "p99 (ms)" CH_SW_P99 "$(v $I CH_IW_P99)" "-" "-"
srow "$CH" "max (ms)" CH_SW_MAX "$(v $I CH_IW_MAX)" "-" "-"
STORM="storm ($(v $I STORM_EXPECTED) files, $STORM_DIRS new dirs)"
row "$STORM" "distinct files reported" "$(v $I STORM_SW_FILES) / $(v $I STORM_EXPECTED)" \
    "$(v $F STORM_SW_FILES) / $(v $F STORM_EXPECTED)" "$(v $I STORM_IW_FILES) / $(v $I STORM_EXPECTED)" \
    "$STORM_TOTAL" "$(meets2 STORM_SW_FILES == "$STORM_TOTAL")"
row "$STORM" "new dirs with every file named" "-" "-" "$(v $I STORM_IW_FULL_DIRS) / $STORM_DIRS" "-" "-"
srow "$STORM" "storm start -> last alert / line (s)" STORM_SW_LAST_S "$(v $I STORM_IW_LAST_S)" "-" "-"
srow "$STORM" "storm start -> last alert readable (s)" STORM_DISK_LAST_S "-" "-" "-"
srow "$STORM" "daemon CPU time from the storm's start until all alerted (s)" STORM_SW_CPU_S "-" "-" "-"
srow "$STORM" "peak RSS after the storm (MB)" RT_SW_HWM "$(v $I RT_IW_HWM)" "-" "-"
row "records of sections 2 to 4" "alert records naming their writer (actor.pid)" "$(v $I ALERT_ACTOR) / $(v $I ALERT_LINES)" \
    "$(v $F ALERT_ACTOR) / $(v $F ALERT_LINES)" "-" "all (fanotify)" \
    "- / $(meets "$(v $F ALERT_ACTOR)" == "$(v $F ALERT_LINES)")"
row "records of sections 2 to 4" "kernel_events per second over sections 2 to 4" "$(per_s "$(v $I PASS_EVENTS)")" \
    "$(per_s "$(v $F PASS_EVENTS)")" "-" "-" "-"
IDL="idle ($SITES sites, $(v $I IDLE_ELAPSED) s)"
srow "$IDL" "time to ready / watches established (s)" IDLE_READY_S "$IDLE_IW_READY_S" "-" "-"
row "$IDL" "directories (ready line) / inotify watches / fanotify marks" \
    "$(v $I IDLE_READY_DIRS) / $(v $I sw_INOTIFY_WATCHES) / $(v $I sw_FANOTIFY_MARKS)" \
    "$(v $F IDLE_READY_DIRS) / $(v $F sw_INOTIFY_WATCHES) / $(v $F sw_FANOTIFY_MARKS)" \
    "- / $(v $I iw_INOTIFY_WATCHES) / $(v $I iw_FANOTIFY_MARKS)" "-" "-"
srow "$IDL" "CPU over the idle window (% of one core)" sw_CPU_PCT "$(v $I iw_CPU_PCT)" "~0 (< 1)" "$(meets2 sw_CPU_PCT "<" 1)"
srow "$IDL" "CPU time over the idle window (s)" sw_CPU_S "$(v $I iw_CPU_S)" "-" "-"
row "$IDL" "kernel_events per second around the window" "$(per_s "$(v $I IDLE_EVENTS)")" \
    "$(per_s "$(v $F IDLE_EVENTS)")" "-" "-" "-"
srow "$IDL" "VmRSS at the end (MB)" sw_RSS_MB "$(v $I iw_RSS_MB)" "< 100" "$(meets2 sw_RSS_MB "<" 100)"
srow "$IDL" "highest VmRSS sampled in the window (MB)" sw_RSSMAX_MB "$(v $I iw_RSSMAX_MB)" "< 100" "$(meets2 sw_RSSMAX_MB "<" 100)"
srow "$IDL" "VmHWM, since start (MB)" sw_HWM_MB "$(v $I iw_HWM_MB)" "-" "-"
srow "$IDL" "threads" sw_THREADS "$(v $I iw_THREADS)" "-" "-"
srow "$IDL" "wake-ups per second (voluntary context switches)" sw_WAKEUPS_PER_S "$(v $I iw_WAKEUPS_PER_S)" "-" "-"
BUSY="busy neighbour ($BUSY_RATE write()/s, $BUSY_SECONDS s)"
row "$BUSY" "write() calls per second achieved (slowest second)" "$(v $I BUSY_RATE_DONE) ($(v $I BUSY_RATE_MIN))" \
    "$(v $F BUSY_RATE_DONE) ($(v $F BUSY_RATE_MIN))" "-" "$BUSY_RATE" "-"
srow "$BUSY" "CPU from the first write until 1 s after the last (% of one core)" sw_BUSY_CPU_PCT \
    "$(v $I iw_BUSY_CPU_PCT)" "< 5" "$(meets2 sw_BUSY_CPU_PCT "<" 5)"
srow "$BUSY" "CPU time over that window (s)" sw_BUSY_CPU_S "$(v $I iw_BUSY_CPU_S)" "-" "-"
row "$BUSY" "kernel_events increase across the window (status refreshes)" "$(num "$(v $I BUSY_EVENTS)")" \
    "$(num "$(v $F BUSY_EVENTS)")" "-" "-" "-"
srow "$BUSY" "wake-ups per second" sw_BUSY_WAKEUPS_PER_S "$(v $I iw_BUSY_WAKEUPS_PER_S)" "-" "-"
srow "$BUSY" "VmRSS at the end (MB)" sw_BUSY_RSS_MB "$(v $I iw_BUSY_RSS_MB)" "-" "-"
srow "$BUSY" "alert records on the writer's paths" BUSY_ALERTS_UNDER "-" "0" "$(meets2 BUSY_ALERTS_UNDER == 0)"
srow "$BUSY" "alert records in all while it wrote" BUSY_ALERTS_DURING "-" "0" "$(meets2 BUSY_ALERTS_DURING == 0)"

SMOKE=
if [ "$QUICK" = yes ] || [ "$SITES" -lt 40 ] || [ "$LATENCY_FILES" -lt 200 ] || [ "$IDLE_SECONDS" -lt 60 ] \
    || [ "$READ_TOTAL" -lt 10000 ] || [ "$CHUNKED_FILES" -lt 50 ] || [ "$BUSY_SECONDS" -lt 10 ]; then
    SMOKE="smoke run ($SITES sites, $(v $I READS_N) reads, $LATENCY_FILES latency files, $(v $I CH_N) chunked files, $(v $I STORM_EXPECTED) storm files, ${IDLE_SECONDS} s idle, ${BUSY_SECONDS} s busy neighbour): not figures to publish"
fi
LAT_N=$(v $I LAT_N)
PCT_NOTE="nearest-rank percentiles over the $LAT_N files (p99 is sample $(awk -v n="$LAT_N" 'BEGIN { k = int(0.99 * n); if (k < 0.99 * n) k++; printf "%d", k }') of $LAT_N in rising order)"
CH_PCT_NOTE="nearest-rank percentiles over the files alerted ($(v $I CH_SW_SEEN) / $(v $F CH_SW_SEEN))"
NOTES=(
    "The machine is shared ($(nproc) cores, other builds and tests running): latencies and CPU are noisy. Load average (1 min) before / after: $LOAD_BEFORE / $LOAD_AFTER. Everything (sites, corpus, state, the busy neighbour) is on one filesystem: $FS_DESC."
    "Sources: every section ran twice, first with \`realtime: { source: inotify }\` (one inotify watch per directory), then with \`source: fanotify\` (one fanotify group with a filesystem mark: every change on the whole filesystem is read and filtered to the site roots in user space), each on a fresh copy of the site, a fresh state and baseline; \`status --json\` said: $(v $I RT_SOURCE) / $(v $F RT_SOURCE) (one site), $(v $I IDLE_SOURCE) / $(v $F IDLE_SOURCE) (idle and busy). \"Met\" reads inotify / fanotify. inotifywait ran beside the daemon in both passes; its column is from the inotify pass."
    "Reads: $(v $I READS_FILES) existing .php files of the site (spread over its sorted list; in $RT_TOP/inotify/reads-files.txt) read $READ_ROUNDS times each by one Python loop (open O_RDONLY, read() to the end, close: $(v $I READS_N) reads, $(v $I READS_BYTES) bytes, in $(v $I READS_S) / $(v $F READS_S) s) while the daemon ran; its CPU is taken from the first read until the window closed ($(v $I READS_WINDOW_S) / $(v $F READS_WINDOW_S) s). sitewarden (inotify): increase of \`kernel_events\` in \`sitewarden status --json\` (inotify events its reader took from the kernel), each figure read once it had held for 11 s (the status file is refreshed every 10 s); the daemon's mask has no open/access/close_nowrite. Under fanotify \`kernel_events\` counts every change on the filesystem (the daemon's own status file and database included), so it never holds still and is not taken; its mask has no FAN_OPEN/FAN_ACCESS/FAN_CLOSE_NOWRITE either: the reads show as CPU and alert records only, and its pass has no second inotifywait (the lines its reader writes to a file on the same filesystem would be changes fanotify reads), its window ending 1 s after the last read; the changes of the whole filesystem it read between the status refreshes around the reads (what its CPU over them went to, the reads adding none): $(v $F READS_FS_EVENTS). inotifywait (inotify pass): a second \`inotifywait -m -r --format '%w%f<TAB>%e'\` with no -e (its default set, as a mask with IN_OPEN would be) on the same site, started for the reads and stopped after; its lines from the first read until its output had been still for 1 s ($(v $I READS_WINDOW_S) s) are counted, by event: $(v $I READS_IW_EVENTS); $(v $I READS_IW_BEFORE) line(s) before the reads come from its own start and from the walk that listed the files (folders opened and read), which the reads wait out (1 s without a line). CPU: utime+stime delta from /proc/PID/stat over the same window (10 ms ticks)."
    "Latency: from just before open(O_CREAT) in the creating script (time.time_ns) to the alert's \`time\` field (ms, taken before the record is written and fsynced); $PCT_NOTE. a file its writer closed is checked at once (the close-write fast path); only a path still open for writing, or rewritten within the last quiet period ($QP_TEXT), waits for it. Target: p99 < 20 ms for a file written in one go."
    "\"Until readable in alerts.jsonl\": when a 5 ms poller first read the line from the log (after write + fsync). \"From the file's mtime\": alert \`time\` minus \`after.mtime\` of the record, a cross-check only (the kernel stamps mtimes from a coarse clock)."
    "Actor: alert records whose \`actor.pid\` is set, over every record of the latency, chunked and storm sections (the fanotify source names the writing process; inotify cannot). Writers named on fanotify (comm): $(v $F ALERT_ACTOR_COMMS); a null comm is a writer that had exited before the daemon read /proc (the storm's Python loop ends within a second; the pid is kept, the rest never guessed)."
    "inotifywait: \`inotifywait -m -r --format '%w%f' -e $IW_EVENTS\` on the same site, line-buffered (stdbuf -oL), each line stamped with time.time_ns() by the reader on arrival; its latency is the first event for the path (the create). It only names paths, it checks nothing."
    "Storm: created by one Python loop in $(v $I STORM_CREATE_S) / $(v $F STORM_CREATE_S) s (mkdir, then $STORM_FILES files written into the folder at once). inotifywait -r only adds a watch to a new folder after it has read the folder's create event, so files written before that are never named; sitewarden on inotify watches the new folder and then walks it; on fanotify the filesystem mark covers the new folder from its creation. Daemon CPU over the storm: utime+stime from just before the storm until the last file was alerted. sitewarden storm alerts by event/detector: $(v $I STORM_SW_EVENTS) ($(v $I STORM_SW_RECORDS) records, $(v $I STORM_SW_OTHER_RECORDS) not on .php files) / $(v $F STORM_SW_EVENTS) ($(v $F STORM_SW_RECORDS) records, $(v $F STORM_SW_OTHER_RECORDS) not on .php files)."
    "Latency alerts by event/detector: $(v $I LAT_SW_EVENTS) / $(v $F LAT_SW_EVENTS)."
    "kernel_events over sections 2 to 4, between the status refreshes just before the latency files and after the storm's last wait: $(v $I PASS_EVENTS) / $(v $F PASS_EVENTS). On inotify these are the site's events; on fanotify every change of the (shared) filesystem, the benchmark's own logs and other sessions' work included: a high rate there is load the fanotify daemon carried while its latencies were measured."
    "Chunked: $(v $I CH_N) new .php files, one every $PAUSE_MS ms, each opened once, written in $CHUNKS write() calls of 4 KiB $CHUNK_PAUSE_MS ms apart (p50 open -> close $(v $I CH_WRITE_P50_MS) / $(v $F CH_WRITE_P50_MS) ms) and closed. Latency: from just before close() to the \`time\` of the file's first alert record (truncated to the millisecond, so up to 1 ms low; a value between -1 and 0 is a record stamped in the millisecond of the close), beside the arrival of inotifywait's line for the same close (its first line for the path after close() began: with -e $IW_EVENTS a new file gives a create line at the open and a close_write line at the close); $CH_PCT_NOTE. A file still open for writing waits; its close is judged at once. Records by event/detector: $(v $I CH_SW_EVENTS) / $(v $F CH_SW_EVENTS); most records on one file: $(v $I CH_SW_MOST) / $(v $F CH_SW_MOST)."
    "Idle: for each source its own state and baseline (built first in $(v $I IDLE_BASELINE_S) / $(v $F IDLE_BASELINE_S) s), so \`ready\` includes setting up the source (inotify: a watch per directory; fanotify: one filesystem mark, the directories still walked and counted) and a catch-up scan; one inotifywait -m -r watched the same $SITES roots (every folder, including uploads and caches) through both passes. CPU = utime+stime delta of the whole process from /proc/PID/stat; RSS from /proc/PID/status; inotify watches and fanotify marks counted in /proc/PID/fdinfo. \`kernel_events\` is read at the status refreshes (every 10 s) just before and after the window: $(v $I IDLE_EVENTS) / $(v $F IDLE_EVENTS); under fanotify these are the changes of the whole (shared) filesystem, the daemon's own writes included. Shutdown on SIGTERM took $(v $I IDLE_STOP_S) / $(v $F IDLE_STOP_S) s (exit $(v $I IDLE_DAEMON_RC) / $(v $F IDLE_DAEMON_RC))."
    "Busy neighbour: right after the idle window, with the same daemon, one Python loop wrote into $BUSY_DIR (under \$BENCH_DIR, no site root, same filesystem) at $BUSY_RATE write() calls per second for $BUSY_SECONDS s, paced against the clock every ~0.5 ms: 9 in 10 append a ~50-byte line to one of 4 log files kept open (O_APPEND), the 10th rewrites one of 4 small (90-byte) files whole, in place (open O_TRUNC, write, close) or every other time through a temporary file renamed over it. Achieved: $(v $I BUSY_WRITES) / $(v $F BUSY_WRITES) write() calls in $(v $I BUSY_WRITE_S) / $(v $F BUSY_WRITE_S) s ($(v $I BUSY_RATE_DONE) / $(v $F BUSY_RATE_DONE) per second; slowest whole second $(v $I BUSY_RATE_MIN) / $(v $F BUSY_RATE_MIN); the writer itself used $(v $I BUSY_WRITER_CPU_PCT) / $(v $F BUSY_WRITER_CPU_PCT) % of a core). CPU: utime+stime delta of the daemon from just before the first write until 1 s after the last ($(v $I BUSY_WINDOW_S) / $(v $F BUSY_WINDOW_S) s), so a backlog worked off after the writer stopped counts too. \`kernel_events\` between the status refreshes just before and after: $(v $I BUSY_EVENTS) / $(v $F BUSY_EVENTS) (the kernel merges queued events of one file and writer, so fanotify reads fewer events than there were write() calls). Alert records: those on a path under $BUSY_DIR, and every record written from the first write until the count (after the next status refresh)."
    "The latency/storm daemon held $(v $I RT_SW_WATCHES) / $(v $F RT_SW_WATCHES) inotify watches and $(v $I RT_SW_MARKS) / $(v $F RT_SW_MARKS) fanotify marks at the end (inotifywait: $(v $I RT_IW_WATCHES) watches); shutdown took $(v $I RT_DAEMON_STOP_S) / $(v $F RT_DAEMON_STOP_S) s (exit $(v $I RT_DAEMON_RC) / $(v $F RT_DAEMON_RC))."
)

say "results"
[ -z "$SMOKE" ] || echo "!! $SMOKE"
FMT='%-38s %-64s %18s %18s %17s %14s %11s\n'
printf "$FMT" "section" "measurement" "sw inotify" "sw fanotify" "inotifywait" "target" "met (i / f)"
printf "$FMT" "-------" "-----------" "----------" "-----------" "-----------" "------" "-----------"
for r in "${ROWS[@]}"; do
    IFS='|' read -r sec m a b c t ok <<<"$r"
    printf "$FMT" "$sec" "$m" "$a" "$b" "$c" "$t" "$ok"
done
echo
print_notes

COMMIT=$(checkout_commit)
# A binary given from outside may not be the checkout's HEAD: say which.
if [ -n "${SITEWARDEN_BIN:-}" ]; then
    COMMIT="$COMMIT of the checkout; binary $SW, built $(date -u -r "$SW" '+%Y-%m-%d %H:%M UTC')"
fi
{
    md_head "sitewarden realtime benchmark" "$SMOKE" "; shared and noisy"
    echo "- sitewarden: $SW_VERSION, commit $COMMIT; quiet period $QP_TEXT; profile wordpress; realtime source inotify, then fanotify"
    echo "- Kernel: $(uname -r); filesystem: $FS_DESC"
    echo "- inotifywait: $IW_VERSION"
    echo "- Reads: $(v $I READS_N) reads (open, read whole, close) of $(v $I READS_FILES) unchanged .php files of one WordPress site ($READ_ROUNDS each)"
    echo "- Latency: $LATENCY_FILES new .php files, $PAUSE_MS ms apart, in an existing folder of one WordPress site (wp-content/plugins/)"
    echo "- Chunked: $(v $I CH_N) new .php files, $PAUSE_MS ms apart, each written in $CHUNKS chunks of 4 KiB ($CHUNK_PAUSE_MS ms between two) and closed once, in another existing folder of the same site"
    echo "- Storm: $(v $I STORM_EXPECTED) .php files in $STORM_DIRS new folders ($STORM_FILES each) under wp-content/plugins/ of the same site"
    echo "- Idle: $CORPUS_DESC (the corpus of bench/baseline.sh), $IDLE_SECONDS s"
    echo "- Busy neighbour: $BUSY_RATE small write() calls per second for $BUSY_SECONDS s outside the site roots, on the same filesystem, while the daemon watches the $SITES sites"
    echo
    echo "| Section | Measurement | sitewarden (inotify) | sitewarden (fanotify) | inotifywait -m -r | Target | Met (inotify / fanotify) |"
    echo "|---|---|---:|---:|---:|---:|:---:|"
    for r in "${ROWS[@]}"; do
        IFS='|' read -r sec m a b c t ok <<<"$r"
        echo "| $sec | $m | $a | $b | $c | $t | $ok |"
    done
    echo
    md_notes
} >"$RESULTS_MD"
echo
echo "Markdown written to $RESULTS_MD (raw data in $RT_TOP/SOURCE, $IDLE_TOP/SOURCE)"
