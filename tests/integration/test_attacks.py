"""Issue 5, attacks that the other suites do not already cover: replay after logout (across
every child), after revoke-user and revoke-all (epochs replaced in memcached, as revocation
does), a fixated cookie that was logged out, spoofed identity on the MemSession-On path, open
redirects through the redirect-to-login chain, CSRF on logout and on MemSession On. Each is
refused, and no session id reaches the error log.

Already covered elsewhere: fixation (test_fixation.py), CSRF on AuthType MemSession
(test_csrf.py), spoofed user headers (test_user_header.py), login return paths
(test_login.py), a record moved between keys and another prefix's cookie (test_hostile.py).
"""

from __future__ import annotations

import secrets
import urllib.parse

import pytest

from harness.http import basic, location_path
from harness.derivation import global_epoch_key, user_epoch_key
from harness.load import served_by_every_worker, worker_pids

pytestmark = pytest.mark.module

ALICE = {"Authorization": basic("alice", "alicepw")}


@pytest.fixture
def replayed_everywhere(client, httpd, components):
    """replayed_everywhere(cookie, expect): the cookie, replayed in rounds of concurrent
    requests, gets `expect` from every worker process (read from the access log's pid): one
    request after another may all land on the same child, so only concurrency shows that no
    child remembers what another one forgot."""

    def check(cookie: str, expect: int) -> None:
        workers = worker_pids(httpd.children(), components.threaded)
        assert workers, "httpd has no worker processes"
        served_by_every_worker(client, httpd.p.access_log, workers, "/app/index.html", cookie,
                               expect=expect)

    return check


def expired_by_the_refusal(client, cookie: str) -> None:
    """README: a revoked session's cookie is dead: the refusal makes the browser drop it."""
    r = client.get("/app/index.html", cookie=cookie)
    assert r.status == 401, r.describe()
    c = r.cookie("memsession")
    assert c is not None and c.value == "" and c.get("max-age") == "0", r.describe()


def test_replay_after_logout_is_refused_by_every_child(client, login, no_id_in_error_log,
                                                       replayed_everywhere):
    cookie = login("alice")
    no_id_in_error_log(cookie)
    replayed_everywhere(cookie, 200)
    r = client.post("/logout", cookie=cookie, headers={"Origin": client.origin}, body=b"")
    assert r.status == 303, r.describe()
    replayed_everywhere(cookie, 401)
    # ... and logging in with it does not bring it back.
    fresh = login("alice", cookie=cookie)
    no_id_in_error_log(fresh)
    assert fresh != cookie
    replayed_everywhere(cookie, 401)


def test_replay_after_revoke_user(client, login, store, no_id_in_error_log, replayed_everywhere):
    alice1, alice2, bob = login("alice"), login("alice"), login("bob")
    no_id_in_error_log(alice1, alice2, bob)
    # every child has validated them before the revocation, so none may rely on what it saw
    for cookie in (alice1, alice2, bob):
        replayed_everywhere(cookie, 200)
    key = user_epoch_key("alice")
    old_epoch = store.get(key)
    assert old_epoch is not None and len(old_epoch) == 16
    store.set(key, secrets.token_bytes(16))  # what revoke-user does
    expired_by_the_refusal(client, alice1)
    replayed_everywhere(alice1, 401)
    replayed_everywhere(alice2, 401)
    replayed_everywhere(bob, 200)
    after = login("alice")
    no_id_in_error_log(after)
    replayed_everywhere(after, 200)


def test_replay_after_revoke_all(client, login, store, no_id_in_error_log, replayed_everywhere):
    alice, bob = login("alice"), login("bob")
    no_id_in_error_log(alice, bob)
    for cookie in (alice, bob):
        replayed_everywhere(cookie, 200)
    key = global_epoch_key()
    assert store.get(key) is not None and len(store.get(key)) == 16
    store.set(key, secrets.token_bytes(16))  # what revoke-all does
    expired_by_the_refusal(client, bob)
    replayed_everywhere(alice, 401)
    replayed_everywhere(bob, 401)
    after = login("bob")
    no_id_in_error_log(after)
    replayed_everywhere(after, 200)


def test_forged_epoch_value_does_not_revive_a_revoked_session(client, login, store,
                                                             no_id_in_error_log):
    """Someone able to write memcached but not to read sealed records cannot bring a revoked
    session back by guessing: only the exact old epoch would, and it is 128 random bits."""
    cookie = login("alice")
    no_id_in_error_log(cookie)
    key = user_epoch_key("alice")
    try:
        for forged in (b"", b"\x00" * 16, b"\xff" * 16, b"x" * 15, b"x" * 17, b"0"):
            store.set(key, forged)
            assert client.get("/app/index.html", cookie=cookie).status == 401, forged
    finally:
        store.delete(key)


@pytest.mark.parametrize("key", [user_epoch_key("alice"), global_epoch_key()], ids=["user", "global"])
@pytest.mark.parametrize("value", [b"", b"0", b"x" * 17], ids=["empty", "short", "long"])
def test_a_malformed_epoch_does_not_lock_users_out(client, login, store, no_id_in_error_log,
                                                   replayed_everywhere, key, value):
    """An epoch value of the wrong length (corruption, or a write by someone with access to
    memcached) matches no session: existing sessions end (fail closed). But epochs are stored
    without expiry, so a login must replace it rather than fail: otherwise the user (or, for the
    global epoch, everyone) could never log in again until someone deleted the key by hand."""
    before = login("alice")
    no_id_in_error_log(before)
    store.set(key, value)
    try:
        assert client.get("/app/index.html", cookie=before).status == 401
        r = client.get("/login", headers=ALICE)
        assert r.status == 303, r.describe()
        after = r.cookie("memsession").value
        no_id_in_error_log(after)
        replayed_everywhere(after, 200)
        assert client.get("/app/index.html", cookie=before).status == 401
    finally:
        store.delete(key)


def test_spoofed_identity_on_memsession_on_falls_back_to_its_auth(client, no_id_in_error_log):
    """On a MemSession On location a forged cookie and forged identity headers do not
    authenticate: the location's own auth (Basic) is asked for."""
    forged = secrets.token_urlsafe(32)
    no_id_in_error_log(forged)
    r = client.get("/basic-app/env.cgi", cookie=forged, headers={
        "X-Remote-User": "alice", "Remote-User": "alice", "X-Forwarded-User": "alice"})
    assert r.status == 401, r.describe()
    assert (r.header("WWW-Authenticate") or "").startswith("Basic"), r.describe()
    assert r.headers_all("Set-Cookie") == [] or all(
        c.value != forged for c in r.set_cookies())


OPEN_REDIRECT_URIS = ["/redir//evil.example", "/redir/%2F%2Fevil.example",
                      "/redir/%5C%5Cevil.example", "/redir/..%2F..%2F%2Fevil.example",
                      "/redir/?next=//evil.example"]
ENCODED_SLASH_URIS = [uri for uri in OPEN_REDIRECT_URIS if "%2F" in uri.upper()]


def redirect_then_login_stays_on_site(client, uri: str) -> None:
    """The whole browser chain: an unauthenticated request is sent to the login URL with its
    URI as `return`; after the login the browser must land on this site, whatever the URI."""
    r = client.get(uri, headers={"Accept": "text/html"})
    assert r.status in (302, 303), f"{uri}:\n{r.describe()}"
    login_url = location_path(r, client.origin)
    assert login_url.startswith("/login"), login_url
    r = client.get(login_url, headers=ALICE)
    assert r.status == 303, r.describe()
    target = location_path(r, client.origin)
    assert target.startswith("/") and not target.startswith("//"), target
    decoded = urllib.parse.unquote(urllib.parse.unquote(target)).replace("\\", "/")
    assert not decoded.startswith("//"), target
    assert "evil.example" not in urllib.parse.urlsplit(target).netloc


@pytest.mark.parametrize("uri", [u for u in OPEN_REDIRECT_URIS if u not in ENCODED_SLASH_URIS])
def test_redirect_to_login_then_login_stays_on_this_site(client, uri):
    redirect_then_login_stays_on_site(client, uri)


@pytest.mark.parametrize("uri", ENCODED_SLASH_URIS)
def test_httpd_refuses_encoded_slashes_before_the_module(client, uri):
    """With httpd's default AllowEncodedSlashes Off, a URI with %2F never reaches an auth
    hook: 404, no redirect to log in (the chain is tested below with encoded slashes on)."""
    r = client.get(uri, headers={"Accept": "text/html"})
    assert r.status == 404, r.describe()
    assert r.header("Location") is None, r.describe()


# A protected location whatever the path's prefix, so URIs that begin like a network path
# (`//host`, `/%2F`, `/%5C`) reach the module, and their `return` must be refused at login.
ANY_PREFIX_LOCATION = """
<LocationMatch "evil\\.example">
    AuthType MemSession
    Require valid-user
    MemSessionUnauthenticated redirect
    MemSessionLoginURL /login
    MemSessionCookieSecure Off
</LocationMatch>
"""
ROOTED_URIS = ["//evil.example", "///evil.example", "/%2F%2Fevil.example", "/%2f/evil.example",
               "/%5C%5Cevil.example", "/%2F%5Cevil.example", "/%5C/evil.example"]


@pytest.mark.parametrize("mode", ["On", "NoDecode"])
def test_with_encoded_slashes_allowed_the_chain_stays_on_this_site(another_httpd, mode):
    """A deployment whose application needs encoded slashes (AllowEncodedSlashes On or
    NoDecode) lets %2F-forms reach the module: each must still end on this site, also when
    the protected URI itself begins like a network path."""
    server = another_httpd(extra_conf=f"\nAllowEncodedSlashes {mode}\n" + ANY_PREFIX_LOCATION)
    for uri in OPEN_REDIRECT_URIS + ROOTED_URIS:
        redirect_then_login_stays_on_site(server.client, uri)


def test_cross_site_logout_is_refused_and_the_session_lives(client, login, whoami,
                                                           no_id_in_error_log):
    """Logout is an unsafe method riding on the cookie: a cross-site POST must not end the
    victim's session (a logout CSRF)."""
    cookie = login("alice")
    no_id_in_error_log(cookie)
    r = client.post("/logout", cookie=cookie, headers={"Origin": "https://evil.example"},
                    body=b"")
    assert r.status == 403, r.describe()
    assert whoami(cookie)[0] == 200


def test_csrf_on_a_memsession_on_location(client, httpd, no_id_in_error_log):
    """MemSession On: a cookie issued by Basic auth there rides unsafe methods only with this
    site's Origin."""
    r = client.get("/basic-app/env.cgi", headers=ALICE)
    assert r.status == 200, r.describe()
    cookie = r.cookie("memsession").value
    no_id_in_error_log(cookie)
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    r = client.post("/basic-app/env.cgi", cookie=cookie, body=b"a=1",
                    headers={**form, "Origin": "https://evil.example"})
    assert r.status == 403, r.describe()
    r = client.post("/basic-app/env.cgi", cookie=cookie, body=b"a=1",
                    headers={**form, "Origin": client.origin})
    assert r.status == 200, r.describe()
