#!/usr/bin/env bash
# Runs the whole test suite: formatting lint; unit and end-to-end tests
# against the real daemon (Swift Testing), also under ASan and TSan; the
# benchmark smoke run; a minute of fuzzing per target; the systemd
# integration test; the Python tests (PyJWT/OpenRPC interop, authctl,
# hostile input, kill -9, soak). Installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

echo "== swift format lint"
swift format lint --strict --recursive Sources Tests Examples Fuzz/Sources Package.swift

echo "== swift build"
swift build --build-tests

echo "== swift test"
swift test --skip-build

echo "== the Swift suite again under AddressSanitizer and ThreadSanitizer (daemons included)"
for sanitizer in address thread; do
    scratch=".build-$( [ $sanitizer = address ] && echo asan || echo tsan )"
    swift build --build-tests --scratch-path "$scratch" --sanitize=$sanitizer
    # The test runner's own leak check is off (XCTest's harness leaks); the
    # daemons it starts keep theirs, and any report fails the test.
    ASAN_OPTIONS=detect_leaks=0 AUTHD_BINARY="$PWD/$scratch/debug/authd" \
        swift test --skip-build --scratch-path "$scratch" --sanitize=$sanitizer
done

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

echo "== hostile-input tests against the ASan and TSan daemons"
for scratch in .build-asan .build-tsan; do
    AUTHD_UNDER_SANITIZER=1 AUTHD_BINARY="$PWD/$scratch/debug/authd" \
        .venv/bin/python -m pytest -q Tests/interop/test_hostile.py
done
