#!/usr/bin/env python3
"""A minimal authd client in Python, standard library only.

    from authd_client import AuthdClient, AuthdError
    auth = AuthdClient("/run/authd/authd.sock")
    tokens = auth.call("auth.login", email="a@example.com", password="...")
    user = auth.call("token.verify", token=tokens["access_token"])["user"]

Every method of the protocol is `call(method, **params)`; errors raise
AuthdError with the protocol's stable `reason` (and `retry_after`).
Run as a script for a quick check:  authd_client.py SOCKET METHOD [JSON_PARAMS]
"""
import itertools
import json
import socket
import sys
import threading


class AuthdError(Exception):
    def __init__(self, error):
        data = error.get("data") or {}
        self.code = error.get("code")
        self.reason = data.get("reason")
        self.field = data.get("field")
        self.retry_after = data.get("retry_after")
        super().__init__(f"{self.code} {self.reason}")


class AuthdClient:
    """One connection, one request at a time (use one client per thread)."""

    def __init__(self, path="/run/authd/authd.sock", timeout=10.0):
        self.path = path
        self.timeout = timeout
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._file = None

    def _connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.path)
        self._file = sock.makefile("rwb")

    def call(self, method, **params):
        with self._lock:
            if self._file is None:
                self._connect()
            request_id = next(self._ids)
            line = json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
            try:
                self._file.write(line.encode() + b"\n")
                self._file.flush()
                answer = self._file.readline()
            except OSError:
                self._file = None  # reconnect on the next call
                raise
            if not answer:
                self._file = None
                raise ConnectionError("authd closed the connection")
        response = json.loads(answer)
        if "error" in response:
            raise AuthdError(response["error"])
        return response["result"]


def main(argv):
    client = AuthdClient(argv[1])
    params = json.loads(argv[3]) if len(argv) > 3 else {}
    try:
        print(json.dumps(client.call(argv[2], **params)))
    except AuthdError as error:
        print(json.dumps({"error": error.reason, "retry_after": error.retry_after}))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
