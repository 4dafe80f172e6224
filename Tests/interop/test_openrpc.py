"""Real answers of the daemon match the result schemas of protocol/openrpc.json,
and every error it gives is one the document lists for that method."""
import base64
import hashlib
import hmac
import json
import struct
import time

import jsonschema
import pytest

from conftest import PASSWORD, ROOT

DOCUMENT = json.loads((ROOT / "protocol" / "openrpc.json").read_text())
METHODS = {method["name"]: method for method in DOCUMENT["methods"]}


def validator_for(schema):
    return jsonschema.Draft202012Validator({**schema, "components": DOCUMENT["components"]})


def check(method, response):
    spec = METHODS[method]
    if "result" in response:
        validator_for(spec["result"]["schema"]).validate(response["result"])
    else:
        error = response["error"]
        validator_for({"$ref": "#/components/schemas/ErrorData"}).validate(error["data"])
        listed = {DOCUMENT["components"]["errors"][ref["$ref"].split("/")[-1]]["data"]["reason"]
                  for ref in spec["errors"]}
        assert error["data"]["reason"] in listed | {"invalid_params"}, (method, error)
    return response


def test_the_document_is_valid_json_schema():
    for method in DOCUMENT["methods"]:
        jsonschema.Draft202012Validator.check_schema(method["result"]["schema"])
        for param in method["params"]:
            jsonschema.Draft202012Validator.check_schema(param["schema"])


def totp(secret, step):
    """RFC 6238 with SHA-1, 6 digits: the code of one 30-s step."""
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    digest = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    return "%06d" % ((struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF) % 1_000_000)


def test_every_method_answers_as_documented(daemon, rpc):
    seen = set()

    def call(method, params=None):
        seen.add(method)
        return check(method, rpc.call(method, params))

    assert "result" in call("sys.health")
    assert call("rpc.discover")["result"] == DOCUMENT
    assert "result" in call("keys.jwks")
    user = call("user.create", {"email": "doc@example.com", "password": PASSWORD, "role": "admin"})["result"]
    call("user.create", {"email": "doc@example.com", "password": PASSWORD})
    call("user.create", {"email": "other@example.com", "password": PASSWORD})
    login = call("auth.login", {"email": "doc@example.com", "password": PASSWORD})["result"]
    call("auth.login", {"email": "doc@example.com", "password": "not the password"})
    call("token.verify", {"token": login["access_token"], "required_role": "admin"})
    call("token.verify", {"token": login["access_token"], "required_role": "nobody"})
    call("token.verify", {"token": "nonsense"})
    call("user.me", {"access_token": login["access_token"]})
    call("user.get", {"id": user["id"]})
    call("user.get", {"email": "missing@example.com"})
    call("user.list", {"limit": 1})
    call("user.update", {"id": user["id"], "role": "admin"})
    call("session.list", {"user_id": user["id"]})
    refreshed = call("auth.refresh", {"refresh_token": login["refresh_token"]})["result"]
    call("auth.refresh", {"refresh_token": login["refresh_token"]})
    again = call("auth.login", {"email": "doc@example.com", "password": PASSWORD})["result"]
    call("user.change_password", {"access_token": again["access_token"], "current_password": PASSWORD,
                                  "new_password": "a new password"})
    call("auth.logout", {"refresh_token": again["refresh_token"]})
    call("auth.logout", {"refresh_token": refreshed["refresh_token"]})
    third = call("auth.login", {"email": "doc@example.com", "password": "a new password"})["result"]
    call("auth.logout_all", {"access_token": third["access_token"]})
    call("session.revoke", {"user_id": user["id"]})
    call("session.revoke", {"id": "no-such-session"})
    call("user.set_password", {"id": user["id"], "password": PASSWORD})
    # The second factor: enrolment, a login in two steps, new codes, disabling, an admin's reset.
    token = call("auth.login", {"email": "doc@example.com", "password": PASSWORD})["result"]["access_token"]
    call("user.totp.enroll", {"access_token": token, "current_password": "not the password"})
    secret = call("user.totp.enroll", {"access_token": token, "current_password": PASSWORD})["result"]["secret"]
    step = int(time.time()) // 30
    call("user.totp.confirm", {"access_token": token, "code": totp(secret, step + 5)})
    codes = call("user.totp.confirm", {"access_token": token, "code": totp(secret, step)})["result"]["recovery_codes"]
    challenge = call("auth.login", {"email": "doc@example.com", "password": PASSWORD})["result"]
    assert challenge["mfa_required"] is True
    call("auth.mfa", {"mfa_token": challenge["mfa_token"], "code": totp(secret, step)})
    assert "result" in call("auth.mfa", {"mfa_token": challenge["mfa_token"], "code": codes[0]})
    fresh = call("user.totp.recovery_codes", {"access_token": token, "current_password": PASSWORD,
                                              "code": codes[1]})["result"]["recovery_codes"]
    call("user.totp.disable", {"access_token": token, "current_password": PASSWORD, "code": codes[2]})
    call("user.totp.disable", {"access_token": token, "current_password": PASSWORD, "code": fresh[0]})
    call("user.totp.reset", {"id": user["id"]})
    call("user.totp.reset", {"id": "999999"})
    call("keys.rotate")
    call("stats")
    assert call("sys.metrics")["result"]["text"].startswith("# HELP ")
    call("sys.backup")
    other = call("user.get", {"email": "other@example.com"})["result"]
    call("user.delete", {"id": other["id"]})
    call("user.delete", {"id": other["id"]})
    assert seen == set(METHODS)


def test_protocol_level_errors_are_documented(rpc):
    rpc.file.write(b"not json\n[1]\n{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"x.y\"}\n")
    rpc.file.flush()
    reasons = [json.loads(rpc.file.readline())["error"]["data"]["reason"] for _ in range(3)]
    documented = {error["data"]["reason"] for error in DOCUMENT["components"]["errors"].values()}
    assert reasons == ["parse_error", "batch_not_supported", "method_not_found"]
    assert set(reasons) <= documented
