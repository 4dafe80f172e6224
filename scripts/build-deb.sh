#!/usr/bin/env bash
# Builds dist/authd_VERSION_ARCH.deb from the release build (make deb).
set -euo pipefail
cd "$(dirname "$0")/.."

version=$(sed -n 's/.*static let version = "\(.*\)".*/\1/p' Sources/AuthServiceCore/AuthService.swift)
arch=$(dpkg --print-architecture)
root=$(mktemp -d)
chmod 0755 "$root"
trap 'rm -rf "$root"' EXIT

make -s install-files DESTDIR="$root" PREFIX=/usr >/dev/null
mkdir -p "$root/DEBIAN"
depends=$(dpkg-query -W -f='${Package} (>= ${Version})' libsystemd0 libssl3 libcrypt1 libargon2-1 libsqlite3-0 2>/dev/null |
    sed 's/)lib/), lib/g')
cat >"$root/DEBIAN/control" <<CONTROL
Package: authd
Version: $version
Architecture: $arch
Maintainer: authd developers <authd@localhost>
Depends: $depends, systemd
Section: admin
Priority: optional
Description: local authentication daemon
 Logs users in and checks tokens for local services over a Unix socket
 (JSON-RPC 2.0): bcrypt passwords, short-lived JWT access tokens, rotated
 server-side refresh tokens, failed-login limits and journald audit events.
CONTROL
echo /etc/authd/authd.conf >"$root/DEBIAN/conffiles"
cat >"$root/DEBIAN/postinst" <<'SCRIPT'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
    systemd-sysusers authd.conf
    systemd-tmpfiles --create authd.conf
    journalctl --update-catalog || true
    systemctl daemon-reload || true
    systemctl enable --now authd.socket || true
fi
SCRIPT
cat >"$root/DEBIAN/prerm" <<'SCRIPT'
#!/bin/sh
set -e
if [ "$1" = remove ] || [ "$1" = purge ]; then
    systemctl disable --now authd.socket authd.service || true
fi
SCRIPT
cat >"$root/DEBIAN/postrm" <<'SCRIPT'
#!/bin/sh
set -e
systemctl daemon-reload || true
journalctl --update-catalog || true
if [ "$1" = purge ]; then
    # The state (users, sessions, keys) goes only when purging.
    rm -rf /var/lib/authd /var/lib/private/authd /etc/authd
fi
SCRIPT
chmod 0755 "$root/DEBIAN/postinst" "$root/DEBIAN/prerm" "$root/DEBIAN/postrm"
mkdir -p dist
dpkg-deb --root-owner-group --build "$root" "dist/authd_${version}_${arch}.deb" >/dev/null
echo "dist/authd_${version}_${arch}.deb"
