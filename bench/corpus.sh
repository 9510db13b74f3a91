# shellcheck shell=bash
# The WordPress corpus shared by bench/baseline.sh, bench/realtime.sh and
# bench/scale.sh, and the small helpers they share (messages, timing, missing
# packages, background processes, the report). Sourced, not run:
#
#   source "$(dirname "${BASH_SOURCE[0]}")/corpus.sh"
#
# The scripts build the corpus the same way and with the same markers, so
# baseline.sh and realtime.sh reuse the sites the other built.
#
# build_corpus needs, set by the caller before it is called:
#   CORPUS     the folder that holds the sites (s01, s02, ...)
#   BENCH_DIR  where the markers are kept (corpus-markers/, corpus.marker)
#   SITES      how many sites to build
# It needs openssl and /usr/share/wordpress (Debian's wordpress package,
# with wordpress-l10n). Optional:
#   EXTRA_PLUGINS  folders (colon-separated) of third-party plugins copied
#                  into every site's wp-content/plugins/ under their own
#                  names: a non-English plugin makes the corpus a real site
#                  of a non-English host (nothing third-party is committed)

# ----------------------------------------------------------------- helpers

# The comment block at the top of the running script, from its line 2 to
# the first empty line.
usage() { sed -n '2,/^$/s/^# \{0,1\}//p' "$0"; }
say() { printf '\n== %s\n' "$*"; }
note() { printf '   %s\n' "$*"; }
die() { echo "error: $*" >&2; exit 1; }

now() { echo "$EPOCHREALTIME"; }                  # seconds, microseconds
# since T0: the seconds from T0 (a `now`) until now, with SINCE_DECIMALS
# decimals (3 unless the script sets it).
since() { awk -v a="$1" -v b="$(now)" -v d="${SINCE_DECIMALS:-3}" 'BEGIN { printf "%." d "f", b - a }'; }

# ------------------------------------------------------------ requirements

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo

# install_missing PKG...: installs the Debian packages given (those the
# script found missing); does nothing when none is given.
install_missing() {
    [ $# -gt 0 ] || return 0
    say "installing $*"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get install -y "$@" \
        || { $SUDO apt-get update && $SUDO apt-get install -y "$@"; }
}

# --------------------------------------------------------------- processes
#
# For the scripts that leave processes running in the background
# (bench/realtime.sh, bench/scale.sh): each one is added to PIDS when it is
# started, and `stop` takes it out again. The script's EXIT trap stops what
# is left.

declare -a PIDS=()

alive() { kill -0 "$1" 2>/dev/null; }

# stop PID [GRACE_S]: SIGTERM, wait, SIGKILL after GRACE_S. Sets STOP_RC to
# the exit code and STOP_S to the time it took.
stop() {
    local pid=$1 grace=${2:-10} t0 i
    t0=$(now)
    STOP_RC=
    if alive "$pid"; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < grace * 20; i++)); do
            alive "$pid" || break
            sleep 0.05
        done
        if alive "$pid"; then
            echo "   !! pid $pid still running ${grace} s after SIGTERM: SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    wait "$pid" 2>/dev/null && STOP_RC=0 || STOP_RC=$?
    STOP_S=$(since "$t0")
    local -a keep=()
    for i in "${PIDS[@]}"; do [ "$i" = "$pid" ] || keep+=("$i"); done
    PIDS=("${keep[@]}")
}

# wait_line FILE REGEX TIMEOUT_S PID [POLL_S]: waits until FILE has a line
# matching REGEX, looking every POLL_S seconds (0.05 unless given); fails if
# PID exits first or on the timeout.
wait_line() {
    local file=$1 re=$2 timeout=$3 pid=$4 poll=${5:-0.05} t0
    t0=$SECONDS
    while ! grep -qE "$re" "$file" 2>/dev/null; do
        if ! alive "$pid"; then
            echo "   !! process $pid exited before '$re'; last lines of $file:" >&2
            tail -n 20 "$file" 2>/dev/null | sed 's/^/   | /' >&2
            return 1
        fi
        if [ $((SECONDS - t0)) -ge "$timeout" ]; then
            echo "   !! no '$re' in $file after $timeout s; last lines:" >&2
            tail -n 20 "$file" 2>/dev/null | sed 's/^/   | /' >&2
            return 1
        fi
        sleep "$poll"
    done
}

# proc_kb PID KEY: a field of /proc/PID/status (VmRSS, VmHWM: kB; Threads),
# empty when the process is gone.
proc_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status" 2>/dev/null || true; }
# mb KB: in MB with 1 decimal ("n/a" when empty)
mb() { awk -v k="$1" 'BEGIN { if (k == "") print "n/a"; else printf "%.1f", k / 1024 }'; }

# warnings_in LOG: "N warning/error line(s), e.g.: FIRST" when sitewarden
# logged any to LOG (colours taken out), else nothing.
warnings_in() {
    local count
    count=$(grep -cE ' (WARN|ERROR) ' "$1" || true)
    [ "$count" -gt 0 ] || return 0
    echo "$count warning/error line(s), e.g.: $(grep -m1 -E ' (WARN|ERROR) ' "$1" | sed 's/\x1b\[[0-9;]*m//g')"
}

# ------------------------------------------------------------------ report

# checkout_commit: the short commit of the checkout in $REPO, "unknown"
# outside git, flagged when src, Cargo.toml, Cargo.lock or profiles have
# uncommitted changes.
checkout_commit() {
    local commit
    commit=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
    [ -z "$(git -C "$REPO" status --porcelain -- src Cargo.toml Cargo.lock profiles 2>/dev/null)" ] || commit="$commit (+ uncommitted changes)"
    echo "$commit"
}

# md_head TITLE SMOKE [MACHINE_NOTE]: the top of a Markdown results file:
# the title, SMOKE in bold unless empty, the date, and the machine (CPU,
# cores, memory, OS) followed by MACHINE_NOTE.
md_head() {
    local cpu mem_gb
    cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
    mem_gb=$(awk '/^MemTotal/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)
    echo "# $1"
    echo
    [ -z "$2" ] || { echo "**$2**"; echo; }
    echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- Machine: $cpu, $(nproc) cores, $mem_gb GB RAM, $(. /etc/os-release && echo "$PRETTY_NAME")${3:-}"
}

# print_notes / md_notes: the script's NOTES, then its ODD (anything
# unexpected) if any, for the terminal (folded to 110 columns) or as
# Markdown.
print_notes() {
    local n
    for n in "${NOTES[@]}"; do echo "- $n" | fold -s -w 110 | sed '2,$s/^/  /'; done
    if [ ${#ODD[@]} -gt 0 ]; then
        echo
        echo "!! Anything odd:"
        for n in "${ODD[@]}"; do echo "   - $n"; done
    fi
}
md_notes() {
    local n
    for n in "${NOTES[@]}"; do echo "- $n"; done
    if [ ${#ODD[@]} -gt 0 ]; then
        echo
        echo "**Anything odd:**"
        echo
        for n in "${ODD[@]}"; do echo "- $n"; done
    fi
}

# ------------------------------------------------------------------ corpus

# What a site holds besides the WordPress core. Part of the corpus marker, so
# changing them rebuilds the sites.
UPLOADS_PER_SITE=40           # random "JPEGs" of 50-300 KB
CACHE_PER_SITE=300            # small page-cache .html files
# Debian's WordPress as `apt-get install wordpress` brings it, with its
# Recommends: the language packs of wordpress-l10n (168 compiled catalogues,
# non-ASCII throughout) are part of every site, as on a real server.
EXTRA_PLUGINS=${EXTRA_PLUGINS:-}
CORPUS_VERSION="v3 l10n uploads=$UPLOADS_PER_SITE cache=$CACHE_PER_SITE plugins=$EXTRA_PLUGINS"

site_name() { printf 's%02d' "$1"; }

# N bytes that look random but are the same on every machine: AES-CTR of
# zeros, keyed by two numbers. Far faster than a shell loop over $RANDOM.
pseudo_random() { # SITE_INDEX FILE_INDEX BYTES
    head -c "$3" /dev/zero \
        | openssl enc -aes-128-ctr -nosalt -K "$(printf '%016x%016x' "$1" "$2")" \
            -iv 00000000000000000000000000000000
}

make_site() { # INDEX
    local idx=$1 name dir i r y m size
    name=$(site_name "$idx")
    dir=$CORPUS/$name
    rm -rf "$dir"
    # The Debian tree has a few relative symlinks into /usr/share/php and
    # /usr/share/javascript; in the copies they dangle, as symlinks they stay.
    cp -a /usr/share/wordpress "$dir"
    local extra
    local -a extras=()
    [ -z "$EXTRA_PLUGINS" ] || IFS=: read -r -a extras <<<"$EXTRA_PLUGINS"
    for extra in "${extras[@]}"; do
        [ -d "$extra" ] || die "EXTRA_PLUGINS: $extra is not a folder"
        mkdir -p "$dir/wp-content/plugins"
        cp -a "$extra" "$dir/wp-content/plugins/$(basename "$extra")"
        rm -rf "$dir/wp-content/plugins/$(basename "$extra")/.git"
    done

    # Media library: wp-content/uploads/YYYY/MM/IMG_NNNN.jpg
    RANDOM=$((idx * 7919))
    for ((i = 1; i <= UPLOADS_PER_SITE; i++)); do
        y=$((2019 + RANDOM % 6))
        m=$((1 + RANDOM % 12)); printf -v m '%02d' "$m"
        size=$(((50 + RANDOM % 251) * 1024))
        mkdir -p "$dir/wp-content/uploads/$y/$m"
        {
            printf '\xff\xd8\xff\xe0'   # JPEG magic, for `file` and for realism
            pseudo_random "$idx" "$i" $((size - 4))
        } >"$dir/wp-content/uploads/$y/$m/IMG_$(printf '%04d' "$i").jpg"
    done

    # Page cache in WP Super Cache's layout: one folder per URL, index.html.
    local host="$name.example.com" cdir body
    local -a dirs=()
    for ((i = 1; i <= CACHE_PER_SITE; i++)); do
        dirs+=("$dir/wp-content/cache/supercache/$host/$((2019 + i % 6))/post-$i")
    done
    mkdir -p "${dirs[@]}"
    for ((i = 1; i <= CACHE_PER_SITE; i++)); do
        cdir=${dirs[i - 1]}
        printf -v body '<article id="post-%d"><h2>Post %d on %s</h2><p>Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua.</p></article>\n' "$i" "$i" "$host"
        {
            printf '<!DOCTYPE html>\n<html><head><title>Post %d - %s</title></head><body>\n' "$i" "$host"
            # 1 to 40 repeats: files of roughly 0.3 to 10 KB
            for ((r = 0; r <= (i * 37) % 40; r++)); do printf '%s' "$body"; done
            printf '</body></html>\n<!-- Dynamic page generated in 0.%03d seconds. -->\n<!-- Cached page generated by WP-Super-Cache -->\n' $((i % 1000))
        } >"$cdir/index.html"
    done
}

# build_corpus [--prune]
#
# The corpus is kept between runs. Each site has its own marker, so a run with
# another SITES only builds the difference. With --prune (bench/baseline.sh),
# sites beyond SITES from an earlier, larger run are removed too, and
# $BENCH_DIR/corpus.marker records what the corpus then holds; without it
# (bench/realtime.sh) they are left alone and corpus.marker is not touched.
build_corpus() {
    local prune=no
    case ${1:-} in
        --prune) prune=yes ;;
        '') ;;
        *) die "build_corpus: unknown argument '$1'" ;;
    esac
    mkdir -p "$CORPUS" "$BENCH_DIR/corpus-markers"
    local i name marker dir built=0
    for ((i = 1; i <= SITES; i++)); do
        name=$(site_name "$i")
        marker=$BENCH_DIR/corpus-markers/$name
        if [ -d "$CORPUS/$name" ] && [ "$(cat "$marker" 2>/dev/null)" = "$CORPUS_VERSION" ]; then
            continue
        fi
        rm -f "$marker"
        printf '  building %s\n' "$name"
        make_site "$i"
        echo "$CORPUS_VERSION" >"$marker"
        built=$((built + 1))
    done
    if [ "$prune" = yes ]; then
        # Sites beyond N from an earlier, larger run.
        for dir in "$CORPUS"/s*; do
            [ -d "$dir" ] || continue
            i=$((10#${dir##*/s}))
            if [ "$i" -gt "$SITES" ]; then
                rm -rf "$dir" "$BENCH_DIR/corpus-markers/${dir##*/}"
            fi
        done
        echo "sites=$SITES $CORPUS_VERSION" >"$BENCH_DIR/corpus.marker"
    fi
    [ "$built" -eq 0 ] && echo "  reusing the existing corpus ($SITES sites)"
    return 0
}

# Sets SW (the binary) and SW_VERSION: $SITEWARDEN_BIN if given, else a fresh
# release build of the checkout in $REPO.
build_sitewarden() {
    if [ -n "${SITEWARDEN_BIN:-}" ]; then
        SW=$SITEWARDEN_BIN
    else
        say "cargo build --release (waits for the cargo lock if another build runs)"
        # Always build: a binary left in target/ may be older than the sources.
        (cd "$REPO" && cargo build --release)
        SW=${CARGO_TARGET_DIR:-$REPO/target}/release/sitewarden
    fi
    [ -x "$SW" ] || die "no sitewarden binary at $SW"
    SW_VERSION=$("$SW" --version 2>&1 || true)
    [ -n "$SW_VERSION" ] || die "$SW --version printed nothing: is it a real build?"
}
