#!/usr/bin/env bash
# The judge's cost per alert: the running daemon (fanotify as root) over a
# copy of Debian's WordPress, a storm of STORM new .php files in
# wp-content/uploads/ (each one a critical alert, php-in-uploads), written
# as fast as one shell loop can. Three configurations, the first the
# reference of the same run:
#
#   log           the alert log only
#   routes        the alert log and two webhook routes (each an outbox; the
#                 receiver is a closed loopback port, so nothing leaves and
#                 every batch stays queued)
#   quarantine    as routes, each file a one-line web shell, so every alert
#                 also quarantines: evidence copied, the file removed
#
# For each: alerts recorded, seconds from the storm's first write to the
# last record, alerts per second, and the fsync + fdatasync calls of the
# daemon over that window per alert (perf stat on the syscall tracepoints,
# every thread of the daemon). The median of RUNS runs.
#
#   bench/judge.sh
#
# Environment:
#   STORM=10000      files per storm
#   RUNS=3           storms per configuration (median)
#   BENCH_DIR=/var/tmp/sitewarden-bench
#   SITEWARDEN_BIN=  use this binary instead of building target/release
#
# The Markdown table is written to bench/results-judge.md.

set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/corpus.sh"

STORM=${STORM:-10000}
RUNS=${RUNS:-3}
BENCH_DIR=${BENCH_DIR:-/var/tmp/sitewarden-bench}
[ "$(id -u)" -eq 0 ] || die "run as root (fanotify, perf on the daemon)"
command -v perf >/dev/null || install_missing linux-perf
[ -d /usr/share/wordpress ] || install_missing wordpress

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ -n "${SITEWARDEN_BIN:-}" ]; then
    SW=$SITEWARDEN_BIN
else
    (cd "$REPO" && cargo build --release --quiet)
    SW=$REPO/target/release/sitewarden
fi
WORK=$BENCH_DIR/judge
RESULTS_MD=$REPO/bench/results-judge.md

# run CONFIG_NAME: one storm; prints "alerts seconds syncs"
run() {
    local name=$1 site=$WORK/site state=$WORK/state log=$WORK/alerts.jsonl cfg=$WORK/$1.yaml
    rm -rf "$site" "$state" "$log"
    cp -a /usr/share/wordpress "$site"
    mkdir -p "$site/wp-content/uploads/storm"
    {
        echo "state_dir: $state"
        echo "vendors: { enabled: false }"
        echo "alerts:"
        echo "  log: $log"
        if [ "$name" != log ]; then
            echo "  webhooks:"
            echo "    - { url: \"http://127.0.0.1:9/a\" }"
            echo "    - { url: \"http://127.0.0.1:9/b\", kind: slack }"
        fi
        echo "sites:"
        echo "  - { name: blog, root: $site, profile: wordpress }"
    } >"$cfg"
    "$SW" -c "$cfg" baseline >/dev/null 2>&1
    "$SW" -c "$cfg" run >"$WORK/daemon.log" 2>&1 &
    local pid=$!
    wait_line "$WORK/daemon.log" 'ready \(' 120 "$pid" || die "$name: the daemon did not get ready"
    local body='<?php echo "hello";'
    [ "$name" != quarantine ] || body='<?php @eval($_POST["x"]); system($_GET["c"]);'
    perf stat -x, -e syscalls:sys_enter_fsync,syscalls:sys_enter_fdatasync -p "$pid" -o "$WORK/perf.txt" &
    local perf=$!
    sleep 0.5
    local t0 i last n=0 stalled=0
    t0=$(now)
    for ((i = 0; i < STORM; i++)); do
        printf '%s\n' "$body" >"$site/wp-content/uploads/storm/f$i.php"
    done
    # Until every file has its record, or nothing new for 30 s.
    while :; do
        last=$n
        n=$(grep -c '/wp-content/uploads/storm/f' "$log" 2>/dev/null || true)
        [ "$n" -lt "$STORM" ] || break
        if [ "$n" = "$last" ]; then
            stalled=$((stalled + 1))
            [ "$stalled" -lt 300 ] || break
        else
            stalled=0
        fi
        sleep 0.1
    done
    local secs
    secs=$(since "$t0")
    kill -INT "$perf" 2>/dev/null || true
    wait "$perf" 2>/dev/null || true
    stop "$pid" 30
    local syncs
    syncs=$(awk -F, '/sys_enter_f(data)?sync/ { s += $1 } END { print s + 0 }' "$WORK/perf.txt")
    echo "$n $secs $syncs"
}

median() { sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

mkdir -p "$WORK"
declare -A ALERTS SECS RATE PER
for name in log routes quarantine; do
    say "$name: $RUNS storms of $STORM files"
    : >"$WORK/$name.runs"
    for ((r = 1; r <= RUNS; r++)); do
        read -r n s y < <(run "$name")
        note "run $r: $n alerts in $s s, $y fsync/fdatasync"
        echo "$n $s $y" >>"$WORK/$name.runs"
    done
    ALERTS[$name]=$(awk '{ print $1 }' "$WORK/$name.runs" | median)
    SECS[$name]=$(awk '{ print $2 }' "$WORK/$name.runs" | median)
    RATE[$name]=$(awk '{ print $1 / $2 }' "$WORK/$name.runs" | median)
    PER[$name]=$(awk '{ print ($1 ? $3 / $1 : 0) }' "$WORK/$name.runs" | median)
done

COMMIT=$(checkout_commit)
{
    md_head "sitewarden judge benchmark" ""
    echo "- sitewarden: commit $COMMIT; realtime source: $(grep -o 'fanotify\|inotify' "$WORK/daemon.log" | head -1 || echo auto)"
    echo "- A storm of $STORM new .php files in wp-content/uploads/ of one copy of Debian's WordPress (one shell loop); median of $RUNS storms."
    echo "- fsync + fdatasync: perf stat on the daemon's syscall tracepoints from the storm's start to its last record."
    echo
    echo "| Configuration | Alerts | Storm to last record (s) | Alerts/s | fsync+fdatasync per alert |"
    echo "|---|---:|---:|---:|---:|"
    for name in log routes quarantine; do
        printf '| %s | %s | %.2f | %.0f | %.3f |\n' "$name" "${ALERTS[$name]}" "${SECS[$name]}" "${RATE[$name]}" "${PER[$name]}"
    done
} | tee "$RESULTS_MD"
