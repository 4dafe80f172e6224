#!/usr/bin/env bash
# A throw-away PostgreSQL server for the tests: `start DIR [PORT]` creates a
# cluster in DIR (initdb) and starts it listening on a Unix socket in DIR
# and on 127.0.0.1:PORT (or the next free port) only; `stop DIR` stops it; `restart DIR [PORT]`
# stops and starts it again (the same data). `start` prints the URL the
# tests read from AUTHD_TEST_DATABASE_URL. Trust authentication, fsync off:
# a test server, never a deployment. Run as root, it runs the server as the
# `postgres` user (PostgreSQL refuses to run as root).
set -euo pipefail

command=${1:?usage: postgres-test-server.sh start|stop|restart DIR [PORT]}
dir=${2:?usage: postgres-test-server.sh start|stop|restart DIR [PORT]}
port=${3:-55432}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$bin" ] || { echo "PostgreSQL server binaries not found (apt-get install postgresql)" >&2; exit 1; }

as_server() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start() {
    # The server outlives this script: it must not keep a descriptor of our
    # caller's (a pipe the caller reads to its end would never end).
    for fd in /proc/$$/fd/*; do
        fd=${fd##*/}
        [ "$fd" -gt 2 ] 2>/dev/null && eval "exec $fd>&-" 2>/dev/null || true
    done
    mkdir -p "$dir"
    [ "$(id -u)" -ne 0 ] || chown postgres: "$dir"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        as_server "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 --no-sync >"$dir/initdb.log" 2>&1 \
            || { cat "$dir/initdb.log" >&2; exit 1; }
    fi
    # A port another server holds: the next one (the URL printed says which).
    for attempt in $(seq 1 20); do
        if as_server "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
            -o "-k $dir -p $port -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >/dev/null; then
            echo "postgresql://postgres@/postgres?host=$dir&port=$port"
            return 0
        fi
        grep -q "Address already in use" "$dir/server.log" || break
        port=$((port + 1))
    done
    tail -20 "$dir/server.log" >&2
    exit 1
}

stop() {
    [ -f "$dir/data/postmaster.pid" ] || return 0
    as_server "$bin/pg_ctl" -D "$dir/data" -w -t 30 -m fast stop >/dev/null
}

case $command in
start) start ;;
stop) stop ;;
restart) stop; start ;;
*) echo "unknown command $command" >&2; exit 2 ;;
esac
