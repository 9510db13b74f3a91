#!/usr/bin/env bash
# .htaccess rewrite-loop benchmark: an attacker rewrites a site's
# `.htaccess` every WRITE_MS in a loop (each write opens with O_TRUNC,
# writes, closes: the way a PHP backdoor's file_put_contents does), and a
# reader samples the file every millisecond for LOOP_S seconds. Printed per
# guard: the share of samples that saw the attacker's version (a truncated
# file mid-write counts as the attacker's), and how many times it was seen
# replaced by the admin's while the loop ran. Guards, each on a fresh site:
#
#   - none: the loop alone (the attacker's version is live about 100 %);
#   - inotifywait: the restore loop an admin writes with inotify-tools,
#     `inotifywait -m -e close_write` on the site root, `cmp` and `cp` of
#     the admin's copy back (the floor of a guard reacting to events);
#   - sitewarden on inotify, then on fanotify: the daemon with the
#     wordpress profile, whose quarantine restores `.htaccess` from the
#     baseline.
#
# Each guard runs on an idle machine and again beside busy loops (`LOADS`:
# that many `while :; do :; done` shells, a load of about as many).
#
#   bench/htaccess.sh [--runs N] [--quick]
#
# Environment:
#   RUNS=5             runs per guard (medians are reported)
#   LOOP_S=5           length of each rewrite loop
#   WRITE_MS=20        pause between two writes of the attacker
#   LOADS="0 3"        busy loops beside the runs, one pass per number
#   BENCH_DIR=/var/tmp/sitewarden-bench   work files
#   SITEWARDEN_BIN=    use this binary instead of building target/release
#
# Needs root (fanotify) and inotify-tools. The table is written to
# bench/results-htaccess.md (not with --quick).

set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/corpus.sh"

RUNS=${RUNS:-5}
LOOP_S=${LOOP_S:-5}
WRITE_MS=${WRITE_MS:-20}
LOADS=${LOADS:-0 3}
BENCH_DIR=${BENCH_DIR:-/var/tmp/sitewarden-bench}
SMOKE=
while [ $# -gt 0 ]; do
    case $1 in
        --runs) RUNS=${2:?--runs needs a number}; shift 2 ;;
        --quick) RUNS=1; LOOP_S=2; SMOKE="Smoke run (--quick): not figures to publish."; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown argument '$1'" ;;
    esac
done
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=$BENCH_DIR/htaccess
OUT=$REPO/bench/results-htaccess.md
[ "$(id -u)" -eq 0 ] || die "run as root (fanotify, files owned by www-data)"
command -v inotifywait >/dev/null || die "inotifywait is missing (apt-get install inotify-tools)"
build_sitewarden
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT

GOOD=$'RewriteEngine On\nRewriteRule ^index\\.php$ - [L]\n'

# fresh_site DIR: a WordPress-like root with the admin's .htaccess
# (www-data, 0640) and a copy of it beside the root.
fresh_site() {
    rm -rf "$1"
    mkdir -p "$1/root/wp-includes"
    printf '<?php // wp\n' >"$1/root/index.php"
    printf "<?php\n\$wp_version = '6.5.5';\n" >"$1/root/wp-includes/version.php"
    printf '%s' "$GOOD" >"$1/root/.htaccess"
    chown 33:33 "$1/root/.htaccess"
    chmod 0640 "$1/root/.htaccess"
    cp -p "$1/root/.htaccess" "$1/good.htaccess"
}

# rewrite_loop DIR: the attacker's loop and the sampler; prints
# "samples live undone writes".
rewrite_loop() {
    python3 - "$1/root/.htaccess" "$1/good.htaccess" "$LOOP_S" "$WRITE_MS" <<'EOF'
import sys, threading, time
path, good_path, loop_s, write_ms = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
good = open(good_path, "rb").read()
evil = good + b"AddHandler application/x-httpd-php .png\n"
stop = threading.Event()
writes = 0
def writer():
    global writes
    while not stop.is_set():
        with open(path, "wb") as f:
            f.write(evil)
        writes += 1
        time.sleep(write_ms / 1000)
t = threading.Thread(target=writer)
t.start()
samples = live = undone = 0
was_live = False
end = time.monotonic() + loop_s
while time.monotonic() < end:
    try:
        with open(path, "rb") as f:
            text = f.read()
    except OSError:
        time.sleep(0.001)
        continue
    samples += 1
    is_live = text != good
    live += is_live
    undone += was_live and not is_live
    was_live = is_live
    time.sleep(0.001)
stop.set()
t.join()
print(samples, live, undone, writes)
EOF
}

# guard NAME: starts the guard NAME over $WORK/NAME (sets GUARD_PID, empty
# for none).
guard() {
    local dir=$WORK/$1
    GUARD_PID=
    case $1 in
        none) ;;
        inotifywait)
            (
                inotifywait -m -q -e close_write --format %f "$dir/root" 2>"$dir/iw.err" | while read -r f; do
                    [ "$f" = .htaccess ] || continue
                    cmp -s "$dir/good.htaccess" "$dir/root/.htaccess" || cp -p "$dir/good.htaccess" "$dir/root/.htaccess"
                done
            ) &
            GUARD_PID=$!
            sleep 0.5
            ;;
        inotify|fanotify)
            cat >"$dir/sitewarden.yaml" <<EOF
state_dir: $dir/state
realtime: { source: $1 }
vendors:
  wordpress:
    core_checksums_url: http://127.0.0.1:9/core
    plugin_checksums_url: http://127.0.0.1:9/plugins
    core_archive_url: http://127.0.0.1:9/release
    plugin_archive_url: http://127.0.0.1:9/plugin
    theme_archive_url: http://127.0.0.1:9/theme
alerts: { log: $dir/alerts.jsonl }
sites:
  - { name: site, root: $dir/root, profile: wordpress }
EOF
            "$SW" -c "$dir/sitewarden.yaml" baseline >"$dir/baseline.log" 2>&1 || die "baseline failed: $(tail -3 "$dir/baseline.log")"
            "$SW" -c "$dir/sitewarden.yaml" run >"$dir/watch.log" 2>&1 &
            GUARD_PID=$!
            PIDS+=("$GUARD_PID")
            wait_line "$dir/watch.log" '^sitewarden: ready \(' 120 "$GUARD_PID" || die "the daemon did not become ready ($1)"
            local got
            got=$("$SW" -c "$dir/sitewarden.yaml" status --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["sites"][0].get("source") or "none")' || echo '?')
            [ "$got" = "$1" ] || ODD+=("asked for source $1, status --json says $got")
            ;;
    esac
}

unguard() { # NAME
    [ -n "$GUARD_PID" ] || return 0
    case $1 in
        inotifywait)
            pkill -P "$GUARD_PID" 2>/dev/null || true
            kill "$GUARD_PID" 2>/dev/null || true
            wait "$GUARD_PID" 2>/dev/null || true
            ;;
        *) stop "$GUARD_PID" ;;
    esac
}

NOTES=()
ODD=()
GUARDS=(none inotifywait inotify fanotify)
declare -A LIVE UNDONE WRITES RECORDS
for load in $LOADS; do
    busy=()
    for ((b = 0; b < load; b++)); do
        sh -c 'while :; do :; done' &
        busy+=($!)
        PIDS+=($!)
    done
    for g in "${GUARDS[@]}"; do
        k="$g $load"
        say "$g, $load busy loops: $RUNS runs of a ${LOOP_S} s loop, a write every $WRITE_MS ms"
        for ((r = 1; r <= RUNS; r++)); do
            fresh_site "$WORK/$g"
            guard "$g"
            read -r samples live undone writes < <(rewrite_loop "$WORK/$g")
            sleep 1
            unguard "$g"
            pct=$(awk -v l="$live" -v s="$samples" 'BEGIN { printf "%.1f", 100 * l / s }')
            LIVE[$k]+="$pct "
            UNDONE[$k]+="$undone "
            WRITES[$k]+="$writes "
            if [ -f "$WORK/$g/alerts.jsonl" ]; then
                RECORDS[$k]+="$(wc -l <"$WORK/$g/alerts.jsonl") "
            fi
            restored=$(cmp -s "$WORK/$g/good.htaccess" "$WORK/$g/root/.htaccess" && echo restored || echo "attacker's")
            note "run $r: $writes writes, $samples samples, live $pct %, undone $undone times; after the loop: $restored"
            [ "$g" = none ] || [ "$restored" = restored ] || ODD+=("$g ($load busy loops) run $r: the attacker's .htaccess stayed after the loop")
        done
    done
    for b in "${busy[@]}"; do kill "$b" 2>/dev/null || true; wait "$b" 2>/dev/null || true; done
done

median() { tr ' ' '\n' | awk 'NF' | sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

{
    md_head ".htaccess rewrite loop: how long the attacker's version is live" "$SMOKE"
    echo "- sitewarden: \`$SW_VERSION\`, commit $(checkout_commit). Printed by \`bench/htaccess.sh\`."
    echo "- $RUNS runs per guard; a loop of $LOOP_S s, a write every $WRITE_MS ms, the file sampled every 1 ms; medians, all runs in brackets."
    echo
    echo "| guard | busy loops | attacker's version live (% of samples) | undone while the loop ran | writes | alert records |"
    echo "|---|---:|---:|---:|---:|---:|"
    for load in $LOADS; do
        for g in "${GUARDS[@]}"; do
            k="$g $load"
            echo "| $g | $load | $(median <<<"${LIVE[$k]}") (${LIVE[$k]% }) | $(median <<<"${UNDONE[$k]}") (${UNDONE[$k]% }) | $(median <<<"${WRITES[$k]}") | $(r=${RECORDS[$k]:--}; echo "${r% }") |"
        done
    done
    echo
    NOTES+=("\"inotifywait\" is \`inotifywait -m -q -e close_write\` on the site root piped to \`cmp\` + \`cp -p\` of the admin's copy: a guard reacting to events that keeps no baseline, no evidence and sends no alert.")
    NOTES+=("A sample that read a file truncated mid-write counts as the attacker's version.")
    md_notes
} >"$WORK/results.md"
cat "$WORK/results.md"
[ -n "$SMOKE" ] || cp "$WORK/results.md" "$OUT"
