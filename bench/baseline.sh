#!/usr/bin/env bash
# Baseline benchmark: sitewarden against AIDE and against the raw cost of
# hashing and walking the same files, on a corpus of real WordPress sites.
#
#   bench/baseline.sh [--sites N] [--runs N] [--quick]
#
# Environment:
#   SITES=40          number of WordPress sites in the corpus
#   RUNS=3            hyperfine runs per measurement (the median is reported)
#   BENCH_DIR=/var/tmp/sitewarden-bench   corpus, configs, stores, raw results
#   AIDE_WORKERS=1    AIDE's num_workers (1 is AIDE's and Debian's default)
#   SITEWARDEN_BIN=   use this binary instead of building target/release
#   EXTRA_PLUGINS=    plugin folders copied into every site (see corpus.sh)
#
# --quick is a smoke run: SITES=2 RUNS=1.
#
# Every figure is taken with a warm page cache (the corpus is read once before
# the first measurement), so it compares CPU and syscall work, not the disk.
# The Markdown table is written to bench/results-baseline.md.

set -euo pipefail

# usage, say, die; install_missing; the report helpers; the corpus:
# CORPUS_VERSION, site_name, build_corpus, ...
source "$(dirname "${BASH_SOURCE[0]}")/corpus.sh"

# ---------------------------------------------------------------- arguments

SITES=${SITES:-40}
RUNS=${RUNS:-3}
BENCH_DIR=${BENCH_DIR:-/var/tmp/sitewarden-bench}
AIDE_WORKERS=${AIDE_WORKERS:-1}

while [ $# -gt 0 ]; do
    case $1 in
        --sites) SITES=${2:?--sites needs a number}; shift 2 ;;
        --sites=*) SITES=${1#*=}; shift ;;
        --runs) RUNS=${2:?--runs needs a number}; shift 2 ;;
        --runs=*) RUNS=${1#*=}; shift ;;
        --quick) SITES=2; RUNS=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done
for v in SITES RUNS AIDE_WORKERS; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "$v must be a positive integer (got '${!v}')" >&2; exit 2; }
done

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RESULTS_MD=$REPO/bench/results-baseline.md
BENCH_DIR=$(mkdir -p "$BENCH_DIR" && cd "$BENCH_DIR" && pwd)
CORPUS=$BENCH_DIR/corpus
RAW=$BENCH_DIR/raw            # hyperfine JSON, time -v output, command logs
NPROC=$(nproc)

# ------------------------------------------------------------ requirements

missing=()
command -v aide >/dev/null || missing+=(aide)
command -v hyperfine >/dev/null || missing+=(hyperfine)
command -v openssl >/dev/null || missing+=(openssl)
command -v jq >/dev/null || missing+=(jq)
[ -x /usr/bin/time ] || missing+=(time)
[ -f /usr/share/wordpress/wp-settings.php ] || missing+=(wordpress)
[ -f /usr/share/wordpress/wp-content/languages/fa_IR.mo ] || missing+=(wordpress-l10n)
install_missing "${missing[@]}"

# ------------------------------------------------------------------- build

build_sitewarden
AIDE_VERSION=$(aide --version 2>&1 | head -n1)

# ----------------------------------------------------------- scripted changes
#
# The "drift" scenario: what an intrusion into a few sites looks like. Every
# touched file is backed up first and restored at the end (or at the start of
# the next run if this one was interrupted), so the corpus keeps its content.
# Restored files get new ctimes and folders new mtimes: harmless, as every
# run starts by building fresh baselines.

CHANGES_FLAG=$BENCH_DIR/changes.applied
CHANGES_BACKUP=$BENCH_DIR/changes-backup
CHANGES_ADDED=$BENCH_DIR/changes-added.list
N_MODIFY=20 N_ADD=10 N_DELETE=5 N_CHMOD=5
N_CHANGES=$((N_MODIFY + N_ADD + N_DELETE + N_CHMOD))

# The K-th regular file matching GLOB in site (K mod SITES)+1, sorted; K
# walks through the files so that no file is picked twice.
pick() { # K DIR-IN-SITE NAME-GLOB
    local k=$1 site
    site=$(site_name $((k % SITES + 1)))
    find "$CORPUS/$site/$2" -maxdepth 1 -type f -name "$3" -printf "$site/$2/%f\n" \
        | sort | sed -n "$((k / SITES + 1))p"
}

apply_changes() {
    local k rel site updir
    rm -rf "$CHANGES_BACKUP"
    mkdir -p "$CHANGES_BACKUP"
    : >"$CHANGES_ADDED"
    touch "$CHANGES_FLAG"
    backup() { (cd "$CORPUS" && cp -a --parents "$1" "$CHANGES_BACKUP/"); }

    for ((k = 0; k < N_MODIFY; k++)); do       # code injected into core files
        rel=$(pick "$k" wp-includes '*.php'); [ -n "$rel" ] || die "nothing to modify"
        backup "$rel"
        # Inert on purpose: a real web shell here could upset a malware scanner.
        printf '\n<?php /* sitewarden-bench: injected code */ ?>\n' >>"$CORPUS/$rel"
    done
    for ((k = 0; k < N_ADD; k++)); do          # web shells dropped in uploads
        site=$(site_name $((k % SITES + 1)))
        updir=$(cd "$CORPUS/$site" && find wp-content/uploads -mindepth 2 -maxdepth 2 -type d | sort | head -n1)
        [ -n "$updir" ] || die "no uploads folder in $site"
        rel=$site/$updir/cache-$k.php
        echo '<?php /* sitewarden-bench: dropped file */ ?>' >"$CORPUS/$rel"
        echo "$rel" >>"$CHANGES_ADDED"
    done
    for ((k = 0; k < N_DELETE; k++)); do       # files removed
        rel=$(pick "$k" wp-admin '*.php'); [ -n "$rel" ] || die "nothing to delete"
        backup "$rel"
        rm -f "$CORPUS/$rel"
    done
    for ((k = 0; k < N_CHMOD; k++)); do        # permissions loosened
        rel=$(pick "$k" wp-admin/includes '*.php'); [ -n "$rel" ] || die "nothing to chmod"
        backup "$rel"
        chmod 0666 "$CORPUS/$rel"
    done
}

revert_changes() {
    [ -e "$CHANGES_FLAG" ] || return 0
    echo "  reverting the scripted changes"
    if [ -f "$CHANGES_ADDED" ]; then
        while IFS= read -r rel; do rm -f "$CORPUS/$rel"; done <"$CHANGES_ADDED"
    fi
    # cp -a puts back content, mode and mtime.
    if [ -d "$CHANGES_BACKUP" ]; then
        cp -a "$CHANGES_BACKUP/." "$CORPUS/"
    fi
    rm -rf "$CHANGES_BACKUP" "$CHANGES_ADDED" "$CHANGES_FLAG"
}
trap revert_changes EXIT

# ------------------------------------------------------------- measurement
#
# measure ID LABEL EXPECT COMMAND
#   EXPECT: the exit code the command must give: 0, 1, or "nz" (any non-zero,
#   for AIDE, whose check exit code is a bit mask of what changed).
#   PREPARE (environment): a command run, untimed, before every run.
# First one run under /usr/bin/time -v (peak RSS, exit code, and a warm-up),
# then hyperfine. The results go to $RAW/ID.{time,log,json}.

declare -a ROW_IDS=()
declare -A LABEL=() MEDIAN=() RSS_MB=() EXIT=() EXIT_OK=()

measure() {
    local id=$1 label=$2 expect=$3 cmd=$4 rc ok=yes
    local -a ignore=() prep=()
    [ -z "${PREPARE:-}" ] || prep=(--prepare "$PREPARE")
    printf '\n-- %s\n   %s\n' "$label" "$cmd"

    set +e
    [ -z "${PREPARE:-}" ] || bash -c "$PREPARE"
    /usr/bin/time -v -o "$RAW/$id.time" bash -c "$cmd" >"$RAW/$id.log" 2>&1
    rc=$?
    set -e
    case $expect in
        nz) [ "$rc" -ne 0 ] || ok=no; ignore=(--ignore-failure) ;;
        0) [ "$rc" -eq 0 ] || ok=no ;;
        *) [ "$rc" -eq "$expect" ] || ok=no; ignore=(--ignore-failure) ;;
    esac
    if [ "$ok" = no ]; then
        echo "   !! exit code $rc, expected $expect. Output (last 15 lines):"
        tail -n 15 "$RAW/$id.log" | sed 's/^/   | /'
        # A failing command would abort hyperfine: time it anyway.
        ignore=(--ignore-failure)
    fi

    if ! hyperfine --style basic --shell bash --runs "$RUNS" "${ignore[@]}" "${prep[@]}" \
        --command-name "$label" --export-json "$RAW/$id.json" "$cmd" 2>&1 \
        | sed '/^ *$/d; s/^ */   /'; then
        echo "   !! hyperfine failed"
        rm -f "$RAW/$id.json"
    fi

    ROW_IDS+=("$id")
    LABEL[$id]=$label
    MEDIAN[$id]=$(jq -r '.results[0].median' "$RAW/$id.json" 2>/dev/null || true)
    RSS_MB[$id]=$(awk -F': ' '/Maximum resident set size/ { printf "%.1f", $2 / 1024 }' "$RAW/$id.time")
    EXIT[$id]=$rc
    EXIT_OK[$id]=$ok
}

q() { printf '%q' "$1"; }   # quote a path for the command strings

# ================================================================== the run

say "corpus: $SITES sites in $CORPUS"
revert_changes              # an earlier run may have been interrupted
build_corpus --prune        # and remove the sites beyond $SITES
mkdir -p "$RAW"
rm -f "$RAW"/*

N_FILES=$(find "$CORPUS" -type f | wc -l)
N_LINKS=$(find "$CORPUS" -type l | wc -l)
N_DIRS=$(find "$CORPUS" -type d | wc -l)
BYTES=$(find "$CORPUS" -type f -printf '%s\n' | awk '{ s += $1 } END { printf "%.0f", s }')
GB=$(awk -v b="$BYTES" 'BEGIN { printf "%.2f", b / 1e9 }')
CORPUS_DESC="$SITES WordPress sites: $N_FILES files ($GB GB), $N_LINKS symlinks, $N_DIRS folders"
echo "  $CORPUS_DESC"

say "warming the page cache"
find "$CORPUS" -type f -print0 | xargs -0 -n 500 cat >/dev/null

# ---- sitewarden configs: one state_dir per profile, so the stores are apart.
SWDIR=$BENCH_DIR/sitewarden
rm -rf "$SWDIR"
mkdir -p "$SWDIR/profiles"
# Every regular file, nothing ignored: the same files AIDE checks.
echo 'description: "every file"' >"$SWDIR/profiles/everything.yaml"
# The release checks (wordpress profile) are off but in one config, whose
# publisher is a closed port on loopback: "unreachable" as a server with no
# way out sees it (refused at once; a silent firewall costs vendors.timeout
# once per host instead).
# everything-nosig: the same without the signature rules, whose scan of
# every file (an infected site named on day one) is timed apart.
for config in everything everything-nosig wordpress wordpress-releases; do
    profile=${config%-releases}
    profile=${profile%-nosig}
    {
        echo "state_dir: $SWDIR/state-$config"
        echo "alerts:"
        echo "  log: $SWDIR/alerts-$config.jsonl"
        if [ "$config" = wordpress-releases ]; then
            echo "vendors:"
            echo "  wordpress:"
            for key in core_checksums_url plugin_checksums_url core_archive_url plugin_archive_url theme_archive_url; do
                echo "    $key: http://127.0.0.1:9/$key"
            done
        else
            echo "vendors: { enabled: false }"
        fi
        [ "$config" != everything-nosig ] || echo "signatures: { enabled: false }"
        echo "sites:"
        for ((i = 1; i <= SITES; i++)); do
            echo "  - name: $(site_name "$i")"
            echo "    root: $CORPUS/$(site_name "$i")"
            echo "    profile: $profile"
        done
    } >"$SWDIR/$config.yaml"
done
"$SW" -c "$SWDIR/everything.yaml" config-check >/dev/null \
    || die "sitewarden rejects $SWDIR/everything.yaml"

# ---- AIDE config: the attributes sitewarden records (type, permissions,
# inode, owner, group, size, mtime, ctime, symlink target) plus SHA-256.
# Not AIDE's default R group: that adds md5, link count and the X group
# (ACLs, SELinux, xattrs, ...), which sitewarden does not look at.
AIDEDIR=$BENCH_DIR/aide
rm -rf "$AIDEDIR"
mkdir -p "$AIDEDIR"
# AIDE selection lines are regular expressions.
CORPUS_RE=$(printf '%s' "$CORPUS" | sed 's/[][\\.*^$+?(){}|]/\\&/g')
[[ $CORPUS != *[[:space:]]* ]] || die "AIDE config: BENCH_DIR must not contain spaces"
cat >"$AIDEDIR/aide.conf" <<EOF
database_in=file:$AIDEDIR/aide.db
database_out=file:$AIDEDIR/aide.db.new
database_new=file:$AIDEDIR/aide.db.new
gzip_dbout=no
num_workers=$AIDE_WORKERS
BENCH = ftype+p+i+u+g+s+m+c+l+sha256
$CORPUS_RE BENCH
EOF
AIDE="aide --config $(q "$AIDEDIR/aide.conf")"
SWE="$(q "$SW") -c $(q "$SWDIR/everything.yaml")"
SWW="$(q "$SW") -c $(q "$SWDIR/wordpress.yaml")"
SWR="$(q "$SW") -c $(q "$SWDIR/wordpress-releases.yaml")"
SWN="$(q "$SW") -c $(q "$SWDIR/everything-nosig.yaml")"
QC=$(q "$CORPUS")

say "measurements ($RUNS runs each, median; one extra run for peak RSS)"
# Other work on the machine spoils the figures: say so where they are kept.
LOAD_BEFORE=$(cut -d' ' -f1 /proc/loadavg)
if awk -v l="$LOAD_BEFORE" 'BEGIN { exit !(l > 0.5) }'; then
    echo "   !! load average is $LOAD_BEFORE before measuring: other work is running"
fi

measure floor "hashing floor: find + xargs -P$NPROC openssl dgst -sha256" 0 \
    "find $QC -type f -print0 | xargs -0 -P$NPROC -n 500 openssl dgst -sha256 >/dev/null"
# Print fields that need lstat, so find cannot skip it on d_type alone.
measure walk "lstat walk: find -printf (same metadata)" 0 \
    "find $QC -printf '%y %i %m %U %G %s %T@ %C@ %l\n' >/dev/null"

measure aide_init "AIDE --init" 0 "$AIDE --init"
cp "$AIDEDIR/aide.db.new" "$AIDEDIR/aide.db"
measure aide_check "AIDE --check, unchanged" 0 "$AIDE --check"

# The first baseline of a site also fills the content store (one gzip file
# per distinct text): timed apart, from an empty state_dir.
PREPARE="rm -rf $(q "$SWDIR/state-everything") && sync" \
    measure swe_first "sitewarden first baseline, empty state_dir (everything)" 0 "$SWE baseline"
measure swe_base "sitewarden baseline (everything)" 0 "$SWE baseline"
measure swn_base "sitewarden baseline (everything, signature rules off)" 0 "$SWN baseline"
measure swe_check "sitewarden check, unchanged (everything)" 0 "$SWE check"
measure swe_rehash "sitewarden check --rehash (everything)" 0 "$SWE check --rehash"

measure sww_base "sitewarden baseline (wordpress)" 0 "$SWW baseline"
measure sww_check "sitewarden check, unchanged (wordpress)" 0 "$SWW check"
measure sww_rehash "sitewarden check --rehash (wordpress)" 0 "$SWW check --rehash"
# Release checks on, publisher unreachable: the first run asks each host
# once; the next ones find the host's down marker (10 minutes) and ask
# nothing. Both are timed: every run of the first from no marker.
PREPARE="rm -rf $(q "$SWDIR/state-wordpress-releases/vendor")" \
    measure swr_first "sitewarden baseline (wordpress, release checks, publisher unreachable, first lookup)" 0 "$SWR baseline"
measure swr_base "sitewarden baseline (wordpress, release checks, publisher unreachable, marked down)" 0 "$SWR baseline"

say "applying $N_CHANGES changes: $N_MODIFY .php modified, $N_ADD .php added in uploads, $N_DELETE deleted, $N_CHMOD chmod 0666"
apply_changes

measure aide_changed "AIDE --check, $N_CHANGES changes" nz "$AIDE --check"
measure swe_changed "sitewarden check, $N_CHANGES changes (everything)" 1 "$SWE check"
measure sww_changed "sitewarden check, $N_CHANGES changes (wordpress)" 1 "$SWW check"

# What each tool reported (not timed): a wrong count is a finding too.
paths_checked() { grep -o '[0-9]* paths checked' "$1" | awk '{ n += $1 } END { print n + 0 }'; }
SWE_PATHS=$(paths_checked "$RAW/swe_check.log")
SWW_PATHS=$(paths_checked "$RAW/sww_check.log")
SWE_ALERTS=$("$SW" -c "$SWDIR/everything.yaml" check --json 2>/dev/null | grep -c '^{' || true)
SWW_ALERTS=$("$SW" -c "$SWDIR/wordpress.yaml" check --json 2>/dev/null | grep -c '^{' || true)
AIDE_SUMMARY=$(awk '/^ *(Added|Removed|Changed) entries:[ \t]*[0-9]+/ { printf "%s%s %s", sep, tolower($1), $3; sep = ", " }' "$RAW/aide_changed.log")

revert_changes

# ================================================================= report

# ratio A B: A / B with 2 decimals, or "n/a"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'; }
# meets VALUE OP TARGET -> yes/no
meets() { awk -v v="$1" -v t="$3" -v op="$2" 'BEGIN { if (v == "n/a") { print "n/a"; exit } r = (op == ">=") ? (v >= t) : (op == "<=") ? (v <= t) : (v < t); print r ? "yes" : "NO" }'; }

declare -a RATIO_ROWS=()
add_ratio() { # TEXT VALUE SUFFIX OP TARGET
    RATIO_ROWS+=("$1|$2$3|$4 $5$3|$(meets "$2" "$4" "$5")")
}
r=$(ratio "${MEDIAN[aide_init]}" "${MEDIAN[swe_base]}")
add_ratio "baseline (everything): times faster than AIDE --init" "$r" x ">=" 5
r=$(ratio "${MEDIAN[swe_base]}" "${MEDIAN[floor]}")
add_ratio "baseline (everything): times the hashing floor" "$r" x "<=" 1.2
r=$(ratio "${MEDIAN[swn_base]}" "${MEDIAN[floor]}")
add_ratio "baseline (everything, signature rules off): times the hashing floor" "$r" x "<=" 1.2
r=$(ratio "${MEDIAN[swe_first]}" "${MEDIAN[floor]}")
add_ratio "first baseline, empty state_dir (everything): times the hashing floor" "$r" x "<=" 1.3
r=$(ratio "${MEDIAN[swr_first]}" "${MEDIAN[sww_base]}")
add_ratio "baseline (wordpress), publisher unreachable, first lookup: times the run without release checks" "$r" x "<=" 1.3
r=$(ratio "${MEDIAN[swr_base]}" "${MEDIAN[sww_base]}")
add_ratio "baseline (wordpress), publisher unreachable, marked down: times the run without release checks" "$r" x "<=" 1.3
r=$(ratio "${MEDIAN[aide_check]}" "${MEDIAN[swe_check]}")
add_ratio "check, unchanged (everything): times faster than AIDE --check" "$r" x ">=" 20
r=$(ratio "${MEDIAN[aide_check]}" "${MEDIAN[sww_check]}")
add_ratio "check, unchanged (wordpress): times faster than AIDE --check" "$r" x ">=" 20
r=$(ratio "${MEDIAN[swe_rehash]}" "${MEDIAN[floor]}")
add_ratio "check --rehash (everything): times the hashing floor" "$r" x "<=" 1.5
r=$(ratio "${MEDIAN[aide_changed]}" "${MEDIAN[swe_changed]}")
RATIO_ROWS+=("check, $N_CHANGES changes (everything): times faster than AIDE --check|${r}x|-|-")
r=$(ratio "${RSS_MB[swe_base]}" "${RSS_MB[aide_init]}")
add_ratio "peak RSS, baseline (everything) / AIDE --init" "$r" "" "<" 1
r=$(ratio "${RSS_MB[swe_check]}" "${RSS_MB[aide_check]}")
add_ratio "peak RSS, check unchanged (everything) / AIDE --check" "$r" "" "<" 1
r=$(ratio "${RSS_MB[swe_rehash]}" "${RSS_MB[aide_check]}")
add_ratio "peak RSS, check --rehash (everything) / AIDE --check" "$r" "" "<" 1

secs() { # ID: the median, 3 decimals
    awk -v m="${MEDIAN[$1]}" 'BEGIN { if (m == "" || m == "null") print "n/a"; else printf "%.3f", m }'
}
exit_text() { # ID
    if [ "${EXIT_OK[$1]}" = yes ]; then echo "${EXIT[$1]}"; else echo "${EXIT[$1]} (unexpected)"; fi
}

# Terminal
LOAD_AFTER=$(cut -d' ' -f1 /proc/loadavg)
SMOKE=
if [ "$SITES" -lt 40 ] || [ "$RUNS" -lt 3 ]; then
    SMOKE="smoke run ($SITES sites, $RUNS run(s)): not figures to publish"
fi

say "results: $CORPUS_DESC; median of $RUNS run(s), warm cache"
printf '%-52s %10s %10s  %s\n' "measurement" "median s" "peak MB" "exit"
printf '%-52s %10s %10s  %s\n' "-----------" "--------" "-------" "----"
for id in "${ROW_IDS[@]}"; do
    printf '%-52s %10s %10s  %s\n' "${LABEL[$id]}" "$(secs "$id")" "${RSS_MB[$id]:-n/a}" "$(exit_text "$id")"
done
echo
printf '%-64s %9s %9s  %s\n' "ratio" "value" "target" "met"
printf '%-64s %9s %9s  %s\n' "-----" "-----" "------" "---"
for row in "${RATIO_ROWS[@]}"; do
    IFS='|' read -r text value target met <<<"$row"
    printf '%-64s %9s %9s  %s\n' "$text" "$value" "$target" "$met"
done
echo
echo "paths watched: sitewarden everything=$SWE_PATHS, wordpress=$SWW_PATHS"
echo "alerts on the $N_CHANGES changes: sitewarden everything=$SWE_ALERTS, wordpress=$SWW_ALERTS; AIDE: ${AIDE_SUMMARY:-no summary}"
echo "load average before / after: $LOAD_BEFORE / $LOAD_AFTER"
[ -z "$SMOKE" ] || echo "$SMOKE"

# Markdown
COMMIT=$(checkout_commit)
{
    md_head "sitewarden baseline benchmark" "$SMOKE"
    echo "- sitewarden: $SW_VERSION, commit $COMMIT"
    echo "- AIDE: $AIDE_VERSION, num_workers=$AIDE_WORKERS, rule \`ftype+p+i+u+g+s+m+c+l+sha256\`"
    echo "- Corpus: $CORPUS_DESC (Debian's WordPress core with wordpress-l10n's language packs${EXTRA_PLUGINS:+, the plugin folders $EXTRA_PLUGINS}, plus $UPLOADS_PER_SITE uploads of 50-300 KB and $CACHE_PER_SITE cached pages per site)"
    echo "- Median of $RUNS run(s) with hyperfine, warm page cache; peak RSS from one more run under \`/usr/bin/time -v\`."
    echo "- Load average (1 min) before / after: $LOAD_BEFORE / $LOAD_AFTER."
    echo "- Profiles: \`everything\` checks every file, like AIDE; \`wordpress\` is the built-in profile (core, plugins, themes; code only in uploads and caches)."
    echo "- Changes: $N_MODIFY .php files modified, $N_ADD .php files added in uploads, $N_DELETE deleted, $N_CHMOD made 0666."
    echo
    echo "| Measurement | Median (s) | Peak RSS (MB) | Exit |"
    echo "|---|---:|---:|---:|"
    for id in "${ROW_IDS[@]}"; do
        printf '| %s | %s | %s | %s |\n' "${LABEL[$id]}" "$(secs "$id")" "${RSS_MB[$id]:-n/a}" "$(exit_text "$id")"
    done
    echo
    echo "| Ratio | Value | Target | Met |"
    echo "|---|---:|---:|:---:|"
    for row in "${RATIO_ROWS[@]}"; do
        IFS='|' read -r text value target met <<<"$row"
        echo "| $text | $value | $target | $met |"
    done
    echo
    echo "Paths watched by sitewarden: \`everything\` $SWE_PATHS, \`wordpress\` $SWW_PATHS."
    echo
    echo "Alerts on the $N_CHANGES changes: sitewarden \`everything\` $SWE_ALERTS, \`wordpress\` $SWW_ALERTS; AIDE: ${AIDE_SUMMARY:-no summary}."
} >"$RESULTS_MD"
echo "Markdown table written to $RESULTS_MD (raw results in $RAW)"
