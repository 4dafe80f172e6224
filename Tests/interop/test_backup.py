"""Backup and restore as an operator runs them: `authctl backup DEST` against
the real daemon while it serves, `authd restore` into a fresh state
directory, a daemon started there. What the backup holds is what was
committed when it was taken: an old session's refresh token works after
the restore, a user created after the backup is not there, and the
second factor opens (the key-encryption key travels with it)."""
import hashlib
import json
import os
import shutil
import stat
import subprocess
import tempfile
import time

import pytest

from conftest import BINARY, DATABASE_SERVER, ROOT, Daemon, sqlite_only

AUTHCTL = os.environ.get("AUTHCTL_BINARY", str(ROOT / ".build" / "debug" / "authctl"))
PASSWORD = "correct horse battery"


def authctl(daemon, *args, user=None, env=None):
    preexec = None
    if user is not None:
        def preexec():
            os.setgroups([])
            os.setgid(user)
            os.setuid(user)
    return subprocess.run([AUTHCTL, *args], capture_output=True, text=True, timeout=120, preexec_fn=preexec,
                          env={"PATH": "/usr/bin:/bin", "AUTHD_SOCKET": daemon.socket, **(env or {})})


def restore(*args):
    return subprocess.run([BINARY, "restore", *args], capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin"})


def totp(secret, step):
    """RFC 6238 with SHA-1, 6 digits: the code of one 30-s step."""
    import base64
    import hashlib
    import hmac
    import struct
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    digest = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    return "%06d" % ((struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF) % 1_000_000)


@pytest.fixture
def workdir():
    path = tempfile.mkdtemp(prefix="authd-backup-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def login(rpc, email):
    return rpc.result("auth.login", {"email": email, "password": PASSWORD})


@sqlite_only
def test_a_backup_restored_into_a_fresh_state_directory_keeps_sessions_keys_and_second_factors(workdir):
    daemon = Daemon()
    try:
        rpc = daemon.connect()
        rpc.result("user.create", {"email": "alice@example.com", "password": PASSWORD})
        rpc.result("user.create", {"email": "mfa@example.com", "password": PASSWORD})
        old = login(rpc, "alice@example.com")
        token = login(rpc, "mfa@example.com")["access_token"]
        secret = rpc.result("user.totp.enroll", {"access_token": token, "current_password": PASSWORD})["secret"]
        step = int(time.time()) // 30
        codes = rpc.result("user.totp.confirm", {"access_token": token, "code": totp(secret, step)})["recovery_codes"]

        destination = os.path.join(workdir, "backup")
        taken = authctl(daemon, "backup", destination, "--json")
        assert taken.returncode == 0, taken.stderr
        summary = json.loads(taken.stdout)
        assert summary["directory"] == destination and summary["not_included"] == []
        # 0700 folders, 0600 files, every file the manifest lists and no other.
        assert stat.S_IMODE(os.stat(destination).st_mode) == 0o700
        assert stat.S_IMODE(os.stat(os.path.join(destination, "keys")).st_mode) == 0o700
        with open(os.path.join(destination, "MANIFEST.json")) as handle:
            manifest = json.load(handle)
        listed = {entry["path"] for entry in manifest["files"]}
        assert {"authd.sqlite3", "keys/access-key", "keys/refresh-key", "keys/key-encryption-key"} <= listed
        found = {os.path.relpath(os.path.join(root, name), destination)
                 for root, _, names in os.walk(destination) for name in names}
        assert found == listed | {"MANIFEST.json"}
        for path in found:
            assert stat.S_IMODE(os.stat(os.path.join(destination, path)).st_mode) == 0o600, path
        assert summary["files"] == len(listed)
        # authctl took authd's copy away.
        assert os.listdir(os.path.join(daemon.state, "backups")) == []

        # After the backup: the old refresh token is spent, a user is added.
        rpc.result("auth.refresh", {"refresh_token": old["refresh_token"]})
        rpc.result("user.create", {"email": "later@example.com", "password": PASSWORD})
        rpc.close()
    finally:
        daemon.stop()

    checked = restore("--check", "--from", destination)
    assert checked.returncode == 0 and "intact" in checked.stderr, checked.stderr
    state = os.path.join(workdir, "state")
    restored = restore("--from", destination, "--state-dir", state)
    assert restored.returncode == 0, restored.stderr
    assert stat.S_IMODE(os.stat(os.path.join(state, "authd.sqlite3")).st_mode) == 0o600
    assert not os.path.exists(os.path.join(state, ".restore"))

    daemon = Daemon(state=state)
    try:
        rpc = daemon.connect()
        # The session as it was when the backup was taken: its token is current there.
        pair = rpc.result("auth.refresh", {"refresh_token": old["refresh_token"]})
        assert rpc.result("token.verify", {"token": pair["access_token"]})["user"]["email"] == "alice@example.com"
        assert login(rpc, "alice@example.com")["user"]["email"] == "alice@example.com"
        assert rpc.call("auth.login", {"email": "later@example.com", "password": PASSWORD})[
            "error"]["data"]["reason"] == "invalid_credentials"
        # The TOTP secret opens under the restored key-encryption key.
        challenge = login(rpc, "mfa@example.com")
        assert challenge["mfa_required"] is True
        session = rpc.result("auth.mfa", {"mfa_token": challenge["mfa_token"], "code": totp(secret, step + 1)})
        assert session["user"]["email"] == "mfa@example.com"
        challenge = login(rpc, "mfa@example.com")
        assert "result" in rpc.call("auth.mfa", {"mfa_token": challenge["mfa_token"], "code": codes[0]})
        rpc.close()
        # A restore never overwrites a state directory in use or not.
        again = restore("--from", destination, "--state-dir", state)
        assert again.returncode == 1 and ("already" in again.stderr), again.stderr
    finally:
        daemon.stop()


@sqlite_only
def test_a_changed_or_unsafe_backup_is_refused_and_nothing_is_restored(daemon, workdir):
    rpc = daemon.connect()
    rpc.result("user.create", {"email": "alice@example.com", "password": PASSWORD})
    rpc.close()
    destination = os.path.join(workdir, "backup")
    assert authctl(daemon, "backup", destination).returncode == 0
    # A key changed after the backup: refused, naming the file.
    key = os.path.join(destination, "keys", "refresh-key")
    with open(key, "r+b") as handle:
        first = handle.read(1)
        handle.seek(0)
        handle.write(bytes([first[0] ^ 1]))
    checked = restore("--check", "--from", destination)
    assert checked.returncode == 1 and "keys/refresh-key" in checked.stderr, checked.stderr
    state = os.path.join(workdir, "state")
    assert restore("--from", destination, "--state-dir", state).returncode == 1
    assert not os.path.exists(os.path.join(state, "authd.sqlite3"))
    with open(key, "r+b") as handle:
        handle.write(first)
    assert restore("--check", "--from", destination).returncode == 0
    # A manifest that names a path outside the state directory.
    manifest_path = os.path.join(destination, "MANIFEST.json")
    with open(manifest_path) as handle:
        manifest = json.load(handle)
    manifest["files"][1]["path"] = "keys/../../escape"
    with open(manifest_path, "w") as handle:
        json.dump(manifest, handle)
    unsafe = restore("--from", destination, "--state-dir", state)
    assert unsafe.returncode == 1 and "unsafe path" in unsafe.stderr, unsafe.stderr
    assert not os.path.exists(os.path.join(workdir, "escape"))
    # Not a backup at all; and an existing DEST is refused before authd copies anything.
    assert restore("--check", "--from", workdir).returncode == 1
    assert authctl(daemon, "backup", destination).returncode == 1
    assert os.listdir(os.path.join(daemon.state, "backups")) == []


@sqlite_only
def test_only_root_backs_up_and_uncollected_backups_do_not_pile_up(workdir):
    daemon = Daemon("--admin-uids", "65533")
    try:
        os.chmod(daemon.dir, 0o755)
        os.chmod(daemon.socket, 0o666)
        # Nor a plain peer, nor an admin uid, nor an admin user's token: only
        # root can collect a backup, so only root may have one written.
        rpc = daemon.connect()
        rpc.result("user.create", {"email": "boss@example.com", "password": PASSWORD, "role": "admin"})
        token = login(rpc, "boss@example.com")["access_token"]
        rpc.close()
        for uid in (65534, 65533):
            refused = authctl(daemon, "backup", os.path.join(workdir, "other"), user=uid)
            assert refused.returncode == 2 and "forbidden" in refused.stderr, (uid, refused.stderr)
        script = ("import json,os,socket,sys; os.setgroups([]); os.setgid(65534); os.setuid(65534); "
                  "s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); f=s.makefile('rwb'); "
                  "f.write((json.dumps({'jsonrpc':'2.0','id':1,'method':'sys.backup',"
                  "'params':{'access_token':sys.argv[2]}})+'\\n').encode()); f.flush(); print(f.readline().decode())")
        answer = json.loads(subprocess.run(["python3", "-c", script, daemon.socket, token], capture_output=True,
                                           text=True, timeout=30).stdout)
        assert answer["error"]["data"]["reason"] == "forbidden", answer
        assert not os.path.exists(os.path.join(daemon.state, "backups")) or \
            os.listdir(os.path.join(daemon.state, "backups")) == []
        uncollected(daemon)
    finally:
        daemon.stop()


def uncollected(daemon):
    # Root asking again and again without collecting: the newest two stay.
    rpc = daemon.connect()
    written = [rpc.result("sys.backup", {})["directory"] for _ in range(4)]
    rpc.close()
    kept = sorted(os.path.join(daemon.state, "backups", name)
                  for name in os.listdir(os.path.join(daemon.state, "backups")))
    assert kept == sorted(written[-2:])


def rewrite_manifest_digest(backup, path):
    import hashlib
    with open(os.path.join(backup, path), "rb") as handle:
        data = handle.read()
    manifest_path = os.path.join(backup, "MANIFEST.json")
    with open(manifest_path) as handle:
        manifest = json.load(handle)
    for entry in manifest["files"]:
        if entry["path"] == path:
            entry["bytes"], entry["sha256"] = len(data), hashlib.sha256(data).hexdigest()
    with open(manifest_path, "w") as handle:
        json.dump(manifest, handle)


@sqlite_only
def test_a_newer_schema_is_refused_by_restore_and_by_the_daemon(daemon, workdir):
    import sqlite3
    destination = os.path.join(workdir, "backup")
    assert authctl(daemon, "backup", destination).returncode == 0
    database = sqlite3.connect(os.path.join(destination, "authd.sqlite3"))
    database.execute("INSERT INTO grdb_migrations (identifier) VALUES ('v99')")
    database.commit()
    database.close()
    rewrite_manifest_digest(destination, "authd.sqlite3")
    checked = restore("--check", "--from", destination)
    assert checked.returncode == 1 and "v99" in checked.stderr, checked.stderr
    # A state directory holding such a database (an upgrade rolled back):
    # the daemon does not start on it rather than ignore what it added.
    state = os.path.join(workdir, "state")
    os.makedirs(os.path.join(state, "keys"), mode=0o700)
    shutil.copy(os.path.join(destination, "authd.sqlite3"), os.path.join(state, "authd.sqlite3"))
    started = subprocess.run([BINARY, "--listen", os.path.join(workdir, "s.sock"), "--state-dir", state],
                             capture_output=True, text=True, timeout=30, env={"PATH": "/usr/bin:/bin"})
    assert started.returncode == 1 and "v99" in started.stderr, started.stderr


@sqlite_only
def test_links_and_fifos_in_a_backup_folder_are_refused(daemon, workdir):
    destination = os.path.join(workdir, "backup")
    assert authctl(daemon, "backup", destination).returncode == 0
    # The manifest a link to a file elsewhere; then a FIFO (never waited on).
    manifest = os.path.join(destination, "MANIFEST.json")
    os.rename(manifest, manifest + ".real")
    os.symlink(manifest + ".real", manifest)
    linked = restore("--check", "--from", destination)
    assert linked.returncode == 1 and "MANIFEST.json" in linked.stderr, linked.stderr
    os.unlink(manifest)
    os.mkfifo(manifest)
    fifo = restore("--check", "--from", destination)
    assert fifo.returncode == 1 and "regular file" in fifo.stderr, fifo.stderr
    os.unlink(manifest)
    os.rename(manifest + ".real", manifest)
    assert restore("--check", "--from", destination).returncode == 0
    # keys/ a link to a folder elsewhere holding the same files.
    os.rename(os.path.join(destination, "keys"), os.path.join(workdir, "keys-elsewhere"))
    os.symlink(os.path.join(workdir, "keys-elsewhere"), os.path.join(destination, "keys"))
    keys = restore("--check", "--from", destination)
    assert keys.returncode == 1 and "keys" in keys.stderr, keys.stderr


FAKE_DAEMON = r"""
import json, os, socket, sys
path, answer = sys.argv[1], json.loads(sys.argv[2])
server = socket.socket(socket.AF_UNIX)
server.bind(path)
server.listen(1)
print("ready", flush=True)
connection, _ = server.accept()
stream = connection.makefile("rwb")
request = json.loads(stream.readline())
stream.write((json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": answer}) + "\n").encode())
stream.flush()
stream.readline()
"""


def backup_from_fake_daemon(workdir, answer, destination):
    """Runs `authctl backup DESTINATION` against a fake daemon that gives
    `answer` to sys.backup; authctl's completed process."""
    sock = os.path.join(workdir, "fake.sock")
    fake = subprocess.Popen(["python3", "-c", FAKE_DAEMON, sock, json.dumps(answer)], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert fake.stdout.readline().strip() == "ready"
        return subprocess.run([AUTHCTL, "--socket", sock, "backup", destination], capture_output=True, text=True,
                              timeout=30, env={"PATH": "/usr/bin:/bin"})
    finally:
        fake.kill()
        fake.wait()
        os.unlink(sock)



def test_authctl_trusts_no_path_in_a_daemons_answer(workdir):
    """authctl backup runs as root and copies what the daemon names: a
    hostile or impersonated daemon must not make it read, write or delete
    anything outside a backup folder's own files."""
    victim = os.path.join(workdir, "victim")
    os.makedirs(os.path.join(victim, "backups", "20261207T010000Z-0123abcd", "keys"))
    with open(os.path.join(victim, "secret"), "w") as handle:
        handle.write("not for copying")
    good = os.path.join(victim, "backups", "20261207T010000Z-0123abcd")
    base = {"created_at": 1, "version": "0", "format": 1, "bytes": 0, "not_included": []}
    answers = {
        "a folder outside backups/": dict(base, directory=victim, files=[]),
        "a folder named otherwise": dict(base, directory=os.path.join(victim, "backups", "x"), files=[]),
        "a path with ..": dict(base, directory=good + "/../../", files=[]),
        "a file leaving the folder": dict(
            base, directory=good, files=[{"path": "keys/../../../secret", "bytes": 15, "sha256": "0" * 64}]),
    }
    for case, answer in answers.items():
        destination = os.path.join(workdir, "dest")
        result = backup_from_fake_daemon(workdir, answer, destination)
        assert result.returncode == 1 and "unexpected" in result.stderr, (case, result.stderr)
        assert not os.path.exists(destination), case
        assert os.path.exists(os.path.join(victim, "secret")) and os.path.isdir(good), case


def test_authctl_refuses_a_backup_changed_since_the_daemon_wrote_it(workdir):
    """A file whose bytes are not those the daemon's answer gives, or a
    manifest that does not list exactly the files the answer gives (restore
    trusts the manifest alone), is not collected: the copy is removed and
    the daemon's files stay where they are."""
    folder = os.path.join(workdir, "state", "backups", "20261207T010000Z-0123abcd")
    os.makedirs(os.path.join(folder, "keys"))
    written = b"written"
    entry = {"path": "authd.sqlite3", "bytes": len(written), "sha256": hashlib.sha256(written).hexdigest()}
    answer = {"created_at": 1, "version": "0", "format": 1, "bytes": 7, "not_included": [], "directory": folder,
              "files": [entry]}
    manifest = {"format": 1, "created_at": 1, "version": "0", "files": [entry], "not_included": []}
    cases = {
        # The same size, other bytes.
        "a changed file": (b"changed", manifest, "SHA-256"),
        # The files are right; the manifest lists another digest, or nothing.
        "a manifest listing other bytes": (written, dict(manifest, files=[dict(entry, sha256="0" * 64)]),
                                           "does not list"),
        "an empty manifest": (written, {}, "cannot be used"),
    }
    for case, (data, listed, message) in cases.items():
        for name, content in (("authd.sqlite3", data), ("MANIFEST.json", json.dumps(listed).encode())):
            with open(os.path.join(folder, name), "wb") as handle:
                handle.write(content)
        destination = os.path.join(workdir, "dest")
        result = backup_from_fake_daemon(workdir, answer, destination)
        assert result.returncode == 1 and message in result.stderr, (case, result.stderr)
        assert not os.path.exists(destination), case
        assert sorted(os.listdir(folder)) == ["MANIFEST.json", "authd.sqlite3", "keys"], case
    # The same files with a manifest that lists them: collected, and gone
    # from the daemon's folder.
    with open(os.path.join(folder, "MANIFEST.json"), "w") as handle:
        json.dump(manifest, handle)
    result = backup_from_fake_daemon(workdir, answer, os.path.join(workdir, "dest"))
    assert result.returncode == 0, result.stderr
    with open(os.path.join(workdir, "dest", "authd.sqlite3"), "rb") as handle:
        assert handle.read() == written
    assert not os.path.exists(os.path.join(folder, "authd.sqlite3"))


@pytest.mark.skipif(not DATABASE_SERVER, reason="the PostgreSQL store")
def test_a_shared_database_is_not_backed_up_by_the_daemon(daemon, workdir):
    rpc = daemon.connect()
    error = rpc.call("sys.backup", {})["error"]
    rpc.close()
    assert error["code"] == 501 and error["data"]["reason"] == "unsupported"
    refused = authctl(daemon, "backup", os.path.join(workdir, "b"))
    assert refused.returncode == 2 and "pg_dump" in refused.stderr
    assert not os.path.exists(os.path.join(workdir, "b"))
