#!/usr/bin/env python3
"""What a second factor adds to a login (BENCHMARKS.md).

    scripts/bench-mfa.py [USERS]

Starts $AUTHD (default .build/release/authd, bcrypt cost 12) on a temporary
socket and state directory, creates 2 x USERS users (default 40), enrols
half of them in a TOTP second factor, then logs every user in once, one at
a time: a plain login for the others, and for the enrolled ones the two
steps (auth.login answering mfa_required, then auth.mfa with the next code).
Prints the medians and the 90th percentiles in milliseconds. Every login of
a user with a factor uses a time step of its own (each code works once).
"""
import base64
import hashlib
import hmac
import json
import os
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

AUTHD = os.environ.get("AUTHD", ".build/release/authd")
PASSWORD = "correct horse battery"


def totp(secret, step):
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    digest = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    return "%06d" % ((struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF) % 1_000_000)


class Connection:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(path)
        self.file = self.sock.makefile("rwb")
        self.next = 1

    def call(self, method, params=None):
        self.file.write((json.dumps({"jsonrpc": "2.0", "id": self.next, "method": method,
                                     "params": params or {}}) + "\n").encode())
        self.file.flush()
        self.next += 1
        return json.loads(self.file.readline())

    def result(self, method, params=None):
        answer = self.call(method, params)
        if "result" not in answer:
            raise SystemExit(f"{method}: {answer}")
        return answer["result"]


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main():
    users = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    directory = tempfile.mkdtemp(prefix="authd-bench-mfa-")
    path = directory + "/authd.sock"
    daemon = subprocess.Popen([AUTHD, "--listen", path, "--state-dir", directory + "/state",
                               "--login-max-failures", "1000000", "--client-max-failures", "1000000"],
                              stderr=subprocess.DEVNULL, env={"PATH": "/usr/bin:/bin"})
    try:
        for _ in range(500):
            if os.path.exists(path):
                break
            time.sleep(0.01)
        rpc = Connection(path)
        secrets = {}
        for index in range(users):
            for kind in ("plain", "mfa"):
                email = f"{kind}{index}@example.com"
                rpc.result("user.create", {"email": email, "password": PASSWORD})
                if kind == "mfa":
                    token = rpc.result("auth.login", {"email": email, "password": PASSWORD})["access_token"]
                    secret = rpc.result("user.totp.enroll", {"access_token": token,
                                                             "current_password": PASSWORD})["secret"]
                    step = int(time.time()) // 30
                    rpc.result("user.totp.confirm", {"access_token": token, "code": totp(secret, step)})
                    secrets[email] = (secret, step)
        plain, first, second = [], [], []
        for index in range(users):
            started = time.perf_counter()
            rpc.result("auth.login", {"email": f"plain{index}@example.com", "password": PASSWORD})
            plain.append((time.perf_counter() - started) * 1000)
            email = f"mfa{index}@example.com"
            secret, step = secrets[email]
            started = time.perf_counter()
            challenge = rpc.result("auth.login", {"email": email, "password": PASSWORD})
            middle = time.perf_counter()
            rpc.result("auth.mfa", {"mfa_token": challenge["mfa_token"], "code": totp(secret, step + 1)})
            ended = time.perf_counter()
            first.append((middle - started) * 1000)
            second.append((ended - middle) * 1000)
        for name, values in (("auth.login, no second factor", plain),
                             ("auth.login, second factor (mfa_required)", first),
                             ("auth.mfa", second),
                             ("both steps", [a + b for a, b in zip(first, second)])):
            print(f"{name:42s} p50 {statistics.median(values):7.2f} ms   p90 {percentile(values, 0.9):7.2f} ms"
                  f"   ({len(values)} logins)")
    finally:
        daemon.terminate()
        daemon.wait()
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
