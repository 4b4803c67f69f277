"""MemSession On next to another AuthType (Basic here): authenticate once, then ride the cookie."""

import uuid

import pytest

from harness.http import basic
from harness.httpd import access_log_line

pytestmark = pytest.mark.module

ALICE = {"Authorization": basic("alice", "alicepw")}


def test_successful_basic_auth_issues_a_session_cookie(client):
    r = client.get("/basic-app/env.cgi", headers=ALICE)
    env = r.env()
    assert env["REMOTE_USER"] == "alice"
    c = r.cookie("memsession")
    assert c is not None, r.describe()
    assert len(c.value) == 43
    assert c.has("httponly") and not c.has("secure"), c.raw


def test_the_cookie_alone_is_enough_afterwards(client, httpd):
    first = client.get("/basic-app/env.cgi", headers=ALICE)
    assert first.cookie("memsession") is not None, f"Basic login issued no cookie:\n{first.describe()}"
    cookie = first.cookie("memsession").value
    probe = uuid.uuid4().hex
    r = client.get(f"/basic-app/env.cgi?probe={probe}", cookie=cookie)
    env = r.env()
    assert env["REMOTE_USER"] == "alice"
    assert "HTTP_AUTHORIZATION" not in env
    line = access_log_line(httpd.p, probe)
    assert " alice " in line, line
    assert '"-" "memsession=' in line, f"the request carried no Authorization: {line}"


def test_no_cookie_and_no_credentials_gets_the_basic_challenge(client):
    r = client.get("/basic-app/env.cgi")
    assert r.status == 401, r.describe()
    assert r.header("WWW-Authenticate").startswith("Basic"), r.describe()
    assert r.headers_all("Set-Cookie") == []


def test_failed_basic_auth_issues_no_cookie(client):
    r = client.get("/basic-app/env.cgi", headers={"Authorization": basic("alice", "wrong")})
    assert r.status == 401, r.describe()
    assert r.headers_all("Set-Cookie") == []


def test_a_bogus_cookie_falls_back_to_basic(client):
    r = client.get("/basic-app/env.cgi", cookie="A" * 43, headers=ALICE)
    assert r.env()["REMOTE_USER"] == "alice"
    c = r.cookie("memsession")
    assert c is not None and c.value and c.value != "A" * 43, r.describe()
