"""Guessing budgets at memsession-login-form (MemSessionLoginLimit*): failures counted per
user, per user from one address and per address in memcached; a spent budget answers 429 with
Retry-After before any provider is asked, right password or not; one address alone cannot lock
a user out; the lockout ends with its window. Each test runs its own httpd (the shared one has
the budgets off) under its own key prefix, so its counters start empty. Client addresses are
loopback sources 127.0.0.1, 127.0.0.2, ... (Linux routes all of 127/8 to lo)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import uuid
from pathlib import Path

import pytest

from harness.http import Client
from harness.httpd import Httpd, prepare_root

pytestmark = pytest.mark.module

WINDOW_S = 4
PASSWORDS = {"alice": "alice-pw", "bob": "bob-pw"}
REFUSED_LINE = re.compile(
    r'memsession-login-form: login refused for user "(?P<user>[^"]*)": too many failed logins '
    r"\(budget=(?P<budget>[a-z-]+) limit=(?P<limit>\d+) window=(?P<window>\d+)s\), "
    r"retry after (?P<retry>\d+)s; no password was checked")


@pytest.fixture(scope="module")
def bcrypt_htpasswd(components):
    """A bcrypt (htpasswd -B) password file readable by httpd's user."""
    d = Path(tempfile.mkdtemp(prefix="memsession-budget-"))
    os.chmod(d, 0o755)
    f = d / "htpasswd"
    for n, (user, password) in enumerate(PASSWORDS.items()):
        subprocess.run([components.htpasswd, "-bBC", "5"] + (["-c"] if n == 0 else [])
                       + [str(f), user, password], check=True, capture_output=True, timeout=30)
    os.chmod(f, 0o644)
    yield f
    shutil.rmtree(d, ignore_errors=True)


def limited_server(another_httpd, htpasswd: Path, user: str = "4", address: str = "Off",
                   window: str = f"{WINDOW_S}s"):
    conf = ("\n<Location /limited-login>\n    SetHandler memsession-login-form\n"
            f'    AuthUserFile "{htpasswd}"\n    MemSessionCookieSecure Off\n'
            f"    MemSessionLoginLimitUser {user}\n    MemSessionLoginLimitAddress {address}\n"
            f"    MemSessionLoginLimitWindow {window}\n</Location>\n")
    return another_httpd(key_prefix=f"budget-{uuid.uuid4().hex[:8]}:", extra_conf=conf)


def attempt(server, user: str, password: str, source: str = "127.0.0.1", path="/limited-login"):
    client = Client("127.0.0.1", server.port, source=source)
    return client.post(path, body=urllib.parse.urlencode({"user": user, "password": password}),
                       headers={"Content-Type": "application/x-www-form-urlencoded",
                                "Origin": client.origin})


def assert_limited(r, budget_hint: str | None = None):
    assert r.status == 429, r.describe()
    retry = int(r.header("Retry-After") or "0")
    assert 1 <= retry <= WINDOW_S, r.describe()
    assert r.headers_all("Set-Cookie") == [], "no session during a lockout"
    assert b"Too many failed logins" in r.body
    return retry


def refusals(server, offset: int) -> list[re.Match]:
    return [m for line in server.error_log.since(offset) if (m := REFUSED_LINE.search(line))]


def metric(server, name: str) -> float:
    r = Client("127.0.0.1", server.port).get("/memsession-status")
    assert r.status == 200, r.describe()
    for line in r.text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{name} not in memsession-status:\n{r.text}")


def test_a_spent_budget_answers_429_even_to_the_right_password_until_its_window_ends(
        another_httpd, bcrypt_htpasswd):
    server = limited_server(another_httpd, bcrypt_htpasswd)
    limited = 'memsession_logins_total{result="limited"}'
    before = metric(server, limited)
    offset = server.error_log.size()
    # MemSessionLoginLimitUser 4: one address may spend half of it (2).
    for _ in range(2):
        assert attempt(server, "alice", "wrong").status == 401
    first_failure = time.monotonic()
    # The right password, from the same address: refused, and no session.
    assert_limited(attempt(server, "alice", PASSWORDS["alice"]))
    assert_limited(attempt(server, "ALICE", "wrong")), "respelling the name buys no guess"
    lines = refusals(server, offset)
    assert [m["budget"] for m in lines] == ["user-from-address"] * 2, lines
    assert lines[0]["user"] == "alice" and lines[0]["limit"] == "2" and lines[0]["window"] == "4"
    assert metric(server, limited) - before == 2
    # One address cannot lock alice out for everyone: from another she gets in.
    r = attempt(server, "alice", PASSWORDS["alice"], source="127.0.0.2")
    assert r.status == 303, r.describe()
    # Two addresses can spend her whole budget (4): then every address is refused.
    for _ in range(2):
        assert attempt(server, "alice", "wrong", source="127.0.0.3").status == 401
    retry = assert_limited(attempt(server, "alice", PASSWORDS["alice"], source="127.0.0.4"))
    assert refusals(server, offset)[-1]["budget"] == "user"
    # Bob, from the first address, is not concerned.
    assert attempt(server, "bob", PASSWORDS["bob"]).status == 303
    # The window began with the first failure: it ends, and alice gets in everywhere.
    time.sleep(max(0.0, first_failure + WINDOW_S + 1.2 - time.monotonic()))
    assert retry <= WINDOW_S
    for source in ("127.0.0.1", "127.0.0.4"):
        r = attempt(server, "alice", PASSWORDS["alice"], source=source)
        assert r.status == 303, r.describe()


def test_an_address_spraying_users_is_refused_before_any_provider_is_asked(
        another_httpd, bcrypt_htpasswd):
    server = limited_server(another_httpd, bcrypt_htpasswd, user="Off", address="3")
    offset = server.error_log.size()
    for user in ("u1", "u2", "u3"):
        assert attempt(server, user, "guess").status == 401
    assert_limited(attempt(server, "bob", PASSWORDS["bob"]))
    assert [m["budget"] for m in refusals(server, offset)] == ["address"]
    # Each refusal is one line, and nothing says a password was checked for bob.
    bob_lines = [line for line in server.error_log.since(offset) if '"bob"' in line]
    assert len(bob_lines) == 1 and REFUSED_LINE.search(bob_lines[0]), bob_lines
    assert attempt(server, "bob", PASSWORDS["bob"], source="127.0.0.2").status == 303


def test_a_right_password_gives_its_slots_back(another_httpd, bcrypt_htpasswd):
    server = limited_server(another_httpd, bcrypt_htpasswd, user="2", address="2")
    for _ in range(5):
        r = attempt(server, "alice", PASSWORDS["alice"])
        assert r.status == 303, r.describe()
    assert attempt(server, "alice", "wrong").status == 401
    assert_limited(attempt(server, "alice", "wrong"))


def test_budgets_fail_closed_when_the_store_cannot_count(components, backend, bcrypt_htpasswd):
    """No memcached: 503 without asking the provider (a store outage must not become unlimited
    guessing; no session could be stored anyway)."""
    root = Path(tempfile.mkdtemp(prefix="memsession-budget-down-"))
    conf = ("\n<Location /limited-login>\n    SetHandler memsession-login-form\n"
            f'    AuthUserFile "{bcrypt_htpasswd}"\n    MemSessionCookieSecure Off\n'
            "    MemSessionLoginLimitUser 5\n</Location>\n")
    server = Httpd(components, prepare_root(components, root), backend.port,
                   memcached_sock=root / "no-memcached.sock", extra_conf=conf, kerberos=False)
    try:
        server.start()
        offset = server.error_log.size()
        # Right and wrong passwords get the same 503: an outage is no password oracle.
        for password in (PASSWORDS["alice"], "wrong"):
            r = attempt(server, "alice", password)
            assert r.status == 503, r.describe()
            assert r.header("Retry-After") == "5"
        log = server.error_log.since(offset)
        assert len([line for line in log if "cannot count failed logins" in line
                    and "no password was checked" in line]) == 2, log
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_the_web_budget_triggers_before_the_kdcs_lockout(httpd, realm):
    """A principal whose policy locks it after 4 failures (-maxfailure 4): guesses through the
    form from several addresses reach the KDC 3 times (MemSessionLoginLimitUser 3), never 4,
    so the account stays usable (kinit with the right password works) while the form says 429."""
    tag = uuid.uuid4().hex[:6]
    principal, password = f"dave-{tag}", "dave-right-pw"
    realm.kadmin(f"addpol -maxfailure 4 -lockoutduration 1h lock4-{tag}")
    out = realm.kadmin(f"addprinc +requires_preauth -pw {password} -policy lock4-{tag} {principal}")
    assert "created" in out, out
    kdc_log = realm.p.kdc_log
    before = kdc_log.read_text(errors="replace").count(f"{principal}@")
    path = "/krb/form-login-limited"
    statuses = []
    for n in range(12):
        source = f"127.0.0.{2 + n}"
        statuses.append(attempt(httpd, principal, f"wrong{n}", source=source, path=path).status)
    assert statuses[:3] == [401] * 3 and set(statuses[3:]) == {429}, statuses
    r = attempt(httpd, principal, password, source="127.0.0.99", path=path)
    assert r.status == 429, r.describe()
    asked = kdc_log.read_text(errors="replace").count(f"{principal}@") - before
    # Each web attempt that reached the KDC is one AS exchange or two (pre-authentication): at
    # most 6 lines for 3 attempts, none for the 10 refused ones.
    assert 1 <= asked <= 6, f"{asked} KDC log lines for {principal}"
    realm.kinit(principal, password=password)  # not locked in the KDC
