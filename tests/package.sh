#!/usr/bin/env bash
# The Debian package, for real: build the .deb, check its contents and
# lintian, install it with dpkg, configure a WordPress site with `init`, run
# the unit's ExecStart command line and see an alert for a planted file,
# upgrade, remove, purge, and check that nothing is left behind.
# Run by .ci/run as root; it installs and purges the package on this machine.
set -euo pipefail
cd "$(dirname "$0")/.."

PASS=0
FAIL=0
ok() { echo "ok: $*"; PASS=$((PASS + 1)); }
bad() { echo "FAIL: $*"; FAIL=$((FAIL + 1)); }
check() { # DESCRIPTION COMMAND...
    local what=$1
    shift
    if "$@"; then ok "$what"; else bad "$what"; fi
}

if [ "$(id -u)" != 0 ]; then
    echo "tests/package.sh must run as root (it installs the package)" >&2
    exit 2
fi

WORK=$(mktemp -d /tmp/sitewarden-package.XXXXXX)
DAEMON_PID=
cleanup() {
    [ -n "$DAEMON_PID" ] && kill "$DAEMON_PID" 2>/dev/null || true
    dpkg --purge sitewarden >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# Start from a machine without the package.
dpkg --purge sitewarden >/dev/null 2>&1 || true

sh packaging/build-deb.sh
DEB=$(ls -t target/debian/sitewarden_*_amd64.deb | head -1)
echo "package: $DEB"

# Contents.
dpkg-deb -c "$DEB" | awk '{ print $1, $6 }' >"$WORK/contents"
for f in ./usr/bin/sitewarden ./usr/lib/systemd/system/sitewarden.service \
    ./usr/share/sitewarden/profiles/wordpress.yaml ./usr/share/sitewarden/profiles/drupal.yaml \
    ./usr/share/sitewarden/rules/php_webshells.yar ./etc/sitewarden/rules/README ./usr/share/sitewarden/grafana-dashboard.json \
    ./etc/sitewarden/sitewarden.yaml.example ./etc/logrotate.d/sitewarden \
    ./usr/lib/sysctl.d/60-sitewarden.conf ./usr/share/man/man1/sitewarden.1.gz \
    ./usr/share/bash-completion/completions/sitewarden ./usr/share/zsh/vendor-completions/_sitewarden \
    ./usr/share/doc/sitewarden/copyright ./usr/share/doc/sitewarden/changelog.Debian.gz; do
    check "the package has $f" grep -q " $f\$" "$WORK/contents"
done
check "the example config is a conffile, mode 0640" \
    bash -c "dpkg-deb -f '$DEB' >/dev/null && dpkg-deb --ctrl-tarfile '$DEB' | tar -xO ./conffiles | grep -qx /etc/sitewarden/sitewarden.yaml.example && grep -q '^-rw-r----- ./etc/sitewarden/sitewarden.yaml.example' '$WORK/contents'"
check "no active config is shipped" bash -c "! grep -q ' ./etc/sitewarden/sitewarden.yaml\$' '$WORK/contents'"

# lintian: no errors (overrides are shipped with their reasons).
lintian --fail-on error "$DEB" >"$WORK/lintian" 2>&1 && ok "lintian reports no error" || { bad "lintian reports errors"; cat "$WORK/lintian"; }
sed 's/^/  lintian: /' "$WORK/lintian"

# Install.
check "dpkg -i installs it" dpkg -i "$DEB"
check "the state folder is root-only (0700)" bash -c '[ "$(stat -c %a /var/lib/sitewarden)" = 700 ]'
check "the log folder exists" test -d /var/log/sitewarden
check "there is no active config until init" test ! -e /etc/sitewarden/sitewarden.yaml
check "the man page is installed" test -f /usr/share/man/man1/sitewarden.1.gz

UNIT=/usr/lib/systemd/system/sitewarden.service
echo "systemd-analyze verify:"
systemd-analyze verify "$UNIT" 2>&1 | sed 's/^/  /' || true
check "systemd-analyze verify finds nothing to complain about" bash -c "[ -z \"\$(systemd-analyze verify $UNIT 2>&1)\" ]"
SCORE=$(systemd-analyze security --offline=yes "$UNIT" 2>/dev/null | sed -n 's/.*Overall exposure level for .*: \([0-9.]*\).*/\1/p')
echo "systemd-analyze security: exposure $SCORE"
check "the exposure score is below 3.0 ($SCORE)" awk -v s="$SCORE" 'BEGIN { exit !(s != "" && s < 3.0) }'

# A WordPress site, configured with init at the default path.
SITE=$WORK/www/blog
mkdir -p "$WORK/www"
cp -a /usr/share/wordpress "$SITE"
mkdir -p "$SITE/wp-content/uploads/2026/11"
check "sitewarden init --profile wordpress writes the config" sitewarden init --profile wordpress --root "$SITE" --email ops@example.com
# Never the real publishers from a test: their checksums from a closed port.
printf 'vendors:\n  wordpress:\n    core_checksums_url: http://127.0.0.1:9/core\n    plugin_checksums_url: http://127.0.0.1:9/plugins\n    core_archive_url: http://127.0.0.1:9/release\n    plugin_archive_url: http://127.0.0.1:9/plugin\n    theme_archive_url: http://127.0.0.1:9/theme\n' >> /etc/sitewarden/sitewarden.yaml
check "the config is valid" sitewarden config-check

# The unit's ExecStart command line, run as a process (PID 1 is not systemd here).
EXEC=$(sed -n 's/^ExecStart=//p' "$UNIT")
echo "ExecStart: $EXEC"
$EXEC 2>"$WORK/daemon.err" &
DAEMON_PID=$!
for _ in $(seq 600); do grep -q "sitewarden: ready" "$WORK/daemon.err" && break; sleep 0.1; done
check "the daemon says it is ready" grep -q "sitewarden: ready" "$WORK/daemon.err"
echo '<?php system($_GET["c"]);' >"$SITE/wp-content/uploads/2026/11/shell.php"
for _ in $(seq 200); do grep -q 'uploads/2026/11/shell.php' /var/log/sitewarden/alerts.jsonl 2>/dev/null && break; sleep 0.1; done
check "the planted file is alerted in the alert log" grep -q '"event":"added".*uploads/2026/11/shell.php.*"severity":"critical"' /var/log/sitewarden/alerts.jsonl
check "status --json says ready" bash -c 'sitewarden status --json | grep -q "\"ready\":true"'
kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID" && RC=0 || RC=$?
DAEMON_PID=
check "SIGTERM stops it with exit 0 (got $RC)" test "$RC" = 0

# Upgrade (same version again): config and state kept.
check "reinstalling keeps the config" bash -c "dpkg -i '$DEB' >/dev/null && test -f /etc/sitewarden/sitewarden.yaml && test -f /var/lib/sitewarden/sitewarden.db"

# Remove: config and state kept; purge: nothing left.
check "dpkg -r removes the package" dpkg -r sitewarden
check "remove keeps the config" test -f /etc/sitewarden/sitewarden.yaml
check "remove keeps the state" test -f /var/lib/sitewarden/sitewarden.db
check "remove takes the binary" test ! -e /usr/bin/sitewarden
check "dpkg --purge purges it" dpkg --purge sitewarden
for p in /etc/sitewarden /var/lib/sitewarden /var/log/sitewarden /usr/share/sitewarden /usr/bin/sitewarden \
    /usr/lib/systemd/system/sitewarden.service /etc/logrotate.d/sitewarden /usr/lib/sysctl.d/60-sitewarden.conf \
    /usr/share/doc/sitewarden; do
    check "purge leaves no $p" test ! -e "$p"
done
check "dpkg knows nothing of it any more" bash -c '! dpkg -s sitewarden >/dev/null 2>&1'

echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
