"""MemSessionStripCookie: the session cookie is a bearer token for the module alone. A backend
behind Apache — a CGI, a proxied server — gets the request without it (and every other cookie
untouched), on protected and open locations alike; the module's own handlers still read it.
ErrorDocument, SSI subrequests and HTTP/2 are tried in test_apache_features.py."""

from __future__ import annotations

import pytest

from harness.http import backend_headers

pytestmark = pytest.mark.module

OTHERS = "lang=en; theme=dark"


def cookies_with(session: str) -> dict[str, str]:
    """A browser's Cookie header: the session between two cookies of the application."""
    return {"Cookie": f"lang=en; memsession={session}; theme=dark"}


@pytest.mark.parametrize("path", ["/app/env.cgi", "/open/env.cgi"])
def test_a_cgi_gets_every_cookie_but_the_session(client, login, path):
    session = login("alice")
    r = client.get(path, headers=cookies_with(session))
    env = r.env()
    assert env.get("HTTP_COOKIE") == OTHERS, env.get("HTTP_COOKIE")
    assert session not in r.text, "the session id reached the CGI"
    if path.startswith("/app"):
        assert env["REMOTE_USER"] == "alice"


def test_a_request_with_only_the_session_cookie_reaches_the_cgi_without_a_cookie(client, login):
    session = login("alice")
    r = client.get("/app/env.cgi", cookie=session)
    env = r.env()
    assert env["REMOTE_USER"] == "alice"
    assert "HTTP_COOKIE" not in env, env.get("HTTP_COOKIE")
    assert session not in r.text


@pytest.mark.parametrize("path", ["/proxied/x", "/open-proxied/x"])
def test_a_proxied_backend_gets_every_cookie_but_the_session(client, login, path):
    session = login("alice")
    headers = backend_headers(client.get(path, headers=cookies_with(session)))
    cookies = [v for k, v in headers if k.lower() == "cookie"]
    assert cookies == [OTHERS], headers
    assert not any(session in v for _, v in headers), headers


def test_every_copy_of_the_session_cookie_is_taken_out(client, login):
    """Several cookies of the name (one per path, one planted by a sibling host): all go."""
    session = login("alice")
    r = client.get("/app/env.cgi",
                   headers={"Cookie": f"memsession=planted; lang=en; memsession={session}"})
    env = r.env()
    assert env["REMOTE_USER"] == "alice"
    assert env.get("HTTP_COOKIE") == "lang=en", env.get("HTTP_COOKIE")


def test_the_module_still_reads_the_session_it_takes_out(client, login, whoami):
    """The session keeps working across requests (the cookie is taken out of each request, not
    out of the browser), and logout, the module's own handler, still ends it."""
    session = login("alice")
    for _ in range(3):
        assert client.get("/app/env.cgi", headers=cookies_with(session)).env()["REMOTE_USER"] \
            == "alice"
    r = client.post("/logout", headers={**cookies_with(session), "Origin": client.origin},
                    body=b"")
    assert r.status == 303, r.describe()
    assert whoami(session)[0] == 401, "logout did not see the session it was sent"


KEEP = """
<Location /keep>
    AuthType MemSession
    Require valid-user
    MemSessionCookieSecure Off
    MemSessionStripCookie Off
</Location>
"""


def test_strip_cookie_off_hands_the_session_cookie_to_the_backend(another_httpd, login):
    """Off: for a backend that is itself a node reading the session (a front proxy)."""
    node = another_httpd(extra_conf=KEEP)
    session = login("alice")
    env = node.client.get("/keep/env.cgi", headers=cookies_with(session)).env()
    assert env["REMOTE_USER"] == "alice"
    assert env.get("HTTP_COOKIE") == f"lang=en; memsession={session}; theme=dark"


@pytest.mark.parametrize("path", ["/app/env.cgi", "/named-app/env.cgi", "/open/env.cgi"])
def test_every_session_cookie_name_of_the_server_is_taken_out(client, login, path):
    """/named-app's sessions ride MemSessionCookieName othersess, /app's the default: a backend
    anywhere on the server gets neither, only the application's cookies."""
    default = login("alice")
    named = login("alice", path="/login-named", cookie_name="othersess")
    r = client.get(path, headers={"Cookie": f"lang=en; memsession={default}; othersess={named}"})
    env = r.env()
    assert env.get("HTTP_COOKIE") == "lang=en", env.get("HTTP_COOKIE")
    assert default not in r.text and named not in r.text
    if path != "/open/env.cgi":
        assert env["REMOTE_USER"] == "alice"
