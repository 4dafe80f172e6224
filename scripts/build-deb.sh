#!/usr/bin/env bash
# Builds dist/authd_VERSION_ARCH.deb from the release build (make deb), as
# debhelper would: the version from debian/changelog (the one source; the
# Swift constant is generated from it), Depends computed by dpkg-shlibdeps,
# the copyright and changelog in /usr/share/doc/authd, md5sums, and
# maintainer scripts built on deb-systemd-helper / deb-systemd-invoke the way
# dh_installsystemd's snippets are (enable and start authd.socket on
# install; on upgrade restart authd.service only, so the socket never stops
# listening; stop on remove; purge removes the state). lintian accepts it
# with no error and no warning (the systemd integration test checks).
#
# AUTHD_DEB_VERSION=V builds the same tree as a higher version V (with a
# changelog entry saying so): the integration test's upgrade.
# Prints the package's path.
set -euo pipefail
cd "$(dirname "$0")/.."

changelog=debian/changelog
work=$(mktemp -d)
root="$work/root"
mkdir -p "$root"
chmod 0755 "$root"
trap 'rm -rf "$work"' EXIT

if [ -n "${AUTHD_DEB_VERSION:-}" ]; then
    {
        echo "authd ($AUTHD_DEB_VERSION) unstable; urgency=medium"
        echo
        echo "  * Rebuilt as $AUTHD_DEB_VERSION (an upgrade test)."
        echo
        echo " -- authd developers <authd-devel@lists.authd.dev>  $(date -R)"
        echo
        cat debian/changelog
    } >"$work/changelog"
    changelog="$work/changelog"
fi
version=$(dpkg-parsechangelog -l "$changelog" -S Version)
arch=$(dpkg --print-architecture)

make -s install-files DESTDIR="$root" PREFIX=/usr >/dev/null
doc="$root/usr/share/doc/authd"
install -m0644 debian/copyright "$doc/copyright"
# A native package's changelog is changelog.gz.
gzip -9nc "$changelog" >"$doc/changelog.gz"
chmod 0644 "$doc/changelog.gz"

# Depends: what the binaries link (dpkg-shlibdeps reads debian/control).
mkdir -p "$work/debian"
printf 'Source: authd\n\nPackage: authd\nArchitecture: any\n' >"$work/debian/control"
shlibs=$(cd "$work" && dpkg-shlibdeps -O -e"$root/usr/bin/authd" -e"$root/usr/bin/authctl" 2>/dev/null |
    sed -n 's/^shlibs:Depends=//p')
[ -n "$shlibs" ] || { echo "dpkg-shlibdeps found no dependencies" >&2; exit 1; }

mkdir -p "$root/DEBIAN"
installed_size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat >"$root/DEBIAN/control" <<CONTROL
Package: authd
Version: $version
Architecture: $arch
Maintainer: authd developers <authd-devel@lists.authd.dev>
Installed-Size: $installed_size
Depends: $shlibs, systemd
Section: admin
Priority: optional
Description: local authentication daemon for the services of one host
 authd logs users in and checks their tokens for local services over a
 Unix socket (line-delimited JSON-RPC 2.0), socket-activated by systemd:
 bcrypt or argon2id passwords, short-lived JWT access tokens, rotated
 refresh tokens stored hashed with reuse detection, a TOTP second factor,
 failed-login limits and journald audit events. Several hosts may share
 one PostgreSQL database. authctl operates it from the shell.
CONTROL
echo /etc/authd/authd.conf >"$root/DEBIAN/conffiles"

cat >"$root/DEBIAN/postinst" <<'SCRIPT'
#!/bin/sh
set -e
if [ "$1" = "configure" ] || [ "$1" = "abort-upgrade" ] || [ "$1" = "abort-deconfigure" ] || [ "$1" = "abort-remove" ]; then
	systemd-sysusers ${DPKG_ROOT:+--root="$DPKG_ROOT"} authd.conf
	systemd-tmpfiles ${DPKG_ROOT:+--root="$DPKG_ROOT"} --create authd.conf || true
	if [ -d /run/systemd/system ]; then
		journalctl --update-catalog >/dev/null 2>&1 || true
	fi
	# As dh_installsystemd: enable the socket on the first installation,
	# keep the administrator's choice afterwards.
	deb-systemd-helper unmask 'authd.socket' >/dev/null || true
	if deb-systemd-helper --quiet was-enabled 'authd.socket'; then
		deb-systemd-helper enable 'authd.socket' >/dev/null || true
	else
		deb-systemd-helper update-state 'authd.socket' >/dev/null || true
	fi
	if [ -d /run/systemd/system ]; then
		systemctl --system daemon-reload >/dev/null || true
		if [ -n "$2" ]; then
			# An upgrade: the new binary takes over; the socket keeps
			# listening (connections wait in its backlog meanwhile).
			deb-systemd-invoke try-restart 'authd.service' >/dev/null || true
		else
			deb-systemd-invoke start 'authd.socket' >/dev/null || true
		fi
	fi
fi
SCRIPT

cat >"$root/DEBIAN/prerm" <<'SCRIPT'
#!/bin/sh
set -e
# Stopped on removal only: an upgrade keeps both running (postinst restarts
# the service).
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
	deb-systemd-invoke stop 'authd.socket' 'authd.service' >/dev/null || true
fi
SCRIPT

cat >"$root/DEBIAN/postrm" <<'SCRIPT'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
	systemctl --system daemon-reload >/dev/null || true
fi
if [ "$1" = "remove" ]; then
	if [ -x "/usr/bin/deb-systemd-helper" ]; then
		deb-systemd-helper mask 'authd.socket' >/dev/null || true
	fi
fi
if [ "$1" = "purge" ]; then
	if [ -x "/usr/bin/deb-systemd-helper" ]; then
		deb-systemd-helper purge 'authd.socket' >/dev/null || true
		deb-systemd-helper unmask 'authd.socket' >/dev/null || true
	fi
	# The state (users, sessions, keys) goes only when purging.
	rm -rf /var/lib/authd /var/lib/private/authd /etc/authd
fi
SCRIPT
chmod 0755 "$root/DEBIAN/postinst" "$root/DEBIAN/prerm" "$root/DEBIAN/postrm"

(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) \
    >"$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/md5sums" "$root/DEBIAN/control" "$root/DEBIAN/conffiles"

mkdir -p dist
package="dist/authd_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$root" "$package" >/dev/null
echo "$package"
