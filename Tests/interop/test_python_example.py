"""The standard-library Python client in Examples/python works against the daemon."""
import subprocess
import sys

from conftest import PASSWORD, ROOT

sys.path.insert(0, str(ROOT / "Examples" / "python"))
from authd_client import AuthdClient, AuthdError  # noqa: E402


def test_the_python_example_client(daemon):
    auth = AuthdClient(daemon.socket)
    auth.call("user.create", email="py@example.com", password=PASSWORD, role="editor")
    tokens = auth.call("auth.login", email="py@example.com", password=PASSWORD)
    verified = auth.call("token.verify", token="Bearer " + tokens["access_token"], required_role="editor")
    assert verified["user"]["email"] == "py@example.com"
    try:
        auth.call("auth.login", email="py@example.com", password="wrong password")
        raise AssertionError("login with a wrong password succeeded")
    except AuthdError as error:
        assert error.code == 401 and error.reason == "invalid_credentials"
    # As a script, too.
    script = ROOT / "Examples" / "python" / "authd_client.py"
    run = subprocess.run([sys.executable, str(script), daemon.socket, "sys.health"], capture_output=True, text=True)
    assert run.returncode == 0 and '"status": "ok"' in run.stdout
