#!/usr/bin/env python3
"""WordPress's own updater replayed with real releases, on each realtime
source; see updater.sh for the usage. Prints the records each update path
gave, by rule and severity, what the daemon said of the staging folders
(files seen in them, so a file never seen shows), and the drift `status`
counts once the daemon stopped."""

import hashlib
import http.server
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
import zipfile

SW, MIRROR, WORK = sys.argv[1], sys.argv[2], sys.argv[3]
OLD, MINOR, MAJOR = sys.argv[4], sys.argv[5], sys.argv[6]
SOURCES = sys.argv[7].split(",")
RUNS = int(os.environ.get("RUNS", "1"))
WAIT = float(os.environ.get("WAIT", "20"))
WATCHED = re.compile(r"\.(php\d?|phtml|phtm|phar|pht|phps|inc|js|html?|shtml)$|(^|/)(\.htaccess|\.user\.ini|php\.ini)$", re.I)


def release(tag):
    """{path: bytes} of a release as the mirror has it."""
    tar = subprocess.run(["git", "--git-dir", MIRROR, "archive", tag], check=True, capture_output=True).stdout
    out = {}
    with tarfile.open(fileobj=io.BytesIO(tar)) as t:
        for m in t.getmembers():
            if m.isfile():
                out[m.name] = t.extractfile(m).read()
    return out


def under(tree, prefix):
    return {k[len(prefix):]: v for k, v in tree.items() if k.startswith(prefix)}


def version_of(text, key):
    m = re.search(rb"^[ \t/*#@]*" + key + rb":\s*(\S+)", text, re.M)
    return m.group(1).decode()


def write_tree(root, tree):
    for k, v in tree.items():
        p = os.path.join(root, k)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(v)


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a):
        pass


def publish(web, cores, plugins, themes):
    """Checksums as api.wordpress.org serves them (core: MD5 under the
    version; plugins: MD5 and SHA-256 per version), themes as archives."""
    os.makedirs(web, exist_ok=True)
    core = {v: {k: hashlib.md5(c).hexdigest() for k, c in t.items()} for v, t in cores.items()}
    with open(os.path.join(web, "core"), "w") as f:
        json.dump({"checksums": core}, f)
    for (slug, v), t in plugins.items():
        d = os.path.join(web, "plugins", slug)
        os.makedirs(d, exist_ok=True)
        files = {k: {"md5": hashlib.md5(c).hexdigest(), "sha256": hashlib.sha256(c).hexdigest()} for k, c in t.items()}
        with open(os.path.join(d, f"{v}.json"), "w") as f:
            json.dump({"files": files}, f)
    for (slug, v), t in themes.items():
        d = os.path.join(web, "theme")
        os.makedirs(d, exist_ok=True)
        with zipfile.ZipFile(os.path.join(d, f"{slug}.{v}.zip"), "w") as z:
            for k, c in t.items():
                z.writestr(f"{slug}/{k}", c)


def serve(web):
    handler = lambda *a: Quiet(*a, directory=web)
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def rmtree(p):
    shutil.rmtree(p, ignore_errors=True)


# --- the updater's paths (class-wp-upgrader.php, update-core.php, move_dir) ---

def unpack(root, work, top, tree):
    d = os.path.join(root, "wp-content/upgrade", work)
    write_tree(os.path.join(d, top) if top else d, tree)
    return d


def core_update(root, old, new, package):
    """update_core(): `.maintenance`, the core files that differ copied
    over (version.php last; wp-content/ is left alone, the site keeps its
    plugins and themes), the files the new release dropped deleted, the
    package removed, `.maintenance` removed. `package`: what was unpacked."""
    staging = unpack(root, "wordpress-new", "wordpress", package)
    maint = os.path.join(root, ".maintenance")
    with open(maint, "w") as f:
        f.write("<?php $upgrading = %d; ?>" % time.time())
    core = lambda t: {k: v for k, v in t.items() if not k.startswith("wp-content/")}
    o, n = core(old), core(new)
    ver = "wp-includes/version.php"
    order = [k for k in n if k != ver and o.get(k) != n[k]] + [ver]
    for k in order:
        dst = os.path.join(root, k)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copyfile(os.path.join(staging, "wordpress", k), dst)
    for k in o:
        if k not in n:
            try:
                os.remove(os.path.join(root, k))
            except FileNotFoundError:
                pass
    rmtree(staging)
    os.remove(maint)


def package_move(root, kind, slug, new, fail=False):
    """6.3 and later: unpacked, the installed folder renamed into
    upgrade-temp-backup/, the new one moved into place, the backup removed
    (or, `fail`, moved back)."""
    staging = unpack(root, f"{slug}.new", slug, new)
    installed = os.path.join(root, "wp-content", kind, slug)
    backups = os.path.join(root, "wp-content/upgrade-temp-backup", kind)
    os.makedirs(backups, exist_ok=True)
    os.rename(installed, os.path.join(backups, slug))
    os.rename(os.path.join(staging, slug), installed)
    rmtree(staging)
    if fail:
        rmtree(installed)
        os.rename(os.path.join(backups, slug), installed)
    else:
        rmtree(os.path.join(backups, slug))


def package_copy(root, kind, slug, new):
    """Before 6.3: unpacked, the installed folder deleted, the new one copied."""
    staging = unpack(root, f"{slug}.new", slug, new)
    installed = os.path.join(root, "wp-content", kind, slug)
    rmtree(installed)
    shutil.copytree(os.path.join(staging, slug), installed)
    rmtree(staging)


def burst(root, tree, into="wp-content/upgrade/burst"):
    """A release unpacked into `into` (by default the updater's staging
    folder) and removed 1.5 s later."""
    d = os.path.join(root, into)
    write_tree(os.path.join(d, "wordpress"), tree)
    time.sleep(1.5)
    rmtree(d)


# --- one run ---

def lie(root, tree):
    """An attacker's cover: a signature-free line appended to a core file,
    a new file among core's, and `$wp_version` naming a release that does
    not exist (OLD + "0")."""
    fn = "wp-includes/functions.php"
    with open(os.path.join(root, fn), "ab") as f:
        f.write(b"\n$wp_extra_cache = 'on';\n")
    with open(os.path.join(root, "wp-includes/class-wp-extra-cache.php"), "wb") as f:
        f.write(b"<?php // cache\n")
    ver = "wp-includes/version.php"
    text = tree[ver].replace(b"$wp_version = '%s'" % OLD.encode(), b"$wp_version = '%s0'" % OLD.encode())
    with open(os.path.join(root, ver), "wb") as f:
        f.write(text)


def plugin_lie(root, tree, slug, version):
    """The same cover for a plugin: a signature-free line appended to one of
    its files and its `Version:` header naming a release that does not
    exist (VERSION + ".99")."""
    top = f"wp-content/plugins/{slug}/"
    target = sorted(k for k in tree if k.startswith(top) and k.endswith(".php") and k != f"{top}{slug}.php")[0]
    with open(os.path.join(root, target), "ab") as f:
        f.write(b"\n$extra_cache = 'on';\n")
    main = f"{top}{slug}.php"
    text = tree[main].replace(b"Version: %s" % version.encode(), b"Version: %s.99" % version.encode(), 1)
    with open(os.path.join(root, main), "wb") as f:
        f.write(text)


def config(path, state, log, root, source, port):
    base = f"http://127.0.0.1:{port}"
    with open(path, "w") as f:
        f.write(f"""state_dir: {state}
realtime:
  source: {source}
vendors:
  wordpress:
    core_checksums_url: {base}/core
    plugin_checksums_url: {base}/plugins
    core_archive_url: {base}/release
    plugin_archive_url: {base}/plugin
    theme_archive_url: {base}/theme
alerts:
  log: {log}
sites:
  - name: site
    root: {root}
    profile: wordpress
""")


def after_sha(record):
    """The content a record shows (its `after` hash), None for none."""
    after = record.get("after") or {}
    return after.get("sha256")


def all_new(records):
    """Does each record of one path after the first show content none
    before it showed?"""
    shown = {after_sha(records[0])}
    for r in records[1:]:
        sha = after_sha(r)
        if sha is None or sha in shown:
            return False
        shown.add(sha)
    return True


def run(name, source, site_tree, act, port):
    d = os.path.join(WORK, "run")
    rmtree(d)
    root, state, log, cfg = (os.path.join(d, x) for x in ("site", "state", "alerts.jsonl", "config.yaml"))
    os.makedirs(root)
    os.makedirs(state, mode=0o700)
    write_tree(root, site_tree)
    config(cfg, state, log, root, source, port)
    subprocess.run([SW, "--config", cfg, "baseline"], check=True, capture_output=True)
    err = open(os.path.join(d, "stderr"), "w+")
    p = subprocess.Popen([SW, "--config", cfg, "run"], stderr=err, stdout=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while "sitewarden: ready" not in open(err.name).read():
            if time.time() > deadline or p.poll() is not None:
                raise SystemExit(f"{name}: the daemon did not start: {open(err.name).read()[-2000:]}")
            time.sleep(0.1)
        time.sleep(2)  # the checksums of the installed releases
        act(root)
        time.sleep(WAIT)
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(30)
    status = subprocess.run([SW, "--config", cfg, "status", "--json"], capture_output=True, text=True).stdout
    drift = sum(s.get("drift", 0) for s in json.loads(status or "{}").get("sites", [])) if status.strip() else "?"
    records = [json.loads(l) for l in open(log)] if os.path.exists(log) else []
    seen = 0
    for m in re.finditer(r"staged by the updater: (\d+) installed, (\d+) left, (\d+) discarded", open(err.name).read()):
        seen += sum(int(x) for x in m.groups())
    return records, seen, drift


def main():
    old, minor, major = release(OLD), release(MINOR), release(MAJOR)
    ak = "wp-content/plugins/akismet/"
    tt = "wp-content/themes/twentytwentyfour/"
    ak_old, ak_new = under(minor, ak), under(major, ak)
    tt_old, tt_new = under(minor, tt), under(major, tt)
    akv = lambda t: version_of(t["akismet.php"], rb"Version")
    ttv = lambda t: version_of(t["style.css"], rb"Version")
    no_content = lambda t: {k: v for k, v in t.items() if not k.startswith("wp-content/")}
    web = os.path.join(WORK, "publisher")
    rmtree(web)
    publish(
        web,
        {OLD: old, MINOR: minor, MAJOR: major},
        {("akismet", akv(ak_old)): ak_old, ("akismet", akv(ak_new)): ak_new},
        {("twentytwentyfour", ttv(tt_old)): tt_old, ("twentytwentyfour", ttv(tt_new)): tt_new},
    )
    srv = serve(web)
    port = srv.server_address[1]
    # A site is the release as unpacked, with the bundled plugin and theme
    # it ships and a wp-config.php.
    site = lambda t: {**{k: v for k, v in t.items() if not k.startswith("wp-content/themes/") or k.startswith(tt)},
                      "wp-config.php": b"<?php define('DB_NAME', 'wp');\n"}
    watched_burst = sum(1 for k in no_content(minor) if WATCHED.search(k))
    paths = [
        (f"core {OLD} -> {MINOR}, whole package", site(old), lambda r: core_update(r, old, minor, no_content(minor))),
        (f"core {OLD} -> {MINOR}, partial package", site(old),
         lambda r: core_update(r, old, minor, {k: v for k, v in no_content(minor).items() if old.get(k) != v})),
        (f"core {MINOR} -> {MAJOR}, new-bundled package", site(minor), lambda r: core_update(r, minor, major, major)),
        (f"akismet {akv(ak_old)} -> {akv(ak_new)}, 6.3+ (moved)", site(minor),
         lambda r: package_move(r, "plugins", "akismet", ak_new)),
        (f"akismet {akv(ak_old)} -> {akv(ak_new)}, before 6.3 (copied)", site(minor),
         lambda r: package_copy(r, "plugins", "akismet", ak_new)),
        (f"akismet {akv(ak_old)} -> {akv(ak_new)}, failed and rolled back", site(minor),
         lambda r: package_move(r, "plugins", "akismet", ak_new, fail=True)),
        (f"twentytwentyfour {ttv(tt_old)} -> {ttv(tt_new)}, 6.3+ (moved)", site(minor),
         lambda r: package_move(r, "themes", "twentytwentyfour", tt_new)),
        (f"{MINOR} unpacked into upgrade/, removed after 1.5 s ({watched_burst} watched files)", site(old),
         lambda r: burst(r, no_content(minor))),
        (f"{MINOR} unpacked into wp-content/burst/ (not staging), removed after 1.5 s ({watched_burst} watched files)",
         site(old), lambda r: burst(r, no_content(minor), "wp-content/burst")),
        (f"core {MINOR} -> {OLD}, downgrade (whole package)", site(minor),
         lambda r: core_update(r, minor, old, no_content(old))),
        (f"core {OLD}, version.php says {OLD}0, a backdoor and a new file (an attack, 3 records)", site(old),
         lambda r: lie(r, old)),
        (f"akismet {akv(ak_old)}, its Version: says {akv(ak_old)}.99, a backdoor (an attack, 2 records)", site(minor),
         lambda r: plugin_lie(r, minor, "akismet", akv(ak_old))),
    ]
    print("| update path | source | records | by rule and severity | files seen in staging "
          "| paths in records (twice; with the same content twice) | `status` drift after |")
    print("|---|---|---:|---|---:|---:|---:|")
    only = os.environ.get("ONLY", "")
    for name, tree, act in paths:
        if only not in name:
            continue
        for source in SOURCES:
            for _ in range(RUNS):
                records, seen, drift = run(name, source, tree, act, port)
                rules = {}
                for r in records:
                    k = f"{r['rule']} {r['severity']}"
                    rules[k] = rules.get(k, 0) + 1
                shown = ", ".join(f"{k} x{n}" for k, n in sorted(rules.items())) or "-"
                per_path = {}
                for r in records:
                    per_path.setdefault(r["path"], []).append(r)
                twice = {p: rs for p, rs in per_path.items() if len(rs) > 1}
                # A later record of a path is noise unless it shows content
                # no earlier one did (a file read half-written, then whole).
                same = sum(1 for rs in twice.values() if not all_new(rs))
                for p, rs in twice.items():
                    print(f"   {source}: {p} reported {len(rs)} times:", file=sys.stderr)
                    for r in rs:
                        print(f"     {r.get('event')} after={after_sha(r)} transient={r.get('transient')} "
                              f"detected_by={r.get('detected_by')} time={r.get('time')}", file=sys.stderr)
                print(f"| {name} | {source} | {len(records)} | {shown} | {seen} "
                      f"| {len(per_path)} ({len(twice)}; {same}) | {drift} |", flush=True)
    srv.shutdown()


main()
