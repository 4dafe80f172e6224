"""A state directory written by the previous version opens with the new
schema: emails are rewritten to NFC where that collides with nothing, two
spellings of one address are both kept and reported at every start until an
operator resolves them, and spent refresh tokens are deleted."""
import json
import os
import signal
import sqlite3
import unicodedata

from conftest import PASSWORD, Daemon, sqlite_only

NFC_JOSE = unicodedata.normalize("NFC", "jos\u00e9@x.com")
NFD_JOSE = unicodedata.normalize("NFD", NFC_JOSE)
NFC_ZOE = unicodedata.normalize("NFC", "zo\u00eb@x.com")
NFD_ZOE = unicodedata.normalize("NFD", NFC_ZOE)


def stop_keeping_state(daemon):
    daemon.process.send_signal(signal.SIGTERM)
    assert daemon.process.wait(timeout=20) == 0


def events(daemon, reason):
    with open(daemon.stderr_path, "rb") as log:
        lines = [line for line in log.read().decode(errors="replace").splitlines() if line.startswith("{")]
    return [event for event in map(json.loads, lines) if event.get("AUTHD_REASON") == reason]


@sqlite_only
def test_an_old_state_directory_is_migrated_and_collisions_reported():
    daemon = Daemon()
    try:
        rpc = daemon.connect()
        jose = rpc.result("user.create", {"email": NFC_JOSE, "password": PASSWORD})["id"]
        twin = rpc.result("user.create", {"email": "twin@x.com", "password": PASSWORD})["id"]
        zoe = rpc.result("user.create", {"email": NFC_ZOE, "password": PASSWORD})["id"]
        hidden = rpc.result("user.create", {"email": "zw@x.com", "password": PASSWORD})["id"]
        login = rpc.result("auth.login", {"email": NFC_JOSE, "password": PASSWORD})
        rpc.close()
        stop_keeping_state(daemon)

        # What the previous version could hold: decomposed spellings (one
        # colliding with an existing row), a spent refresh token, no v2.
        path = os.path.join(daemon.state, "authd.sqlite3")
        with sqlite3.connect(path) as db:
            db.execute("UPDATE users SET email = ? WHERE id = ?", (NFD_JOSE, int(twin)))
            db.execute("UPDATE users SET email = ? WHERE id = ?", (NFD_ZOE, int(zoe)))
            db.execute("UPDATE users SET email = ? WHERE id = ?", ("z\u200bw@x.com", int(hidden)))
            session = db.execute("SELECT session_id FROM refresh_tokens LIMIT 1").fetchone()[0]
            db.execute(
                "INSERT INTO refresh_tokens (token_hash, session_id, issued_at, expires_at, spent_at)"
                " VALUES (?, ?, 1, 4102444800, 2)", (os.urandom(32), session))
            db.execute("DROP INDEX sessions_user_live")
            db.execute("ALTER TABLE users DROP COLUMN credential_generation")
            db.execute("DELETE FROM grdb_migrations WHERE identifier = 'v2'")
        with sqlite3.connect(path) as db:
            assert db.execute("SELECT COUNT(*) FROM refresh_tokens").fetchone()[0] == 2

        daemon.restart()
        rpc = daemon.connect()
        # The lone decomposed spelling was rewritten: the NFC one logs in.
        assert rpc.result("user.get", {"id": zoe})["email"] == NFC_ZOE
        assert rpc.result("auth.login", {"email": NFD_ZOE, "password": PASSWORD})["user"]["id"] == zoe
        # The colliding pair is kept, both rows, and reported with both ids.
        assert rpc.result("user.get", {"id": jose})["email"] == NFC_JOSE
        assert rpc.result("user.get", {"id": twin})["email"] == NFD_JOSE
        reported = events(daemon, "email_collision")
        assert len(reported) == 1, reported
        assert jose in reported[0]["MESSAGE"] and twin in reported[0]["MESSAGE"]
        assert reported[0]["AUTHD_EMAIL"] == NFC_JOSE
        # A stored email the rules now refuse is reported too, with its id.
        unusable = events(daemon, "email_unusable")
        assert len(unusable) == 1 and hidden in unusable[0]["MESSAGE"], unusable
        # Either spelling at login reaches the NFC row only.
        assert rpc.result("auth.login", {"email": NFD_JOSE, "password": PASSWORD})["user"]["id"] == jose
        # The session whose spent token was deleted still refreshes.
        assert "refresh_token" in rpc.result("auth.refresh", {"refresh_token": login["refresh_token"]})
        with sqlite3.connect(path) as db:
            assert db.execute("SELECT COUNT(*) FROM refresh_tokens WHERE spent_at IS NOT NULL").fetchone()[0] == 0

        # The operator resolves it (what `authctl user set-email` sends); the
        # next start reports nothing.
        assert rpc.result("user.update", {"id": twin, "email": "jose.twin@x.com"})["email"] == "jose.twin@x.com"
        rpc.close()
        stop_keeping_state(daemon)
        daemon.restart()
        assert len(events(daemon, "email_collision")) == 1
        rpc = daemon.connect()
        assert rpc.result("sys.health")["status"] == "ok"
        rpc.close()
    finally:
        daemon.stop()
