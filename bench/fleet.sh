#!/usr/bin/env bash
# Fleet simulation on one machine: DAEMONS sitewarden daemons (each its own
# config, state and alert log) on as many small sites, all forwarding to one
# Debian rsyslogd over TCP (RFC 5424, octet-counted, through the outbox).
# Each site gets CHANGES new PHP files, round robin across the sites; the
# collector is restarted halfway through. Printed: the records each daemon
# logged, the record ids the collector holds (and duplicates), the time from
# the last write to the last id at the collector, and each daemon's memory
# and CPU time.
#
#   bench/fleet.sh [--daemons N] [--changes N]
#
# Environment:
#   DAEMONS=20  CHANGES=50  FILES=200 (files per site at baseline)
#   SITEWARDEN_BIN=   use this binary instead of building target/release
#   RESTART=1   restart the collector halfway (0: leave it running)
#
# The table is printed; bench/results-fleet.md holds a run of each mode side
# by side (the restart, and RESTART=0 as the reference).

set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

DAEMONS=${DAEMONS:-20}
CHANGES=${CHANGES:-50}
FILES=${FILES:-200}
RESTART=${RESTART:-1}
while [ $# -gt 0 ]; do
    case $1 in
        --daemons) DAEMONS=${2:?}; shift 2 ;;
        --changes) CHANGES=${2:?}; shift 2 ;;
        -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
command -v rsyslogd >/dev/null || { echo "needs rsyslogd (apt-get install rsyslog)" >&2; exit 1; }
BIN=${SITEWARDEN_BIN:-}
if [ -z "$BIN" ]; then
    cargo build --release --quiet
    BIN=target/release/sitewarden
fi
BIN=$(readlink -f "$BIN")

exec python3 - "$BIN" "$DAEMONS" "$CHANGES" "$FILES" "$RESTART" <<'EOF'
import os, re, shutil, signal, socket, statistics, subprocess, sys, tempfile, time

BIN, DAEMONS, CHANGES, FILES, RESTART = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == "1"
top = tempfile.mkdtemp(prefix="sitewarden-fleet-")
col = os.path.join(top, "collector")
os.makedirs(os.path.join(col, "work"))
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
with open(os.path.join(col, "rsyslog.conf"), "w") as f:
    f.write(f'''global(workDirectory="{col}/work" processInternalMessages="on" net.enableDNS="off" maxMessageSize="64k")
template(name="raw" type="string" string="%rawmsg%\\n")
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="{port}" ruleset="r")
ruleset(name="r" queue.type="LinkedList" queue.size="100000" queue.timeoutShutdown="10000") {{
  action(type="omfile" file="{col}/received.log" template="raw")
}}
action(type="omfile" file="{col}/internal.log")
''')

def start_collector():
    before = open(os.path.join(col, "internal.log")).read().count("] start") if os.path.exists(os.path.join(col, "internal.log")) else 0
    env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
    p = subprocess.Popen(["rsyslogd", "-n", "-iNONE", "-f", os.path.join(col, "rsyslog.conf")], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t = time.time()
    while time.time() - t < 30:
        if os.path.exists(os.path.join(col, "internal.log")) and open(os.path.join(col, "internal.log")).read().count("] start") > before:
            return p
        time.sleep(0.02)
    sys.exit("rsyslogd did not start")

collector = start_collector()
daemons = []
for i in range(DAEMONS):
    d = os.path.join(top, f"d{i:02}")
    root = os.path.join(d, "root")
    for j in range(FILES):
        sub = os.path.join(root, "app", f"m{j % 10}")
        os.makedirs(sub, exist_ok=True)
        with open(os.path.join(sub, f"f{j}.php"), "w") as f:
            f.write(f"<?php // site {i} file {j}\n")
    os.makedirs(os.path.join(d, "rules"))
    cfg = os.path.join(d, "config.yaml")
    with open(cfg, "w") as f:
        f.write(f"""state_dir: {d}/state
vendors: {{ enabled: false }}
signatures: {{ rules_dir: {d}/rules }}
alerts:
  log: {d}/alerts.jsonl
  syslog: {{ host: 127.0.0.1, port: {port}, protocol: tcp }}
sites:
  - name: site{i:02}
    root: {root}
    profile: generic-php
""")
    subprocess.run([BIN, "-c", cfg, "baseline"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    err = open(os.path.join(d, "stderr.txt"), "w")
    p = subprocess.Popen([BIN, "-c", cfg, "run"], stdout=subprocess.DEVNULL, stderr=err)
    daemons.append((d, root, p))
for d, _, p in daemons:
    t = time.time()
    while "sitewarden: ready" not in open(os.path.join(d, "stderr.txt")).read():
        if time.time() - t > 120 or p.poll() is not None:
            sys.exit(f"daemon {d} not ready: " + open(os.path.join(d, "stderr.txt")).read())
        time.sleep(0.05)

def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0

def cpu_s(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

idle_rss = [rss_kib(p.pid) for _, _, p in daemons]
cpu0 = [cpu_s(p.pid) for _, _, p in daemons]
total = DAEMONS * CHANGES
t0 = time.time()
restarted = False
for k in range(CHANGES):
    for d, root, _ in daemons:
        sub = os.path.join(root, "app", "new")
        os.makedirs(sub, exist_ok=True)
        with open(os.path.join(sub, f"n{k:03}.php"), "w") as f:
            f.write(f"<?php echo {k};\n")
    time.sleep(0.01)
    if RESTART and not restarted and k == CHANGES // 2:
        collector.send_signal(signal.SIGTERM); collector.wait()
        time.sleep(0.5)
        collector = start_collector()
        restarted = True
t_written = time.time()

def logged():
    ids, n = set(), 0
    for d, _, _ in daemons:
        try:
            for line in open(os.path.join(d, "alerts.jsonl")):
                if "/app/new/" in line:
                    n += 1
                    ids.add(re.search(r'"id":"([0-9a-f]+)"', line).group(1))
        except FileNotFoundError:
            pass
    return n, ids

def received():
    try:
        text = open(os.path.join(col, "received.log"), errors="replace").read()
    except FileNotFoundError:
        return []
    return re.findall(r'\[sitewarden@32473 id="([0-9a-f]+)"', text)

deadline = time.time() + 600
while True:
    n, want = logged()
    got = received()
    if n >= total and want <= set(got):
        break
    if time.time() > deadline:
        break
    time.sleep(0.2)
t_done = time.time()
n, want = logged()
got = received()
held = len(want & set(got))
rss = [rss_kib(p.pid) for _, _, p in daemons]
cpu = [cpu_s(p.pid) - c for (_, _, p), c in zip(daemons, cpu0)]
for _, _, p in daemons:
    p.send_signal(signal.SIGTERM)
for _, _, p in daemons:
    p.wait()
collector.send_signal(signal.SIGTERM); collector.wait()
failed = sum(open(os.path.join(d, "stderr.txt")).read().count("stay queued") for d, _, _ in daemons)

rows = [
    ("daemons (one site each)", f"{DAEMONS}"),
    ("files per site at baseline", f"{FILES}"),
    ("changes (new PHP files)", f"{total} ({CHANGES} per site)"),
    ("collector restarted halfway", "yes" if RESTART else "no"),
    ("records in the daemons' alert logs", f"{n}"),
    ("record ids the collector holds", f"{held} of {len(want)}"),
    ("messages received (duplicates)", f"{len(got)} ({len(got) - len(set(got))})"),
    ("deliveries retried (collector down)", f"{failed}"),
    ("burst written in", f"{t_written - t0:.1f} s"),
    ("last write to every id at the collector", f"{t_done - t_written:.1f} s"),
    ("RSS per daemon, idle (median / max)", f"{statistics.median(idle_rss)/1024:.1f} / {max(idle_rss)/1024:.1f} MiB"),
    ("RSS per daemon, after (median / max)", f"{statistics.median(rss)/1024:.1f} / {max(rss)/1024:.1f} MiB"),
    ("CPU per daemon during the burst (median / max)", f"{statistics.median(cpu):.2f} / {max(cpu):.2f} s"),
]
out = ["| fleet | |", "|---|---|"] + [f"| {a} | {b} |" for a, b in rows]
print("\n".join(out))
shutil.rmtree(top, ignore_errors=True)
sys.exit(0 if held == total and n == total else 1)
EOF
