#!/usr/bin/env bash
# Verify benchmark: `sitewarden verify` (every file of the corpus against
# the published releases of WordPress core, its plugin and its theme) beside
# an unchanged `sitewarden check` of the same sites, with a warm manifest
# cache. The releases are served by a publisher on loopback, built from
# Debian's wordpress tree (the corpus's own source): checksums as
# api.wordpress.org and downloads.wordpress.org give them, and the archives.
#
#   bench/verify.sh [--sites N] [--runs N] [--quick]
#
# Environment:
#   SITES=40          number of WordPress sites in the corpus
#   RUNS=5            hyperfine runs per measurement (the median is reported)
#   BENCH_DIR=/var/tmp/sitewarden-bench   corpus and results
#   SITEWARDEN_BIN=   use this binary instead of building target/release
#
# The table is written to bench/results-verify.md.

set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/corpus.sh"

SITES=${SITES:-40}
RUNS=${RUNS:-5}
BENCH_DIR=${BENCH_DIR:-/var/tmp/sitewarden-bench}
while [ $# -gt 0 ]; do
    case $1 in
        --sites) SITES=${2:?--sites needs a number}; shift 2 ;;
        --runs) RUNS=${2:?--runs needs a number}; shift 2 ;;
        --quick) SITES=2; RUNS=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown argument '$1'" ;;
    esac
done
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CORPUS=$BENCH_DIR/corpus
WORK=$BENCH_DIR/verify
OUT=$REPO/bench/results-verify.md
command -v hyperfine >/dev/null || die "hyperfine is missing (apt-get install hyperfine)"

say "corpus: $SITES sites"
build_corpus
build_sitewarden

say "publisher: Debian's wordpress tree as published releases"
rm -rf "$WORK"
mkdir -p "$WORK/web"
python3 - "$WORK/web" <<'EOF'
import hashlib, json, os, re, sys, zipfile
web, src = sys.argv[1], "/usr/share/wordpress"
def files(top):
    for d, _, names in os.walk(top):
        for n in names:
            p = os.path.join(d, n)
            if os.path.isfile(p) and not os.path.islink(p):
                yield os.path.relpath(p, top), p
def version(path, pattern):
    return re.search(pattern, open(path, errors="replace").read(), re.M).group(1)
wp = version(f"{src}/wp-includes/version.php", r"^\$wp_version = '([^']+)'")
core = {r: p for r, p in files(src) if not r.startswith("wp-content/") and r != "wp-config.php"}
sums = {r: hashlib.md5(open(p, "rb").read()).hexdigest() for r, p in core.items()}
json.dump({"checksums": {wp: sums}}, open(f"{web}/core.json", "w"))
os.makedirs(f"{web}/release", exist_ok=True)
with zipfile.ZipFile(f"{web}/release/wordpress-{wp}.zip", "w", zipfile.ZIP_DEFLATED) as z:
    for r, p in core.items():
        z.write(p, f"wordpress/{r}")
plug = f"{src}/wp-content/plugins/akismet"
pv = version(f"{plug}/akismet.php", r"Version:\s*(\S+)")
os.makedirs(f"{web}/plugin-checksums/akismet", exist_ok=True)
pf = {r: open(p, "rb").read() for r, p in files(plug)}
json.dump({"files": {r: {"md5": hashlib.md5(b).hexdigest(), "sha256": hashlib.sha256(b).hexdigest()} for r, b in pf.items()}},
          open(f"{web}/plugin-checksums/akismet/{pv}.json", "w"))
os.makedirs(f"{web}/plugin", exist_ok=True)
with zipfile.ZipFile(f"{web}/plugin/akismet.{pv}.zip", "w", zipfile.ZIP_DEFLATED) as z:
    for r, p in files(plug):
        z.write(p, f"akismet/{r}")
theme = f"{src}/wp-content/themes/twentytwentythree"
tv = version(f"{theme}/style.css", r"^Version:\s*(\S+)")
os.makedirs(f"{web}/theme", exist_ok=True)
with zipfile.ZipFile(f"{web}/theme/twentytwentythree.{tv}.zip", "w", zipfile.ZIP_DEFLATED) as z:
    for r, p in files(theme):
        z.write(p, f"twentytwentythree/{r}")
print(f"   wordpress {wp}: {len(core)} files; akismet {pv}: {len(pf)}; twentytwentythree {tv}")
EOF
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -m http.server "$PORT" --bind 127.0.0.1 --directory "$WORK/web" >/dev/null 2>&1 &
PUBLISHER=$!
trap 'kill $PUBLISHER 2>/dev/null || true' EXIT
until (echo >/dev/tcp/127.0.0.1/$PORT) 2>/dev/null; do sleep 0.1; done

CFG=$WORK/sitewarden.yaml
{
    echo "state_dir: $WORK/state"
    echo "alerts: { log: $WORK/alerts.jsonl }"
    echo "vendors:"
    echo "  wordpress:"
    echo "    core_checksums_url: http://127.0.0.1:$PORT/core.json"
    echo "    plugin_checksums_url: http://127.0.0.1:$PORT/plugin-checksums"
    echo "    core_archive_url: http://127.0.0.1:$PORT/release"
    echo "    plugin_archive_url: http://127.0.0.1:$PORT/plugin"
    echo "    theme_archive_url: http://127.0.0.1:$PORT/theme"
    echo "sites:"
    for ((i = 1; i <= SITES; i++)); do
        n=$(site_name "$i")
        echo "  - { name: $n, root: $CORPUS/$n, profile: wordpress }"
    done
} >"$CFG"

say "baseline (hashes the corpus, verifies it, fills the manifest cache)"
"$SW" -c "$CFG" baseline 2>"$WORK/baseline.log" || die "baseline failed: $(tail -3 "$WORK/baseline.log")"
grep -c 'verify: .*all match' "$WORK/baseline.log" | xargs -I{} echo "   {} of $SITES sites: all match"
cat /dev/null >"$WORK/verify.out"
"$SW" -c "$CFG" verify >"$WORK/verify.out" 2>&1 || die "verify found differences: $(head -5 "$WORK/verify.out")"
FILES=$(grep -o '^[^:]*: [0-9]* files checked' "$WORK/verify.out" | awk '{ n += $2 } END { print n }')

say "hyperfine: check, verify, verify --rehash ($RUNS runs each)"
hyperfine --style basic --runs "$RUNS" --warmup 1 --export-json "$WORK/hyperfine.json" \
    -n check "$SW -c $CFG check" \
    -n verify "$SW -c $CFG verify" \
    -n verify-rehash "$SW -c $CFG verify --rehash" >"$WORK/hyperfine.log"

python3 - "$WORK/hyperfine.json" "$OUT" "$SITES" "$FILES" "$RUNS" "$(checkout_commit)" "$SW_VERSION" <<'EOF'
import json, sys
res = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
out, sites, files, runs, commit, version = sys.argv[2:8]
med = {k: r["median"] for k, r in res.items()}
ratio = med["verify"] / med["check"]
rows = [
    ("sitewarden check, unchanged", med["check"], ""),
    ("sitewarden verify (warm manifest cache)", med["verify"], f"{ratio:.2f}x check (target < 2x)"),
    ("sitewarden verify --rehash", med["verify-rehash"], f"{med['verify-rehash'] / med['check']:.2f}x check"),
]
text = [
    "# verify beside check",
    "",
    f"- {sites} WordPress sites of the corpus ({files} code files verified), {runs} runs each, median, warm page cache.",
    "- Releases (core checksums and archive, the plugin's checksums and archive, the theme's archive) served on loopback;",
    "  the manifest cache is warm (filled by `baseline`).",
    f"- `{version}`, commit {commit}. Printed by `bench/verify.sh`.",
    "",
    "| run | median (s) | |",
    "|---|---|---|",
] + [f"| {n} | {m:.3f} | {x} |" for n, m, x in rows]
open(out, "w").write("\n".join(text) + "\n")
print("\n".join(text))
EOF
