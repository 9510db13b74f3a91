#!/usr/bin/env bash
# Signatures benchmark: what scanning every file with the YARA-X rules
# costs, beside the same run without them (`signatures: { enabled: false }`),
# in one run:
#   1. `sitewarden baseline` of the WordPress corpus (hashing, and the
#      verify that scans every file) — target: within 1.5x;
#   2. creation -> alert of new .php files under the daemon (one site, a
#      copy of the corpus's first) — target: p99 within 10 ms.
#
#   bench/signatures.sh [--sites N] [--runs N] [--quick]
#
# Environment:
#   SITES=40  RUNS=3  LATENCY_FILES=300  PAUSE_MS=20
#   BENCH_DIR=/var/tmp/sitewarden-bench   SITEWARDEN_BIN=
#
# The table is written to bench/results-signatures.md.

set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/corpus.sh"

SITES=${SITES:-40}
RUNS=${RUNS:-3}
LATENCY_FILES=${LATENCY_FILES:-300}
PAUSE_MS=${PAUSE_MS:-20}
BENCH_DIR=${BENCH_DIR:-/var/tmp/sitewarden-bench}
while [ $# -gt 0 ]; do
    case $1 in
        --sites) SITES=${2:?}; shift 2 ;;
        --runs) RUNS=${2:?}; shift 2 ;;
        --quick) SITES=2; RUNS=1; LATENCY_FILES=50; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown argument '$1'" ;;
    esac
done
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CORPUS=$BENCH_DIR/corpus
WORK=$BENCH_DIR/signatures
OUT=$REPO/bench/results-signatures.md
HELPER=$REPO/bench/realtime_helper.py
command -v hyperfine >/dev/null || die "hyperfine is missing (apt-get install hyperfine)"

say "corpus: $SITES sites"
build_corpus
build_sitewarden
rm -rf "$WORK"
mkdir -p "$WORK"
find "$CORPUS" -type f -print0 | xargs -0 -n 500 cat >/dev/null

config() { # NAME ENABLED ROOTS...
    local name=$1 enabled=$2 i=0
    shift 2
    {
        echo "state_dir: $WORK/state-$name"
        echo "vendors: { enabled: false }"
        echo "signatures: { enabled: $enabled, rules_dir: $WORK/no-admin-rules }"
        echo "alerts: { log: $WORK/alerts-$name.jsonl }"
        echo "sites:"
        for root in "$@"; do
            i=$((i + 1))
            echo "  - { name: s$i, root: $root, profile: wordpress }"
        done
    } >"$WORK/$name.yaml"
    "$SW" -c "$WORK/$name.yaml" config-check >/dev/null || die "sitewarden rejects $WORK/$name.yaml"
}
roots=()
for ((i = 1; i <= SITES; i++)); do roots+=("$CORPUS/$(site_name "$i")"); done
config on true "${roots[@]}"
config off false "${roots[@]}"

say "baseline of $SITES sites, with and without signatures ($RUNS runs each)"
hyperfine --style basic --runs "$RUNS" --warmup 1 --export-json "$WORK/baseline.json" \
    -n off "$SW -c $WORK/off.yaml baseline" \
    -n on "$SW -c $WORK/on.yaml baseline" >"$WORK/hyperfine.log" 2>&1 || die "hyperfine: $(tail -5 "$WORK/hyperfine.log")"
FILES=$({ "$SW" -c "$WORK/on.yaml" verify 2>/dev/null || true; } | grep -o '^s[0-9]*: [0-9]* files' | awk '{ n += $2 } END { print n }')
HITS=$({ "$SW" -c "$WORK/on.yaml" verify 2>/dev/null || true; } | grep -c '^signature' || true)
note "verify: $FILES files scanned, $HITS signature matches (the corpus is Debian's WordPress: 0 expected)"

say "latency: $LATENCY_FILES new .php files, one every $PAUSE_MS ms, with and without signatures"
cp -a "$CORPUS/$(site_name 1)" "$WORK/site"
mkdir -p "$WORK/site/wp-content/plugins/bench"
for mode in off on; do
    config "lat-$mode" "$([ $mode = on ] && echo true || echo false)" "$WORK/site"
    rm -f "$WORK/site/wp-content/plugins/bench/"*
    "$SW" -c "$WORK/lat-$mode.yaml" baseline >/dev/null 2>&1
    "$SW" -c "$WORK/lat-$mode.yaml" run 2>"$WORK/daemon-$mode.log" &
    pid=$!
    wait_line "$WORK/daemon-$mode.log" 'ready' 120 "$pid" 0.1 || die "the daemon did not get ready"
    python3 "$HELPER" create-latency "$WORK/site/wp-content/plugins/bench" "$LATENCY_FILES" "$PAUSE_MS" "$WORK/created-$mode.tsv"
    python3 "$HELPER" wait alerts "$WORK/alerts-lat-$mode.jsonl" "$WORK/site/wp-content/plugins/bench" "$LATENCY_FILES" 3 60 >/dev/null
    kill "$pid"; wait "$pid" 2>/dev/null || true
done

say "baseline of one site (every content distinct), with and without signatures ($RUNS runs each)"
hyperfine --style basic --runs "$RUNS" --warmup 1 --export-json "$WORK/one.json" \
    -n off "$SW -c $WORK/lat-off.yaml baseline" \
    -n on "$SW -c $WORK/lat-on.yaml baseline" >"$WORK/hyperfine-one.log" 2>&1 || die "hyperfine: $(tail -5 "$WORK/hyperfine-one.log")"

python3 - "$WORK" "$OUT" "$SITES" "$FILES" "$RUNS" "$LATENCY_FILES" "$(checkout_commit)" "$SW_VERSION" <<'EOF'
import datetime, json, sys
work, out, sites, files, runs, nlat, commit, version = sys.argv[1:9]
res = {r["command"]: r["median"] for r in json.load(open(f"{work}/baseline.json"))["results"]}
one = {r["command"]: r["median"] for r in json.load(open(f"{work}/one.json"))["results"]}
def iso_ms(s):
    return int(datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc).timestamp() * 1000)
lat = {}
for mode in ("off", "on"):
    created = {}
    for line in open(f"{work}/created-{mode}.tsv"):
        t0, _, p = line.rstrip("\n").split("\t", 2)
        created[p] = int(t0) // 1_000_000
    seen = {}
    for line in open(f"{work}/alerts-lat-{mode}.jsonl"):
        r = json.loads(line)
        if r["path"] in created and r["path"] not in seen:
            seen[r["path"]] = iso_ms(r["time"]) - created[r["path"]]
    v = sorted(seen.values())
    q = lambda p: v[min(len(v) - 1, int(len(v) * p / 100))] if v else float("nan")
    lat[mode] = (len(v), q(50), q(99), v[-1] if v else float("nan"))
ratio = res["on"] / res["off"]
d99 = lat["on"][2] - lat["off"][2]
text = [
    "# Signatures: cost beside the run without them",
    "",
    f"- {sites} WordPress sites of the corpus, {files} watched files scanned by `verify`; baseline: {runs} runs each, median, warm page cache.",
    "- The 40 sites run the same WordPress: a content already scanned (known by its SHA-256) is not scanned again, as on a server",
    "  where many sites run the same releases; the one-site row has no such repeats.",
    f"- Latency: {nlat} new .php files in one site, creation (before open) to the alert record's time (ms resolution).",
    f"- `{version}`, commit {commit}. Printed by `bench/signatures.sh`.",
    "",
    "| measurement | without signatures | with signatures | |",
    "|---|---|---|---|",
    f"| baseline, {sites} sites (s) | {res['off']:.3f} | {res['on']:.3f} | {ratio:.2f}x (target <= 1.5x) |",
    f"| baseline, 1 site, every content distinct (s) | {one['off']:.3f} | {one['on']:.3f} | {one['on'] / one['off']:.2f}x |",
    f"| creation -> alert p50 (ms) | {lat['off'][1]} | {lat['on'][1]} | |",
    f"| creation -> alert p99 (ms) | {lat['off'][2]} | {lat['on'][2]} | {d99:+} ms (target within 10) |",
    f"| creation -> alert max (ms) | {lat['off'][3]} | {lat['on'][3]} | |",
    f"| files alerted | {lat['off'][0]}/{nlat} | {lat['on'][0]}/{nlat} | |",
]
open(out, "w").write("\n".join(text) + "\n")
print("\n".join(text))
EOF
