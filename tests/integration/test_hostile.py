"""Issue 5, bad input: hostile requests and hostile store contents. Every one is refused (401,
or httpd's own 400 for what it will not parse), never a 500, never a crash, and the session id
never reaches the error log (the access log logs the Cookie header on purpose; only the error
log is the module's).

Malformed cookie values, a NUL in the cookie and two different session cookies are covered in
test_app_access.py; return-path injection at login in test_login.py.
"""

from __future__ import annotations

import secrets
import time
import urllib.parse

import pytest

from harness.http import location_path

pytestmark = pytest.mark.module

LIMIT_REQUEST_FIELD_SIZE = 8190  # httpd's default: the whole header line, name included


def cookie_line_of_length(value_prefix: str, total: int) -> str:
    """A Cookie header value such that 'Cookie: ' + value is `total` bytes long."""
    pad = total - len("Cookie: ") - len(value_prefix) - len("; pad=")
    assert pad > 0
    return f"{value_prefix}; pad={'p' * pad}"


def test_cookie_header_just_under_the_limit_is_read(client, login, no_id_in_error_log):
    good = login("alice")
    no_id_in_error_log(good)
    value = cookie_line_of_length(f"memsession={good}", LIMIT_REQUEST_FIELD_SIZE - 10)
    r = client.get("/app/env.cgi", headers={"Cookie": value})
    assert r.status == 200, r.describe()
    bogus = secrets.token_urlsafe(32)
    no_id_in_error_log(bogus)
    value = cookie_line_of_length(f"memsession={bogus}", LIMIT_REQUEST_FIELD_SIZE - 10)
    r = client.get("/app/env.cgi", headers={"Cookie": value})
    assert r.status == 401, r.describe()


def test_cookie_header_over_the_limit_is_httpds_400(client, login, no_id_in_error_log):
    good = login("alice")
    no_id_in_error_log(good)
    value = cookie_line_of_length(f"memsession={good}", LIMIT_REQUEST_FIELD_SIZE + 100)
    r = client.get("/app/env.cgi", headers={"Cookie": value})
    assert r.status == 400, r.describe()


NAME_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def many_cookies(n: int, value: str = "") -> list[str]:
    """n distinct two-character cookie names: as many cookies as fit in one header line."""
    return [f"{a}{b}={value}" for a in NAME_CHARS for b in NAME_CHARS][:n]


@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_thousands_of_cookies(client, login, no_id_in_error_log, where):
    """1900 cookies in one Cookie header, as a browser sends them (close to
    LimitRequestFieldSize): the one session cookie among them is found wherever it is, quickly;
    500 junk values under the session cookie's name (over 4 headers) are 401."""
    good = login("alice")
    no_id_in_error_log(good)
    pairs = many_cookies(1900)
    pairs.insert({"first": 0, "middle": 950, "last": 1900}[where], f"memsession={good}")
    headers = [("Cookie", ";".join(pairs))]
    t = time.monotonic()
    r = client.get("/app/env.cgi", headers=headers)
    assert r.status == 200, r.describe()
    assert time.monotonic() - t < 2.0
    junk = [f"memsession={p[:2]}" for p in many_cookies(500)]
    r = client.get("/app/env.cgi", headers=[("Cookie", ";".join(junk[i::4])) for i in range(4)])
    assert r.status == 401, r.describe()


def test_duplicate_cookie_headers(client, login, no_id_in_error_log):
    alice, bob = login("alice"), login("bob")
    no_id_in_error_log(alice, bob)
    # Browsers send one Cookie header. Apache joins repeated ones with ", ", and a comma is
    # part of a cookie value (else another cookie's value could smuggle an id in): whatever
    # the headers hold, no session is taken from them.
    for pair in ([alice, alice], [alice, bob], [bob, alice]):
        r = client.get("/app/env.cgi", headers=[("Cookie", f"memsession={c}") for c in pair])
        assert r.status == 401, r.describe()
    # Two users' cookies in one header: ambiguous, neither is used, and neither is expired
    # (a host-only expiry would remove the victim's and leave a sibling domain's in place).
    for pair in ([alice, bob], [bob, alice]):
        r = client.get("/app/env.cgi", cookie=f"{pair[0]}; memsession={pair[1]}")
        assert r.status == 401, r.describe()
        assert r.headers_all("Set-Cookie") == [], r.describe()


def test_another_cookies_value_cannot_smuggle_a_session_id(client, login, no_id_in_error_log):
    alice = login("alice")
    no_id_in_error_log(alice)
    r = client.get("/app/env.cgi", headers={"Cookie": f"lang=en,memsession={alice}"})
    assert r.status == 401, r.describe()


@pytest.mark.parametrize("cookie", [
    b"memsession=\xff\xfe\xfd",
    b"memsession=\xc3\x28%(id)s",
    b"\xff=\xfe; memsession=%(id)s\xff",
    b"memsession=%(id)s\xed\xa0\x80",  # an encoded surrogate: not UTF-8
    b"memsession\xc0\xaf=%(id)s",
])
def test_bad_utf8_in_the_cookie_is_no_session(client, login, no_id_in_error_log, cookie):
    good = login("alice")
    no_id_in_error_log(good)
    raw = cookie.replace(b"%(id)s", good.encode())
    r = client.raw(b"GET /app/env.cgi HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                   b"Cookie: " + raw + b"\r\n\r\n")
    assert r.status == 401, r.describe()


def test_bad_utf8_beside_a_valid_cookie_is_never_a_500(client, login, no_id_in_error_log):
    """Another cookie with bytes that are not UTF-8 next to ours. Serving the session or
    refusing it are both defensible; a 500 or a crash is not."""
    good = login("alice")
    no_id_in_error_log(good)
    r = client.raw(b"GET /app/env.cgi HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                   b"Cookie: other=\xff\xfe; memsession=" + good.encode() + b"\r\n\r\n")
    assert r.status in (200, 401), r.describe()


def test_nul_in_other_headers_and_the_uri(client, login, no_id_in_error_log):
    good = login("alice")
    no_id_in_error_log(good)
    for req in (b"GET /app/env.cgi HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                b"X-Remote-User: bob\x00alice\r\nCookie: memsession=" + good.encode() + b"\r\n\r\n",
                b"GET /app/env.cgi%00.html HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                b"Cookie: memsession=" + good.encode() + b"\r\n\r\n",
                b"GET /redir/a%00b HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"):
        r = client.raw(req)
        assert r.status in (302, 303, 400, 404), r.describe()


INJECTIONS = ["%0d%0aX-Injected:%201", "%0aX-Injected:%201", "%0dX-Injected:%201",
              "%E5%98%8A%E5%98%8DX-Injected:%201", "%250d%250aX-Injected:%201"]


@pytest.mark.parametrize("inj", INJECTIONS)
def test_header_injection_through_the_redirect_to_login(client, inj):
    """An unauthenticated request's URI becomes the login URL's `return` parameter: no CR or
    LF of it may reach the Location header, however it was encoded."""
    uri = f"/redir/a{inj}?q={inj}"
    r = client.get(uri)
    assert r.status in (302, 303), r.describe()
    assert r.headers_all("X-Injected") == []
    for value in [v for _, v in r.headers]:
        assert "\r" not in value and "\n" not in value, r.describe()
    # The injection travels in `return=`: what the login will read there (decoded once, as a
    # query parser does) is the URI exactly as the client sent it, still percent-encoded.
    loc = location_path(r, client.origin)
    path, _, query = loc.partition("?")
    assert path == "/login", loc
    returned = urllib.parse.parse_qs(query, keep_blank_values=True).get("return")
    assert returned == [uri], loc
    assert not any(ch in returned[0] for ch in "\r\n\x00"), returned
    # ... and the login that follows sends the browser back without a header break either.
    r = client.get(loc, headers={"Authorization": "Basic YWxpY2U6YWxpY2Vwdw=="})
    assert r.status == 303, r.describe()
    assert r.headers_all("X-Injected") == []
    back = r.header("Location")
    assert back is not None and "\r" not in back and "\n" not in back, r.describe()
    assert location_path(r, client.origin) in (uri, "/"), back


@pytest.mark.parametrize("inj", INJECTIONS)
def test_header_injection_through_the_login_return(client, inj):
    r = client.get(f"/login?return=/app/{inj}", headers={
        "Authorization": "Basic YWxpY2U6YWxpY2Vwdw=="})
    assert r.status == 303, r.describe()
    assert r.headers_all("X-Injected") == []
    loc = r.header("Location")
    assert "\r" not in loc and "\n" not in loc, loc


# -- hostile store contents -----------------------------------------------------------------

TAMPERINGS = {
    "empty": lambda v: b"",
    "one byte": lambda v: v[:1],
    "truncated header": lambda v: v[:12],
    "truncated tag": lambda v: v[:-1],
    "half": lambda v: v[: len(v) // 2],
    "flipped byte in the body": lambda v: v[:20] + bytes([v[20] ^ 0x01]) + v[21:],
    "flipped byte in the tag": lambda v: v[:-1] + bytes([v[-1] ^ 0x80]),
    "flipped nonce": lambda v: v[:1] + bytes([v[1] ^ 0xFF]) + v[2:],
    "appended bytes": lambda v: v + b"\x00" * 16,
    "future version": lambda v: bytes([2]) + v[1:],
    "version 255": lambda v: bytes([255]) + v[1:],
    "version 0": lambda v: bytes([0]) + v[1:],
    "random of the same length": lambda v: secrets.token_bytes(len(v)),
    "huge": lambda v: v + secrets.token_bytes(600_000),
    "text": lambda v: b"alice",
}


@pytest.mark.parametrize("kind", TAMPERINGS)
def test_tampered_record_in_memcached_is_401(client, login_with_record, store, whoami,
                                             no_id_in_error_log, kind):
    cookie, key = login_with_record("alice")
    no_id_in_error_log(cookie)
    original = store.get(key)
    assert original and whoami(cookie)[0] == 200
    store.set(key, TAMPERINGS[kind](original))
    r = client.get("/app/env.cgi", cookie=cookie)
    assert r.status == 401, r.describe()
    # The planted bytes were the only cause: the genuine record is valid again (the module may
    # have deleted the bad one, so put it back either way).
    store.set(key, original, ttl=600)
    assert whoami(cookie)[0] == 200


def test_record_moved_between_two_sessions_keys_is_401(login_with_record, store, whoami,
                                                      no_id_in_error_log):
    """Records are sealed to their key: bob's record under alice's key is no session (and never
    bob), alice's under bob's key neither."""
    alice, alice_key = login_with_record("alice")
    bob, bob_key = login_with_record("bob")
    no_id_in_error_log(alice, bob)
    alice_rec, bob_rec = store.get(alice_key), store.get(bob_key)
    store.set(alice_key, bob_rec, ttl=600)
    store.set(bob_key, alice_rec, ttl=600)
    assert whoami(alice) == (401, None)
    assert whoami(bob) == (401, None)
    # A copy of the same session's record under its own key is fine; the swap was the cause.
    store.set(alice_key, alice_rec, ttl=600)
    status, env = whoami(alice)
    assert status == 200 and env["REMOTE_USER"] == "alice"


def test_cookie_from_another_key_prefix_deployment_is_401(httpd, another_httpd, login, whoami,
                                                         store, no_id_in_error_log):
    """A second deployment (MemSessionKeyPrefix other:) on the same memcached: each one's cookie
    is unknown to the other, both ways."""
    other = another_httpd(key_prefix="other:")
    try:
        check_both_ways(other, login, whoami, store, no_id_in_error_log)
    finally:
        # Leave the shared memcached holding only this deployment's keys (test_store checks).
        for key in store.keys():
            if key.startswith(b"other:"):
                store.delete(key)


def check_both_ways(other, login, whoami, store, no_id_in_error_log):
    r = other.client.get("/login", headers={"Authorization": "Basic YWxpY2U6YWxpY2Vwdw=="})
    assert r.status == 303, r.describe()
    theirs = r.cookie("memsession").value
    ours = login("alice")
    no_id_in_error_log(theirs, ours)
    assert any(k.startswith(b"other:s:") for k in store.keys())
    assert other.client.get("/app/env.cgi", cookie=theirs).status == 200
    assert whoami(theirs)[0] == 401
    assert other.client.get("/app/env.cgi", cookie=ours).status == 401
    assert whoami(ours)[0] == 200
    leaked = [line for line in other.error_log.since(0) if theirs in line or ours in line]
    assert not leaked, leaked
