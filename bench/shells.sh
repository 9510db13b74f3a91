#!/usr/bin/env bash
# Known-bad benchmark: how many real web shells `sitewarden verify` finds and
# how many files of real applications it wrongly flags, beside `yara` with
# any peer rule sets given, in one run over the same files.
#
#   bench/shells.sh [--peer NAME=RULES[,RULES...]]... [--rules-dir DIR]
#                   [--benign DIR]... SHELL_DIR...
#
#   SHELL_DIR   a folder of samples (every file in it, at any depth, is one
#               sample that should be detected)
#   --benign    a folder of real application code (every file the
#               generic-php profile watches should be left alone)
#   --peer      a peer engine: `yara` with these rule files (the externals
#               filename, filepath, extension, filetype and owner that some
#               community rules read are defined empty)
#   --rules-dir the admin's rules (`signatures.rules_dir`) to add to the
#               shipped ones
#
# Environment: SITEWARDEN_BIN (default: build target/release), OUT_DIR
# (default /var/tmp/sitewarden-bench/shells: the raw verify and yara output,
# misses.txt and false-positives.txt).
#
# Prints Markdown tables: detection per folder and engine, false positives
# per folder and engine, files per rule, time per engine; then every missed
# sample by SHA-256 with the folder it came from. Nothing of the samples is
# kept in the repository: the script takes folders.

set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/corpus.sh"

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT_DIR=${OUT_DIR:-/var/tmp/sitewarden-bench/shells}
PEERS=()
BENIGN=()
SHELLS=()
RULES_DIR=
while [ $# -gt 0 ]; do
    case $1 in
        --peer) PEERS+=("${2:?--peer needs NAME=RULES}"); shift 2 ;;
        --benign) BENIGN+=("$(cd "${2:?--benign needs a folder}" && pwd)"); shift 2 ;;
        --rules-dir) RULES_DIR=$(cd "${2:?--rules-dir needs a folder}" && pwd); shift 2 ;;
        -h|--help) usage; exit 0 ;;
        -*) die "unknown argument '$1'" ;;
        *) SHELLS+=("$(cd "$1" && pwd)"); shift ;;
    esac
done
[ ${#SHELLS[@]} -gt 0 ] || [ ${#BENIGN[@]} -gt 0 ] || { usage >&2; exit 2; }
if [ ${#PEERS[@]} -gt 0 ]; then
    command -v yara >/dev/null || install_missing yara
fi

build_sitewarden
rm -rf "$OUT_DIR"
mkdir -p "$OUT_DIR"

# One site per folder; `generic-php` watches code, scripts and .htaccess.
# Every file of a sample folder is a sample: a `static`-like catch-all
# profile of the bench's own keeps a sample named `.txt` in scope.
mkdir -p "$OUT_DIR/profiles"
cat >"$OUT_DIR/profiles/every-file.yaml" <<'EOF'
description: every file is code (samples)
restrict: ["**"]
default_severity: high
EOF
{
    echo "state_dir: $OUT_DIR/state"
    echo "vendors: { enabled: false }"
    if [ -n "$RULES_DIR" ]; then
        echo "signatures: { rules_dir: $RULES_DIR }"
    else
        echo "signatures: { rules_dir: $OUT_DIR/no-admin-rules }"
    fi
    echo "alerts: { log: $OUT_DIR/alerts.jsonl }"
    echo "sites:"
    i=0
    for d in "${SHELLS[@]}"; do
        i=$((i + 1))
        echo "  - { name: shells$i, root: '$d', profile: every-file }"
    done
    i=0
    for d in "${BENIGN[@]}"; do
        i=$((i + 1))
        echo "  - { name: benign$i, root: '$d', profile: generic-php }"
    done
} >"$OUT_DIR/sitewarden.yaml"

# The files each folder holds, as its engine sees them: the samples are
# every regular file, the benign files those `verify` checked.
say "sitewarden verify"
start=$(now)
set +e
"$SW" -c "$OUT_DIR/sitewarden.yaml" verify --json >"$OUT_DIR/verify.jsonl" 2>"$OUT_DIR/verify.err"
rc=$?
set -e
echo "sitewarden $(since "$start")" >"$OUT_DIR/times.txt"
[ $rc -le 1 ] || die "verify exited $rc: $(tail -n 3 "$OUT_DIR/verify.err")"
"$SW" -c "$OUT_DIR/sitewarden.yaml" verify >"$OUT_DIR/verify.txt" 2>&1 || true

for p in "${PEERS[@]}"; do
    name=${p%%=*}
    IFS=, read -r -a rules <<<"${p#*=}"
    say "yara: $name"
    start=$(now)
    for d in "${SHELLS[@]}" "${BENIGN[@]}"; do
        yara -r -a 60 -d filename= -d filepath= -d extension= -d filetype= -d owner= \
            "${rules[@]}" "$d" 2>>"$OUT_DIR/yara-$name.err" || true
    done >"$OUT_DIR/yara-$name.txt"
    echo "$name $(since "$start")" >>"$OUT_DIR/times.txt"
done

python3 - "$OUT_DIR" "${#SHELLS[@]}" "${SHELLS[@]}" "${BENIGN[@]}" <<'EOF'
import hashlib, json, os, sys
from collections import Counter, defaultdict

out, n = sys.argv[1], int(sys.argv[2])
shells, benign = sys.argv[3:3 + n], sys.argv[3 + n:]
peers = sorted(f[5:-4] for f in os.listdir(out) if f.startswith("yara-") and f.endswith(".txt"))

def files(d):
    for top, _, names in os.walk(d):
        for f in names:
            p = os.path.join(top, f)
            if os.path.isfile(p) and not os.path.islink(p):
                yield p

# sitewarden: path -> rules; the paths verify checked (every line of the
# text report names a file it judged only when it does not match, so the
# checked count of a benign folder is read from its summary line).
hits, unscanned = defaultdict(set), set()
for line in open(os.path.join(out, "verify.jsonl")):
    r = json.loads(line)
    if r.get("result") == "signature":
        hits[r["path"]].update(r.get("signatures") or [])
    elif r.get("result") == "unscanned":
        unscanned.add(r["path"])
checked = {}
for line in open(os.path.join(out, "verify.txt")):
    if ": " in line and " files checked" in line:
        site, rest = line.split(": ", 1)
        checked[site] = int(rest.split()[0])

engines = {"sitewarden": hits}
for p in peers:
    h = defaultdict(set)
    for line in open(os.path.join(out, f"yara-{p}.txt")):
        parts = line.rstrip("\n").split(" ", 1)
        if len(parts) == 2 and parts[1].startswith("/"):
            h[parts[1]].add(parts[0])
    engines[p] = h

def under(path, d):
    return path.startswith(d.rstrip("/") + "/")

names = list(engines)

def header(title, count):
    print(f"## {title}\n")
    print(f"| folder | {count} | " + " | ".join(names) + " |")
    print("|---|---:|" + "---:|" * len(names))

header("Web shells detected", "samples")
tot, tot_hit = 0, Counter()
misses = []
for i, d in enumerate(shells, 1):
    fs = list(files(d))
    row = []
    for e in names:
        k = sum(1 for f in fs if f in engines[e])
        tot_hit[e] += k
        row.append(f"{k} ({100 * k / max(len(fs), 1):.1f} %)")
    tot += len(fs)
    misses += [(d, f) for f in fs if f not in hits]
    print(f"| {d} | {len(fs)} | " + " | ".join(row) + " |")
print(f"| **all** | {tot} | " + " | ".join(f"**{tot_hit[e]} ({100 * tot_hit[e] / max(tot, 1):.1f} %)**" for e in names) + " |")

print()
header("False positives on real applications", "files checked")
tot, tot_fp = 0, Counter()
fps = []
for i, d in enumerate(benign, 1):
    n_checked = checked.get(f"benign{i}", 0)
    row = []
    for e in names:
        k = sum(1 for p in engines[e] if under(p, d))
        tot_fp[e] += k
        row.append(f"{k} ({100 * k / max(n_checked, 1):.3f} %)")
        if e == "sitewarden":
            fps += [(p, sorted(engines[e][p])) for p in engines[e] if under(p, d)]
    tot += n_checked
    print(f"| {d} | {n_checked} | " + " | ".join(row) + " |")
if benign:
    print(f"| **all** | {tot} | " + " | ".join(f"**{tot_fp[e]} ({100 * tot_fp[e] / max(tot, 1):.3f} %)**" for e in names) + " |")

print("\n## sitewarden: files per rule\n")
print("| rule | samples | benign files |")
print("|---|---:|---:|")
per = defaultdict(lambda: [0, 0])
for p, rules in hits.items():
    bad = any(under(p, d) for d in shells)
    for r in {r.split(":")[0] for r in rules}:
        per[r][0 if bad else 1] += 1
for r, (s, b) in sorted(per.items(), key=lambda x: (-x[1][0], x[0])):
    print(f"| {r} | {s} | {b} |")

print("\n## Time\n")
print("| engine | seconds |")
print("|---|---:|")
for line in open(os.path.join(out, "times.txt")):
    e, s = line.split()
    print(f"| {e} | {float(s):.2f} |")

with open(os.path.join(out, "misses.txt"), "w") as m:
    for d, f in misses:
        sha = hashlib.sha256(open(f, "rb").read()).hexdigest()
        m.write(f"{sha}  {d}  {os.path.relpath(f, d)}\n")
with open(os.path.join(out, "false-positives.txt"), "w") as m:
    for p, rules in sorted(fps):
        m.write(f"{p}  {','.join(rules)}\n")
print(f"\n{len(misses)} missed samples (SHA-256, folder): {out}/misses.txt")
print(f"{len(fps)} false positives (path, rules): {out}/false-positives.txt")
if unscanned:
    print(f"{len(unscanned)} files could not be scanned (see {out}/verify.jsonl)")
EOF
