"""MemSessionInactivityTimeout (sliding) and MemSessionMaxLifetime (absolute from login), on
the session itself and on a location stricter than the login; MemSessionExtend Off.

These tests let real time pass: that is the behaviour under test, not a wait for readiness.
/short: inactivity 3s. /brief: max lifetime 3s, inactivity 1h. /login: the defaults (1h, 8h).
Times in the record are whole seconds, so a limit of 3s ends a session 2 to 3s after its last
write: checks before 1.5s expect the session, checks after 4.5s expect it gone.
"""

import time

import pytest

from harness.http import basic
from harness.site import INACTIVITY_S, MAX_LIFETIME_S, USERS

pytestmark = pytest.mark.module


def _at(t0: float, offset: float) -> None:
    delay = t0 + offset - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def expired_cookie(r) -> None:
    """The session is over: the response makes the browser drop its cookie."""
    c = r.cookie("memsession")
    assert c is not None and c.value == "" and c.get("max-age") == "0", r.describe()


def keep_busy(whoami, cookie: str, path: str) -> None:
    """One request a second for 5 s (longer than the 3 s window): every one served."""
    t0 = time.monotonic()
    seen = []
    for second in range(1, 6):
        _at(t0, second)
        seen.append((second, whoami(cookie, path)[0]))
    assert [s for _, s in seen] == [200] * 5, f"kept busy, yet: {seen}"


def test_activity_keeps_a_session_alive_and_idleness_ends_it(client, login, whoami):
    cookie = login("alice", path="/short/login")
    keep_busy(whoami, cookie, "/short/app/env.cgi")
    last = time.monotonic()
    _at(last, INACTIVITY_S + 1.5)
    r = client.get("/short/app/env.cgi", cookie=cookie)
    assert r.status == 401, f"{INACTIVITY_S + 1.5}s idle with a {INACTIVITY_S}s inactivity timeout"
    expired_cookie(r)


def test_max_lifetime_ends_a_busy_session(client, login, whoami):
    cookie = login("alice", path="/brief/login")
    t0 = time.monotonic()
    early = []
    for second in (1, 2):
        _at(t0, second)
        early.append(whoami(cookie, "/brief/app/env.cgi")[0])
    assert early == [200, 200]
    for offset in (3, 4):  # stays busy across the limit
        _at(t0, offset)
        whoami(cookie, "/brief/app/env.cgi")
    _at(t0, MAX_LIFETIME_S + 1.5)
    r = client.get("/brief/app/env.cgi", cookie=cookie)
    assert r.status == 401, f"{MAX_LIFETIME_S + 1.5}s after login with a {MAX_LIFETIME_S}s max lifetime"
    expired_cookie(r)



def refused_here_only(client, whoami, cookie: str, path: str) -> None:
    """Refused at the stricter location, without expiring the cookie: the session's own limits
    are not reached, and /app (the login's limits) still serves it."""
    r = client.get(path, cookie=cookie)
    assert r.status == 401, r.describe()
    assert r.cookie("memsession") is None, \
        f"a refusal by one location's stricter limit must not end the session everywhere:\n" \
        f"{r.describe()}"
    assert whoami(cookie)[0] == 200, "the session's own limits (1h, 8h) are not over"


def test_a_stricter_inactivity_timeout_holds_on_a_longer_login(client, login, whoami):
    """README: MemSessionInactivityTimeout is recorded at login, and a location with a stricter
    value enforces it too. A session minted at /login (1h) and used at /short/app (3s): use
    keeps it alive there, 3s of idleness end it there."""
    cookie = login("alice")
    keep_busy(whoami, cookie, "/short/app/env.cgi")
    _at(time.monotonic(), INACTIVITY_S + 1.5)
    refused_here_only(client, whoami, cookie, "/short/app/env.cgi")


def test_a_stricter_max_lifetime_holds_on_a_longer_login(client, login, whoami):
    """The same for MemSessionMaxLifetime: a session minted at /login (8h) is refused at
    /brief/app (3s) once 3s have passed since the login, however busy."""
    cookie = login("alice")
    t0 = time.monotonic()
    _at(t0, 1)
    assert whoami(cookie, "/brief/app/env.cgi")[0] == 200
    for offset in (2, 3, 4):
        _at(t0, offset)
        whoami(cookie, "/brief/app/env.cgi")
    _at(t0, MAX_LIFETIME_S + 1.5)
    refused_here_only(client, whoami, cookie, "/brief/app/env.cgi")


# /short/poll: under /short (inactivity 3s), a request there does not slide the window.
POLL_LOCATION = """
<Location /short/poll>
    AuthType MemSession
    Require valid-user
    MemSessionCookieSecure Off
    MemSessionExtend Off
</Location>
"""


def test_polling_an_extend_off_location_does_not_keep_a_session_alive(another_httpd):
    """MemSessionExtend Off: a page polling in the background cannot keep an abandoned session
    alive. Polled twice a second, the session still ends after 3s without other activity
    (test_activity_keeps_a_session_alive_and_idleness_ends_it shows the same polling at an
    extending location keeps it)."""
    server = another_httpd(extra_conf=POLL_LOCATION)
    client = server.client
    r = client.get("/short/login", headers={"Authorization": basic("alice", USERS["alice"])})
    assert r.status == 303, r.describe()
    cookie = r.cookie("memsession").value
    t0 = time.monotonic()
    polls = []
    for tick in range(1, 10):  # every 0.5s for 4.5s
        _at(t0, tick / 2)
        polls.append((tick / 2, client.get("/short/poll/env.cgi", cookie=cookie).status))
    early = [status for at, status in polls if at <= 1.5]
    assert early == [200] * len(early), f"the session ended early: {polls}"
    assert polls[-1][1] == 401, f"polling an Extend Off location kept the session: {polls}"
    # ... and it is the session that ended, not just the poll location.
    assert client.get("/short/app/env.cgi", cookie=cookie).status == 401
