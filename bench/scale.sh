#!/usr/bin/env bash
# Scale benchmark: does sitewarden's cost per file stay flat from 10 to 400
# WordPress sites (about 1,000,000 files on disk)? For each number of sites:
# `baseline`, an unchanged `check`, and the daemon (`run`) until it is ready,
# with its RSS once ready.
#
#   bench/scale.sh [--steps "10 40 100 400"] [--runs N] [--quick]
#
# Environment:
#   SCALE_STEPS="10 40 100 400"   numbers of sites to measure
#   RUNS=3               runs of each measurement per step (the median is
#                        reported; the daemon's RSS is the highest of its runs)
#   SCALE_DIR=/var/tmp/sitewarden-scale   template site, hard-linked sites, work files
#   CMD_TIMEOUT=1800     seconds a baseline or check may take before it is killed
#   READY_TIMEOUT=600    seconds to wait for the daemon's ready line
#   STOP_TIMEOUT=60      seconds the daemon gets after SIGTERM before SIGKILL
#   SETTLE_SECONDS=2     wait after ready before the daemon's RSS is read
#   SITEWARDEN_BIN=      use this binary instead of building target/release
#   RESULTS_MD=          where the Markdown table goes (default
#                        bench/results-scale.md)
#
# --quick is a smoke run: SCALE_STEPS="2 4" RUNS=1. Its figures are not ones
# to publish.
#
# The sites are cheap: ONE site is built with the corpus builder of
# bench/baseline.sh (Debian's WordPress core, uploads and a page cache, about
# 2,900 files), and every measured site is a hard-linked copy of it (cp -al),
# so a site costs only its ~600 folders on disk. The template and the copies
# are kept in $SCALE_DIR and reused by the next run (marker: sites.marker).
# As the data of every site is the same inodes, the page cache is always warm
# for it: the figures are CPU and syscall work, not the disk.
#
# The script raises fs.inotify.max_user_watches to 2,000,000 and
# fs.inotify.max_user_instances to 1024 when lower (sysctl -w, not undone),
# and the open-files limit of itself and its children to 65536.
# Targets, at the largest step (they are meant for 400 sites): daemon RSS
# < 300 MB, ready < 60 s, unchanged check < 15 s.

set -euo pipefail

# usage, say, note, die, now, since; install_missing; the process helpers
# (PIDS, alive, stop, wait_line, proc_kb, mb); the report helpers; the corpus:
# CORPUS_VERSION, build_corpus, build_sitewarden
source "$(dirname "${BASH_SOURCE[0]}")/corpus.sh"

# ---------------------------------------------------------------- arguments

SCALE_STEPS=${SCALE_STEPS:-10 40 100 400}
RUNS=${RUNS:-3}
SCALE_DIR=${SCALE_DIR:-/var/tmp/sitewarden-scale}
CMD_TIMEOUT=${CMD_TIMEOUT:-1800}
READY_TIMEOUT=${READY_TIMEOUT:-600}
STOP_TIMEOUT=${STOP_TIMEOUT:-60}
SETTLE_SECONDS=${SETTLE_SECONDS:-2}
QUICK=no

while [ $# -gt 0 ]; do
    case $1 in
        --steps) SCALE_STEPS=${2:?--steps needs a list of numbers}; shift 2 ;;
        --steps=*) SCALE_STEPS=${1#*=}; shift ;;
        --runs) RUNS=${2:?--runs needs a number}; shift 2 ;;
        --runs=*) RUNS=${1#*=}; shift ;;
        --quick) QUICK=yes SCALE_STEPS="2 4" RUNS=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done
for v in RUNS CMD_TIMEOUT READY_TIMEOUT STOP_TIMEOUT; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "$v must be a positive integer (got '${!v}')" >&2; exit 2; }
done
[[ $SETTLE_SECONDS =~ ^[0-9]+$ ]] || { echo "SETTLE_SECONDS must be a whole number (got '$SETTLE_SECONDS')" >&2; exit 2; }
read -r -a STEPS <<<"$SCALE_STEPS"
[ ${#STEPS[@]} -gt 0 ] || { echo "SCALE_STEPS is empty" >&2; exit 2; }
for n in "${STEPS[@]}"; do
    [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "SCALE_STEPS must hold positive integers (got '$n')" >&2; exit 2; }
done
# Rising, each once.
mapfile -t STEPS < <(printf '%s\n' "${STEPS[@]}" | sort -n -u)
FIRST_STEP=${STEPS[0]}
LAST_STEP=${STEPS[${#STEPS[@]} - 1]}
MAX_SITES=$LAST_STEP

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RESULTS_MD=${RESULTS_MD:-$REPO/bench/results-scale.md}
# -P: the daemon names files under the canonical root.
SCALE_DIR=$(mkdir -p "$SCALE_DIR" && cd "$SCALE_DIR" && pwd -P)
# For build_corpus: the template is site s01 of a corpus of one.
BENCH_DIR=$SCALE_DIR
CORPUS=$SCALE_DIR/template
SITES=1
TEMPLATE=$CORPUS/$(site_name 1)
SITES_DIR=$SCALE_DIR/sites
SITES_MARKER=$SCALE_DIR/sites.marker
WORK=$SCALE_DIR/work

WATCHES_WANTED=2000000
INSTANCES_WANTED=1024
NOFILE_WANTED=65536

scale_site() { printf 'w%03d' "$1"; }             # w001 ... w400

# ------------------------------------------------------------ requirements

missing=()
command -v openssl >/dev/null || missing+=(openssl)
command -v timeout >/dev/null || missing+=(coreutils)
command -v sysctl >/dev/null || missing+=(procps)
[ -x /usr/bin/time ] || missing+=(time)
[ -f /usr/share/wordpress/wp-settings.php ] || missing+=(wordpress)
[ -f /usr/share/wordpress/wp-content/languages/fa_IR.mo ] || missing+=(wordpress-l10n)
install_missing "${missing[@]}"

# ------------------------------------------------------------------- build

build_sitewarden

# -------------------------------------------------------------- processes
#
# The daemon is the only process left running between two commands: it is in
# PIDS (bench/corpus.sh) and stopped by the EXIT trap. Every other command runs
# in the foreground under `timeout`.

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do stop "$pid" 10 || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# timed LOG COMMAND...: runs COMMAND with stdout and stderr to LOG, killed
# after CMD_TIMEOUT s. Sets T_S (wall seconds), T_RC (124: timed out) and
# T_MB (peak RSS, from /usr/bin/time).
timed() {
    local log=$1 t0
    shift
    t0=$(now)
    set +e
    # --foreground: the command stays in our process group, so a ^C reaches it.
    /usr/bin/time -f '%M' -o "$log.maxrss" \
        timeout --foreground --kill-after=10 "$CMD_TIMEOUT" "$@" >"$log" 2>&1
    T_RC=$?
    set -e
    T_S=$(since "$t0")
    T_MB=$(awk 'END { if ($1 ~ /^[0-9]+$/) printf "%.1f", $1 / 1024; else print "n/a" }' "$log.maxrss" 2>/dev/null || echo n/a)
}

# timed_runs COMMAND LABEL [--fresh]: RUNS timed runs of `sitewarden COMMAND`
# (baseline, check) at this step, logged to $W/COMMAND-R.log, each expected to
# exit 0; LABEL names a run in the report. --fresh: remove the state_dir and
# the alert log before each run (not timed). Sets RUN_S and RUN_MB (seconds
# and peak MB of the runs that exited 0), RUN_LOG (the log of the last of
# them, empty when none did) and RUN_TIMEOUTS (runs killed after CMD_TIMEOUT).
timed_runs() {
    local cmd=$1 label=$2 fresh=${3:-} r log
    RUN_S=() RUN_MB=() RUN_LOG= RUN_TIMEOUTS=0
    for ((r = 1; r <= RUNS; r++)); do
        log=$W/$cmd-$r.log
        [ "$fresh" != --fresh ] || rm -rf "$STATE" "$ALERTS"
        timed "$log" "$SW" -c "$CFG" "$cmd"
        if [ "$T_RC" -ne 0 ]; then
            [ "$T_RC" -ne 124 ] || RUN_TIMEOUTS=$((RUN_TIMEOUTS + 1))
            note "!! $cmd run $r: exit code $T_RC, expected 0$([ "$T_RC" -eq 124 ] && echo " (killed after $CMD_TIMEOUT s)"). Last lines:"
            tail -n 10 "$log" | sed 's/^/   | /'
            ODD+=("$n sites: $label run $r exited with $T_RC (see $log)")
            continue
        fi
        RUN_S+=("$T_S") RUN_MB+=("$T_MB") RUN_LOG=$log
        note "$cmd run $r: $T_S s, peak $T_MB MB"
    done
}

# inotify watches the kernel holds for PID, from /proc/PID/fdinfo
kernel_watches() { cat "/proc/$1/fdinfo/"* 2>/dev/null | grep -c '^inotify wd:' || true; }

# median VALUE...: of the numbers given ("n/a" when none)
median() {
    printf '%s\n' "$@" | awk '/^[0-9.]+$/' | sort -g | awk '
        { a[NR] = $1 }
        END {
            if (NR == 0) print "n/a"
            else if (NR % 2) printf "%.3f\n", a[(NR + 1) / 2]
            else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2
        }'
}
# highest VALUE...: the largest number given ("n/a" when none)
highest() {
    printf '%s\n' "$@" | awk '/^[0-9.]+$/ { if (!n++ || $1 > m) m = $1 } END { if (n) printf "%.1f\n", m; else print "n/a" }'
}
# per_file SECONDS FILES: microseconds per file
per_file() { awk -v s="$1" -v n="$2" 'BEGIN { if (s !~ /^[0-9.]+$/ || n + 0 == 0) print "n/a"; else printf "%.1f", s * 1e6 / n }'; }
# kb_per_file MB FILES
kb_per_file() { awk -v m="$1" -v n="$2" 'BEGIN { if (m !~ /^[0-9.]+$/ || n + 0 == 0) print "n/a"; else printf "%.3f", m * 1024 / n }'; }
# ratio A B: A / B with 2 decimals, or "n/a"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a !~ /^[0-9.]+$/ || b !~ /^[0-9.]+$/ || b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'; }
# meets VALUE OP TARGET -> yes/NO/n/a; a VALUE of ">T" (every run timed
# out after T s) is NO when T is at least the target.
meets() { awk -v v="$1" -v t="$3" -v op="$2" 'BEGIN { if (v ~ /^>/) { print (substr(v, 2) + 0 >= t + 0) ? "NO" : "n/a"; exit } if (v !~ /^[0-9.]+$/) { print "n/a"; exit } r = (op == "<=") ? (v <= t) : (v < t); print r ? "yes" : "NO" }'; }

# ================================================================== the run

declare -a ODD=()     # anything unexpected, for the report

LOAD_BEFORE=$(cut -d' ' -f1 /proc/loadavg)
say "load average before: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cores)"
if awk -v l="$LOAD_BEFORE" 'BEGIN { exit !(l > 0.5) }'; then
    note "!! other work is running: the figures will be noisy"
fi

# ------------------------------------------------------------------ limits

say "limits"
raise_sysctl() { # KEY MINIMUM
    local key=$1 want=$2 cur
    cur=$(sysctl -n "$key")
    if [ "$cur" -ge "$want" ]; then
        note "$key = $cur (at least $want: unchanged)"
    elif $SUDO sysctl -q -w "$key=$want" >/dev/null; then
        note "raised $key from $cur to $want (sysctl -w; stays until reboot)"
    else
        note "!! could not raise $key from $cur to $want"
        ODD+=("$key is $cur: could not raise it to $want")
    fi
}
raise_sysctl fs.inotify.max_user_watches "$WATCHES_WANTED"
raise_sysctl fs.inotify.max_user_instances "$INSTANCES_WANTED"
NOFILE_BEFORE=$(ulimit -n)
NOFILE=$NOFILE_BEFORE
if [ "$NOFILE_BEFORE" != unlimited ] && [ "$NOFILE_BEFORE" -lt "$NOFILE_WANTED" ]; then
    # Soft and hard together (root may raise the hard limit); else up to the
    # hard limit.
    ulimit -n "$NOFILE_WANTED" 2>/dev/null || ulimit -S -n "$(ulimit -H -n)" 2>/dev/null || true
    NOFILE=$(ulimit -n)
    if [ "$NOFILE" = unlimited ] || [ "$NOFILE" -ge "$NOFILE_WANTED" ]; then
        note "ulimit -n raised from $NOFILE_BEFORE to $NOFILE (this script and its children)"
    else
        # The daemon's own count of descriptors is checked against it below.
        note "!! ulimit -n stays $NOFILE: the hard limit is $(ulimit -H -n) and raising it was refused (no CAP_SYS_RESOURCE?)"
    fi
else
    note "ulimit -n = $NOFILE_BEFORE (at least $NOFILE_WANTED: unchanged)"
fi

# ------------------------------------------------------------------- sites

say "template site: $TEMPLATE (the corpus of bench/baseline.sh, one site)"
build_corpus
# The corpus marker is rewritten exactly when the template is rebuilt: its
# inode and mtime identify this build of the template.
TEMPLATE_ID="scale v1 | $CORPUS_VERSION | template $(stat -c '%i %y' "$BENCH_DIR/corpus-markers/$(site_name 1)")"
T_FILES=$(find "$TEMPLATE" -type f | wc -l)
T_LINKS=$(find "$TEMPLATE" -type l | wc -l)
T_DIRS=$(find "$TEMPLATE" -type d | wc -l)
T_BYTES=$(find "$TEMPLATE" -type f -printf '%s\n' | awk '{ s += $1 } END { printf "%.0f", s }')
note "one site: $T_FILES files ($(awk -v b="$T_BYTES" 'BEGIN { printf "%.1f", b / 1e6 }') MB), $T_LINKS symlinks, $T_DIRS folders"

say "$MAX_SITES sites as hard-linked copies in $SITES_DIR"
if [ "$(cat "$SITES_MARKER" 2>/dev/null)" != "$TEMPLATE_ID" ]; then
    if [ -d "$SITES_DIR" ]; then
        note "the template changed (or no marker): removing the old copies"
        rm -rf "$SITES_DIR"
    fi
    rm -f "$SITES_MARKER"
fi
mkdir -p "$SITES_DIR"
echo "$TEMPLATE_ID" >"$SITES_MARKER"
# A copy is made under a temporary name and renamed: a site folder that
# exists is complete.
rm -rf "$SITES_DIR"/.tmp-*
made=0 t0=$(now)
for ((i = 1; i <= MAX_SITES; i++)); do
    d=$SITES_DIR/$(scale_site "$i")
    [ -d "$d" ] && continue
    cp -al "$TEMPLATE" "$SITES_DIR/.tmp-$(scale_site "$i")"
    mv "$SITES_DIR/.tmp-$(scale_site "$i")" "$d"
    made=$((made + 1))
done
if [ "$made" -gt 0 ]; then
    note "made $made copies in $(since "$t0") s"
else
    note "reusing the existing copies"
fi
note "on disk: $(du -sh "$SCALE_DIR" 2>/dev/null | cut -f1) for $SCALE_DIR (template + copies + work files)"
WATCHES_NEEDED=$((MAX_SITES * T_DIRS))
WATCHES_LIMIT=$(cat /proc/sys/fs/inotify/max_user_watches)
note "the daemon needs about $WATCHES_NEEDED inotify watches at $MAX_SITES sites (one per folder); max_user_watches is $WATCHES_LIMIT"
if [ "$WATCHES_NEEDED" -gt "$WATCHES_LIMIT" ]; then
    note "!! not enough: the daemon will fall back to scans for some sites"
    ODD+=("fs.inotify.max_user_watches ($WATCHES_LIMIT) is below the $WATCHES_NEEDED folders of $MAX_SITES sites")
fi

say "warming the caches (inodes of $MAX_SITES sites, data of the template)"
t0=$(now)
ROOTS=()
for ((i = 1; i <= MAX_SITES; i++)); do ROOTS+=("$SITES_DIR/$(scale_site "$i")"); done
find "${ROOTS[@]}" -printf '%i %s %m %T@\n' >/dev/null
find "$TEMPLATE" -type f -print0 | xargs -0 -n 500 cat >/dev/null
note "$(since "$t0") s"

# -------------------------------------------------------------- the steps

declare -A FILES=() DIRS=() BASE_PATHS=() BASE_HASHED=() CHECK_PATHS=() STORE_MB=()
declare -A BASE_S=() BASE_MB=() CHECK_S=() CHECK_MB=() READY_S=() WATCHES=() KWATCHES=()
declare -A RSS=() HWM=() STOP_MAX=() FDS_MAX=() THREADS=()

rm -rf "$WORK"
mkdir -p "$WORK"

for n in "${STEPS[@]}"; do
    W=$WORK/N$n
    CFG=$W/sitewarden.yaml
    STATE=$W/state
    ALERTS=$W/alerts.jsonl
    mkdir -p "$W"
    {
        echo "state_dir: $STATE"
        echo "alerts:"
        echo "  log: $ALERTS"
        echo "sites:"
        for ((i = 1; i <= n; i++)); do
            echo "  - name: $(scale_site "$i")"
            echo "    root: $SITES_DIR/$(scale_site "$i")"
            echo "    profile: wordpress"
        done
    } >"$CFG"
    "$SW" -c "$CFG" config-check >/dev/null || die "sitewarden rejects $CFG"
    FILES[$n]=$((n * T_FILES))
    DIRS[$n]=$((n * T_DIRS))
    say "$n sites: ${FILES[$n]} files, ${DIRS[$n]} folders on disk ($RUNS run(s) each)"

    # ---- baseline: from an empty state_dir each time (removing it is not timed)
    timed_runs baseline baseline --fresh
    [ ${#RUN_S[@]} -gt 0 ] || die "$n sites: no baseline succeeded: nothing to check against"
    BASE_S[$n]=$(median "${RUN_S[@]}")
    BASE_MB[$n]=$(highest "${RUN_MB[@]}")
    log=$RUN_LOG
    BASE_PATHS[$n]=$(sed -nE 's/.*: baseline of ([0-9]+) paths.*/\1/p' "$log" | awk '{ s += $1 } END { print s + 0 }')
    BASE_HASHED[$n]=$(sed -nE 's/.*paths \(([0-9]+) files hashed.*/\1/p' "$log" | awk '{ s += $1 } END { print s + 0 }')
    sites_done=$(grep -c ': baseline of ' "$log" || true)
    [ "$sites_done" -eq "$n" ] || ODD+=("$n sites: the baseline log names $sites_done sites")
    STORE_MB[$n]=$(du -sk "$STATE" | awk '{ printf "%.1f", $1 / 1024 }')
    note "in the baseline: ${BASE_PATHS[$n]} paths (${BASE_HASHED[$n]} files hashed); state_dir ${STORE_MB[$n]} MB"

    # ---- check, unchanged: exit 0 expected
    timed_runs check "unchanged check"
    CHECK_S[$n]=$(median "${RUN_S[@]}")
    # Every run killed: at least the timeout (a NO against the target).
    [ ${#RUN_S[@]} -gt 0 ] || [ "$RUN_TIMEOUTS" -eq 0 ] || CHECK_S[$n]=">$CMD_TIMEOUT"
    CHECK_MB[$n]=$(highest "${RUN_MB[@]}")
    if [ -n "$RUN_LOG" ]; then
        CHECK_PATHS[$n]=$({ grep -o '[0-9]* paths checked' "$RUN_LOG" || true; } | awk '{ s += $1 } END { print s + 0 }')
        [ "${CHECK_PATHS[$n]}" = "${BASE_PATHS[$n]}" ] \
            || ODD+=("$n sites: check saw ${CHECK_PATHS[$n]} paths, the baseline holds ${BASE_PATHS[$n]}")
    fi

    # ---- the daemon: time to ready, watches, RSS once ready
    declare -a d_s=() d_rss=() d_hwm=() d_stop=() d_fds=()
    d_watches= d_kwatches= threads= d_timeouts=0
    for ((r = 1; r <= RUNS; r++)); do
        dlog=$W/daemon-$r.log
        t0=$(now)
        "$SW" -c "$CFG" run >"$W/daemon-$r.out" 2>"$dlog" &
        DAEMON=$!
        PIDS+=("$DAEMON")
        if ! wait_line "$dlog" '^sitewarden: ready \(' "$READY_TIMEOUT" "$DAEMON"; then
            ODD+=("$n sites: daemon run $r not ready within $READY_TIMEOUT s (see $dlog)")
            alive "$DAEMON" && d_timeouts=$((d_timeouts + 1))
            stop "$DAEMON" "$STOP_TIMEOUT"
            continue
        fi
        ready_s=$(since "$t0")
        line=$(grep -m1 -E '^sitewarden: ready \(' "$dlog")
        sleep "$SETTLE_SECONDS"
        rss=$(mb "$(proc_kb "$DAEMON" VmRSS)")
        hwm=$(mb "$(proc_kb "$DAEMON" VmHWM)")
        d_kwatches=$(kernel_watches "$DAEMON")
        fds=$({ find "/proc/$DAEMON/fd" -mindepth 1 -maxdepth 1 2>/dev/null || true; } | wc -l)
        threads=$(proc_kb "$DAEMON" Threads)
        d_watches=$(sed -nE 's/.*, ([0-9]+) directories watched.*/\1/p' <<<"$line")
        ready_sites=$(sed -nE 's/.*ready \(([0-9]+) sites.*/\1/p' <<<"$line")
        alerts=$(wc -l <"$ALERTS" 2>/dev/null || echo 0)
        stop "$DAEMON" "$STOP_TIMEOUT"
        d_s+=("$ready_s") d_rss+=("$rss") d_hwm+=("$hwm") d_stop+=("$STOP_S") d_fds+=("$fds")
        note "daemon run $r: ready after $ready_s s ($line); VmRSS $rss MB, VmHWM $hwm MB, $fds open descriptors, ${threads:-?} threads; stopped in $STOP_S s (exit $STOP_RC)"
        if [ "$NOFILE" != unlimited ] && [ $((2 * fds)) -gt "$NOFILE" ]; then
            ODD+=("$n sites: the daemon had $fds descriptors open once ready, more than half of ulimit -n ($NOFILE)")
        fi
        [ "$ready_sites" = "$n" ] || ODD+=("$n sites: the ready line names $ready_sites sites: $line")
        [ "$d_kwatches" = "$d_watches" ] \
            || ODD+=("$n sites: the ready line says $d_watches directories watched, the kernel held $d_kwatches inotify watches")
        [ "$alerts" -eq 0 ] || ODD+=("$n sites: $alerts alert(s) on an unchanged corpus by daemon run $r (see $ALERTS)")
        [ "$STOP_RC" = 0 ] || ODD+=("$n sites: daemon run $r exited with $STOP_RC on SIGTERM (see $dlog)")
        warnings=$(warnings_in "$dlog")
        [ -z "$warnings" ] || ODD+=("$n sites: daemon run $r logged $warnings")
    done
    READY_S[$n]=$(median "${d_s[@]}")
    [ ${#d_s[@]} -gt 0 ] || [ "$d_timeouts" -eq 0 ] || READY_S[$n]=">$READY_TIMEOUT"
    RSS[$n]=$(highest "${d_rss[@]}")
    HWM[$n]=$(highest "${d_hwm[@]}")
    STOP_MAX[$n]=$(highest "${d_stop[@]}")
    FDS_MAX[$n]=$(printf '%s\n' "${d_fds[@]}" | sort -n | tail -n1)
    THREADS[$n]=${threads:-}
    WATCHES[$n]=${d_watches:-n/a}
    KWATCHES[$n]=${d_kwatches:-n/a}
    unset d_s d_rss d_hwm d_stop d_fds
done

# ================================================================= report

LOAD_AFTER=$(cut -d' ' -f1 /proc/loadavg)
SMOKE=
if [ "$QUICK" = yes ] || [ "$MAX_SITES" -lt 400 ] || [ "$RUNS" -lt 3 ]; then
    SMOKE="smoke run (steps: ${STEPS[*]}; $RUNS run(s)): not figures to publish"
fi

# One row per step: the figures, then the per-file costs.
COLS=(sites "files on disk" "in baseline" "baseline s" "us/file" "peak MB"
    "check s" "us/file" "peak MB" "ready s" "us/file" "watches" "VmRSS MB" "VmHWM MB" "KB/file" "state MB")
row_of() { # N: the columns, '|'-separated
    local n=$1 p=${BASE_PATHS[$1]}
    printf '%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s\n' \
        "$n" "${FILES[$n]}" "$p" \
        "${BASE_S[$n]}" "$(per_file "${BASE_S[$n]}" "$p")" "${BASE_MB[$n]}" \
        "${CHECK_S[$n]}" "$(per_file "${CHECK_S[$n]}" "$p")" "${CHECK_MB[$n]}" \
        "${READY_S[$n]}" "$(per_file "${READY_S[$n]}" "$p")" "${WATCHES[$n]}" \
        "${RSS[$n]}" "${HWM[$n]}" "$(kb_per_file "${RSS[$n]}" "$p")" "${STORE_MB[$n]}"
}

# Flatness: the per-file cost at the last step over the one at the first,
# and the marginal cost: what each file added between the two steps cost
# (fixed costs, such as the start of a process, cancel out).
declare -a FLAT_ROWS=()   # text|first|last|ratio|marginal
P1=${BASE_PATHS[$FIRST_STEP]} PL=${BASE_PATHS[$LAST_STEP]}
# marginal A B SCALE: (B - A) * SCALE / (PL - P1)
marginal() {
    awk -v a="$1" -v b="$2" -v k="$3" -v p="$P1" -v q="$PL" \
        'BEGIN { if (a !~ /^[0-9.]+$/ || b !~ /^[0-9.]+$/ || q == p) print "n/a"; else printf "%.3f", (b - a) * k / (q - p) }'
}
flat_time() { # TEXT ASSOC-NAME
    local -n v=$2
    local a=${v[$FIRST_STEP]} b=${v[$LAST_STEP]} fa fb
    fa=$(per_file "$a" "$P1") fb=$(per_file "$b" "$PL")
    FLAT_ROWS+=("$1, us per file|$fa|$fb|$(ratio "$fb" "$fa")|$(marginal "$a" "$b" 1e6)")
}
flat_time "baseline" BASE_S
flat_time "unchanged check" CHECK_S
flat_time "daemon start to ready" READY_S
fa=$(kb_per_file "${RSS[$FIRST_STEP]}" "$P1") fb=$(kb_per_file "${RSS[$LAST_STEP]}" "$PL")
FLAT_ROWS+=("daemon VmRSS, KB per file|$fa|$fb|$(ratio "$fb" "$fa")|$(marginal "${RSS[$FIRST_STEP]}" "${RSS[$LAST_STEP]}" 1024)")

# Targets, at the largest step.
declare -a TARGET_ROWS=()   # text|value|target|met
target() { # TEXT VALUE OP TARGET
    TARGET_ROWS+=("$1|$2|$3 $4|$(meets "$2" "$3" "$4")")
}
target "daemon VmRSS once ready (MB)" "${RSS[$LAST_STEP]}" "<" 300
target "daemon VmHWM once ready (MB)" "${HWM[$LAST_STEP]}" "<" 300
target "daemon start to ready (s)" "${READY_S[$LAST_STEP]}" "<" 60
target "unchanged check (s)" "${CHECK_S[$LAST_STEP]}" "<" 15
TARGET_AT="at $LAST_STEP sites"
[ "$LAST_STEP" -eq 400 ] || TARGET_AT="$TARGET_AT (the targets are meant for 400)"

STOPS_TEXT=$(for n in "${STEPS[@]}"; do printf '%s%s sites %s s' "${sep:-}" "$n" "${STOP_MAX[$n]}"; sep=', '; done)
FDS_TEXT=$(for n in "${STEPS[@]}"; do printf '%s%s sites %s / %s' "${sep:-}" "$n" "${FDS_MAX[$n]:-n/a}" "${THREADS[$n]:-n/a}"; sep=', '; done)
NOTES=(
    "Sites: one WordPress site ($T_FILES files, $T_DIRS folders: Debian's WordPress core, $UPLOADS_PER_SITE uploads, $CACHE_PER_SITE cached pages) and hard-linked copies of it (cp -al). \"in baseline\" is the paths the wordpress profile keeps (code; uploads and caches only for code), the per-file costs are per path in the baseline."
    "Every figure is wall time with a warm cache: all sites share the template's data, so it is read from the page cache. Medians of $RUNS run(s); peak MB from /usr/bin/time; each baseline starts from an empty state_dir. The daemon starts on that baseline, so \"ready\" includes setting the watches and the catch-up scan; its VmRSS and VmHWM are read ${SETTLE_SECONDS} s after ready (highest of the runs), then it is stopped with SIGTERM; the longest stop, by step: $STOPS_TEXT. Descriptors / threads of the daemon once ready (ulimit -n $NOFILE): $FDS_TEXT."
    "Flatness: \"ratio\" is the per-file cost at $LAST_STEP sites over the one at $FIRST_STEP (1.00 = flat; below 1 as fixed costs spread over more files); \"marginal\" is the cost of each file added between the two steps (us, or KB of RSS)."
    "Hard links: a file with a link count above 1 is hashed but its content is not kept for diffs (src/scan/file.rs), so the baseline here skips the content store; with separate copies the same texts would be stored once (content-addressed) and each further copy costs a buffer copy and a lookup."
    "Load average (1 min) before / after: $LOAD_BEFORE / $LOAD_AFTER on $(nproc) cores (shared machine)."
)

say "results: ${STEPS[*]} sites; median of $RUNS run(s), warm cache"
[ -z "$SMOKE" ] || echo "!! $SMOKE"
FMT='%6s %13s %11s %10s %8s %7s %8s %8s %7s %8s %8s %8s %8s %8s %7s %8s\n'
# shellcheck disable=SC2059
printf "$FMT" "${COLS[@]}"
# shellcheck disable=SC2059
printf "$FMT" "-----" "-------------" "-----------" "----------" "-------" "-------" "-------" "-------" "-------" "-------" "-------" "-------" "--------" "--------" "-------" "--------"
for n in "${STEPS[@]}"; do
    IFS='|' read -r -a f <<<"$(row_of "$n")"
    # shellcheck disable=SC2059
    printf "$FMT" "${f[@]}"
done
echo
printf '%-44s %12s %12s %8s %12s\n' "flatness: $FIRST_STEP -> $LAST_STEP sites" "at $FIRST_STEP" "at $LAST_STEP" "ratio" "marginal"
printf '%-44s %12s %12s %8s %12s\n' "---------" "-----" "-----" "-----" "--------"
for r in "${FLAT_ROWS[@]}"; do
    IFS='|' read -r text a b q m <<<"$r"
    printf '%-44s %12s %12s %8s %12s\n' "$text" "$a" "$b" "$q" "$m"
done
echo
printf '%-44s %12s %12s %5s\n' "target $TARGET_AT" "value" "target" "meets"
printf '%-44s %12s %12s %5s\n' "------" "-----" "------" "-----"
for r in "${TARGET_ROWS[@]}"; do
    IFS='|' read -r text v t ok <<<"$r"
    printf '%-44s %12s %12s %5s\n' "$text" "$v" "$t" "$ok"
done
echo
print_notes

COMMIT=$(checkout_commit)
{
    md_head "sitewarden scale benchmark" "$SMOKE"
    echo "- sitewarden: $SW_VERSION, commit $COMMIT; profile wordpress"
    echo "- Steps: ${STEPS[*]} sites; $RUNS run(s) each, median"
    echo
    printf '|'; printf ' %s |' "${COLS[@]}"; echo
    printf '|'; for _ in "${COLS[@]}"; do printf -- '---:|'; done; echo
    for n in "${STEPS[@]}"; do
        IFS='|' read -r -a f <<<"$(row_of "$n")"
        printf '|'; printf ' %s |' "${f[@]}"; echo
    done
    echo
    echo "| Flatness, $FIRST_STEP -> $LAST_STEP sites | At $FIRST_STEP | At $LAST_STEP | Ratio | Marginal |"
    echo "|---|---:|---:|---:|---:|"
    for r in "${FLAT_ROWS[@]}"; do
        IFS='|' read -r text a b q m <<<"$r"
        echo "| $text | $a | $b | $q | $m |"
    done
    echo
    echo "| Target, $TARGET_AT | Value | Target | Met |"
    echo "|---|---:|---:|:---:|"
    for r in "${TARGET_ROWS[@]}"; do
        IFS='|' read -r text v t ok <<<"$r"
        echo "| $text | $v | $t | $ok |"
    done
    echo
    md_notes
} >"$RESULTS_MD"
echo
echo "Markdown written to $RESULTS_MD (raw logs in $WORK)"
