#!/usr/bin/env bash
# WordPress's own updater, replayed with real releases: what reaches the
# alert log for each way WordPress updates a site, on each realtime
# source. The releases come from a local clone of the public mirror
# github:johnpbloch/wordpress-core (every release is a tag; nothing of it
# is committed); a publisher on loopback serves their checksums as
# api.wordpress.org does (core MD5s, plugin MD5 and SHA-256) and the theme
# archives.
#
# The paths, each on a fresh site built from the older release (bundled
# akismet and twentytwentyfour included), after its baseline:
#   core, whole package    unpacked into wp-content/upgrade/, the files that
#                          differ copied over (version.php last) under
#                          .maintenance, the package removed (update_core)
#   core, partial package  the same, the package holding changed files only
#   core, new-bundled      the major update's package, wp-content included
#   plugin, 6.3+           unpacked, the installed folder renamed into
#                          wp-content/upgrade-temp-backup/plugins/, the new one
#                          moved into place, the backup removed (move_dir)
#   plugin, before 6.3     unpacked, the installed folder deleted, copied
#   plugin, rolled back    as 6.3+, then the backup moved back
#   theme, 6.3+            as the plugin
#   burst                  the minor release unpacked into upgrade/ and
#                          removed 1.5 s later, nothing installed
#   burst, not staging     the same into wp-content/burst/: each watched
#                          file is news, reported once (no path twice), and
#                          no drift is left once they are gone
#   core, downgrade        the minor site back to the older release (one
#                          high vendor-downgrade summary, nothing else)
#   version.php lie        an attack, not an update: a line appended to
#                          wp-includes/functions.php, a new file there, and
#                          $wp_version naming a release that does not exist
#                          (three critical records: tampered, foreign, and
#                          vendor-version-mismatch)
#   plugin Version: lie    the same for akismet: a line appended to one of
#                          its files and its Version: header naming a
#                          release that does not exist (two critical
#                          records: tampered, vendor-version-mismatch)
#
# For each: the records, by rule and severity, the files the daemon said
# it saw in the staging folders, the paths in records (how many more than
# once, and how many of those with no new content: noise; each repeated
# path's records are printed on stderr), and the drift `status` counts.
#
#   bench/updater.sh MIRROR_GIT_DIR [OLD MINOR MAJOR]
#     (defaults: 6.5.4 6.5.5 6.6.1)
#
# Environment:
#   SOURCES=inotify,fanotify   realtime sources to run each path on
#   RUNS=1                     runs per path and source
#   ONLY=                      only the paths whose name holds this text
#   WAIT=20                    seconds from the end of an update to the count
#   BENCH_DIR=/var/tmp/sitewarden-bench
#   SITEWARDEN_BIN=            use this binary instead of building target/release

set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/corpus.sh"

MIRROR=${1:?usage: bench/updater.sh MIRROR_GIT_DIR [OLD MINOR MAJOR]}
OLD=${2:-6.5.4}
MINOR=${3:-6.5.5}
MAJOR=${4:-6.6.1}
BENCH_DIR=${BENCH_DIR:-/var/tmp/sitewarden-bench}
[ "$(id -u)" -eq 0 ] || die "run as root (fanotify)"
git --git-dir="$MIRROR" rev-parse -q --verify "refs/tags/$MAJOR" >/dev/null \
    || die "$MIRROR: no tag $MAJOR (a clone of github:johnpbloch/wordpress-core?)"

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_sitewarden
WORK=$BENCH_DIR/updater
mkdir -p "$WORK"
echo "mirror $MIRROR at $(git --git-dir="$MIRROR" rev-parse --short=12 HEAD); $SW_VERSION ($SW)"
python3 "$REPO/bench/updater.py" "$SW" "$MIRROR" "$WORK" "$OLD" "$MINOR" "$MAJOR" "${SOURCES:-inotify,fanotify}"
