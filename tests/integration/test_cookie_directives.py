"""MemSessionCookie* directives change the Set-Cookie the login sends (and the cookie read)."""

import pytest

from harness.http import basic
from harness.site import COOKIE_DOMAIN

pytestmark = pytest.mark.module

ALICE = {"Authorization": basic("alice", "alicepw")}


def test_cookie_name_directive_renames_the_cookie_that_is_set_and_read(client, whoami):
    r = client.get("/login-named", headers=ALICE)
    assert r.status == 303, r.describe()
    assert r.cookie("memsession") is None, r.describe()
    c = r.cookie("othersess")
    assert c is not None, r.describe()
    status, env = whoami(c.value, "/named-app/env.cgi", cookie_name="othersess")
    assert status == 200
    assert env["REMOTE_USER"] == "alice"
    status, _ = whoami(c.value, "/named-app/env.cgi", cookie_name="memsession")
    assert status == 401, "a location configured for 'othersess' must not read 'memsession'"


def test_samesite_strict_domain_and_path_directives(client):
    r = client.get("/login-strict", headers=ALICE)
    assert r.status == 303, r.describe()
    c = r.cookie("memsession")
    assert c is not None, r.describe()
    assert (c.get("samesite") or "").lower() == "strict", c.raw
    assert (c.get("domain") or "").lstrip(".").lower() == COOKIE_DOMAIN, c.raw
    assert c.get("path") == "/app", c.raw
    assert c.has("httponly"), c.raw


def test_samesite_none_comes_with_secure(client):
    r = client.get("/login-none", headers=ALICE)
    assert r.status == 303, r.describe()
    c = r.cookie("memsession")
    assert (c.get("samesite") or "").lower() == "none", c.raw
    assert c.has("secure"), f"browsers drop SameSite=None without Secure: {c.raw}"


def test_persistent_cookie_carries_a_positive_max_age(client):
    r = client.get("/login-persistent", headers=ALICE)
    assert r.status == 303, r.describe()
    c = r.cookie("memsession")
    assert c is not None, r.describe()
    assert c.has("max-age"), c.raw
    assert int(c.get("max-age")) > 0, c.raw
