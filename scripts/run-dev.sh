#!/usr/bin/env bash
# Sets everything up and runs authd on an embedded default: SQLite and
# generated keys in ./.state, the socket at ./run/authd.sock, you as an admin.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
make -s build
mkdir -p run .state
socket="$PWD/run/authd.sock"

cat >&2 <<TXT

authd is starting on $socket (state in $PWD/.state). Talk to it from another shell:

  echo '{"jsonrpc":"2.0","id":1,"method":"sys.health"}' | socat -t5 - UNIX-CONNECT:$socket

  echo '{"jsonrpc":"2.0","id":1,"method":"user.create","params":{"email":"me@example.com","password":"correct horse battery"}}' | socat -t5 - UNIX-CONNECT:$socket
  echo '{"jsonrpc":"2.0","id":2,"method":"auth.login","params":{"email":"me@example.com","password":"correct horse battery"}}' | socat -t5 - UNIX-CONNECT:$socket

  python3 -c 'import socket,json,sys; s=socket.socket(socket.AF_UNIX); s.connect("$socket"); s.sendall(json.dumps({"jsonrpc":"2.0","id":1,"method":sys.argv[1],"params":json.loads(sys.argv[2])}).encode()+b"\n"); print(s.makefile().readline())' token.verify '{"token":"PASTE_ACCESS_TOKEN"}'

Security events are printed below as JSON lines. Stop with Ctrl-C.

TXT
exec .build/release/authd --listen "$socket" --state-dir .state --admin-uids "$(id -u)" "$@"
