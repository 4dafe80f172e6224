#!/usr/bin/env bash
# Runs the whole test suite: formatting lint; unit and end-to-end tests
# against the real daemon (Swift Testing), also under ASan and TSan; the
# benchmark smoke run; a minute of fuzzing per target; the systemd
# integration test; the Python tests (PyJWT/OpenRPC interop, authctl,
# hostile input, kill -9, soak). Installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."

# lintian: the systemd integration test checks the Debian package with it.
scripts/install-deps.sh postgresql lintian

# Runs `swift test` with the given arguments; when it fails, prints its
# failures and any sanitizer report again at the end, where a CI log's tail
# shows them (the suite prints thousands of lines before its verdict).
swift_test() {
    local log rc
    log=$(mktemp)
    set +e
    swift test "$@" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    set -e
    if [ "$rc" -ne 0 ]; then
        echo "== swift test $* failed (exit $rc); its failures again:"
        grep -E '✘|↳' "$log" | cut -c1-600 | head -60 || true
        awk '/WARNING: ThreadSanitizer|ERROR: (Address|Leak)Sanitizer/ { show = 1 } show { print } /^SUMMARY:/ { show = 0 }' \
            "$log" | cut -c1-300 | head -120
    fi
    rm -f "$log"
    return "$rc"
}

echo "== module boundaries (ARCHITECTURE.md): the pure modules import no I/O"
if grep -rnE '^[[:space:]]*(@[a-zA-Z_]+ )*import (NIO[A-Za-z]*|GRDB|CSystemd|Foundation[A-Za-z]*|Dispatch|Glibc)\b' \
    Sources/AuthCore Sources/AuthProtocol Sources/AuthJSON; then
    echo "a pure module imports an I/O module (above)" >&2
    exit 1
fi
# The service core may wait on Dispatch (shutdown waits for answers) and lock
# with pthread mutexes (Glibc), but reaches sockets, SQLite, the journal and
# files only through its ports.
if grep -rnE '^[[:space:]]*(@[a-zA-Z_]+ )*import (NIO[A-Za-z]*|GRDB|CSystemd|Foundation[A-Za-z]*|Logging)\b' \
    Sources/AuthServiceCore; then
    echo "the service core imports an I/O module (above)" >&2
    exit 1
fi

echo "== swift format lint"
swift format lint --strict --recursive Sources Tests Examples Fuzz/Sources Package.swift

echo "== PostgreSQL test server (a throw-away cluster in a temporary directory)"
pg_dir=$(mktemp -d /tmp/authd-pg.XXXXXX)
trap 'scripts/postgres-test-server.sh stop "$pg_dir" || true; rm -rf "$pg_dir"' EXIT
AUTHD_TEST_DATABASE_URL=$(scripts/postgres-test-server.sh start "$pg_dir")
export AUTHD_TEST_DATABASE_URL
# Only known false positives, each explained in the file.
export TSAN_OPTIONS="suppressions=$PWD/Tests/Sanitizers/tsan.supp"

echo "== swift build"
swift build --build-tests

echo "== swift test (the PostgreSQL store against the test server)"
AUTHD_REQUIRE_POSTGRES=1 swift_test --skip-build

echo "== the Swift suite again under AddressSanitizer and ThreadSanitizer (daemons included)"
for sanitizer in address thread; do
    scratch=".build-$( [ $sanitizer = address ] && echo asan || echo tsan )"
    # ASan without the PostgreSQL store (postgres-nio and swift-nio-ssl
    # would triple the build, and that store holds no unsafe code of ours);
    # TSan with it, against the test server: its feed and pool are threads.
    without_postgres=$( [ $sanitizer = address ] && echo 1 || echo 0 )
    AUTHD_WITHOUT_POSTGRES=$without_postgres swift build --build-tests --scratch-path "$scratch" --sanitize=$sanitizer
    # The test runner's own leak check is off (XCTest's harness leaks); the
    # daemons it starts keep theirs, and any report fails the test.
    AUTHD_WITHOUT_POSTGRES=$without_postgres ASAN_OPTIONS=detect_leaks=0 AUTHD_BINARY="$PWD/$scratch/debug/authd" \
        swift_test --skip-build --scratch-path "$scratch" --sanitize=$sanitizer
done

echo "== benchmark smoke run (it runs and reports; speed is measured in BENCHMARKS.md)"
bench_db="authd_bench_$$"
psql -X -q "$AUTHD_TEST_DATABASE_URL" -c "CREATE DATABASE $bench_db"
.build/debug/authbench --quick --daemon .build/debug/authd \
    --database-url "${AUTHD_TEST_DATABASE_URL/\/postgres\?//$bench_db?}"

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
echo "== interop tests (Python) on PostgreSQL"
AUTHD_INTEROP_DATABASE_URL="$AUTHD_TEST_DATABASE_URL" .venv/bin/python -m pytest -q Tests/interop

echo "== hostile-input tests against the ASan and TSan daemons"
for scratch in .build-asan .build-tsan; do
    AUTHD_UNDER_SANITIZER=1 AUTHD_BINARY="$PWD/$scratch/debug/authd" \
        .venv/bin/python -m pytest -q Tests/interop/test_hostile.py
done
