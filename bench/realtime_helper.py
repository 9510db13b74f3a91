#!/usr/bin/env python3
"""Helpers for bench/realtime.sh: event readers, file creators, waiting,
/proc sampling and the analysis. Standard library only.

    realtime_helper.py iw-reader OUT PIDFILE -- COMMAND...
    realtime_helper.py tail LOG OUT
    realtime_helper.py create-latency DIR COUNT PAUSE_MS OUT
    realtime_helper.py storm ROOT DIRS FILES_PER_DIR OUT
    realtime_helper.py wait KIND FILE PREFIX EXPECTED SETTLE_S TIMEOUT_S
    realtime_helper.py idle SECONDS OUT NAME=PID...
    realtime_helper.py watches PID
    realtime_helper.py analyze KEY=VALUE...

Every timestamp is CLOCK_REALTIME in integer nanoseconds (time.time_ns()),
the clock the daemon stamps its alert records with.
"""

import json
import math
import os
import shlex
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone

# ------------------------------------------------------------------ readers


def iw_reader(out_path, pidfile, cmd):
    """Runs COMMAND (inotifywait) and writes each stdout line to OUT as
    `arrival_ns<TAB>line`, flushed at once. SIGTERM stops the child first,
    so every line it printed is still read and written."""
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, bufsize=0)
    with open(pidfile, "w") as f:
        f.write(f"{child.pid}\n")

    def stop(_sig, _frame):
        if child.poll() is None:
            child.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    with open(out_path, "w", buffering=1) as out:
        # bufsize=0: readline() returns as soon as a line is in the pipe.
        for raw in iter(child.stdout.readline, b""):
            now = time.time_ns()
            line = raw.decode("utf-8", "surrogateescape").rstrip("\n")
            out.write(f"{now}\t{line}\n")
    child.wait()
    return 0


def tail(log_path, out_path):
    """Polls LOG every 5 ms and writes each new complete line to OUT as
    `seen_ns<TAB>line`: when a record is readable in the file (after the
    daemon's write + fsync), to within the 5 ms poll."""
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    pos = 0
    pending = b""
    with open(out_path, "w", buffering=1) as out:
        while True:
            last_round = bool(stop)
            try:
                with open(log_path, "rb") as f:
                    f.seek(pos)
                    data = f.read()
            except FileNotFoundError:
                data = b""
            if data:
                now = time.time_ns()
                pos += len(data)
                pending += data
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    out.write(f"{now}\t{line.decode('utf-8', 'surrogateescape')}\n")
            if last_round:
                return 0
            time.sleep(0.005)


# ----------------------------------------------------------------- creators

PHP = b"<?php /* sitewarden realtime benchmark */ ?>\n"


def create_latency(directory, count, pause_ms, out_path):
    """Creates COUNT new .php files in DIRECTORY one at a time, PAUSE_MS
    apart. OUT: `before_open_ns<TAB>after_close_ns<TAB>path` per file; the
    creation time is taken just before open(O_CREAT)."""
    pause = pause_ms / 1000.0
    with open(out_path, "w") as out:
        for i in range(count):
            path = os.path.join(directory, f"lat-{i:05d}.php")
            t0 = time.time_ns()
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            os.write(fd, PHP)
            os.close(fd)
            t1 = time.time_ns()
            out.write(f"{t0}\t{t1}\t{path}\n")
            time.sleep(pause)
    return 0


def storm(root, ndirs, nfiles, out_path):
    """NDIRS new directories under ROOT, each filled with NFILES .php files
    right after its mkdir, as fast as Python goes."""
    start = time.time_ns()
    for d in range(ndirs):
        dpath = os.path.join(root, f"d{d:04d}")
        os.mkdir(dpath)
        for i in range(nfiles):
            fd = os.open(os.path.join(dpath, f"f{i:05d}.php"),
                         os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            os.write(fd, PHP)
            os.close(fd)
    end = time.time_ns()
    with open(out_path, "w") as out:
        json.dump({"start_ns": start, "end_ns": end, "dirs": ndirs,
                   "files": ndirs * nfiles, "root": root}, out)
    return 0


# ------------------------------------------------------------------ parsing


def iso_ns(s):
    """'2026-11-27T18:00:00.123Z' -> ns since the epoch."""
    dt = datetime.fromisoformat(s.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return (int(dt.replace(microsecond=0).timestamp()) * 1_000_000_000
            + dt.microsecond * 1000)


def read_alerts(path):
    """The records of a JSON-lines alert log (bad lines are counted)."""
    records, bad = [], 0
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                try:
                    records.append(json.loads(line))
                except ValueError:
                    bad += 1
    except FileNotFoundError:
        pass
    return records, bad


def read_stamped(path):
    """`ns<TAB>text` lines -> [(ns, text)]."""
    rows = []
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            for line in f:
                ns, _, text = line.rstrip("\n").partition("\t")
                if ns.isdigit():
                    rows.append((int(ns), text))
    except FileNotFoundError:
        pass
    return rows


def under(path, prefix):
    return path.startswith(prefix.rstrip("/") + "/")


def wait_count(kind, path, prefix, expected, settle, timeout):
    """Waits until FILE names EXPECTED distinct .php files under PREFIX, or
    nothing new came for SETTLE seconds, or TIMEOUT. KIND: alerts (the
    daemon's JSON lines) or iw (the iw-reader output). Prints
    `COUNT ELAPSED_S REASON`."""
    seen = set()
    pos = 0
    pending = ""
    t0 = time.monotonic()
    last_new = t0
    while True:
        try:
            with open(path, encoding="utf-8", errors="surrogateescape") as f:
                f.seek(pos)
                data = f.read()
                pos = f.tell()
        except FileNotFoundError:
            data = ""
        pending += data
        *lines, pending = pending.split("\n")
        grew = False
        for line in lines:
            p = None
            if kind == "alerts":
                try:
                    p = json.loads(line).get("path")
                except ValueError:
                    continue
            else:
                p = line.partition("\t")[2]
            if p and p.endswith(".php") and under(p, prefix) and p not in seen:
                seen.add(p)
                grew = True
        now = time.monotonic()
        if grew:
            last_new = now
        if len(seen) >= expected:
            reason = "complete"
        elif now - last_new >= settle:
            reason = f"nothing new for {settle:g} s"
        elif now - t0 >= timeout:
            reason = f"timeout {timeout:g} s"
        else:
            time.sleep(0.05)
            continue
        print(f"{len(seen)} {now - t0:.1f} {reason.replace(' ', '_')}")
        return 0


# ---------------------------------------------------------------- /proc


def clk_tck():
    return os.sysconf("SC_CLK_TCK")


def proc_cpu_ticks(pid):
    """utime + stime of the whole process (all its threads)."""
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    fields = stat[stat.rindex(")") + 2:].split()
    # fields[0] is field 3 (state): utime is field 14, stime field 15.
    return int(fields[11]) + int(fields[12])


def proc_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            out[key] = value.strip()
    return out


def kb(status, key):
    v = status.get(key, "")
    return int(v.split()[0]) if v else 0


def inotify_watches(pid):
    """(instances, watches) of a process, from /proc/PID/fdinfo."""
    instances = watches = 0
    fd_dir = f"/proc/{pid}/fd"
    for fd in os.listdir(fd_dir):
        try:
            if os.readlink(f"{fd_dir}/{fd}") != "anon_inode:inotify":
                continue
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                watches += sum(1 for line in f if line.startswith("inotify wd:"))
            instances += 1
        except OSError:
            continue
    return instances, watches


def proc_ctxt_switches(pid):
    """Voluntary context switches summed over the threads: how often the
    process went to sleep, i.e. its wake-ups."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            total += kb(proc_status(f"{pid}/task/{tid}"), "voluntary_ctxt_switches")
        except OSError:
            pass
    return total


def idle(seconds, out_path, named_pids):
    """Samples each process over SECONDS: CPU used (utime+stime delta), RSS
    at the start and the end, the highest RSS seen (1 s samples), VmHWM,
    threads and inotify watches. Writes shell KEY=VALUE lines to OUT."""
    tck = clk_tck()
    procs = {}
    for item in named_pids:
        name, _, pid = item.partition("=")
        st = proc_status(pid)
        procs[name] = {"pid": pid, "ticks0": proc_cpu_ticks(pid),
                       "ctx0": proc_ctxt_switches(pid),
                       "rss0": kb(st, "VmRSS"), "rssmax": kb(st, "VmRSS")}
    t0 = time.monotonic()
    deadline = t0 + seconds
    while True:
        now = time.monotonic()
        if now >= deadline:
            break
        time.sleep(min(1.0, deadline - now))
        for p in procs.values():
            p["rssmax"] = max(p["rssmax"], kb(proc_status(p["pid"]), "VmRSS"))
    elapsed = time.monotonic() - t0
    lines = [f"IDLE_ELAPSED={elapsed:.2f}"]
    for name, p in procs.items():
        ticks = proc_cpu_ticks(p["pid"]) - p["ticks0"]
        wakeups = proc_ctxt_switches(p["pid"]) - p["ctx0"]
        st = proc_status(p["pid"])
        inst, w = inotify_watches(p["pid"])
        cpu_s = ticks / tck
        vals = {
            "CPU_S": f"{cpu_s:.2f}",
            "CPU_PCT": f"{100.0 * cpu_s / elapsed:.2f}",
            "RSS0_MB": f"{p['rss0'] / 1024:.1f}",
            "RSS_MB": f"{kb(st, 'VmRSS') / 1024:.1f}",
            "RSSMAX_MB": f"{max(p['rssmax'], kb(st, 'VmRSS')) / 1024:.1f}",
            "HWM_MB": f"{kb(st, 'VmHWM') / 1024:.1f}",
            "THREADS": st.get("Threads", "?"),
            "WAKEUPS_PER_S": f"{wakeups / elapsed:.1f}",
            "INOTIFY_INSTANCES": str(inst),
            "INOTIFY_WATCHES": str(w),
        }
        lines += [f"{name}_{k}={shlex.quote(v)}" for k, v in vals.items()]
    with open(out_path, "w") as out:
        out.write("\n".join(lines) + "\n")
    return 0


# ----------------------------------------------------------------- analysis


def pct(sorted_vals, q):
    """Nearest-rank percentile (q in 0..100) of a sorted list."""
    if not sorted_vals:
        return None
    k = max(1, math.ceil(q / 100.0 * len(sorted_vals)))
    return sorted_vals[k - 1]


def fmt_ms(ns):
    return "n/a" if ns is None else f"{ns / 1e6:.1f}"


def fmt_s(ns):
    return "n/a" if ns is None else f"{ns / 1e9:.2f}"


def analyze(args):
    a = dict(x.split("=", 1) for x in args)
    out = {}

    alerts, bad = read_alerts(a["alerts"])
    tailed = read_stamped(a["tail"])
    iw = read_stamped(a["iw"])
    out["ALERT_LINES"] = len(alerts)
    out["ALERT_BAD_LINES"] = bad

    # When each alert line became readable in the log (first sighting).
    seen_on_disk = {}
    for ns, text in tailed:
        try:
            p = json.loads(text).get("path")
        except ValueError:
            continue
        if p is not None and p not in seen_on_disk:
            seen_on_disk[p] = ns

    sw_first = {}       # path -> (record time ns, record)
    sw_count = {}
    for r in alerts:
        p = r.get("path")
        if not p:
            continue
        sw_count[p] = sw_count.get(p, 0) + 1
        if p not in sw_first:
            try:
                sw_first[p] = (iso_ns(r["time"]), r)
            except (KeyError, ValueError):
                pass
    iw_first = {}
    for ns, p in iw:
        if p not in iw_first:
            iw_first[p] = ns

    # ---- latency
    created = []
    with open(a["latency"]) as f:
        for line in f:
            t0, t1, p = line.rstrip("\n").split("\t", 2)
            created.append((int(t0), int(t1), p))
    n = len(created)
    out["LAT_N"] = n
    sw_lat, disk_lat, iw_lat, mtime_lat = [], [], [], []
    sw_dupes = 0
    sw_events = {}
    for t0, _t1, p in created:
        if p in sw_first:
            ns, rec = sw_first[p]
            sw_lat.append(ns - t0)
            try:
                mtime_lat.append(ns - iso_ns(rec["after"]["mtime"]))
            except (KeyError, TypeError, ValueError):
                pass
            sw_dupes += sw_count[p] - 1
            key = f"{rec.get('event')}/{rec.get('detected_by')}"
            sw_events[key] = sw_events.get(key, 0) + 1
        if p in seen_on_disk:
            disk_lat.append(seen_on_disk[p] - t0)
        if p in iw_first:
            iw_lat.append(iw_first[p] - t0)
    for name, vals in (("SW", sw_lat), ("DISK", disk_lat), ("IW", iw_lat),
                       ("MTIME", mtime_lat)):
        vals.sort()
        out[f"LAT_{name}_SEEN"] = len(vals)
        out[f"LAT_{name}_MIN"] = fmt_ms(vals[0] if vals else None)
        out[f"LAT_{name}_P50"] = fmt_ms(pct(vals, 50))
        out[f"LAT_{name}_P90"] = fmt_ms(pct(vals, 90))
        out[f"LAT_{name}_P99"] = fmt_ms(pct(vals, 99))
        out[f"LAT_{name}_MAX"] = fmt_ms(vals[-1] if vals else None)
    negative = sum(1 for v in sw_lat if v < 0)
    out["LAT_SW_NEGATIVE"] = negative
    out["LAT_SW_EXTRA_ALERTS"] = sw_dupes
    out["LAT_SW_EVENTS"] = ", ".join(f"{k} {v}" for k, v in sorted(sw_events.items())) or "none"
    # Alerts on paths that were not created by the benchmark (should be 0).
    lat_dir = a["latency_dir"]
    storm_root = a["storm_root"]
    created_set = {p for _, _, p in created}
    out["LAT_SW_STRAY"] = sum(
        1 for r in alerts
        if under(r.get("path", ""), lat_dir) and r.get("path") not in created_set)

    # ---- storm
    with open(a["storm"]) as f:
        st = json.load(f)
    start = st["start_ns"]
    out["STORM_EXPECTED"] = st["files"]
    out["STORM_DIRS"] = st["dirs"]
    out["STORM_CREATE_S"] = fmt_s(st["end_ns"] - start)
    storm_alerts = [r for r in alerts
                    if under(r.get("path", ""), storm_root)]
    files = {r["path"] for r in storm_alerts if r["path"].endswith(".php")}
    out["STORM_SW_FILES"] = len(files)
    out["STORM_SW_RECORDS"] = len(storm_alerts)
    out["STORM_SW_OTHER_RECORDS"] = sum(
        1 for r in storm_alerts if not r["path"].endswith(".php"))
    by = {}
    for r in storm_alerts:
        key = f"{r.get('event')}/{r.get('detected_by')}"
        by[key] = by.get(key, 0) + 1
    out["STORM_SW_EVENTS"] = ", ".join(f"{k} {v}" for k, v in sorted(by.items())) or "none"
    times = [iso_ns(r["time"]) for r in storm_alerts if "time" in r]
    out["STORM_SW_LAST_S"] = fmt_s(max(times) - start if times else None)
    disk = [ns for p, ns in seen_on_disk.items() if under(p, storm_root)]
    out["STORM_DISK_LAST_S"] = fmt_s(max(disk) - start if disk else None)
    iw_storm = [(ns, p) for ns, p in iw if under(p, storm_root)]
    iw_files = {p for _, p in iw_storm if p.endswith(".php")}
    out["STORM_IW_FILES"] = len(iw_files)
    out["STORM_IW_LAST_S"] = fmt_s(max(ns for ns, _ in iw_storm) - start if iw_storm else None)
    # Per new directory: how many of its files inotifywait named.
    per_dir = {}
    for p in iw_files:
        d = os.path.dirname(p)
        per_dir[d] = per_dir.get(d, 0) + 1
    full = sum(1 for v in per_dir.values() if v == st["files"] // max(1, st["dirs"]))
    out["STORM_IW_FULL_DIRS"] = full

    with open(a["out"], "w") as f:
        for k, v in out.items():
            f.write(f"{k}={shlex.quote(str(v))}\n")
    return 0


# --------------------------------------------------------------------- main


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, args = argv[1], argv[2:]
    if cmd == "iw-reader":
        sep = args.index("--")
        return iw_reader(args[0], args[1], args[sep + 1:])
    if cmd == "tail":
        return tail(args[0], args[1])
    if cmd == "create-latency":
        return create_latency(args[0], int(args[1]), float(args[2]), args[3])
    if cmd == "storm":
        return storm(args[0], int(args[1]), int(args[2]), args[3])
    if cmd == "wait":
        return wait_count(args[0], args[1], args[2], int(args[3]),
                          float(args[4]), float(args[5]))
    if cmd == "idle":
        return idle(float(args[0]), args[1], args[2:])
    if cmd == "watches":
        inst, w = inotify_watches(args[0])
        print(f"{inst} {w}")
        return 0
    if cmd == "analyze":
        return analyze(args)
    print(f"unknown command {cmd}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
