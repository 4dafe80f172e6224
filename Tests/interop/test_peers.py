"""A second peer (another uid) attacking the real daemon on its real socket:
taking every connection, idling on empty lines, flooding the hashing queue
and leaving, and taking the whole queue."""
import json
import resource
import select
import socket
import time

from conftest import HOLD, PASSWORD, Daemon, remember_secrets

OPEN = ("--socket-mode", "0666")  # other uids may connect
HOG, OTHER = 65534, 65533

# 100 connections, each sends one login (a fresh email and client, so no
# throttle holds it back), then closes: a full close, not SHUT_WR. A
# sys.health after the login, answered at once, shows the daemon has read the
# login and queued it (else, under load, it may see the close first and never
# read the line, and the test would prove nothing).
FLOOD = """
for n in range(ARGS["count"]):
    sock = connect()
    sock.sendall(line("auth.login", email=f"flood-{n}@example.com", password=ARGS["password"], client=f"flood-{n}")
                 + line("sys.health", 2))
    reader = sock.makefile("rb")
    while json.loads(reader.readline())["id"] != 2:
        pass
    reader.close()
    sock.close()
report({"sent": ARGS["count"]})
"""

# Ten logins pipelined on one connection; reports the first five answers,
# waits for stdin to close, then reports the other five.
PIPELINE = """
sock = connect()
sock.sendall(b"".join(line("auth.login", n, email=f"share-{n}@example.com", password=ARGS["password"])
                      for n in range(10)))
reader = sock.makefile("rb")
report([json.loads(reader.readline()) for _ in range(5)])
sys.stdin.read()
report([json.loads(reader.readline()) for _ in range(5)])
"""


def wait_for(condition, seconds=30, what="a condition"):
    deadline = time.time() + seconds
    while not condition():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def events(daemon, name, reason=None):
    found = []
    with open(daemon.stderr_path, "rb") as log:
        for raw in log:
            try:
                entry = json.loads(raw)
            except ValueError:
                continue  # not an event line
            if isinstance(entry, dict) and entry.get("AUTHD_EVENT") == name:
                if reason is None or entry.get("AUTHD_REASON") == reason:
                    found.append(entry)
    return found


def refused_uids(daemon):
    return [entry.get("AUTHD_PEER_UID") for entry in events(daemon, "authz_fail", "connection_limit")]


def create_and_login(rpc, email):
    rpc.result("user.create", {"email": email, "password": PASSWORD})
    return rpc.result("auth.login", {"email": email, "password": PASSWORD})


def test_one_peer_cannot_take_every_connection(peers):
    """Connection exhaustion by one uid: past 256 (the per-peer default) each
    new connection gets one busy line and EOF, root is still served, the
    refusals are logged, and the places come back when the peer lets go."""
    resource.setrlimit(resource.RLIMIT_NOFILE, (8192, 8192))
    daemon = Daemon(*OPEN)
    try:
        hog = peers(daemon, HOG, HOLD, count=300, probe=True)
        seen = hog.read()
        assert seen == {"opened": 300, "ok": 256, "busy": 44, "closed_after_busy": 44, "other": []}
        rpc = daemon.connect()
        assert rpc.result("sys.health")["status"] == "ok"
        assert "access_token" in create_and_login(rpc, "root@example.com")
        wait_for(lambda: len(refused_uids(daemon)) >= 44, what="44 connection_limit events")
        assert set(refused_uids(daemon)) == {str(HOG)}
        hog.finish()
        # The daemon counts the closes as it sees them: let it catch up (bounded).
        for _ in range(50):
            again = peers(daemon, HOG, HOLD, count=1, probe=True)
            if again.read()["ok"] == 1:
                break
            again.finish()
            time.sleep(0.2)
        else:
            raise AssertionError(f"uid {HOG} was still refused after closing its connections")
        again.finish()
        rpc.close()
    finally:
        daemon.stop()


def test_admin_reserve_outlasts_many_peers(peers):
    """Connection exhaustion by several uids: the last 16 of 64 places are
    for admin peers only, so non-admin uids (one or many) stop at 48 and
    root still gets in."""
    daemon = Daemon(*OPEN, "--max-connections", "64", "--max-connections-per-peer", "1000",
                    "--admin-reserved-connections", "16")
    try:
        hog = peers(daemon, HOG, HOLD, count=49, probe=True)
        seen = hog.read()
        # 48 places for non-admins; one fewer while the daemon has not yet
        # seen the close of the start-up probe connection (root's).
        assert seen["ok"] in (47, 48) and seen["busy"] == 49 - seen["ok"], seen
        assert seen["closed_after_busy"] == seen["busy"] and seen["other"] == [], seen
        other = peers(daemon, OTHER, HOLD, count=1, probe=True)
        assert other.read() == {"opened": 1, "ok": 0, "busy": 1, "closed_after_busy": 1, "other": []}
        other.finish()
        rpc = daemon.connect()
        assert rpc.result("sys.health")["status"] == "ok"
        wait_for(lambda: {str(HOG), str(OTHER)} <= set(refused_uids(daemon)), what="connection_limit events")
        hog.finish()
        rpc.close()
    finally:
        daemon.stop()


def test_empty_lines_do_not_keep_a_connection_alive():
    """Idle-timeout evasion: a connection sending only "\\n" is closed as idle;
    one sending real requests at the same pace stays open and answered."""
    daemon = Daemon("--idle-timeout", "2")
    try:
        blank = socket.socket(socket.AF_UNIX)
        blank.connect(daemon.socket)
        busy = daemon.connect()
        started, blank_closed = time.time(), False
        while time.time() - started < 10 and (not blank_closed or time.time() - started < 5):
            if not blank_closed:
                try:
                    blank.sendall(b"\n")
                    if select.select([blank], [], [], 0)[0]:
                        assert blank.recv(1) == b"", "an empty line was answered"
                        blank_closed = True
                except (BrokenPipeError, ConnectionResetError):
                    blank_closed = True
            assert busy.result("sys.health")["status"] == "ok"
            time.sleep(0.5)
        assert blank_closed, "a connection sending only empty lines was not closed as idle"
        assert time.time() - started >= 5
        assert busy.result("sys.health")["status"] == "ok"
        busy.close()
        blank.close()
    finally:
        daemon.stop()


def test_jobs_of_gone_peers_are_dropped(peers):
    """Hash-queue flooding by connections that leave at once: queued logins
    whose connection has closed are dropped before they hash (no event), and
    root's login is served afterwards."""
    daemon = Daemon(*OPEN, "--bcrypt-cost", "12", "--workers", "1")
    try:
        rpc = daemon.connect()
        rpc.result("user.create", {"email": "root@example.com", "password": PASSWORD})
        flood = peers(daemon, HOG, FLOOD, count=100, password=PASSWORD)
        assert flood.finish() == [{"sent": 100}]
        wait_for(lambda: rpc.result("stats")["queues"]["hash"]["depth"] == 0, 60, "an empty hash queue")
        # Root's login waits for the job running now: once it is answered,
        # every flood login that ran has logged its event.
        assert "access_token" in rpc.result("auth.login", {"email": "root@example.com", "password": PASSWORD})
        ran = [entry for entry in events(daemon, "authn_login_fail")
               if entry.get("AUTHD_EMAIL", "").startswith("flood-")]
        logins = rpc.result("stats")["methods"].get("auth.login", {}).get("count")
        print(f"gone peers: {len(ran)} of 100 flood logins hashed; stats counts {logins} auth.login")
        assert len(ran) < 20, f"{len(ran)} logins of closed connections were hashed"
        # Every flood login was answered (the dropped ones busy, to no one), and root's.
        assert logins == 101, f"{logins} logins answered"
        rpc.close()
    finally:
        daemon.stop()


def test_a_half_closed_client_still_gets_its_answer():
    """The other side of dropping gone peers: a client that shuts down its
    writing side (socat -t) after its request is not gone, even while its
    login waits in the queue behind another."""
    daemon = Daemon("--bcrypt-cost", "12", "--workers", "1")
    try:
        rpc = daemon.connect()
        rpc.result("user.create", {"email": "half@example.com", "password": PASSWORD})
        params = {"email": "half@example.com", "password": PASSWORD}
        ahead = {"jsonrpc": "2.0", "id": 1, "method": "auth.login", "params": params}
        rpc.file.write((json.dumps(ahead) + "\n").encode())  # occupies the one worker
        rpc.file.flush()
        half = socket.socket(socket.AF_UNIX)
        half.settimeout(30)
        half.connect(daemon.socket)
        half.sendall((json.dumps({**ahead, "id": 2}) + "\n").encode())
        half.shutdown(socket.SHUT_WR)
        reader = half.makefile("rb")
        answer = json.loads(reader.readline())
        remember_secrets(params, answer)
        assert answer["id"] == 2 and "access_token" in answer.get("result", {}), answer
        assert reader.read() == b""  # then closed, all answered
        first = json.loads(rpc.file.readline())
        remember_secrets(params, first)
        assert "access_token" in first["result"]
        half.close()
        rpc.close()
    finally:
        daemon.stop()


def test_one_peer_cannot_take_the_whole_hash_queue(peers):
    """Hash-queue monopoly: with --max-queue 8 one uid may queue 2 jobs; its
    other pipelined logins get 503 busy, while root's login, sent meanwhile,
    is queued and answered."""
    daemon = Daemon(*OPEN, "--bcrypt-cost", "12", "--workers", "1", "--max-queue", "8")
    try:
        rpc = daemon.connect()
        rpc.result("user.create", {"email": "root@example.com", "password": PASSWORD})
        greedy = peers(daemon, HOG, PIPELINE, password=PASSWORD)
        answers = greedy.read()
        tokens = rpc.call("auth.login", {"email": "root@example.com", "password": PASSWORD})
        assert "access_token" in tokens.get("result", {}), tokens
        answers += greedy.finish()[0]
        busy = [a for a in answers if a.get("error", {}).get("code") == 503
                and a["error"].get("data", {}).get("reason") == "busy"]
        assert len(busy) >= 5, answers
        assert sorted(a["id"] for a in answers) == list(range(10))
        rpc.close()
    finally:
        daemon.stop()
