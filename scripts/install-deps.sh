#!/usr/bin/env bash
# Installs the system packages authd builds, runs and tests with (Debian).
# Idempotent: does nothing when everything is already there.
set -euo pipefail

# Extra packages come as arguments (scripts/test.sh adds postgresql).
packages=(pkg-config libsystemd-dev libssl-dev libcrypt-dev libargon2-dev libsqlite3-dev python3-venv socat "$@")
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "authd: installing ${missing[*]}" >&2
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v swift >/dev/null || { echo "authd: Swift 6 is required (swift not on PATH)" >&2; exit 1; }
