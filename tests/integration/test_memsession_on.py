"""MemSession On next to another AuthType (Basic here): authenticate once, then ride the cookie."""

import json
import os
import uuid

import pytest

from harness.derivation import record_key
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
    # Authorization, Cookie as the backend got it, as the client sent it
    assert '"-" "-" "memsession=' in line, f"the request carried no Authorization: {line}"


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


BOB = {"Authorization": basic("bob", "bobpw")}


def test_a_client_that_ignores_cookies_gets_at_most_the_bound_of_sessions(another_httpd, store):
    """Issue 15: a Basic client that never returns the cookie got a new session on every
    request, filling memcached. With MemSessionMintLimit 10 (the default figure), 30 requests
    in a row are all served with REMOTE_USER, but only 10 sessions are stored and only 10
    responses carry a cookie; another user is not held back; each refusal is counted and the
    first of the window logged at warning level."""
    prefix = f"mint{os.getpid()}:"
    node = another_httpd(key_prefix=prefix, extra_conf="\nMemSessionMintLimit 10\n")
    offset = node.error_log.size()
    cookies = []
    for i in range(30):
        r = node.client.get(f"/basic-app/env.cgi?n={i}", headers=ALICE)
        assert r.status == 200, r.describe()
        assert r.env()["REMOTE_USER"] == "alice", r.describe()
        if r.cookie("memsession") is not None:
            cookies.append(r.cookie("memsession").value)
    assert len(cookies) == len(set(cookies)) == 10, \
        f"{len(cookies)} sessions issued to a client that ignores cookies (bound: 10)"
    for cookie in cookies:
        assert store.get(record_key(cookie, prefix)) is not None
    records = [k for k in store.keys() if k.startswith((prefix + "s:").encode())]
    assert len(records) <= 10, f"memcached holds {len(records)} records of this deployment"
    # The ones issued work as sessions.
    assert node.client.get("/basic-app/env.cgi", cookie=cookies[-1]).env()["REMOTE_USER"] == "alice"
    # bob is not limited by alice's client
    r = node.client.get("/basic-app/env.cgi", headers=BOB)
    assert r.env()["REMOTE_USER"] == "bob" and r.cookie("memsession") is not None, r.describe()
    status = json.loads(node.client.get("/memsession-status?format=json").text)
    assert status["sessions_mint_limited"] == 20, status
    assert status["sessions_issued"] == 11, status
    warnings = [line for line in node.error_log.since(offset)
                if "MemSessionMintLimit 10" in line and ":warn]" in line]
    assert len(warnings) == 1, f"one warning per user and window, not one per request: {warnings}"
    assert 'user "alice"' in warnings[0], warnings[0]
