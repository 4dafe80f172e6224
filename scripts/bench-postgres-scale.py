#!/usr/bin/env python3
"""Start-up and catch-up of authd on PostgreSQL at scale (BENCHMARKS.md).

    scripts/bench-postgres-scale.py SERVER_URL [USERS] [REVOKED]

SERVER_URL is a PostgreSQL server (as `scripts/postgres-test-server.sh`
prints it, database `postgres`); a new database is created on it and
dropped at the end. With USERS users and USERS live sessions in it (made by
SQL, not by logins), it measures:
  - start-up: exec to the first answer, and the daemon's resident memory;
  - catch-up: a second daemon is stopped (SIGSTOP) while one transaction
    revokes REVOKED sessions (and, last, the session of a real token), then
    continued: the time until it refuses that token is how long it takes to
    apply REVOKED + 1 changes it missed.
The daemon is $AUTHD (default .build/release/authd).
"""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

AUTHD = os.environ.get("AUTHD", ".build/release/authd")


def psql(url, sql):
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", url, "-c", sql], check=True)


def call(path, method, params=None):
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(path)
        s.sendall((json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or {}}) + "\n").encode())
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return json.loads(data)


class Daemon:
    def __init__(self, url, environment):
        self.dir = tempfile.mkdtemp(prefix="authd-scale-")
        self.socket = os.path.join(self.dir, "authd.sock")
        self.args = [AUTHD, "--listen", self.socket, "--state-dir", os.path.join(self.dir, "state"),
                     "--bcrypt-cost", "10", "--database-url", url, "--database-timeout", "30"]
        self.environment = environment

    def start(self):
        """Starts the daemon; returns the seconds from exec to its first answer."""
        started = time.monotonic()
        self.process = subprocess.Popen(self.args, env=self.environment, stderr=open(self.dir + "/stderr", "ab"))
        while time.monotonic() - started < 600:
            try:
                if "result" in call(self.socket, "sys.health"):
                    return time.monotonic() - started
            except OSError:
                pass
            if self.process.poll() is not None:
                sys.exit(f"authd exited: {open(self.dir + '/stderr').read()}")
            time.sleep(0.01)
        sys.exit("authd did not answer within 600 s")

    def rss_mib(self):
        for line in open(f"/proc/{self.process.pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024

    def stop(self):
        self.process.send_signal(signal.SIGCONT)
        self.process.terminate()
        self.process.wait(60)


def main():
    server = sys.argv[1]
    users = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
    revoked = int(sys.argv[3]) if len(sys.argv) > 3 else 100_000
    name = f"authd_scale_{os.getpid()}"
    psql(server, f"CREATE DATABASE {name}")
    url = server.replace("/postgres?", f"/{name}?")
    environment = {"PATH": "/usr/bin:/bin", "AUTHD_EVENT_TARGET": "stderr", "AUTHD_LOG_LEVEL": "error",
                   "AUTHD_KEY_ENCRYPTION_KEY": os.urandom(32).hex()}
    a = Daemon(url, environment)
    b = Daemon(url, environment)
    try:
        a.start()  # the schema, the keys
        password = "a long enough password 0123"
        created = call(a.socket, "user.create", {"email": "real@example.com", "password": password})
        assert "result" in created, created
        a.stop()
        now = int(time.time())
        started = time.monotonic()
        psql(url, f"""
            INSERT INTO users (id, email, password_hash, role, active, created_at, updated_at)
            SELECT g, 'user' || g || '@example.com', '$2b$10$' || repeat('x', 53), 'user', true, {now}, {now}
            FROM generate_series(1000, {users + 998}) g;
            DO $$ BEGIN PERFORM setval(pg_get_serial_sequence('users', 'id'), {users + 999}); END $$;
            INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at, refresh_hash,
                refresh_issued_at, refresh_expires_at)
            SELECT 's' || g, g, {now}, {now}, {now + 86400}, sha256(('r' || g)::bytea), {now}, {now + 86400}
            FROM generate_series(1000, {users + 998}) g;
            ANALYZE;
            """)
        print(f"filled {users} users and {users - 1} sessions in {time.monotonic() - started:.1f} s")
        seconds = a.start()
        print(f"start-up, first daemon: {seconds:.2f} s to the first answer, RSS {a.rss_mib():.0f} MiB")
        seconds = b.start()
        print(f"start-up, second daemon: {seconds:.2f} s to the first answer, RSS {b.rss_mib():.0f} MiB")
        login = call(b.socket, "auth.login", {"email": "real@example.com", "password": password})
        token = login["result"]["access_token"]
        while "result" not in call(a.socket, "token.verify", {"token": token}):
            time.sleep(0.01)
        b.process.send_signal(signal.SIGSTOP)
        psql(url, f"""
            BEGIN;
            WITH gone AS (
                UPDATE sessions SET revoked_at = {now}, revoke_reason = 'bench'
                WHERE id IN (SELECT 's' || g FROM generate_series(1000, {revoked + 999}) g)
                RETURNING id, user_id)
            INSERT INTO authd_changes (user_id, session_id) SELECT user_id, id FROM gone;
            COMMIT;
            """)
        # The real token's session last, through authd itself (A).
        assert "result" in call(a.socket, "auth.logout", {"refresh_token": login["result"]["refresh_token"]})
        started = time.monotonic()
        b.process.send_signal(signal.SIGCONT)
        while call(b.socket, "token.verify", {"token": token}).get("error", {}).get("data", {}).get(
                "reason") != "session_revoked":
            time.sleep(0.001)
        print(f"catch-up: {revoked + 1} changes missed, applied in {time.monotonic() - started:.2f} s")
    finally:
        for daemon in (a, b):
            try:
                daemon.stop()
            except Exception:
                pass
        psql(server, f"DROP DATABASE IF EXISTS {name}")


if __name__ == "__main__":
    main()
