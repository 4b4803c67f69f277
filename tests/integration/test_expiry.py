"""MemSessionInactivityTimeout (sliding) and MemSessionMaxLifetime (absolute from login).

These tests let real time pass: that is the behaviour under test, not a wait for readiness.
/short: inactivity 3s. /brief: max lifetime 3s, inactivity 1h.
"""

import time

import pytest

from harness.site import INACTIVITY_S, MAX_LIFETIME_S

pytestmark = pytest.mark.module


def _at(t0: float, offset: float) -> None:
    delay = t0 + offset - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def test_activity_keeps_a_session_alive_and_idleness_ends_it(login, whoami):
    cookie = login("alice", path="/short/login")
    t0 = time.monotonic()
    seen = []
    for second in range(1, 6):  # one request a second for 5s: longer than the 3s window
        _at(t0, second)
        seen.append((second, whoami(cookie, "/short/app/env.cgi")[0]))
    assert [s for _, s in seen] == [200] * 5, f"kept busy, yet: {seen}"
    last = time.monotonic()
    _at(last, INACTIVITY_S + 1.5)
    assert whoami(cookie, "/short/app/env.cgi")[0] == 401, \
        f"{INACTIVITY_S + 1.5}s idle with a {INACTIVITY_S}s inactivity timeout"


def test_max_lifetime_ends_a_busy_session(login, whoami):
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
    assert whoami(cookie, "/brief/app/env.cgi")[0] == 401, \
        f"{MAX_LIFETIME_S + 1.5}s after login with a {MAX_LIFETIME_S}s max lifetime"
