"""Fixtures: the real authd binary on a temporary socket and state dir."""
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BINARY = os.environ.get("AUTHD_BINARY", str(ROOT / ".build" / "debug" / "authd"))
PASSWORD = "correct horse battery"

# Every password and token the tests send or receive; each daemon's stderr,
# database and WAL are checked for them when it stops.
SECRETS = set()
SECRET_PARAMS = ("password", "new_password", "current_password", "token", "access_token", "refresh_token")
SECRET_RESULTS = ("access_token", "refresh_token")


def remember_secrets(params, response):
    for key in SECRET_PARAMS:
        value = (params or {}).get(key)
        if isinstance(value, str) and len(value) >= 8:
            SECRETS.add(value.removeprefix("Bearer "))
    result = response.get("result")
    if isinstance(result, dict):
        for key in SECRET_RESULTS:
            if isinstance(result.get(key), str):
                SECRETS.add(result[key])


class Connection:
    """One socket to the daemon: line-delimited JSON-RPC 2.0."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        deadline = time.time() + 10
        while True:
            try:
                self.sock.connect(path)
                break
            except BlockingIOError:  # the listen backlog is full for a moment
                if time.time() > deadline:
                    raise
                time.sleep(0.01)
        self.file = self.sock.makefile("rwb")
        self.next_id = 1

    def call(self, method, params=None):
        request = {"jsonrpc": "2.0", "id": self.next_id, "method": method}
        if params is not None:
            request["params"] = params
        self.next_id += 1
        self.file.write((json.dumps(request) + "\n").encode())
        self.file.flush()
        response = json.loads(self.file.readline())
        assert response["id"] == request["id"]
        remember_secrets(params, response)
        return response

    def result(self, method, params=None):
        response = self.call(method, params)
        assert "result" in response, response
        return response["result"]

    def close(self):
        self.file.close()
        self.sock.close()


# With AUTHD_INTEROP_DATABASE_URL (a PostgreSQL server's URL, as
# scripts/test.sh sets it for its second run), every daemon gets a new,
# empty database on that server instead of SQLite: the same tests, the
# other store.
DATABASE_SERVER = os.environ.get("AUTHD_INTEROP_DATABASE_URL", "")
# What the daemons on PostgreSQL seal their signing keys with.
KEY_ENCRYPTION_KEY = "6b656b2d666f722d617574686420746573747320302d39612d6620212a2b2c2e"
GIVEN_SECRETS = {"JWT_SECRET": "interop-access-secret-0123456789abcdefgh",
                 "JWT_REFRESH_SECRET": "interop-refresh-secret-0123456789abcdefgh"}


# Tests of the SQLite file itself (its durability, a full disk under it,
# migrating an old one) do not apply to a daemon on PostgreSQL.
sqlite_only = pytest.mark.skipif(bool(DATABASE_SERVER), reason="tests the SQLite store's file")


def new_database():
    name = "authd_py_" + os.urandom(8).hex()
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", DATABASE_SERVER, "-c", f"CREATE DATABASE {name}"],
                   check=True, capture_output=True)
    base, _, query = DATABASE_SERVER.partition("?")
    return base.rsplit("/", 1)[0] + "/" + name + ("?" + query if query else "")


class Daemon:
    def __init__(self, *flags, env=None, state=None):
        self.dir = tempfile.mkdtemp(prefix="authd-py-")
        self.socket = os.path.join(self.dir, "authd.sock")
        self.state = state or os.path.join(self.dir, "state")
        if DATABASE_SERVER and not any(str(flag).startswith("--database-url") for flag in flags):
            flags = (*flags, "--database-url", new_database())
        self.args = [BINARY, "--listen", self.socket, "--state-dir", self.state, "--bcrypt-cost", "10", *flags]
        self.environment = {"PATH": "/usr/bin:/bin", "AUTHD_EVENT_TARGET": "stderr", **(env or {})}
        if any(str(flag).startswith("--database-url") for flag in flags):
            self.environment.setdefault("AUTHD_KEY_ENCRYPTION_KEY", KEY_ENCRYPTION_KEY)
            # Keys not given would be generated into the database, where
            # `key` cannot read them: tests that sign their own tokens give them.
            if "JWT_SECRET" not in self.environment and "JWT_REFRESH_SECRET" not in self.environment:
                self.environment.update(GIVEN_SECRETS)
        # ThreadSanitizer's suppressions of known false positives (scripts/test.sh).
        if "TSAN_OPTIONS" in os.environ:
            self.environment.setdefault("TSAN_OPTIONS", os.environ["TSAN_OPTIONS"])
        self.stderr_path = os.path.join(self.dir, "stderr.log")
        self.stderr = open(self.stderr_path, "ab")
        self.start()

    def start(self):
        self.process = subprocess.Popen(self.args, env=self.environment, stderr=self.stderr, stdout=subprocess.DEVNULL)
        deadline = time.time() + 20
        while time.time() < deadline:
            assert self.process.poll() is None, "authd exited at start"
            try:
                Connection(self.socket).close()
                return
            except OSError:
                time.sleep(0.01)
        raise RuntimeError("authd did not start")

    def connect(self):
        return Connection(self.socket)

    def key(self, name):
        """A signing secret: the one given by the environment, else the one
        generated into the state directory."""
        given = {"access-key": "JWT_SECRET", "refresh-key": "JWT_REFRESH_SECRET"}.get(name)
        if given in self.environment:
            return self.environment[given].encode()
        with open(os.path.join(self.state, "keys", name), "rb") as handle:
            return handle.read().rstrip(b"\n")

    def restart(self):
        self.start()

    def stop(self, expect_status=0):
        if self.process.poll() is None:
            self.process.terminate()
        status = self.process.wait(timeout=20)
        if expect_status is not None:
            assert status == expect_status
        self.stderr.close()
        self.check_no_secrets_written()
        shutil.rmtree(self.dir, ignore_errors=True)

    def check_no_secrets_written(self):
        written = []
        for path in (self.stderr_path, os.path.join(self.state, "authd.sqlite3"),
                     os.path.join(self.state, "authd.sqlite3-wal")):
            if os.path.exists(path):
                with open(path, "rb") as handle:
                    written.append(handle.read())
        for report in (b"ERROR: AddressSanitizer", b"ERROR: LeakSanitizer", b"WARNING: ThreadSanitizer"):
            assert not any(report in data for data in written), f"authd reported {report.decode()}"
        leaked = [secret for secret in SECRETS if any(secret.encode() in data for data in written)]
        assert not leaked, f"authd wrote {len(leaked)} password(s) or token(s) the tests used"


# What a peer process runs first: it drops to the uid in argv[1], then runs
# its code against the socket in argv[2] with the JSON arguments in argv[3].
PEER_PRELUDE = r"""
import json, os, socket, sys, time
UID, PATH, ARGS = int(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
os.setgroups([]); os.setgid(UID); os.setuid(UID)
BUSY = {"jsonrpc": "2.0", "id": None,
        "error": {"code": 503, "message": "Server busy", "data": {"reason": "busy", "retry_after": 1}}}

def connect():
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(30)
    deadline = time.time() + 10
    while True:
        try:
            sock.connect(PATH)
            return sock
        except BlockingIOError:  # the listen backlog is full for a moment
            if time.time() > deadline:
                raise
            time.sleep(0.01)

def line(method, ident=1, **params):
    return (json.dumps({"jsonrpc": "2.0", "id": ident, "method": method, "params": params}) + "\n").encode()

def report(value):
    print(json.dumps(value), flush=True)
"""

# Opens ARGS["count"] connections and holds them until stdin closes. With
# "probe", sends sys.health on each and reports which were answered and which
# got the one busy line and were closed; with "check_closed", reports at the
# end how many the daemon had closed.
HOLD = """
socks = [connect() for _ in range(ARGS["count"])]
seen = {"opened": len(socks)}
if ARGS.get("probe"):
    seen.update(ok=0, busy=0, closed_after_busy=0, other=[])
    for sock in socks:
        try:
            sock.sendall(line("sys.health"))
        except BrokenPipeError:  # refused, and closed already
            pass
    for sock in socks:
        reader = sock.makefile("rb")
        raw = reader.readline()
        answer = json.loads(raw) if raw else None
        if isinstance(answer, dict) and answer.get("result", {}).get("status") == "ok":
            seen["ok"] += 1
        elif answer == BUSY:
            seen["busy"] += 1
            try:
                rest = reader.read()
            except ConnectionResetError:  # closed by the daemon with our request unread (AF_UNIX)
                rest = b""
            seen["closed_after_busy"] += rest == b""
        else:
            seen["other"].append(answer)
report(seen)
sys.stdin.read()
if ARGS.get("check_closed"):
    closed, deadline = 0, time.time() + 10
    for sock in socks:
        sock.settimeout(max(0.01, deadline - time.time()))
        try:
            closed += sock.recv(1) == b""
        except (socket.timeout, ConnectionResetError):
            pass
    report({"closed": closed})
"""


class Peer:
    """A child process that connects to the daemon as another uid, reports
    what it saw as JSON lines on stdout, and may hold its connections until
    `finish` closes its stdin."""

    def __init__(self, daemon, uid, code, **args):
        os.chmod(daemon.dir, 0o711)  # other uids reach the socket; pass --socket-mode 0666 too
        self.process = subprocess.Popen(
            [sys.executable, "-c", PEER_PRELUDE + textwrap.dedent(code), str(uid), daemon.socket, json.dumps(args)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def read(self):
        line = self.process.stdout.readline()
        assert line, "the peer process exited early"
        return json.loads(line)

    def finish(self):
        """Closes stdin (the peer lets go), then returns its remaining reports."""
        self.process.stdin.close()
        reports = [json.loads(line) for line in self.process.stdout]
        assert self.process.wait(timeout=60) == 0, "the peer process failed"
        return reports


@pytest.fixture
def peers():
    """peers(daemon, uid, code, **args) starts a Peer; any still running at the end are killed."""
    started = []

    def start(daemon, uid, code, **args):
        started.append(Peer(daemon, uid, code, **args))
        return started[-1]

    yield start
    for peer in started:
        if peer.process.poll() is None:
            peer.process.kill()
        peer.process.wait(timeout=20)


@pytest.fixture
def daemon():
    running = Daemon()
    yield running
    running.stop()


@pytest.fixture
def rpc(daemon):
    connection = daemon.connect()
    yield connection
    connection.close()
