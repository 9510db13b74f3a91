#!/usr/bin/env python3
"""Helpers for bench/realtime.sh: event readers, file creators, waiting,
/proc sampling and the analysis. Standard library only.

    realtime_helper.py iw-reader OUT PIDFILE -- COMMAND...
    realtime_helper.py tail LOG OUT
    realtime_helper.py create-latency DIR COUNT PAUSE_MS OUT
    realtime_helper.py storm ROOT DIRS FILES_PER_DIR OUT
    realtime_helper.py create-chunked DIR COUNT CHUNKS CHUNK_PAUSE_MS PAUSE_MS OUT
    realtime_helper.py reads ROOT FILES ROUNDS OUT [exclude=PREFIX] [list=PATH]
                             [quiet=PATH] NAME=PID...
    realtime_helper.py wait KIND FILE PREFIX EXPECTED SETTLE_S TIMEOUT_S
    realtime_helper.py kernel-events SITEWARDEN CONFIG STABLE_S TIMEOUT_S
    realtime_helper.py kernel-events-next SITEWARDEN CONFIG STATUS_FILE TIMEOUT_S
    realtime_helper.py sources SITEWARDEN CONFIG
    realtime_helper.py idle SECONDS OUT NAME=PID...
    realtime_helper.py busy DIR RATE SECONDS OUT NAME=PID...
    realtime_helper.py count-alerts LOG PREFIX
    realtime_helper.py watches PID
    realtime_helper.py cpu PID
    realtime_helper.py analyze KEY=VALUE...
    realtime_helper.py analyze-reads KEY=VALUE...
    realtime_helper.py analyze-chunked KEY=VALUE...

Every timestamp is CLOCK_REALTIME in integer nanoseconds (time.time_ns()),
the clock the daemon stamps its alert records with.
"""

import json
import math
import os
import shlex
import signal
import stat
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


CHUNK = 4096


def chunked_content(index, chunks):
    """CHUNKS * 4 KiB of PHP: comment lines, the last one padded, `?>`."""
    total = chunks * CHUNK
    footer = b"?>\n"
    body = f"<?php /* sitewarden realtime benchmark: chunked file {index} */\n".encode()
    n = 0
    while True:
        line = f"$sw_bench[{n}] = 'line {n} of chunked file {index}';\n".encode()
        if len(body) + len(line) + len(footer) > total:
            break
        body += line
        n += 1
    pad = total - len(footer) - len(body)
    if pad > 0:
        body += b"#" * (pad - 1) + b"\n"
    return body + footer


def create_chunked(directory, count, chunks, chunk_pause_ms, pause_ms, out_path):
    """Creates COUNT new .php files in DIRECTORY one at a time, PAUSE_MS
    apart; each is written in CHUNKS write() calls of 4 KiB, CHUNK_PAUSE_MS
    apart, and closed once. OUT: `before_open_ns<TAB>before_close_ns<TAB>
    after_close_ns<TAB>size<TAB>path` per file."""
    chunk_pause = chunk_pause_ms / 1000.0
    pause = pause_ms / 1000.0
    with open(out_path, "w") as out:
        for i in range(count):
            path = os.path.join(directory, f"chunk-{i:05d}.php")
            data = chunked_content(i, chunks)
            t_open = time.time_ns()
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            for c in range(chunks):
                if c:
                    time.sleep(chunk_pause)
                piece = memoryview(data)[c * CHUNK:(c + 1) * CHUNK]
                while piece:
                    piece = piece[os.write(fd, piece):]
            t_close0 = time.time_ns()
            os.close(fd)
            t_close1 = time.time_ns()
            out.write(f"{t_open}\t{t_close0}\t{t_close1}\t{len(data)}\t{path}\n")
            time.sleep(pause)
    return 0


# -------------------------------------------------------------------- reads


def php_files(root, exclude):
    """The regular .php files under ROOT (symlinks neither followed nor
    taken), sorted, leaving out paths that start with EXCLUDE."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in filenames:
            if not name.endswith(".php"):
                continue
            p = os.path.join(dirpath, name)
            if exclude and p.startswith(exclude):
                continue
            try:
                if stat.S_ISREG(os.lstat(p).st_mode):
                    found.append(p)
            except OSError:
                continue
    found.sort()
    return found


def wait_quiet(path, quiet_s, timeout_s):
    """Waits until PATH has not grown for QUIET_S seconds (or TIMEOUT_S)."""
    t0 = time.monotonic()
    last_size, last_change = -1, t0
    while True:
        try:
            size = os.path.getsize(path)
        except OSError:
            size = 0
        now = time.monotonic()
        if size != last_size:
            last_size, last_change = size, now
        if now - last_change >= quiet_s or now - t0 >= timeout_s:
            return
        time.sleep(0.05)


def reads(root, nfiles, rounds, out_path, opts):
    """Reads NFILES existing .php files under ROOT (evenly spread over the
    sorted list) ROUNDS times each: open(O_RDONLY), read() until the end,
    close(). Samples the CPU (utime+stime) of each NAME=PID from just
    before the first read until the file given as quiet= (the inotifywait
    output) has not grown for 1 s; the reads start once it has been still
    for 1 s after the walk that lists the files. Writes shell KEY=VALUE
    lines to OUT."""
    named = {}
    exclude = list_path = quiet = None
    for item in opts:
        key, _, value = item.partition("=")
        if key == "exclude":
            exclude = value
        elif key == "list":
            list_path = value
        elif key == "quiet":
            quiet = value
        else:
            named[key] = value
    every = php_files(root, exclude)
    if not every:
        print(f"no .php file under {root}", file=sys.stderr)
        return 1
    n = min(nfiles, len(every))
    picked = [every[k * len(every) // n] for k in range(n)]
    if list_path:
        with open(list_path, "w") as f:
            f.write("".join(p + "\n" for p in picked))
    if quiet:
        # The walk above opened every folder: let inotifywait print that
        # first, so that its lines in the window are the reads'.
        wait_quiet(quiet, 1.0, 30.0)
    tck = clk_tck()
    ticks0 = {name: proc_cpu_ticks(pid) for name, pid in named.items()}
    nbytes = 0
    t0 = time.time_ns()
    for _ in range(rounds):
        for p in picked:
            fd = os.open(p, os.O_RDONLY)
            while True:
                b = os.read(fd, 1 << 20)
                if not b:
                    break
                nbytes += len(b)
            os.close(fd)
    t1 = time.time_ns()
    if quiet:
        wait_quiet(quiet, 1.0, 30.0)
    else:
        time.sleep(1.0)
    t2 = time.time_ns()
    out = {
        "READS_N": n * rounds,
        "READS_FILES": n,
        "READS_ROUNDS": rounds,
        "READS_BYTES": nbytes,
        "READS_START_NS": t0,
        "READS_END_NS": t1,
        "READS_SETTLED_NS": t2,
        "READS_S": fmt_s(t1 - t0),
        "READS_WINDOW_S": fmt_s(t2 - t0),
    }
    for name, pid in named.items():
        out[f"{name}_READS_CPU_S"] = f"{(proc_cpu_ticks(pid) - ticks0[name]) / tck:.2f}"
    write_sh(out_path, out)
    return 0


def kernel_events(sitewarden, config, stable_s, timeout_s):
    """Polls `sitewarden -c CONFIG status --json` every 0.5 s until its
    `kernel_events` has not changed for STABLE_S seconds (the daemon
    refreshes its status file every 10 s), or TIMEOUT_S. Prints
    `VALUE ELAPSED_S REASON` (VALUE n/a when no daemon answers)."""
    t0 = time.monotonic()
    last, last_change = None, t0
    while True:
        value = "n/a"
        try:
            res = subprocess.run([sitewarden, "-c", config, "status", "--json"],
                                 capture_output=True, timeout=30)
            st = json.loads(res.stdout)
            if st.get("daemon_pid") is not None:
                value = str(int(st["kernel_events"]))
        except (OSError, ValueError, KeyError, TypeError, subprocess.SubprocessError):
            pass
        now = time.monotonic()
        if value != last:
            last, last_change = value, now
        if value == "n/a":
            reason = "no running daemon in status"
        elif now - last_change >= stable_s:
            reason = f"unchanged for {stable_s:g} s"
        elif now - t0 >= timeout_s:
            reason = f"timeout {timeout_s:g} s"
        else:
            time.sleep(0.5)
            continue
        print(f"{value} {now - t0:.1f} {reason.replace(' ', '_')}")
        return 0


def status_json(sitewarden, config):
    """`sitewarden -c CONFIG status --json`, parsed (None if it fails)."""
    try:
        res = subprocess.run([sitewarden, "-c", config, "status", "--json"],
                             capture_output=True, timeout=30)
        return json.loads(res.stdout)
    except (OSError, ValueError, subprocess.SubprocessError):
        return None


def kernel_events_next(sitewarden, config, status_file, timeout_s):
    """Waits for the daemon's next refresh of its status file (STATUS_FILE,
    rewritten every 10 s: a new mtime or inode), then reads `kernel_events`
    from `status --json`. Prints `VALUE REFRESH_NS` (the file's mtime), or
    `n/a 0` on the timeout or when no daemon answers. Under fanotify the
    figure counts every change on the filesystem and never holds still, so
    it is taken at refreshes instead of once it settled."""
    def ident():
        try:
            st = os.stat(status_file)
            return (st.st_ino, st.st_mtime_ns)
        except OSError:
            return None
    first = ident()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        cur = ident()
        if cur is not None and cur != first:
            st = status_json(sitewarden, config)
            try:
                if st.get("daemon_pid") is not None:
                    print(f"{int(st['kernel_events'])} {cur[1]}")
                    return 0
            except (AttributeError, KeyError, TypeError, ValueError):
                pass
            break
        time.sleep(0.02)
    print("n/a 0")
    return 0


def sources(sitewarden, config):
    """Where each site's realtime events come from, per `status --json`:
    prints `SOURCE=N[,SOURCE=N...] REASON` (the first source_reason given,
    `-` if none; spaces as _)."""
    st = status_json(sitewarden, config)
    counts, reason = {}, None
    for site in (st or {}).get("sites", []):
        src = site.get("source") or "none"
        counts[src] = counts.get(src, 0) + 1
        if reason is None and site.get("source_reason"):
            reason = str(site["source_reason"])
    summary = ",".join(f"{k}={v}" for k, v in sorted(counts.items())) or "n/a"
    print(f"{summary} {(reason or '-').replace(' ', '_')}")
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


def kernel_watches(pid):
    """(inotify instances, inotify watches, fanotify groups, fanotify marks)
    of a process, from /proc/PID/fdinfo. A fanotify mark is a `fanotify
    ino:` (inode), `mnt_id:` (mount) or `sdev:` (filesystem) line."""
    instances = watches = groups = marks = 0
    fd_dir = f"/proc/{pid}/fd"
    for fd in os.listdir(fd_dir):
        try:
            link = os.readlink(f"{fd_dir}/{fd}")
            if link not in ("anon_inode:inotify", "anon_inode:[fanotify]"):
                continue
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                lines = f.readlines()
            if link == "anon_inode:inotify":
                watches += sum(1 for line in lines if line.startswith("inotify wd:"))
                instances += 1
            else:
                marks += sum(1 for line in lines if line.startswith("fanotify ")
                             and not line.startswith("fanotify flags:"))
                groups += 1
        except OSError:
            continue
    return instances, watches, groups, marks


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
    threads, inotify watches and fanotify marks. Writes shell KEY=VALUE
    lines to OUT."""
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
        inst, w, groups, marks = kernel_watches(p["pid"])
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
            "FANOTIFY_GROUPS": str(groups),
            "FANOTIFY_MARKS": str(marks),
        }
        lines += [f"{name}_{k}={shlex.quote(v)}" for k, v in vals.items()]
    with open(out_path, "w") as out:
        out.write("\n".join(lines) + "\n")
    return 0


def busy(directory, rate, seconds, out_path, named_pids):
    """The busy neighbour: RATE small write() calls per second for SECONDS
    into DIRECTORY (outside every site root, on the same filesystem), by
    one Python loop that catches up with its schedule every ~0.5 ms. Nine
    write() calls in ten append a line to one of 4 log files kept open
    (O_APPEND); the tenth rewrites one of 4 small files whole: in place
    (open O_TRUNC, write, close) or, every other time, through a temporary
    file renamed over it. Samples the CPU (utime+stime) and VmRSS of each
    NAME=PID from the first write until 1 s after the last (a backlog the
    process works off after the writer stopped is counted). Writes shell
    KEY=VALUE lines to OUT."""
    os.makedirs(directory, exist_ok=True)
    logs = [os.open(os.path.join(directory, f"app-{i}.log"),
                    os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644) for i in range(4)]
    states = [os.path.join(directory, f"state-{i}.json") for i in range(4)]
    procs = {}
    for item in named_pids:
        name, _, pid = item.partition("=")
        procs[name] = {"pid": pid, "ticks0": proc_cpu_ticks(pid),
                       "ctx0": proc_ctxt_switches(pid)}
    tck = clk_tck()
    self0 = os.times()
    n = rewrites = nbytes = 0
    per_second = []
    t0_ns = time.time_ns()
    t0 = time.monotonic()
    end = t0 + seconds
    next_second, done_at_second = t0 + 1.0, 0
    while True:
        now = time.monotonic()
        if now >= next_second:
            per_second.append(n - done_at_second)
            done_at_second = n
            next_second += 1.0
        if now >= end:
            break
        due = int(rate * (now - t0)) + 1
        while n < due:
            if n % 10 == 9:
                k = (n // 10) % 4
                data = f'{{"n": {n}, "t": {time.time_ns()}, "pad": "{"x" * 40}"}}\n'.encode()
                if (n // 10) % 2:
                    tmp = states[k] + ".tmp"
                    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                    nbytes += os.write(fd, data)
                    os.close(fd)
                    os.rename(tmp, states[k])
                else:
                    fd = os.open(states[k], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                    nbytes += os.write(fd, data)
                    os.close(fd)
                rewrites += 1
            else:
                nbytes += os.write(logs[n % 4],
                                   f"{n} GET /index.php 200 busy neighbour log line\n".encode())
            n += 1
        time.sleep(0.0005)
    t1_ns = time.time_ns()
    t1 = time.monotonic()
    self1 = os.times()
    for fd in logs:
        os.close(fd)
    time.sleep(1.0)
    t2 = time.monotonic()
    write_s = t1 - t0
    window = t2 - t0
    out = {
        "BUSY_WRITES": n,
        "BUSY_REWRITES": rewrites,
        "BUSY_BYTES": nbytes,
        "BUSY_START_NS": t0_ns,
        "BUSY_END_NS": t1_ns,
        "BUSY_WRITE_S": f"{write_s:.2f}",
        "BUSY_WINDOW_S": f"{window:.2f}",
        "BUSY_RATE_DONE": f"{n / write_s:.0f}",
        "BUSY_RATE_MIN": str(min(per_second)) if per_second else "n/a",
        "BUSY_WRITER_CPU_PCT": f"{100.0 * ((self1.user - self0.user) + (self1.system - self0.system)) / write_s:.1f}",
    }
    for name, p in procs.items():
        cpu_s = (proc_cpu_ticks(p["pid"]) - p["ticks0"]) / tck
        out[f"{name}_BUSY_CPU_S"] = f"{cpu_s:.2f}"
        out[f"{name}_BUSY_CPU_PCT"] = f"{100.0 * cpu_s / window:.2f}"
        out[f"{name}_BUSY_WAKEUPS_PER_S"] = f"{(proc_ctxt_switches(p['pid']) - p['ctx0']) / window:.1f}"
        out[f"{name}_BUSY_RSS_MB"] = f"{kb(proc_status(p['pid']), 'VmRSS') / 1024:.1f}"
    write_sh(out_path, out)
    return 0


def count_alerts(log_path, prefix):
    """Prints `UNDER ALL`: the records of the alert log LOG on a path under
    PREFIX, and the records in all."""
    records, _bad = read_alerts(log_path)
    n = sum(1 for r in records if under(str(r.get("path", "")), prefix))
    print(f"{n} {len(records)}")
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
    # Records that name their writer (the fanotify source's `actor`).
    comms = {}
    for r in alerts:
        actor = r.get("actor")
        if isinstance(actor, dict) and actor.get("pid") is not None:
            c = actor.get("comm")
            c = "null (exited)" if c is None else str(c)
            comms[c] = comms.get(c, 0) + 1
    out["ALERT_ACTOR"] = sum(comms.values())
    out["ALERT_ACTOR_COMMS"] = ", ".join(
        f"{k} {v}" for k, v in sorted(comms.items(), key=lambda kv: -kv[1])) or "none"

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


def write_sh(path, out):
    with open(path, "w") as f:
        for k, v in out.items():
            f.write(f"{k}={shlex.quote(str(v))}\n")


def analyze_reads(args):
    """iw=: the output of an inotifywait with its default events and
    --format '%w%f<TAB>%e' (iw-reader stamped); start=, end=: the window
    (ns). The lines that arrived in the window, by event; those before it
    (its own start-up: opening the folders it watches); overflows."""
    a = dict(x.split("=", 1) for x in args)
    start, end = int(a["start"]), int(a["end"])
    within, before, after, overflow = 0, 0, 0, 0
    by = {}
    for ns, text in read_stamped(a["iw"]):
        _path, _, events = text.rpartition("\t")
        if "Q_OVERFLOW" in events:
            overflow += 1
        if ns < start:
            before += 1
        elif ns > end:
            after += 1
        else:
            within += 1
            by[events] = by.get(events, 0) + 1
    write_sh(a["out"], {
        "READS_IW_LINES": within,
        "READS_IW_BEFORE": before,
        "READS_IW_AFTER": after,
        "READS_IW_OVERFLOW": overflow,
        "READS_IW_EVENTS": ", ".join(f"{k} {v}" for k, v in
                                     sorted(by.items(), key=lambda kv: -kv[1])) or "none",
    })
    return 0


def analyze_chunked(args):
    """alerts=, iw=, chunked= (create-chunked's output), dir=, out=. Per
    file: the alert records (exactly one expected, of the whole file), the
    first one's `time` minus the time taken just before close(); and the
    first inotifywait line for the path that arrived after that (with
    -e create,close_write,moved_to, the close_write: the create line came
    at the open)."""
    a = dict(x.split("=", 1) for x in args)
    created = []
    with open(a["chunked"]) as f:
        for line in f:
            t_open, t_close0, t_close1, size, p = line.rstrip("\n").split("\t", 4)
            created.append((int(t_open), int(t_close0), int(t_close1), int(size), p))
    out = {"CH_N": len(created)}
    alerts, _bad = read_alerts(a["alerts"])
    chunk_dir = a["dir"]
    recs = {}
    for r in alerts:
        p = r.get("path", "")
        if under(p, chunk_dir):
            recs.setdefault(p, []).append(r)
    iw = {}
    for ns, p in read_stamped(a["iw"]):
        if under(p, chunk_dir):
            iw.setdefault(p, []).append(ns)

    sw_lat, iw_lat, write_s = [], [], []
    files = one = records = full = early = iw_files = iw_two = 0
    most = 0
    by = {}
    for t_open, t_close0, _t_close1, size, p in created:
        write_s.append(t_close0 - t_open)
        rs = recs.get(p, [])
        records += len(rs)
        most = max(most, len(rs))
        if rs:
            files += 1
            one += len(rs) == 1
            for r in rs:
                key = f"{r.get('event')}/{r.get('detected_by')}"
                by[key] = by.get(key, 0) + 1
                try:
                    full += int(r["after"]["size"]) == size
                except (KeyError, TypeError, ValueError):
                    pass
            try:
                t = iso_ns(rs[0]["time"])
                sw_lat.append(t - t_close0)
                # `time` is truncated to the millisecond: only a record
                # stamped a whole millisecond before the close is early.
                early += t + 1_000_000 <= t_close0
            except (KeyError, ValueError):
                pass
        lines = iw.get(p, [])
        iw_two += len(lines) == 2
        after = [ns for ns in lines if ns >= t_close0]
        if after:
            iw_files += 1
            iw_lat.append(min(after) - t_close0)
    out["CH_SW_FILES"] = files
    out["CH_SW_ONE"] = one
    out["CH_SW_RECORDS"] = records
    out["CH_SW_MOST"] = most
    out["CH_SW_FULL"] = full
    out["CH_SW_EARLY"] = early
    out["CH_SW_EVENTS"] = ", ".join(f"{k} {v}" for k, v in sorted(by.items())) or "none"
    created_set = {c[4] for c in created}
    out["CH_SW_STRAY"] = sum(len(v) for p, v in recs.items() if p not in created_set)
    out["CH_IW_FILES"] = iw_files
    out["CH_IW_TWO"] = iw_two
    write_s.sort()
    out["CH_WRITE_P50_MS"] = fmt_ms(pct(write_s, 50))
    for name, vals in (("SW", sw_lat), ("IW", iw_lat)):
        vals.sort()
        out[f"CH_{name}_SEEN"] = len(vals)
        out[f"CH_{name}_MIN"] = fmt_ms(vals[0] if vals else None)
        out[f"CH_{name}_P50"] = fmt_ms(pct(vals, 50))
        out[f"CH_{name}_P90"] = fmt_ms(pct(vals, 90))
        out[f"CH_{name}_P99"] = fmt_ms(pct(vals, 99))
        out[f"CH_{name}_MAX"] = fmt_ms(vals[-1] if vals else None)
    write_sh(a["out"], out)
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
    if cmd == "create-chunked":
        return create_chunked(args[0], int(args[1]), int(args[2]),
                              float(args[3]), float(args[4]), args[5])
    if cmd == "reads":
        return reads(args[0], int(args[1]), int(args[2]), args[3], args[4:])
    if cmd == "kernel-events":
        return kernel_events(args[0], args[1], float(args[2]), float(args[3]))
    if cmd == "wait":
        return wait_count(args[0], args[1], args[2], int(args[3]),
                          float(args[4]), float(args[5]))
    if cmd == "kernel-events-next":
        return kernel_events_next(args[0], args[1], args[2], float(args[3]))
    if cmd == "sources":
        return sources(args[0], args[1])
    if cmd == "idle":
        return idle(float(args[0]), args[1], args[2:])
    if cmd == "busy":
        return busy(args[0], float(args[1]), float(args[2]), args[3], args[4:])
    if cmd == "count-alerts":
        return count_alerts(args[0], args[1])
    if cmd == "cpu":
        print(f"{proc_cpu_ticks(args[0]) / clk_tck():.2f}")
        return 0
    if cmd == "watches":
        print(*kernel_watches(args[0]))
        return 0
    if cmd == "analyze":
        return analyze(args)
    if cmd == "analyze-reads":
        return analyze_reads(args)
    if cmd == "analyze-chunked":
        return analyze_chunked(args)
    print(f"unknown command {cmd}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
