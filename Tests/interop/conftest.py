"""Fixtures: the real authd binary on a temporary socket and state dir."""
import json
import os
import pathlib
import shutil
import socket
import subprocess
import tempfile
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


class Daemon:
    def __init__(self, *flags, env=None, state=None):
        self.dir = tempfile.mkdtemp(prefix="authd-py-")
        self.socket = os.path.join(self.dir, "authd.sock")
        self.state = state or os.path.join(self.dir, "state")
        self.args = [BINARY, "--listen", self.socket, "--state-dir", self.state, "--bcrypt-cost", "10", *flags]
        self.environment = {"PATH": "/usr/bin:/bin", "AUTHD_EVENT_TARGET": "stderr", **(env or {})}
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
