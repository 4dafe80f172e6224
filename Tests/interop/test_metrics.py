"""`authctl metrics` and `sys.metrics` read by Prometheus' own parser (the
prometheus_client package's): the families, their types, and counts that
moved with the calls made."""
import os
import pathlib
import shutil
import subprocess
import tempfile

from prometheus_client.parser import text_string_to_metric_families

from conftest import PASSWORD
from test_authctl import AUTHCTL, authctl

FAMILIES = {
    "authd_build_info": "gauge",
    "authd_start_time_seconds": "gauge",
    # The parser names a counter's family without its _total.
    "authd_requests": "counter",
    "authd_request_duration_seconds": "histogram",
    "authd_requests_in_flight": "gauge",
    "authd_queue_depth": "gauge",
    "authd_queue_capacity": "gauge",
    "authd_users": "gauge",
    "authd_live_sessions": "gauge",
}


def parse(text):
    families = {family.name: family for family in text_string_to_metric_families(text)}
    samples = {}
    for family in families.values():
        for sample in family.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            assert key not in samples, key
            samples[key] = sample.value
    return families, samples


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))))


def test_authctl_metrics_parse_as_prometheus_text(daemon, rpc):
    rpc.result("user.create", {"email": "prom@example.com", "password": PASSWORD})
    for _ in range(2):
        rpc.result("auth.login", {"email": "prom@example.com", "password": PASSWORD})
    assert rpc.call("auth.login", {"email": "prom@example.com", "password": "not the password"})["error"]
    assert rpc.call("token.verify", {"token": "garbage"})["error"]["data"]["reason"] == "token_invalid"

    printed = authctl(daemon, "metrics")
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout.endswith("\n") and not printed.stderr
    families, samples = parse(printed.stdout)
    assert {name: family.type for name, family in families.items()} == FAMILIES

    assert value(samples, "authd_requests_total", method="auth.login", outcome="ok") == 2
    assert value(samples, "authd_requests_total", method="auth.login", outcome="invalid_credentials") == 1
    assert value(samples, "authd_requests_total", method="token.verify", outcome="token_invalid") == 1
    assert value(samples, "authd_requests_total", method="token.verify", outcome="ok") == 0
    assert value(samples, "authd_requests_total", method="user.create", outcome="ok") == 1
    # Every method is there from the start.
    assert value(samples, "authd_requests_total", method="keys.rotate", outcome="ok") == 0

    login = sorted(((float(labels["le"]), count) for (name, items), count in samples.items()
                    for labels in [dict(items)]
                    if name == "authd_request_duration_seconds_bucket" and labels["method"] == "auth.login"))
    assert login[-1] == (float("inf"), 3)
    assert [count for _, count in login] == sorted(count for _, count in login)  # cumulative
    assert value(samples, "authd_request_duration_seconds_count", method="auth.login") == 3
    assert value(samples, "authd_request_duration_seconds_sum", method="auth.login") > 0

    assert value(samples, "authd_users") == 1
    assert value(samples, "authd_live_sessions") == 2
    assert value(samples, "authd_queue_capacity", queue="hash") == 1024
    assert value(samples, "authd_queue_depth", queue="store") == 0
    [build] = families["authd_build_info"].samples
    assert build.value == 1 and build.labels["version"]

    # The method answers the same text, with its content type.
    answer = rpc.result("sys.metrics")
    assert answer["content_type"] == "text/plain; version=0.0.4"
    _, again = parse(answer["text"])
    assert value(again, "authd_requests_total", method="auth.login", outcome="ok") == 2


def test_the_textfile_recipe_writes_a_whole_file(daemon):
    """What the example service runs: a temporary file renamed over the one
    node_exporter reads."""
    folder = tempfile.mkdtemp(prefix="authd-textfile-")
    command = '"$AUTHCTL" metrics >"$DIR/authd.prom.tmp" && mv "$DIR/authd.prom.tmp" "$DIR/authd.prom"'
    env = {"PATH": "/usr/bin:/bin", "AUTHD_SOCKET": daemon.socket, "DIR": folder, "AUTHCTL": AUTHCTL}
    try:
        subprocess.run(["/bin/sh", "-c", command], check=True, env=env, timeout=60)
        assert os.listdir(folder) == ["authd.prom"]
        families, _ = parse(pathlib.Path(folder, "authd.prom").read_text())
        assert set(families) == set(FAMILIES)
    finally:
        shutil.rmtree(folder)


def test_a_peer_that_is_no_admin_gets_nothing(daemon):
    os.chmod(daemon.dir, 0o755)
    os.chmod(daemon.socket, 0o666)
    refused = authctl(daemon, "metrics", user=65534)
    assert refused.returncode == 2
    assert refused.stdout == "" and "forbidden" in refused.stderr
