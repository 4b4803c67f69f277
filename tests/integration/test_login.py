"""SetHandler memsession-login behind Basic auth: the cookie, the redirect, the return path."""

import re
import urllib.parse

import pytest

from harness.http import basic, location_path

pytestmark = pytest.mark.module

COOKIE_RE = re.compile(r"\A[A-Za-z0-9_-]{43}\Z")
ALICE = {"Authorization": basic("alice", "alicepw")}


def test_login_redirects_to_the_return_path_with_a_session_cookie(client):
    r = client.get("/login?return=/app/env.cgi", headers=ALICE)
    assert r.status == 303, r.describe()
    assert location_path(r, client.origin) == "/app/env.cgi"
    c = r.cookie("memsession")
    assert c is not None, r.describe()
    assert COOKIE_RE.match(c.value), f"cookie value is not 43 base64url chars: {c.raw}"
    assert c.get("path") == "/"
    assert c.has("httponly"), c.raw
    assert (c.get("samesite") or "").lower() == "lax", c.raw
    assert not c.has("secure"), f"MemSessionCookieSecure Off, yet: {c.raw}"
    assert not c.has("max-age") and not c.has("expires"), f"not a session cookie: {c.raw}"
    assert not c.has("domain"), c.raw


def test_login_cookie_is_secure_by_default(client):
    r = client.get("/login-secure?return=/app/", headers=ALICE)
    assert r.status == 303, r.describe()
    c = r.cookie("memsession")
    assert c is not None, r.describe()
    assert c.has("secure"), c.raw
    assert c.has("httponly"), c.raw


def test_every_login_mints_a_different_id(client):
    values = []
    for _ in range(5):
        r = client.get("/login", headers=ALICE)
        assert r.status == 303, r.describe()
        values.append(r.cookie("memsession").value)
    assert all(COOKIE_RE.match(v) for v in values), values
    assert len(set(values)) == len(values), values


def test_login_with_a_wrong_password_is_401_without_a_cookie(client):
    r = client.get("/login?return=/app/env.cgi", headers={"Authorization": basic("alice", "wrong")})
    assert r.status == 401, r.describe()
    assert r.headers_all("Set-Cookie") == []


def test_login_without_credentials_is_a_basic_challenge_without_a_cookie(client):
    r = client.get("/login?return=/app/env.cgi")
    assert r.status == 401, r.describe()
    assert r.header("WWW-Authenticate").startswith("Basic"), r.describe()
    assert r.headers_all("Set-Cookie") == []


def test_login_without_a_return_path_redirects_to_the_root(client):
    r = client.get("/login", headers=ALICE)
    assert r.status == 303, r.describe()
    assert location_path(r, client.origin) == "/"
    assert r.cookie("memsession") is not None


REFUSED_RETURNS = [
    "//evil.example",
    "https://evil.example/x",
    "/\\evil.example",
    "/%2f%2fevil.example",
    "/%5Cevil.example",
    "javascript:alert(1)",
    "/\t/evil.example",  # browsers strip tabs: this is //evil.example
    "/app/\r\nX-Injected: 1",  # header injection
    "app/env.cgi",  # relative: not a same-origin absolute path
    "",
]


@pytest.mark.parametrize("target", REFUSED_RETURNS, ids=repr)
def test_login_refuses_a_foreign_or_malformed_return_path(client, target):
    r = client.get("/login?return=" + urllib.parse.quote(target, safe=""), headers=ALICE)
    assert r.status == 303, r.describe()
    loc = r.header("Location")
    assert "evil" not in loc.lower() and "javascript" not in loc.lower(), loc
    assert location_path(r, client.origin) == "/", r.describe()
    assert r.headers_all("X-Injected") == []
    assert r.cookie("memsession") is not None, "the login itself succeeded: cookie expected"


def test_login_accepts_a_same_origin_path_with_a_query(client):
    r = client.get("/login?return=" + urllib.parse.quote("/app/env.cgi?x=1", safe=""), headers=ALICE)
    assert r.status == 303, r.describe()
    assert location_path(r, client.origin) == "/app/env.cgi?x=1"


def test_xhr_login_answers_json_with_the_user_and_a_cookie(client):
    r = client.get("/login?return=/app/env.cgi",
                   headers={**ALICE, "X-Requested-With": "XMLHttpRequest"})
    assert r.status == 200, r.describe()
    assert r.header("Content-Type").split(";")[0].strip() == "application/json", r.describe()
    body = r.json()
    assert body.get("user") == "alice", body
    assert '"user":"alice"' in r.text.replace(" ", ""), r.text
    c = r.cookie("memsession")
    assert c is not None and COOKIE_RE.match(c.value), r.describe()
    assert c.has("httponly")
