#!/usr/bin/env bash
# Builds cachette and installs it as a systemd service in one step:
#
#   sudo systemd/install.sh            # build, install, create the user, enable and start
#
# It installs
#   /usr/local/bin/cachette                     the server
#   /etc/cachette/cachette.conf                 the config (kept if it exists; dir set to /var/lib/cachette)
#   /etc/systemd/system/cachette.service        the unit (Type=notify, sandboxed)
#   /usr/lib/sysusers.d/cachette.conf           the cachette system user
#   /usr/lib/tmpfiles.d/cachette.conf           /var/lib/cachette and /etc/cachette
#
# Environment: DESTDIR (stage into a directory instead of /, for packaging and tests: then no
# user is created and nothing is started), CACHETTE_BIN (install this binary instead of
# building), NO_START=1 (install and enable, but do not start).
set -euo pipefail
cd "$(dirname "$0")/.."
root="${DESTDIR:-}"

bin="${CACHETTE_BIN:-}"
if [ -z "$bin" ]; then
  cargo build --release
  bin="${CARGO_TARGET_DIR:-target}/release/cachette"
fi

install -D -m 0755 "$bin" "$root/usr/local/bin/cachette"
install -D -m 0644 systemd/cachette.service "$root/etc/systemd/system/cachette.service"
install -D -m 0644 systemd/cachette.sysusers "$root/usr/lib/sysusers.d/cachette.conf"
install -D -m 0644 systemd/cachette.tmpfiles "$root/usr/lib/tmpfiles.d/cachette.conf"
install -D -m 0644 README.md "$root/usr/share/doc/cachette/README.md"
conf="$root/etc/cachette/cachette.conf"
if [ ! -e "$conf" ]; then
  install -D -m 0644 conf/cachette.conf "$conf"
else
  echo "keeping existing $conf (the shipped one is conf/cachette.conf)"
fi
mkdir -p "$root/var/lib/cachette"

if [ -n "$root" ]; then
  echo "staged into $root"
  exit 0
fi
systemd-sysusers /usr/lib/sysusers.d/cachette.conf
systemd-tmpfiles --create /usr/lib/tmpfiles.d/cachette.conf
chown cachette:cachette /var/lib/cachette /etc/cachette
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  if [ "${NO_START:-0}" = 1 ]; then
    systemctl enable cachette
  else
    systemctl enable --now cachette
    systemctl --no-pager status cachette || true
  fi
else
  echo "systemd is not running here: installed, not started"
fi
