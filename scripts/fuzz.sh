#!/usr/bin/env bash
# Builds the libFuzzer targets in Fuzz/ (-sanitize=fuzzer,address) and runs
# each for SECONDS (default 60) from its committed seed corpus. New inputs go
# to a scratch corpus, never into the repository. Any crash, hang (over 10 s
# per input), leak or sanitizer report fails the run; the crashing input is
# kept in .build-fuzz/artifacts/.
#   scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(FuzzRequest FuzzJWS FuzzRules)

for target in "${targets[@]}"; do
    (cd Fuzz && AUTHD_WITHOUT_POSTGRES=1 swift build -c release --scratch-path ../.build-fuzz -Xswiftc -sanitize=fuzzer,address \
        -Xswiftc -parse-as-library --product "$target" 2>&1 | grep -E "error|warning: unre" || true)
    test -x ".build-fuzz/release/$target" || { echo "fuzz: $target did not build" >&2; exit 1; }
done
mkdir -p .build-fuzz/artifacts
passed=0
failed=0
for target in "${targets[@]}"; do
    work=$(mktemp -d)
    log=".build-fuzz/$target.log"
    if LSAN_OPTIONS="suppressions=$PWD/Fuzz/lsan.supp" ".build-fuzz/release/$target" "$work" "Fuzz/corpus/$target" \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix=".build-fuzz/artifacts/$target-" >"$log" 2>&1; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
        echo "fuzz: $target ok, $runs inputs in ${seconds}s, corpus $(ls "$work" | wc -l) new files"
        passed=$((passed + 1))
    else
        echo "fuzz: $target FAILED; see $log" >&2
        grep -E "ERROR|SUMMARY|panic|Fatal" "$log" | head -5 >&2
        failed=$((failed + 1))
    fi
    rm -rf "$work"
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
