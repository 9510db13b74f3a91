#!/usr/bin/env bash
# The speeds the integration tests measure, held to their targets here and
# not in the tests: a test asserts what the product did and fails only on a
# hang (tests/common/mod.rs, HANG); the figures it prints (`figure:` lines)
# are collected by this script, from a release build, and printed beside
# their targets.
#
#   bash bench/test-figures.sh            # every test that prints a figure
#   RUNS=3 bash bench/test-figures.sh     # each figure's median of 3 runs
#
# Run as root (the realtime tests use fanotify as root, as the daemon does).
# Exits 1 when a median misses its target, so a regression is plain to see.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-1}
TESTS=(--test daemon --test lifecycle --test realtime_attacks --test releases --test supervision --test vendor --test actor)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# Only the test binaries that print figures (each is a thin-LTO link).
cargo test --release --locked --features fault-injection "${TESTS[@]}" --no-run >/dev/null 2>&1 ||
    cargo test --release --locked --features fault-injection "${TESTS[@]}" --no-run
for run in $(seq "$RUNS"); do
    echo "run $run of $RUNS ..." >&2
    cargo test --release --locked --features fault-injection "${TESTS[@]}" -- --nocapture --test-threads=1 \
        >"$out/run$run.log" 2>&1 || { echo "tests failed in run $run; see below" >&2; tail -40 "$out/run$run.log" >&2; exit 2; }
done
cat "$out"/run*.log | grep -h '^figure: ' | python3 -c '
import re, sys, statistics
figs = {}
for line in sys.stdin:
    line = line.strip()
    m = re.match(r"figure: (.*): ([0-9.]+) ms \(target ([0-9.]+) ms\)", line)
    if m:  # a duration: lower is better
        figs.setdefault(m.group(1), ("ms", float(m.group(3)), []))[2].append(float(m.group(2)))
    m = re.match(r"figure: (.*): ([0-9]+) of ([0-9]+) \(target ([0-9]+)\)", line)
    if m:  # a count: higher is better
        figs.setdefault(m.group(1), (f"of {m.group(3)}", float(m.group(4)), []))[2].append(float(m.group(2)))
missed = 0
print(f"| figure | median | runs | target | |")
print(f"|---|---:|---:|---:|---|")
for name, (unit, target, vals) in figs.items():
    med = statistics.median(vals)
    ok = med < target if unit == "ms" else med >= target
    missed += not ok
    verdict = "within" if ok else ("OVER" if unit == "ms" else "UNDER")
    print(f"| {name} | {med:.1f} {unit} | {len(vals)} | {target:.0f} {unit} | {verdict} |")
print(f"\n{len(figs)} figures, {missed} over target")
sys.exit(1 if missed else 0)
'
