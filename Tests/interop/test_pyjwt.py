"""Interop with PyJWT: authd's tokens are standard HS256 JWTs, and a token
PyJWT mints with the right key and claims verifies in authd."""
import time
import uuid

import jwt
import pytest

from conftest import PASSWORD


def login(rpc, email="py@example.com"):
    rpc.result("user.create", {"email": email, "password": PASSWORD})
    return rpc.result("auth.login", {"email": email, "password": PASSWORD})


def test_authd_tokens_decode_in_pyjwt(daemon, rpc):
    tokens = login(rpc)
    access_key = daemon.key("access-key")
    header = jwt.get_unverified_header(tokens["access_token"])
    assert header["alg"] == "HS256"
    assert header["typ"] == "at+jwt"
    assert header["kid"]
    claims = jwt.decode(
        tokens["access_token"], access_key, algorithms=["HS256"], audience="authd-clients", issuer="authd",
        options={"require": ["exp", "iat", "sub", "sid", "jti"]})
    assert claims["email"] == "py@example.com"
    assert claims["sub"] == tokens["user"]["id"]
    assert claims["exp"] - claims["iat"] == 900
    # The refresh token uses the other key: the access key does not verify it.
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(tokens["refresh_token"], access_key, algorithms=["HS256"], options={"verify_aud": False})
    refresh = jwt.decode(tokens["refresh_token"], daemon.key("refresh-key"), algorithms=["HS256"])
    assert jwt.get_unverified_header(tokens["refresh_token"])["typ"] == "refresh+jwt"
    assert refresh["sid"] == claims["sid"]


def test_a_pyjwt_token_with_the_right_key_and_claims_verifies(daemon, rpc):
    tokens = login(rpc)
    kid = jwt.get_unverified_header(tokens["access_token"])["kid"]
    original = jwt.decode(tokens["access_token"], daemon.key("access-key"), algorithms=["HS256"],
                          audience="authd-clients")
    now = int(time.time())
    claims = {**original, "jti": str(uuid.uuid4()), "iat": now, "exp": now + 60}
    minted = jwt.encode(claims, daemon.key("access-key"), algorithm="HS256", headers={"typ": "at+jwt", "kid": kid})
    verified = rpc.result("token.verify", {"token": minted})
    assert verified["user"]["email"] == "py@example.com"
    assert verified["claims"]["jti"] == claims["jti"]


def test_pyjwt_forgeries_are_refused(daemon, rpc):
    tokens = login(rpc)
    kid = jwt.get_unverified_header(tokens["access_token"])["kid"]
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    cases = {
        "wrong key": jwt.encode(claims, b"x" * 40, algorithm="HS256", headers={"typ": "at+jwt", "kid": kid}),
        "HS512": jwt.encode(claims, daemon.key("access-key"), algorithm="HS512", headers={"typ": "at+jwt", "kid": kid}),
        "alg none": jwt.encode(claims, None, algorithm="none", headers={"typ": "at+jwt", "kid": kid}),
        "no typ": jwt.encode(claims, daemon.key("access-key"), algorithm="HS256", headers={"kid": kid}),
        "refresh key": jwt.encode(claims, daemon.key("refresh-key"), algorithm="HS256",
                                  headers={"typ": "at+jwt", "kid": kid}),
        "unknown kid": jwt.encode(claims, daemon.key("access-key"), algorithm="HS256",
                                  headers={"typ": "at+jwt", "kid": "other"}),
        "wrong audience": jwt.encode({**claims, "aud": "someone-else"}, daemon.key("access-key"), algorithm="HS256",
                                     headers={"typ": "at+jwt", "kid": kid}),
    }
    for name, token in cases.items():
        response = rpc.call("token.verify", {"token": token})
        assert response["error"]["data"]["reason"] == "token_invalid", name
    expired = jwt.encode({**claims, "exp": int(time.time()) - 3600}, daemon.key("access-key"), algorithm="HS256",
                         headers={"typ": "at+jwt", "kid": kid})
    assert rpc.call("token.verify", {"token": expired})["error"]["data"]["reason"] == "token_expired"


def test_a_self_minted_refresh_token_is_not_server_side_and_is_refused(daemon, rpc):
    """Only a session's current refresh token is kept server-side: a validly
    signed one that is not it (here minted with the stolen refresh key) is
    reuse, and the session is revoked, real token included."""
    tokens = login(rpc)
    header = jwt.get_unverified_header(tokens["refresh_token"])
    claims = jwt.decode(tokens["refresh_token"], daemon.key("refresh-key"), algorithms=["HS256"])
    forged = jwt.encode({**claims, "jti": "forged"}, daemon.key("refresh-key"), algorithm="HS256", headers=header)
    assert rpc.call("auth.refresh", {"refresh_token": forged})["error"]["data"]["reason"] == "refresh_reused"
    assert rpc.call("auth.refresh", {"refresh_token": tokens["refresh_token"]})["error"]["data"]["reason"] == \
        "refresh_invalid"
    assert rpc.call("token.verify", {"token": tokens["access_token"]})["error"]["data"]["reason"] == "session_revoked"
    # A minted token of a session that does not exist is simply invalid.
    ghost = jwt.encode({**claims, "sid": "nosuchsession", "jti": "ghost"}, daemon.key("refresh-key"),
                       algorithm="HS256", headers=header)
    assert rpc.call("auth.refresh", {"refresh_token": ghost})["error"]["data"]["reason"] == "refresh_invalid"
