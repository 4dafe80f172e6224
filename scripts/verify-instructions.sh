#!/bin/bash
# Instructions per token.verify, counted by callgrind: repeatable for one
# binary whatever else the machine is doing (BENCHMARKS.md, issue 13).
# Starts DAEMON under valgrind, creates a user, logs in, and counts only
# BATCHES x 16 connections x 8 pipelined verifies of one token.
#
#   scripts/verify-instructions.sh [DAEMON] [BATCHES]
#
# valgrind 3.19 cannot read the toolchain's DWARF 5: the binary is run
# from a copy without debug information (symbols stay).
set -euo pipefail
daemon=${1:-.build/release/authd}
batches=${2:-200}
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
strip --strip-debug -o "$work/authd" "$daemon"
env -i PATH=/usr/bin:/bin AUTHD_LOG_LEVEL=error \
    JWT_SECRET=0123456789abcdef0123456789abcdef JWT_REFRESH_SECRET=fedcba9876543210fedcba9876543210 \
    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$work/callgrind.%p" \
    "$work/authd" --listen "$work/sock" --state-dir "$work/state" >"$work/log" 2>&1 &
pid=$!
for _ in $(seq 120); do [ -S "$work/sock" ] && break; sleep 0.5; done
[ -S "$work/sock" ] || { cat "$work/log"; exit 1; }
python3 - "$work/sock" "$batches" "$pid" <<'PY'
import json, socket, subprocess, sys
path, batches, pid = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def connect():
    s = socket.socket(socket.AF_UNIX); s.connect(path); return s, s.makefile("rb")
def call(c, method, params):
    c[0].sendall((json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}) + "\n").encode())
    return json.loads(c[1].readline())
admin = connect()
call(admin, "user.create", {"email": "count@example.com", "password": "correct horse battery"})
token = call(admin, "auth.login", {"email": "count@example.com", "password": "correct horse battery"})["result"]["access_token"]
line = (json.dumps({"jsonrpc": "2.0", "id": 7, "method": "token.verify", "params": {"token": token}}) + "\n").encode()
connections = [connect() for _ in range(16)]
def burst():
    for s, _ in connections: s.sendall(line * 8)
    for _, f in connections:
        for _ in range(8): assert b'"result"' in f.readline()
burst()  # the token is checked in full once, then cached
subprocess.run(["callgrind_control", "-i", "on", pid], check=True, capture_output=True)
for _ in range(batches): burst()
subprocess.run(["callgrind_control", "-i", "off", pid], check=True, capture_output=True)
subprocess.run(["callgrind_control", "-d", pid], check=True, capture_output=True)
PY
sleep 1
kill "$pid"; wait "$pid" 2>/dev/null || true
profile=$(ls -S "$work"/callgrind.* | head -1)
total=$(callgrind_annotate "$profile" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }')
verifies=$((batches * 16 * 8))
echo "instructions: $total over $verifies verifies = $((total / verifies)) per verify"
if [ -n "${KEEP_PROFILE:-}" ]; then cp "$profile" "$KEEP_PROFILE"; echo "profile: $KEEP_PROFILE"; fi
