#!/usr/bin/env bash
# Runs the whole test suite: formatting lint, unit and end-to-end tests
# against the real daemon (Swift Testing), then the interop tests (PyJWT,
# OpenRPC schemas) in a Python venv. Installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

echo "== swift format lint"
swift format lint --strict --recursive Sources Tests Examples Package.swift

echo "== swift build"
swift build --build-tests

echo "== swift test"
swift test --skip-build

echo "== benchmark smoke run (it runs and reports; speed is measured in BENCHMARKS.md)"
.build/debug/authbench --quick --daemon .build/debug/authd

echo "== fuzzing (libFuzzer + AddressSanitizer, one minute per target)"
scripts/fuzz.sh 60

echo "== systemd integration test (release build, real systemd in a namespace)"
if [ "$(id -u)" -eq 0 ]; then
    Tests/Integration/systemd-test.sh
else
    echo "skipped: needs root (CI runs as root)"
fi

echo "== interop tests (Python)"
if [ ! -x .venv/bin/python ]; then python3 -m venv .venv; fi
.venv/bin/pip install -q --disable-pip-version-check -r Tests/interop/requirements.txt
.venv/bin/python -m pytest -q Tests/interop
