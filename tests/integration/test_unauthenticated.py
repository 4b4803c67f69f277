"""MemSessionUnauthenticated redirect|auto: where a request without a session is sent."""

import pytest

from harness.http import basic, location_path

pytestmark = pytest.mark.module

NAVIGATION = {
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Sec-Fetch-Mode": "navigate",
    "Sec-Fetch-Dest": "document",
}


def test_redirect_mode_sends_to_the_login_url_with_the_original_uri(client):
    r = client.get("/redir/page?x=1")
    assert r.status == 303, r.describe()
    assert location_path(r, client.origin) == "/login?return=%2Fredir%2Fpage%3Fx%3D1"
    assert r.headers_all("Set-Cookie") == []


def test_redirect_mode_serves_a_request_with_a_session(login, whoami):
    status, env = whoami(login("alice"), "/redir/env.cgi")
    assert status == 200
    assert env["REMOTE_USER"] == "alice"


def test_redirect_then_login_lands_back_on_the_original_uri(client):
    r = client.get("/redir/env.cgi?x=1")
    assert r.status == 303, r.describe()
    login_url = location_path(r, client.origin)
    assert login_url.startswith("/login?"), login_url
    r = client.get(login_url, headers={"Authorization": basic("alice", "alicepw")})
    assert r.status == 303, r.describe()
    assert location_path(r, client.origin) == "/redir/env.cgi?x=1"
    cookie = r.cookie("memsession").value
    r = client.get("/redir/env.cgi?x=1", cookie=cookie)
    env = r.env()
    assert env["REMOTE_USER"] == "alice"
    assert env["QUERY_STRING"] == "x=1"


def test_auto_mode_redirects_a_browser_navigation(client):
    r = client.get("/auto/page?x=1", headers=NAVIGATION)
    assert r.status == 303, r.describe()
    assert location_path(r, client.origin) == "/login?return=%2Fauto%2Fpage%3Fx%3D1"


def test_auto_mode_gives_an_xhr_request_401(client):
    r = client.get("/auto/page", headers={**NAVIGATION, "Sec-Fetch-Mode": "cors",
                                          "X-Requested-With": "XMLHttpRequest"})
    assert r.status == 401, r.describe()
    assert r.header("Location") is None


def test_auto_mode_gives_a_json_api_client_401(client):
    r = client.get("/auto/page", headers={"Accept": "application/json"})
    assert r.status == 401, r.describe()
    assert r.header("Location") is None
