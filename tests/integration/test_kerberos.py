"""Kerberos: negotiate once (mod_auth_gssapi + a real MIT KDC), ride the cookie, carry the
delegated credentials to the backend. The client is real `curl --negotiate -u :` with its own
KRB5CCNAME and the throwaway realm's KRB5_CONFIG (harness/kdc.py); requests go to
http://localhost:PORT because the service principal is HTTP/localhost."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from harness import kdc, procs
from harness.derivation import record_key
from harness.httpd import access_log_line

pytestmark = pytest.mark.module

USER = f"alice@{kdc.REALM}"


@pytest.fixture
def neg(httpd, realm):
    """neg(path, ccache=None, **kw) -> kdc.CurlResult against this httpd."""

    def do(path: str, ccache: Path | None = None, **kw) -> kdc.CurlResult:
        return kdc.curl(realm, httpd.port, path, ccache=ccache, **kw)

    return do


@pytest.fixture
def krb_login(neg, realm):
    """krb_login(ccache=None, path="/krb/login", delegation="always") -> cookie value."""

    def do(ccache: Path | None = None, path: str = "/krb/login",
           delegation: str | None = "always", ret: str = "/krb/app/krb.cgi") -> str:
        ccache = ccache or realm.kinit("alice")
        r = neg(f"{path}?return={ret}", ccache, delegation=delegation)
        assert r.status == 303 and negotiated(r), f"Negotiate login failed:\n{r.describe()}"
        c = r.cookie()
        assert c is not None and len(c.value) == 43, r.describe()
        return c.value

    return do


def negotiated(r: kdc.CurlResult) -> bool:
    """curl sent a Negotiate token (curl 7.88 sends it at once when --negotiate is the only
    method, so a successful exchange is one request; older curls answer a 401 first)."""
    return any((a or "").startswith("Negotiate ") for a in r.sent_authorization())


def cookie_only(r: kdc.CurlResult) -> bool:
    """One request, no Authorization header, no 401: served on the cookie alone."""
    return r.statuses == [200] and r.sent_authorization() == [None]


# -- login at /krb/login -----------------------------------------------------------------------

def test_login_challenges_with_negotiate(neg):
    r = neg("/krb/login?return=/krb/app/krb.cgi", negotiate=False)
    assert r.statuses == [401], r.describe()
    assert r.header("WWW-Authenticate") == "Negotiate", r.describe()
    assert r.cookie() is None


def test_negotiate_login_redirects_with_a_session_cookie(neg, realm, httpd):
    cc = realm.kinit("alice")
    r = neg("/krb/login?return=/krb/app/krb.cgi", cc)
    assert r.status == 303 and negotiated(r), r.describe()
    loc = r.header("Location")
    assert loc in ("/krb/app/krb.cgi", f"http://localhost:{httpd.port}/krb/app/krb.cgi"), loc
    c = r.cookie()
    assert c is not None and len(c.value) == 43, r.describe()
    assert c.has("httponly") and not c.has("secure"), c.raw


def test_the_cookie_alone_serves_the_app_as_the_principal(krb_login, neg, httpd, paths):
    cookie = krb_login(delegation=None)
    probe = uuid.uuid4().hex
    r = neg(f"/krb/nodeleg-app/krb.cgi?probe={probe}", negotiate=False, cookie=cookie)
    assert cookie_only(r), r.describe()
    env = r.env()
    # without GssapiLocalName, mod_auth_gssapi leaves the full principal in r->user
    assert env["REMOTE_USER"] == USER
    assert env["AUTH_TYPE"] == "MemSession"
    line = access_log_line(paths, probe)
    assert f" {USER} " in line and '"-"' in line.split('" 200 ')[1], line
    assert "Negotiate" not in line, line


def test_gssapi_local_name_gives_the_local_user(krb_login, neg):
    """GssapiLocalName On: mod_auth_gssapi maps the principal with krb5_aname_to_localname
    (default rule: the realm's own one-component principals lose @REALM) before our handler
    reads r->user, so the session's user is `alice`."""
    cookie = krb_login(path="/krb/login-localname", delegation=None)
    r = neg("/krb/nodeleg-app/krb.cgi", negotiate=False, cookie=cookie)
    assert r.env()["REMOTE_USER"] == "alice"


def test_login_request_carried_negotiate_and_the_app_request_did_not(neg, realm, paths):
    cc = realm.kinit("alice")
    login_probe = uuid.uuid4().hex
    r = neg(f"/krb/login?return=/krb/nodeleg-app/krb.cgi&probe={login_probe}", cc)
    assert r.status == 303 and negotiated(r), r.describe()
    probe = uuid.uuid4().hex
    app = neg(f"/krb/nodeleg-app/krb.cgi?probe={probe}", negotiate=False,
              cookie=r.cookie().value)
    assert cookie_only(app), app.describe()
    login_line = access_log_line(paths, login_probe)
    assert '"Negotiate ' in login_line and f" {USER} " in login_line, login_line
    app_line = access_log_line(paths, probe)
    assert "Negotiate" not in app_line and f" {USER} " in app_line, app_line


# -- delegated credentials ---------------------------------------------------------------------

def test_delegated_credentials_reach_the_backend_in_a_private_file(krb_login, neg, realm):
    cookie = krb_login()
    r = neg("/krb/app/krb.cgi", negotiate=False, cookie=cookie)
    assert cookie_only(r), r.describe()
    env = r.env()
    assert env["REMOTE_USER"] == USER
    ccname = env["KRB5CCNAME"]
    assert ccname.startswith(f"FILE:{realm.p.delegation_dir}/"), env
    assert env["CCACHE_STAT"] == "600 www-data", env
    assert env["KLIST_S"] == "KLIST_OK", env
    assert f"Default principal: {USER}" in env["KLIST"], env["KLIST"]
    assert f"krbtgt/{kdc.REALM}@{kdc.REALM}" in env["KLIST"], env["KLIST"]
    kdc.wait_lent_dir_empty(realm)
    assert not Path(ccname[len("FILE:"):]).exists()


def test_each_request_gets_its_own_file_and_none_survive(krb_login, neg, realm):
    cookie = krb_login()
    names = set()
    for _ in range(3):
        env = neg("/krb/app/krb.cgi", negotiate=False, cookie=cookie).env()
        assert env["KLIST_S"] == "KLIST_OK", env
        names.add(env["KRB5CCNAME"])
    assert len(names) == 3, names
    kdc.wait_lent_dir_empty(realm)


def test_delegated_ccache_is_removed_when_the_backend_fails(krb_login, neg, realm):
    cookie = krb_login()
    r = neg("/krb/app/no-such-file", negotiate=False, cookie=cookie)
    assert r.status == 404, r.describe()
    kdc.wait_lent_dir_empty(realm)


def test_login_without_delegation_lends_nothing(krb_login, neg, realm):
    cookie = krb_login(delegation=None)
    env = neg("/krb/app/krb.cgi", negotiate=False, cookie=cookie).env()
    assert env["REMOTE_USER"] == USER
    assert env["KRB5CCNAME"] == "", env
    assert env["KLIST_S"] == "KLIST_FAILED", env
    assert kdc.lent_files(realm) == []


def test_the_auth_modules_copy_of_the_tgt_is_removed_once_sealed(krb_login, neg, realm):
    """mod_auth_gssapi writes the delegated TGT to GssapiDelegCcacheDir; once the login has
    sealed it into the session, that copy at rest is removed (the session's copy serves)."""
    cookie = krb_login()
    leftovers = lambda: [f.name for f in realm.p.deleg_dir.iterdir()]  # noqa: E731
    try:  # removed by the login request's pool cleanup, just after the response
        procs.wait_until("GssapiDelegCcacheDir empty", lambda: not leftovers() or None, 5.0)
    except procs.NotReady:
        pytest.fail(f"delegated credentials left at rest: {leftovers()}")
    env = neg("/krb/app/krb.cgi", negotiate=False, cookie=cookie).env()
    assert env["KLIST_S"] == "KLIST_OK", env


# -- MemSession On next to AuthType GSSAPI -----------------------------------------------------

def test_memsession_on_negotiates_once_then_rides_the_cookie(neg, realm, paths):
    cc = realm.kinit("alice")
    first_probe = uuid.uuid4().hex
    first = neg(f"/krb/negotiate-app/env.cgi?probe={first_probe}", cc)
    assert first.status == 200 and negotiated(first), first.describe()
    assert first.env()["REMOTE_USER"] == USER
    c = first.cookie()
    assert c is not None and len(c.value) == 43, first.describe()
    for _ in range(2):
        probe = uuid.uuid4().hex
        # the cookie alone: a 401 would end the exchange here (this curl has no --negotiate)
        again = neg(f"/krb/negotiate-app/env.cgi?probe={probe}", negotiate=False,
                    cookie=c.value)
        assert cookie_only(again), again.describe()
        assert again.env()["REMOTE_USER"] == USER
        assert again.cookie() is None, "a session request must not mint another cookie"
        line = access_log_line(paths, probe)
        assert "Negotiate" not in line and f" {USER} " in line, line
    assert '"Negotiate ' in access_log_line(paths, first_probe)


def test_memsession_on_without_ticket_or_cookie_is_401_negotiate(neg):
    r = neg("/krb/negotiate-app/env.cgi", negotiate=False)
    assert r.status == 401, r.describe()
    assert r.cookie() is None
    assert ("WWW-Authenticate", "Negotiate") in r.final_headers(), r.describe()


# -- refused -----------------------------------------------------------------------------------

def test_no_ccache_is_refused(neg):
    r = neg("/krb/login?return=/krb/app/krb.cgi", None)
    assert r.status == 401, r.describe()
    assert r.cookie() is None, r.describe()


@pytest.mark.parametrize("token", ["YWJjZGVmZ2hpamtsbW5vcA==", "!!notbase64!!", "",
                                   "YIIBAAYGKwYBBQUCoIH1MIHy"])
@pytest.mark.parametrize("path", ["/krb/login", "/krb/negotiate-app/env.cgi"])
def test_garbage_negotiate_token_is_refused(client, path, token):
    r = client.get(path, headers={"Authorization": f"Negotiate {token}".strip()})
    assert r.status == 401, r.describe()
    assert r.cookie("memsession") is None, r.describe()


@pytest.fixture(scope="module")
def other_realm(paths):
    """A second realm that also has an HTTP/localhost, with a key our keytab does not hold."""
    r = kdc.Realm(paths.root / "krb5-other", realm="OTHER.TEST")
    try:
        r.start()
        yield r
    finally:
        r.stop()


def test_ticket_from_another_realm_is_refused(other_realm, httpd):
    cc = other_realm.kinit("alice")
    r = kdc.curl(other_realm, httpd.port, "/krb/login?return=/krb/app/krb.cgi", cc,
                 delegation="always")
    # curl got a real ticket for HTTP/localhost@OTHER.TEST and sent it; httpd cannot decrypt it
    assert "HTTP/localhost@OTHER.TEST" in other_realm.klist(cc)
    assert r.status == 401 and negotiated(r), r.describe()
    assert r.cookie() is None, r.describe()


def test_session_is_capped_to_the_ticket_and_expired_tickets_are_refused(neg, realm,
                                                                         krb_login):
    lifetime = 8
    cc = realm.kinit("alice", lifetime=f"{lifetime}s")
    started = time.time()
    cookie = krb_login(cc)
    end = started + lifetime
    r = neg("/krb/app/krb.cgi", negotiate=False, cookie=cookie)
    assert r.status == 200, r.describe()
    assert time.time() < end - 1, "the login took too long to check the session before the end"

    def refused():
        return neg("/krb/nodeleg-app/krb.cgi", negotiate=False, cookie=cookie).status == 401

    procs.wait_until("session refused after the ticket ended", refused, lifetime + 10,
                     interval_s=0.5)
    # tickets have whole-second times; allow the second of rounding
    assert time.time() >= end - 1.5, "session ended long before its ticket"
    # and the expired ticket itself no longer logs anyone in
    time.sleep(max(0.0, end + 1 - time.time()))
    again = neg("/krb/login?return=/krb/app/krb.cgi", cc, delegation="always")
    assert again.status == 401 and again.cookie() is None, again.describe()


# -- logout ------------------------------------------------------------------------------------

def test_logout_removes_the_session_and_its_credentials(krb_login, neg, store, httpd):
    warm = krb_login()
    assert neg("/krb/app/krb.cgi", negotiate=False, cookie=warm).status == 200
    cookie = krb_login()
    key = record_key(cookie)
    record = store.get(key)
    # the session record holds the (encrypted) delegated ccache
    assert record is not None and len(record) > 500, f"record at {key!r}: {record!r}"
    assert b"alice" not in record and b"krbtgt" not in record, "the record must be encrypted"
    r = neg("/logout", negotiate=False, cookie=cookie, method="POST",
            headers={"Origin": f"http://localhost:{httpd.port}"})
    assert r.status in (200, 303), r.describe()
    assert store.get(key) is None, "logout left the record (and its credentials) in memcached"
    after = neg("/krb/app/krb.cgi", negotiate=False, cookie=cookie)
    assert after.status == 401, after.describe()
    assert neg("/krb/app/krb.cgi", negotiate=False, cookie=warm).status == 200
