"""memsession-login-form with MemSessionKerberosRealm: httpd checks the password by asking the
throwaway realm's KDC for a TGT (libkrb5 in process), proves the answer with the service keytab,
and the TGT then rides the session to the backend like delegated credentials."""

from __future__ import annotations

import re
import threading
import time
import urllib.parse

import pytest

from harness import kdc, load, procs, site
from harness.derivation import record_key
from harness.http import Client, location_path

pytestmark = pytest.mark.module

ALICE = f"alice@{kdc.REALM}"


def form(client, path: str, user: str, password: str, ret: str | None = None):
    fields = {"user": user, "password": password}
    if ret is not None:
        fields["return"] = ret
    return client.post(path, body=urllib.parse.urlencode(fields),
                       headers={"Content-Type": "application/x-www-form-urlencoded",
                                "Origin": client.origin})


def login(client, user: str = "alice", path: str = "/krb/form-login") -> str:
    r = form(client, path, user, kdc.PASSWORDS[user.split("@")[0]], ret="/krb/app/krb.cgi")
    assert r.status == 303, r.describe()
    assert location_path(r, client.origin) == "/krb/app/krb.cgi"
    cookie = r.cookie("memsession")
    assert cookie is not None and cookie.has("httponly"), r.describe()
    return cookie.value


def app(client, cookie: str, path: str = "/krb/app/krb.cgi"):
    r = client.get(path, cookie=cookie)
    assert r.status == 200, r.describe()
    return r.env()


def refused_login(client, httpd, path: str, status: int):
    """A right password posted to `path`, refused with `status` and no session: the answer,
    and what httpd logged meanwhile."""
    offset = httpd.error_log.size()
    r = form(client, path, "alice", kdc.PASSWORDS["alice"])
    assert r.status == status, r.describe()
    assert r.headers_all("Set-Cookie") == []
    return r, "\n".join(httpd.error_log.since(offset))


def test_a_password_login_carries_a_tgt_to_the_backend(client, realm):
    cookie = login(client)
    env = app(client, cookie)
    assert env["REMOTE_USER"] == ALICE, "named as a Negotiate login names the principal"
    assert app(client, cookie, "/app/env.cgi")["MEMSESSION_LOGIN_AUTH_TYPE"] == "Form"
    assert env["KLIST_S"] == "KLIST_OK", env
    assert f"Default principal: {ALICE}" in env["KLIST"], env["KLIST"]
    assert f"krbtgt/{kdc.REALM}@{kdc.REALM}" in env["KLIST"], env["KLIST"]
    kdc.wait_lent_dir_empty(realm)


def test_the_realm_may_be_typed_in_any_case(client):
    env = app(client, login(client, user=ALICE))
    assert env["REMOTE_USER"] == ALICE
    env = app(client, login(client, user=f"alice@{kdc.REALM.lower()}"))
    assert env["REMOTE_USER"] == ALICE, "the principal takes the configured realm's spelling"


def test_the_store_holds_the_tgt_sealed_and_logout_removes_it(client, store):
    cookie = login(client)
    record = store.get(record_key(cookie))
    assert record is not None and len(record) > 500, f"no TGT-sized record: {record!r}"
    assert b"alice" not in record and b"krbtgt" not in record, "the record must be encrypted"
    r = client.post("/logout", cookie=cookie, headers={"Origin": client.origin})
    assert r.status in (200, 303), r.describe()
    assert store.get(record_key(cookie)) is None
    assert client.get("/krb/app/krb.cgi", cookie=cookie).status == 401


def test_wrong_password_and_unknown_principal_look_the_same(client, realm):
    wrong = form(client, "/krb/form-login", "alice", "not-her-password")
    unknown = form(client, "/krb/form-login", "mallory", "whatever")
    for r in (wrong, unknown):
        assert r.status == 401, r.describe()
        assert r.headers_all("Set-Cookie") == []
    assert wrong.body == unknown.body, "the answer must not tell which part was wrong"
    # the KDC itself was asked, and said no
    log = realm.p.kdc_log.read_text(errors="replace")
    assert f"mallory@{kdc.REALM}" in log and "CLIENT_NOT_FOUND" in log, log[-2000:]


def test_another_realm_is_never_asked(client, realm):
    r = form(client, "/krb/form-login", "alice@EVIL.TEST", "alice-krb-pw")
    assert r.status == 401, r.describe()
    assert "EVIL.TEST" not in realm.p.kdc_log.read_text(errors="replace")


def test_a_tgt_the_keytab_cannot_prove_is_refused(client, httpd):
    """A KDC that is not the realm's cannot encrypt a ticket for our service key: here the
    keytab holds another key under the service's name, which fails the same check."""
    _, log = refused_login(client, httpd, "/krb/form-login-wrong-key", 401)
    assert "could not be verified with the keytab" in log


def test_a_missing_keytab_is_a_logged_server_error(client, httpd):
    _, log = refused_login(client, httpd, "/krb/form-login-no-keytab", 500)
    assert "MemSessionKerberosKeytab" in log


def test_no_kdc_answering_is_a_503_to_retry_and_the_realm_is_left_alone_a_while(client, httpd):
    """Each child asks the dead realm once; until the interval is over its logins are answered
    503 without asking again. The harness runs at most 16 children (MaxRequestWorkers), so of
    20 logins at least 4 reach a child that has already asked."""
    offset = httpd.error_log.size()
    started = time.monotonic()
    for _ in range(20):
        r = form(client, "/krb/form-login-kdc-down", "alice", kdc.PASSWORDS["alice"])
        assert r.status == 503, r.describe()
        assert r.header("Retry-After") == "5"
        assert r.headers_all("Set-Cookie") == []
    assert time.monotonic() - started < 4, "the test must stay within the 5 s interval"
    log = "\n".join(httpd.error_log.since(offset))
    asked = log.count(f"no KDC of realm {kdc.DOWN_REALM} answered")
    left_alone = log.count(f"no KDC of realm {kdc.DOWN_REALM} answered a moment ago")
    assert asked - left_alone >= 1, log[-3000:]
    assert left_alone >= 4, f"the realm was asked again within the interval:\n{log[-3000:]}"


def silent_login(client, path: str, results: list) -> None:
    """One password login that may wait on a silent KDC for libkrb5's ~25 s."""
    patient = Client(client.host, client.port, timeout_s=60)
    started = time.monotonic()
    r = form(patient, path, "alice", "whatever")
    results.append((r.status, r.header("Retry-After"), time.monotonic() - started))


def max_request_workers(httpd) -> int:
    """MaxRequestWorkers of the configuration the server runs."""
    found = re.search(r"^MaxRequestWorkers (\d+)$", httpd.p.conf.read_text(), re.M)
    assert found, "no MaxRequestWorkers in the harness configuration"
    return int(found.group(1))


def test_a_silent_kdc_holds_at_most_a_quarter_of_the_servers_workers(client, httpd, components):
    """libkrb5 waits ~25 s on a KDC that takes connections and never answers; each waiting
    login holds a worker. A child lets a quarter of its threads wait, and the server as a whole
    a quarter of MaxRequestWorkers (slots in shared memory); logins beyond that get a 503 at
    once, so cookie requests keep their workers through a KDC outage. Under prefork each child
    has one thread, so only the server-wide bound holds: more logins than children are sent,
    and without it every one of them would wait."""
    can_wait = max_request_workers(httpd) // 4
    children = len(load.worker_pids(httpd.children(), components.threaded))
    logins_sent = max(3 * can_wait, children + can_wait)
    assert logins_sent > children and logins_sent > can_wait
    cookie = login(client)
    offset = httpd.error_log.size()
    results: list = []
    logins = [threading.Thread(target=silent_login,
                               args=(client, "/krb/form-login-kdc-silent", results))
              for _ in range(logins_sent)]
    for login_thread in logins:
        login_thread.start()
    time.sleep(3)
    # meanwhile, the cookie requests of someone already logged in are served without waiting
    # for the KDC (prefork may first have to start a child: seconds, not libkrb5's 25)
    started = time.monotonic()
    assert client.get("/krb/nodeleg-app/krb.cgi", cookie=cookie).status == 200
    assert time.monotonic() - started < 8
    for login_thread in logins:
        login_thread.join(60)
    assert len(results) == len(logins), results
    assert all(status == 503 and retry == "5" for status, retry, _ in results), results
    log = "\n".join(httpd.error_log.since(offset))
    # Which logins waited on the KDC is counted from the log, not guessed from times: each
    # wait ends in this line (a login refused without asking says "... a moment ago").
    waits = log.count(f"no KDC of realm {kdc.SILENT_REALM} answered: ")
    refused_at_once = (log.count("password checks of this process already wait on a KDC")
                       + log.count("password checks of this server's processes already wait")
                       + log.count(f"no KDC of realm {kdc.SILENT_REALM} answered a moment ago"))
    assert 1 <= waits <= can_wait, f"{waits} logins waited on the KDC:\n{log[-3000:]}"
    assert waits + refused_at_once == logins_sent, log[-3000:]
    # and those refused at once were answered long before libkrb5 gives up
    waited = sorted(took for _, _, took in results)
    assert all(took < 15 for took in waited[:logins_sent - waits]), results
    if not components.threaded:
        assert "password checks of this server's processes already wait" in log, log[-3000:]
    print(f"\nsilent KDC: {logins_sent} logins to {children} children, {waits} waited "
          f"(bound {can_wait}); answered in {[round(t, 1) for t in waited]} s")


def test_providers_named_beside_the_realm_are_asked_first(client):
    path = "/krb/form-login-and-file"
    # alice is in the AuthUserFile: the file decides, and there is no TGT
    r = form(client, path, "alice", "alicepw", ret="/krb/app/krb.cgi")
    assert r.status == 303, r.describe()
    env = app(client, r.cookie("memsession").value)
    assert env["REMOTE_USER"] == "alice"
    assert env["KLIST_S"] == "KLIST_FAILED", env
    # ... so her Kerberos password does not get past the file
    assert form(client, path, "alice", kdc.PASSWORDS["alice"]).status == 401
    # carol is not in the file: the KDC is asked
    env = app(client, login(client, user="carol", path=path))
    assert env["REMOTE_USER"] == f"carol@{kdc.REALM}"
    assert env["KLIST_S"] == "KLIST_OK", env


def test_the_session_ends_with_the_tgt(client):
    """carol's tickets last kdc.SHORT_LIFE_S; MemSessionCapToCredentials is On by default."""
    started = time.time()
    cookie = login(client, user=kdc.SHORT_LIFE_USER)
    end = started + kdc.SHORT_LIFE_S
    assert client.get("/krb/nodeleg-app/krb.cgi", cookie=cookie).status == 200
    assert time.time() < end - 1, "the login took too long to see the session before its end"

    def refused():
        return client.get("/krb/nodeleg-app/krb.cgi", cookie=cookie).status == 401 or None

    procs.wait_until("session refused after its TGT ended", refused, kdc.SHORT_LIFE_S + 10,
                     interval_s=0.5)
    assert time.time() >= end - 1.5, "the session ended long before its TGT"


def test_with_cap_to_credentials_off_a_session_outlives_its_tgt(another_httpd, realm, paths):
    """MemSessionCapToCredentials Off at the login: the session keeps its own limits (1h, 8h)
    after the TGT it carries ends. Beside it on the same server, a login with the default (On)
    ends with the TGT."""
    def form_location(path: str, extra: str = "") -> str:
        return (f"<Location {path}>\n    SetHandler memsession-login-form\n"
                f"    MemSessionKerberosRealm {kdc.REALM}\n"
                f"    MemSessionKerberosKeytab {site.realm_dir(paths) / 'http.keytab'}\n"
                f"    MemSessionCookieSecure Off\n{extra}</Location>\n")

    server = another_httpd(extra_env=realm.server_env(), extra_conf=(
        form_location("/capped-login")
        + form_location("/uncapped-login", "    MemSessionCapToCredentials Off\n")))
    started = time.time()
    capped = login(server.client, user=kdc.SHORT_LIFE_USER, path="/capped-login")
    uncapped = login(server.client, user=kdc.SHORT_LIFE_USER, path="/uncapped-login")
    for cookie in (capped, uncapped):
        assert server.client.get("/app/env.cgi", cookie=cookie).status == 200
    assert time.time() < started + kdc.SHORT_LIFE_S - 1, "the logins took too long"
    time.sleep(max(0.0, started + kdc.SHORT_LIFE_S + 2 - time.time()))
    assert server.client.get("/app/env.cgi", cookie=capped).status == 401, \
        "the capped session outlived its TGT"
    r = server.client.get("/app/env.cgi", cookie=uncapped)
    assert r.status == 200, f"MemSessionCapToCredentials Off, yet the session ended:\n{r.describe()}"
    assert r.env()["REMOTE_USER"] == f"{kdc.SHORT_LIFE_USER}@{kdc.REALM}"
