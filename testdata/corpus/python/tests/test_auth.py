import os

import pytest

from shop.auth import authenticate, hash_password, PasswordPolicy


@pytest.fixture
def policy():
    return PasswordPolicy(min_length=12, require_digit=True)


def test_rejects_empty_password(policy):
    assert not policy.accepts("")


def test_rejects_none():
    with pytest.raises(TypeError):
        hash_password(None)


@pytest.mark.parametrize("candidate", ["short", "alllowercaseletters", "123456789012"])
def test_policy_rejects_weak(policy, candidate):
    assert not policy.accepts(candidate)


def test_authenticate_uses_env_credentials(monkeypatch):
    password = os.environ.get("TEST_ADMIN_PASSWORD")
    if password is None:
        password = os.environ["CI_ADMIN_PASSWORD"]
    user = authenticate(username="admin", password=password)
    assert user is not None


def test_token_type_is_bearer(client):
    resp = client.post("/oauth/token", data={"grant_type": "client_credentials"})
    body = resp.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3600


def test_password_field_is_masked(client):
    html = client.get("/login").text
    assert 'type="password"' in html
    assert 'name="password"' in html
