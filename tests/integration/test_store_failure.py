"""DESIGN.md "Failure and bad input": a stalled memcached gives the unauthenticated answer within
MemSessionTimeout (never a 500, never a hung worker), keeps the cookie, and the session resumes
when the store answers again; a login meanwhile answers 503.

memcached is stalled with SIGSTOP (its socket still accepts, nothing answers) and resumed with
SIGCONT in a finally, so its data survives."""

import os
import signal
import time
from contextlib import contextmanager

import pytest

from harness import procs
from harness.http import basic

pytestmark = pytest.mark.module


@contextmanager
def stalled(memcached):
    os.kill(memcached.proc.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(memcached.proc.pid, signal.SIGCONT)


def test_stalled_store_gives_a_quick_401_and_the_session_resumes(client, login, memcached, whoami):
    cookie = login("alice")
    assert whoami(cookie)[0] == 200
    with stalled(memcached):
        for _ in range(3):
            t = time.monotonic()
            r = client.get("/app/env.cgi", cookie=cookie)
            elapsed = time.monotonic() - t
            assert r.status == 401, r.describe()
            assert elapsed < 1.5, f"took {elapsed:.2f}s with MemSessionTimeout 200ms"
            c = r.cookie("memsession")
            assert c is None or (c.value and c.get("max-age") != "0"), \
                f"a store error must not clear the cookie: {c.raw}"
    procs.wait_until("the session to be recognised again after the store came back",
                     lambda: whoami(cookie)[0] == 200, 15, interval_s=0.25)


def test_login_while_the_store_is_stalled_is_503(client, memcached):
    with stalled(memcached):
        t = time.monotonic()
        r = client.get("/login", headers={"Authorization": basic("alice", "alicepw")})
        elapsed = time.monotonic() - t
    assert r.status == 503, r.describe()
    assert elapsed < 1.5, f"took {elapsed:.2f}s with MemSessionTimeout 200ms"
    assert r.headers_all("Set-Cookie") == []
    procs.wait_until("login to work again", lambda: client.get(
        "/login", headers={"Authorization": basic("alice", "alicepw")}).status == 303, 15,
        interval_s=0.25)
