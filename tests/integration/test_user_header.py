"""MemSessionUserHeader X-Remote-User: the backend gets the session user in that header, and never
a client-sent copy, however its name is spelled, authenticated or not."""

import pytest

from harness.http import backend_headers

pytestmark = pytest.mark.module

SPOOFS = ["X-Remote-User", "X_Remote_User", "x-remote-user", "X-REMOTE_USER"]


def _no_mallory(env: dict) -> None:
    leaked = {k: v for k, v in env.items() if "mallory" in v.lower()}
    assert not leaked, f"a spoofed user header reached the backend: {leaked}"


@pytest.mark.parametrize("name", SPOOFS)
def test_cgi_sees_the_session_user_not_a_spoofed_header(client, login, name):
    r = client.get("/app/env.cgi", cookie=login("alice"), headers=[(name, "mallory")])
    env = r.env()
    assert env["REMOTE_USER"] == "alice"
    assert env.get("HTTP_X_REMOTE_USER") == "alice", {k: v for k, v in env.items() if "REMOTE" in k}
    _no_mallory(env)


def test_cgi_sees_one_user_header_when_every_spelling_is_spoofed(client, login):
    r = client.get("/app/env.cgi", cookie=login("alice"),
                   headers=[(name, "mallory") for name in SPOOFS])
    env = r.env()
    assert env.get("HTTP_X_REMOTE_USER") == "alice"
    _no_mallory(env)


@pytest.mark.parametrize("name", SPOOFS)
def test_spoofed_user_header_is_removed_on_an_open_location(client, name):
    r = client.get("/open/env.cgi", headers=[(name, "mallory")])
    env = r.env()
    assert "HTTP_X_REMOTE_USER" not in env
    assert "REMOTE_USER" not in env
    _no_mallory(env)


def _user_headers(hdrs):
    fold = lambda n: n.lower().replace("_", "-")  # noqa: E731
    return [(k, v) for k, v in hdrs if fold(k) == "x-remote-user"]


def test_proxied_backend_gets_only_the_session_user_header(client, login):
    r = client.get("/proxied/x", cookie=login("alice"),
                   headers=[(name, "mallory") for name in SPOOFS])
    hdrs = backend_headers(r)
    assert [v for _, v in _user_headers(hdrs)] == ["alice"], hdrs
    assert not any("mallory" in v for _, v in hdrs), hdrs


def test_proxied_open_location_strips_every_spelling(client):
    r = client.get("/open-proxied/x", headers=[(name, "mallory") for name in SPOOFS])
    hdrs = backend_headers(r)
    assert _user_headers(hdrs) == [], hdrs
    assert not any("mallory" in v for _, v in hdrs), hdrs


# Inside /proxied/ (MemSessionUserHeader X-Remote-User), a location that turns it off.
HEADER_NONE = """
<Location /proxied/none/>
    MemSessionUserHeader None
</Location>
"""


def test_user_header_none_turns_an_inherited_header_off(another_httpd):
    """`None` turns an inherited MemSessionUserHeader off: the backend behind it gets the
    request authenticated on the session, without the user header, while the outer location
    still sends it."""
    server = another_httpd(extra_conf=HEADER_NONE)
    r = server.client.get("/login", headers={"Authorization": "Basic YWxpY2U6YWxpY2Vwdw=="})
    assert r.status == 303, r.describe()
    cookie = r.cookie("memsession").value
    outer = backend_headers(server.client.get("/proxied/x", cookie=cookie))
    assert [v for _, v in _user_headers(outer)] == ["alice"], outer
    r = server.client.get("/proxied/none/x", cookie=cookie)
    hdrs = backend_headers(r)  # a 200 from the backend: still authenticated
    assert r.json()["path"] == "/proxied/none/x"
    assert _user_headers(hdrs) == [], hdrs
    assert server.client.get("/proxied/none/x").status == 401, "None must not open the location"
    # the backend behind may still trust the outer header: a client cannot set it here either
    for name in SPOOFS:
        r = server.client.get("/proxied/none/x", cookie=cookie, headers=[(name, "mallory")])
        assert _user_headers(backend_headers(r)) == [], f"{name} reached the backend"
