"""AuthType MemSession: what a request with a good, a missing or a bad cookie gets."""

import secrets

import pytest

from harness.httpd import APP_INDEX
from harness.load import served_by_every_worker, worker_pids

pytestmark = pytest.mark.module

B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def test_session_cookie_reaches_the_backend_as_remote_user(login, whoami):
    cookie = login("alice")
    status, env = whoami(cookie)
    assert status == 200
    assert env["REMOTE_USER"] == "alice"
    assert env["AUTH_TYPE"] == "MemSession"


def test_session_is_recognised_by_every_httpd_child(client, httpd, components, login):
    """Concurrent rounds until every worker process answered (one request after another can
    all land on one child)."""
    cookie = login("alice")
    workers = worker_pids(httpd.children(), components.threaded)
    assert workers, "httpd has no worker processes"
    served = served_by_every_worker(client, httpd.p.access_log, workers, "/app/index.html",
                                    cookie)
    assert set(served) >= workers, served


def test_static_file_needs_the_session_too(client, login):
    r = client.get("/app/index.html")
    assert r.status == 401, r.describe()
    assert APP_INDEX.encode() not in r.body
    r = client.get("/app/index.html", cookie=login("alice"))
    assert r.status == 200, r.describe()
    assert r.body == APP_INDEX.encode()


def test_request_without_a_cookie_is_401(client):
    r = client.get("/app/env.cgi")
    assert r.status == 401, r.describe()
    assert b"REMOTE_USER" not in r.body


def test_other_cookies_around_the_session_cookie_do_not_matter(client, login):
    cookie = login("alice")
    r = client.get("/app/env.cgi", headers={"Cookie": f"a=1; memsession={cookie}; theme=dark"})
    assert r.env()["REMOTE_USER"] == "alice"


def test_unknown_well_shaped_id_is_401(whoami):
    assert whoami(secrets.token_urlsafe(32))[0] == 401


def _flip_last_char(cookie: str, keep_value_bits: bool) -> str:
    """The 43rd base64url char holds 4 bits of the id and 2 padding bits."""
    i = B64URL.index(cookie[-1])
    if keep_value_bits:  # only the 2 padding bits change: a non-canonical spelling of the same id
        j = (i & ~3) | ((i + 1) & 3)
    else:  # the id's own bits change
        j = (i + 4) % 64
    assert j != i
    return cookie[:-1] + B64URL[j]


def test_tampered_cookie_is_401(login, whoami):
    cookie = login("alice")
    assert whoami(cookie)[0] == 200
    assert whoami(_flip_last_char(cookie, keep_value_bits=False))[0] == 401


def test_non_canonical_spelling_of_a_valid_id_is_401(login, whoami):
    """Anything that is not exactly the 43-char canonical base64url of an issued id is no session."""
    cookie = login("alice")
    assert whoami(cookie)[0] == 200
    assert whoami(_flip_last_char(cookie, keep_value_bits=True))[0] == 401


MALFORMED = {
    "empty": lambda good: "",
    "42 chars": lambda good: good[:42],
    "44 chars": lambda good: good + "A",
    "plus sign": lambda good: good[:42] + "+",
    "dot": lambda good: good[:21] + "." + good[22:],
    "padding": lambda good: good + "=",
    "8000 chars": lambda good: good + "A" * (8000 - len(good)),
    "bad utf-8": lambda good: good[:40].encode() + b"\xff\xfe\xc3",
    "quoted": lambda good: '"' + good[:42] + '"',
}


def _malformed_request(client, good: str, kind: str):
    bad = MALFORMED[kind](good)
    value = (b"memsession=" + bad) if isinstance(bad, bytes) else f"memsession={bad}"
    return client.get("/app/env.cgi", headers={"Cookie": value})


@pytest.mark.parametrize("kind", MALFORMED)
def test_malformed_cookie_is_401_never_500(client, login, kind):
    r = _malformed_request(client, login("alice"), kind)
    assert r.status == 401, r.describe()


@pytest.mark.parametrize("kind", MALFORMED)
def test_a_malformed_cookie_is_expired(client, login, kind):
    """README: a malformed cookie is dead: the 401 also tells the browser to drop it."""
    r = _malformed_request(client, login("alice"), kind)
    assert r.status == 401, r.describe()
    c = r.cookie("memsession")
    assert c is not None and c.value == "" and c.get("max-age") == "0", r.describe()


def test_a_session_beside_another_cookie_that_is_not_utf8_is_still_read(client, login):
    """Only the odd bytes are replaced when the Cookie header is read: they cannot hide ours."""
    good = login("alice")
    r = client.get("/app/env.cgi",
                   headers={"Cookie": b"other=\xff\xfe; memsession=" + good.encode()})
    assert r.status == 200, r.describe()
    assert r.env()["REMOTE_USER"] == "alice"
    assert r.cookie("memsession") is None, r.describe()


def test_nul_byte_in_the_cookie_is_refused(client, login):
    good = login("alice")
    req = (b"GET /app/env.cgi HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
           b"Cookie: memsession=" + good[:20].encode() + b"\x00" + good[21:].encode() + b"\r\n\r\n")
    r = client.raw(req)
    assert r.status in (400, 401), r.describe()


@pytest.mark.parametrize("order", ["bogus first", "bogus last"])
def test_two_session_cookies_one_bogus_is_401(client, login, order):
    good = login("alice")
    bogus = secrets.token_urlsafe(32)
    pair = [bogus, good] if order == "bogus first" else [good, bogus]
    r = client.get("/app/env.cgi", headers={"Cookie": "; ".join(f"memsession={v}" for v in pair)})
    assert r.status == 401, r.describe()


def test_require_user_admits_only_that_user(login, whoami):
    status, _ = whoami(login("alice"), "/only-bob/env.cgi")
    assert status in (401, 403)
    status, env = whoami(login("bob"), "/only-bob/env.cgi")
    assert status == 200
    assert env["REMOTE_USER"] == "bob"
