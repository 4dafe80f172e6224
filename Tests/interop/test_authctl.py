"""authctl end to end against the real daemon: every command, the password
prompt through a pseudo-terminal, --password-stdin, --json, exit codes."""
import json
import os
import shutil
import stat
import subprocess
import tempfile

import pexpect

from conftest import ROOT

AUTHCTL = os.environ.get("AUTHCTL_BINARY", str(ROOT / ".build" / "debug" / "authctl"))
PASSWORD = "correct horse battery"


def authctl(daemon, *args, stdin=None, env=None, user=None):
    environment = {"PATH": "/usr/bin:/bin", "AUTHD_SOCKET": daemon.socket, **(env or {})}
    preexec = None
    if user is not None:
        def preexec():
            os.setgroups([])
            os.setgid(user)
            os.setuid(user)
    return subprocess.run([AUTHCTL, *args], input=stdin, capture_output=True, text=True, env=environment,
                          preexec_fn=preexec, timeout=60)


def add_user(daemon, email, role="user"):
    result = authctl(daemon, "user", "add", email, "--role", role, "--password-stdin", "--json", stdin=PASSWORD + "\n")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_user_add_through_a_terminal_prompt(daemon):
    child = pexpect.spawn(AUTHCTL, ["user", "add", "tty@example.com", "--role", "editor"],
                          env={"PATH": "/usr/bin:/bin", "AUTHD_SOCKET": daemon.socket}, timeout=30)
    child.expect("Password: ")
    child.sendline(PASSWORD)
    child.expect("Repeat password: ")
    child.sendline(PASSWORD)
    child.expect(pexpect.EOF)
    output = child.before.decode()
    child.close()
    assert child.exitstatus == 0, output
    assert PASSWORD not in output  # no echo
    assert "created user" in output and "tty@example.com" in output
    # The password works.
    login = authctl(daemon, "login", "tty@example.com", "--password-stdin", "--print-tokens", stdin=PASSWORD + "\n")
    assert login.returncode == 0
    assert json.loads(login.stdout)["user"]["role"] == "editor"


def test_mismatched_prompted_passwords_are_a_usage_error(daemon):
    child = pexpect.spawn(AUTHCTL, ["user", "add", "typo@example.com"],
                          env={"PATH": "/usr/bin:/bin", "AUTHD_SOCKET": daemon.socket}, timeout=30)
    child.expect("Password: ")
    child.sendline(PASSWORD)
    child.expect("Repeat password: ")
    child.sendline(PASSWORD + "x")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 64
    assert authctl(daemon, "user", "show", "typo@example.com").returncode == 2


def test_every_user_command_with_json(daemon):
    alice = add_user(daemon, "alice@example.com", role="admin")
    bob = add_user(daemon, "bob@example.com")
    listed = json.loads(authctl(daemon, "user", "list", "--json").stdout)
    assert [user["email"] for user in listed] == ["alice@example.com", "bob@example.com"]
    shown = json.loads(authctl(daemon, "user", "show", "bob@example.com", "--json").stdout)
    assert shown == bob
    assert json.loads(authctl(daemon, "user", "show", bob["id"], "--json").stdout) == bob
    assert json.loads(authctl(daemon, "user", "set-role", "bob@example.com", "editor", "--json").stdout)["role"] == "editor"
    assert json.loads(authctl(daemon, "user", "deactivate", bob["id"], "--json").stdout)["active"] is False
    assert json.loads(authctl(daemon, "user", "activate", bob["id"], "--json").stdout)["active"] is True
    changed = authctl(daemon, "user", "passwd", "bob@example.com", "--password-stdin", "--json", stdin="new password 1\n")
    assert json.loads(changed.stdout) == {"changed": True}
    login = authctl(daemon, "login", "bob@example.com", "--password-stdin", "--print-tokens", stdin="new password 1\n")
    token = json.loads(login.stdout)["access_token"]
    verified = json.loads(authctl(daemon, "verify", token, "--role", "editor", "--json").stdout)
    assert verified["user"]["email"] == "bob@example.com"
    sessions = json.loads(authctl(daemon, "session", "list", "bob@example.com", "--json").stdout)
    assert len(sessions) == 1
    revoked = json.loads(authctl(daemon, "session", "revoke", "--id=" + sessions[0]["id"], "--json").stdout)
    assert revoked == {"revoked": 1}
    assert authctl(daemon, "verify", token).returncode == 2
    assert json.loads(authctl(daemon, "session", "revoke", "--user", "alice@example.com", "--json").stdout) == {"revoked": 0}
    assert json.loads(authctl(daemon, "keys", "rotate", "--json").stdout)["kid"]
    status = json.loads(authctl(daemon, "status", "--json").stdout)
    assert status["status"] == "ok" and "methods" in status["stats"]
    assert json.loads(authctl(daemon, "user", "delete", "bob@example.com", "--json").stdout) == {"deleted": True}
    assert authctl(daemon, "user", "show", "bob@example.com").returncode == 2
    table = authctl(daemon, "user", "list").stdout
    assert table.splitlines()[0].split() == ["ID", "EMAIL", "ROLE", "ACTIVE", "CREATED"]
    assert alice["email"] in table


def test_exit_codes(daemon):
    assert authctl(daemon, "user", "show", "nobody@example.com").returncode == 2  # refused: not found
    add_user(daemon, "dup@example.com")
    duplicate = authctl(daemon, "user", "add", "dup@example.com", "--password-stdin", stdin=PASSWORD + "\n")
    assert duplicate.returncode == 2 and "email taken" in duplicate.stderr
    assert authctl(daemon, "user", "add").returncode == 64  # usage
    assert authctl(daemon, "session", "revoke").returncode == 64  # neither --id nor --user
    unreachable = authctl(daemon, "status", "--socket", "/nonexistent/authd.sock")
    assert unreachable.returncode == 69 and "cannot reach authd" in unreachable.stderr
    # The global options before the subcommand work as after it.
    before = authctl(daemon, "--socket", "/nonexistent/authd.sock", "status")
    assert before.returncode == 69 and "cannot reach authd" in before.stderr
    assert authctl(daemon, "--socket=/nonexistent/authd.sock", "user", "list").returncode == 69
    listed = authctl(daemon, "--json", "--socket", daemon.socket, "user", "list", env={"AUTHD_SOCKET": "/nonexistent"})
    assert listed.returncode == 0, listed.stderr
    assert isinstance(json.loads(listed.stdout), (list, dict))
    status = authctl(daemon, "--socket", daemon.socket, "status", env={"AUTHD_SOCKET": "/nonexistent"})
    assert status.returncode == 0, status.stderr
    # Given both before and after the subcommand, the one after wins.
    both = authctl(daemon, "--socket", "/nonexistent/authd.sock", "status", "--socket", daemon.socket)
    assert both.returncode == 0, both.stderr
    help_text = authctl(daemon, "--help").stdout
    assert "Examples:" in help_text and "Exit codes" in help_text


def test_a_non_root_operator_uses_an_admin_token_kept_in_the_runtime_dir(daemon):
    add_user(daemon, "root@example.com", role="admin")
    add_user(daemon, "plain@example.com")
    runtime = tempfile.mkdtemp(prefix="authctl-runtime-")
    os.chown(runtime, 65534, 65534)
    env = {"XDG_RUNTIME_DIR": runtime}
    os.chmod(daemon.dir, 0o755)
    os.chmod(daemon.socket, 0o666)
    refused = authctl(daemon, "user", "list", env=env, user=65534)
    assert refused.returncode == 2 and "forbidden" in refused.stderr
    login = authctl(daemon, "login", "root@example.com", "--password-stdin", stdin=PASSWORD + "\n", env=env, user=65534)
    assert login.returncode == 0, login.stderr
    token_file = os.path.join(runtime, "authctl", "token")
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(token_file)).st_mode) == 0o700
    listed = authctl(daemon, "user", "list", "--json", env=env, user=65534)
    assert listed.returncode == 0, listed.stderr
    assert {user["email"] for user in json.loads(listed.stdout)} == {"root@example.com", "plain@example.com"}
    assert authctl(daemon, "logout", env=env, user=65534).returncode == 0
    assert not os.path.exists(token_file)
    assert authctl(daemon, "user", "list", env=env, user=65534).returncode == 2
    shutil.rmtree(runtime, ignore_errors=True)


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


def test_a_second_factor_enrolled_through_the_terminal_is_asked_for_at_login(daemon):
    import re
    import time
    add_user(daemon, "mfa@example.com")
    runtime = tempfile.mkdtemp(prefix="authctl-runtime-")
    env = {"PATH": "/usr/bin:/bin", "AUTHD_SOCKET": daemon.socket, "XDG_RUNTIME_DIR": runtime}
    login = authctl(daemon, "login", "mfa@example.com", "--password-stdin", stdin=PASSWORD + "\n", env=env)
    assert login.returncode == 0, login.stderr
    child = pexpect.spawn(AUTHCTL, ["user", "mfa", "enroll"], env=env, timeout=30)
    child.expect("Password: ")
    child.sendline(PASSWORD)
    child.expect(r"secret: ([A-Z2-7]+)")
    secret = child.match.group(1).decode()
    child.expect("Code \\(or a recovery code\\): ")
    step = int(time.time()) // 30
    child.sendline(totp(secret, step))
    child.expect(pexpect.EOF)
    output = child.before.decode()
    child.close()
    assert child.exitstatus == 0, output
    codes = re.findall(r"[A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4}", output)
    assert len(codes) == 10, output
    shown = authctl(daemon, "user", "show", "mfa@example.com", "--json", env=env)
    assert json.loads(shown.stdout)["mfa_enabled"] is True
    # The password alone no longer logs in; with the next code on stdin it does.
    alone = authctl(daemon, "login", "mfa@example.com", "--password-stdin", "--print-tokens",
                    stdin=PASSWORD + "\n", env=env)
    assert alone.returncode == 64, alone.stderr
    both = authctl(daemon, "login", "mfa@example.com", "--password-stdin", "--print-tokens",
                   stdin=PASSWORD + "\n" + totp(secret, step + 1) + "\n", env=env)
    assert both.returncode == 0, both.stderr
    assert json.loads(both.stdout)["user"]["email"] == "mfa@example.com"
    # A recovery code works once; a used code is refused.
    again = authctl(daemon, "login", "mfa@example.com", "--password-stdin", "--print-tokens",
                    stdin=PASSWORD + "\n" + totp(secret, step + 1) + "\n", env=env)
    assert again.returncode == 2 and "invalid credentials" in again.stderr
    recovered = authctl(daemon, "login", "mfa@example.com", "--password-stdin", "--print-tokens",
                        stdin=PASSWORD + "\n" + codes[0] + "\n", env=env)
    assert recovered.returncode == 0, recovered.stderr
    # An admin's reset: the password alone logs in again.
    reset = authctl(daemon, "user", "mfa", "reset", "mfa@example.com", "--json")
    assert reset.returncode == 0 and json.loads(reset.stdout) == {"reset": True}
    plain = authctl(daemon, "login", "mfa@example.com", "--password-stdin", "--print-tokens", stdin=PASSWORD + "\n")
    assert plain.returncode == 0, plain.stderr
    shutil.rmtree(runtime, ignore_errors=True)
