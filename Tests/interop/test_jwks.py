"""A Python service verifies authd's EdDSA access tokens offline with PyJWT
and the JWKS from keys.jwks (the README's example)."""
import json

import jwt
import pytest

from conftest import PASSWORD, Daemon


@pytest.fixture
def eddsa():
    running = Daemon("--algorithm", "EdDSA")
    yield running
    running.stop()


def test_pyjwt_verifies_authd_tokens_with_the_jwks(eddsa):
    rpc = eddsa.connect()
    rpc.result("user.create", {"email": "jwks@example.com", "password": PASSWORD, "role": "editor"})
    token = rpc.result("auth.login", {"email": "jwks@example.com", "password": PASSWORD})["access_token"]
    jwks = rpc.result("keys.jwks")
    assert len(jwks["keys"]) == 1

    # The README's offline check, as a service would write it.
    keys = {key["kid"]: jwt.PyJWK(key) for key in jwks["keys"]}
    kid = jwt.get_unverified_header(token)["kid"]
    claims = jwt.decode(token, keys[kid], algorithms=["EdDSA"], audience="authd-clients", issuer="authd")
    assert claims["email"] == "jwks@example.com" and claims["role"] == "editor"

    # Tampering is caught offline too.
    head, payload, signature = token.split(".")
    tampered = f"{head}.{payload}.{signature[:-4]}AAAA"
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(tampered, keys[kid], algorithms=["EdDSA"], audience="authd-clients")

    # After rotation both keys are published, and both tokens verify offline.
    rpc.result("keys.rotate")
    new_token = rpc.result("auth.login", {"email": "jwks@example.com", "password": PASSWORD})["access_token"]
    keys = {key["kid"]: jwt.PyJWK(key) for key in rpc.result("keys.jwks")["keys"]}
    assert len(keys) == 2
    for each in (token, new_token):
        jwt.decode(each, keys[jwt.get_unverified_header(each)["kid"]], algorithms=["EdDSA"], audience="authd-clients")
    rpc.close()
