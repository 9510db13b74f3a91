#!/usr/bin/env bash
# The README's quick start on a fresh Debian 12, as a newcomer types it.
#
#   bash tests/fresh-machine.sh            # as root; about an hour on 2 cores
#   FRESH_ONLY=1 bash tests/fresh-machine.sh   # command 1 and the plant line only
#   FRESH_PREPARE=1 bash tests/fresh-machine.sh  # only make the cached root
#   rm -rf /var/cache/sitewarden-fresh     # throw the cached Debian root away
#
# Builds (once, then cached) a clean Debian 12 root with debootstrap, lays a
# throwaway copy of it for each run (a copy on the host's disk, not an
# overlay or a tmpfs: /tmp is then ext4 as on a real machine, and fanotify
# and the quarantine meet the filesystem they meet there), mounts /proc, /sys and /dev, the host's Rust toolchain
# read-only (a fresh machine has rustup's toolchain and nothing built), and
# a fresh `git clone` of this checkout's HEAD (commit first: what is not
# committed is not tested). Inside, as root in /root/sitewarden, it runs the
# README's commands exactly as the README states them (taken from its quick
# start, not retyped): command 1 until `watch` says it is ready, the plant
# line, the alert it must print, then command 2 (the whole test suite).
# Prints each step with its time and PASS or FAIL; exits 1 on any failure.
#
# Not part of .ci/run (too slow): run it before resolving anything that
# touches the README, .ci/run, packaging, or a test that reads system files.
set -uo pipefail
cd "$(dirname "$0")/.."
HERE=$(pwd)
CACHE=${FRESH_CACHE:-/var/cache/sitewarden-fresh}
BASE=$CACHE/bookworm
MIRROR=${FRESH_MIRROR:-http://deb.debian.org/debian}
[ "$(id -u)" -eq 0 ] || { echo "run as root (debootstrap, mounts, chroot)" >&2; exit 2; }

results=()
failed=0
t0=$(date +%s)
step() { # name, seconds, status
    results+=("$(printf '%-58s %6ss  %s' "$1" "$2" "$3")")
    [ "$3" = PASS ] || failed=1
    printf '== %s: %s (%ss)\n' "$1" "$3" "$2"
}
finish() {
    echo
    echo "fresh-machine summary (${TESTED:-$(git -C "$HERE" rev-parse --short HEAD)}, $(( $(date +%s) - t0 ))s in all):"
    printf '  %s\n' "${results[@]}"
    [ $failed -eq 0 ] && echo "fresh-machine: all passed" || echo "fresh-machine: FAILED"
    exit $failed
}

# --- the README's commands, as written --------------------------------------
# The quick start's `sh` blocks, in order: command 1, the plant line,
# command 2 (comment lines dropped).
mapfile -t BLOCKS < <(python3 - "$HERE/README.md" <<'EOF'
import sys
text = open(sys.argv[1]).read()
q = text[text.index("## Quick start"):]
q = q[:q.index("\n## ", 3)] if "\n## " in q[3:] else q
blocks = [b.split("```")[0] for b in q.split("```sh\n")[1:]]
for b in blocks:
    print(" ; ".join(l for l in b.strip().splitlines() if not l.startswith("#")))
EOF
)
if [ ${#BLOCKS[@]} -ne 3 ]; then
    step "README quick start has 3 sh blocks" 0 "FAIL (found ${#BLOCKS[@]})"
    finish
fi
CMD1=${BLOCKS[0]}
PLANT=${BLOCKS[1]}
CMD2=${BLOCKS[2]}
printf 'command 1: %s\nplant:     %s\ncommand 2: %s\n\n' "$CMD1" "$PLANT" "$CMD2"

# --- a clean Debian 12, cached ------------------------------------------------
s=$(date +%s)
if [ ! -e "$BASE/.complete" ]; then
    command -v debootstrap >/dev/null || apt-get install -y -qq debootstrap >/dev/null
    rm -rf "$BASE"
    mkdir -p "$BASE"
    if debootstrap --variant=minbase --include=ca-certificates,git,curl,procps,iproute2,systemd,sensible-utils bookworm "$BASE" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1; then
        # What a Debian 12 machine has when it is handed over: the release
        # and security suites, their package lists read once, and this
        # workplace's apt settings (its mirror serves a dated snapshot).
        cp /etc/apt/sources.list.d/debian.sources "$BASE/etc/apt/sources.list.d/" 2>/dev/null || true
        [ -e "$BASE/etc/apt/sources.list.d/debian.sources" ] && rm -f "$BASE/etc/apt/sources.list"
        cp /etc/apt/apt.conf.d/99artifact-registry "$BASE/etc/apt/apt.conf.d/" 2>/dev/null || true
        cp /etc/resolv.conf "$BASE/etc/resolv.conf"
        chroot "$BASE" apt-get update -qq >>"$CACHE/debootstrap.log" 2>&1 && touch "$BASE/.complete"
    fi
    [ -e "$BASE/.complete" ] && step "debootstrap Debian 12 (cached in $BASE)" $(( $(date +%s) - s )) PASS ||
        { step "debootstrap Debian 12" $(( $(date +%s) - s )) "FAIL (see $CACHE/debootstrap.log)"; finish; }
else
    step "Debian 12 root from the cache ($BASE)" 0 PASS
fi

[ -n "${FRESH_PREPARE:-}" ] && finish   # only make the cache

# --- this run's machine: a throwaway copy of the clean root -------------------
RUN=$(mktemp -d "$CACHE/run.XXXXXX")
ROOT=$RUN/root
mkdir -p "$ROOT"
MOUNTS=()
cleanup() {
    [ -n "${WATCH_PID:-}" ] && kill "$WATCH_PID" 2>/dev/null
    # Processes the tests may have left inside (daemons of a killed run).
    for p in /proc/[0-9]*; do
        [ "$(readlink "$p/root" 2>/dev/null)" = "$ROOT" ] && kill -9 "${p#/proc/}" 2>/dev/null
    done
    for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do umount -l "${MOUNTS[$i]}" 2>/dev/null; done
    rm -rf "$RUN"
}
trap cleanup EXIT
cp -a "$BASE/." "$ROOT/"
rm -f "$ROOT/.complete"
# This workplace's network: the host's extra certificate authorities (an
# egress proxy's, where there is one), trusted inside as outside, so cargo
# and apt reach their registries as they do here. A real machine has none.
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    mkdir -p "$ROOT/usr/local/share/ca-certificates"
    cp /usr/local/share/ca-certificates/*.crt "$ROOT/usr/local/share/ca-certificates/"
    chroot "$ROOT" update-ca-certificates >/dev/null 2>&1 || true
fi
for m in proc sys dev dev/pts; do
    mkdir -p "$ROOT/$m"
    mount --bind "/$m" "$ROOT/$m" && MOUNTS+=("$ROOT/$m")
done
mount -t tmpfs tmpfs "$ROOT/run" && MOUNTS+=("$ROOT/run")
# What a booted Debian has in /run (systemd-tmpfiles makes it at boot):
# /var/lock points there, and apache2ctl needs it.
mkdir -p -m 1777 "$ROOT/run/lock"
# rustup's toolchain, read-only, as a machine with rustup has it; cargo's
# registry starts empty (crates come from crates.io as on a fresh machine).
RUSTUP_SRC=${RUSTUP_HOME:-/root/.rustup}
mkdir -p "$ROOT/root/.rustup" "$ROOT/root/.cargo/bin"
mount --bind "$RUSTUP_SRC" "$ROOT/root/.rustup" && mount -o remount,bind,ro "$ROOT/root/.rustup" && MOUNTS+=("$ROOT/root/.rustup")
cp -a "${CARGO_HOME:-/root/.cargo}/bin/." "$ROOT/root/.cargo/bin/"
cp "${CARGO_HOME:-/root/.cargo}/env" "$ROOT/root/.cargo/env" 2>/dev/null || true
git clone -q "$HERE" "$ROOT/root/sitewarden"
TESTED=$(git -C "$ROOT/root/sitewarden" rev-parse --short HEAD)   # what the summary names
echo "project at $(git -C "$ROOT/root/sitewarden" log --oneline -1)"

inside() { # limit, command: a shell as root in the clone, as a newcomer's terminal
    timeout "$1" chroot "$ROOT" /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
        PATH=/root/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        bash -c "cd /root/sitewarden && $2"
}

# --- command 1: install, build, watch ----------------------------------------
s=$(date +%s)
inside 7200 "$CMD1" >"$RUN/cmd1.out" 2>"$RUN/cmd1.err" &
WATCH_PID=$!
ready=0
while kill -0 "$WATCH_PID" 2>/dev/null; do
    grep -q '^sitewarden: ready' "$RUN/cmd1.err" && { ready=1; break; }
    [ $(( $(date +%s) - s )) -gt 3600 ] && break
    sleep 2
done
if [ $ready -eq 1 ]; then
    step "command 1 (apt-get, cp, cargo build --release, watch) until ready" $(( $(date +%s) - s )) PASS
else
    step "command 1 until ready" $(( $(date +%s) - s )) FAIL
    tail -30 "$RUN/cmd1.err" | sed 's/^/  | /'
    finish
fi

# --- the plant line, and the alert it must print -----------------------------
s=$(date +%s)
if inside 60 "$PLANT" >"$RUN/plant.out" 2>&1; then
    step "plant line" $(( $(date +%s) - s )) PASS
else
    step "plant line" $(( $(date +%s) - s )) FAIL
    sed 's/^/  | /' "$RUN/plant.out"
fi
s=$(date +%s)
line=""
while [ $(( $(date +%s) - s )) -lt 60 ]; do
    line=$(grep -m1 'CRITICAL' "$RUN/cmd1.out" || true)
    [ -n "$line" ] && break
    sleep 0.2
done
echo "watch printed: ${line:-nothing}"
shell=$(sed -n 's/.*> *\(\/tmp\/blog\/[^ ]*\.php\).*/\1/p' <<<"$PLANT")
case "$line" in
*"added"*"php-in-uploads"*"quarantine: removed"*)
    if inside 60 "test ! -e '$shell'"; then
        step "CRITICAL line names the quarantine, shell removed" $(( $(date +%s) - s )) PASS
    else
        step "CRITICAL line printed but $shell is still there" $(( $(date +%s) - s )) FAIL
    fi ;;
*)
    step "CRITICAL line that names the quarantine result" $(( $(date +%s) - s )) FAIL
    tail -20 "$RUN/cmd1.err" | sed 's/^/  | /' ;;
esac
# `watch` is a grandchild of chroot's bash: signalled as Ctrl-C would, by
# its pid (the process named sitewarden whose root is this fresh root; a
# pattern would also match the shells and `timeout` that name it, and
# `timeout` hands a signal to its whole group). Ctrl-C must stop it: 30 s
# later it is killed, and that is a failure.
in_root() { for p in $(pgrep -x sitewarden); do [ "$(readlink "/proc/$p/root")" = "$ROOT" ] && echo "$p"; done; }
kill -INT $(in_root) 2>/dev/null
for _ in $(seq 150); do [ -z "$(in_root)" ] && break; sleep 0.2; done
if [ -n "$(in_root)" ]; then
    kill -KILL $(in_root) 2>/dev/null
    step "watch stopped by SIGINT within 30 s" 30 FAIL
fi
wait "$WATCH_PID" 2>/dev/null
WATCH_PID=
[ -n "${FRESH_ONLY:-}" ] && finish

# --- command 2: the whole test suite ------------------------------------------
s=$(date +%s)
if inside 5400 "$CMD2" >"$RUN/cmd2.log" 2>&1; then
    step "command 2 ($CMD2)" $(( $(date +%s) - s )) PASS
else
    step "command 2 ($CMD2)" $(( $(date +%s) - s )) FAIL
fi
grep -E '^test result:|passed, [0-9]+ failed|^failures:|panicked at|^    [a-z_:]+$' "$RUN/cmd2.log" | tail -40 | sed 's/^/  | /'
cp "$RUN/cmd2.log" "$CACHE/last-cmd2.log"
echo "full log of command 2: $CACHE/last-cmd2.log"
finish
