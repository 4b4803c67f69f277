"""DESIGN.md "Failure and bad input": a stalled memcached gives the unauthenticated answer within
MemSessionTimeout (never a 500, never a hung worker), keeps the cookie, and the session resumes
by itself when the store answers again; a login meanwhile answers 503.

memcached is stalled with SIGSTOP (its socket still accepts, nothing answers) and always resumed
with SIGCONT. Each httpd child keeps its own circuit breaker, so afterwards httpd is gracefully
restarted: the next test starts with fresh children whatever happened here."""

import signal
import time

import pytest

from harness import procs
from harness.http import basic
from harness.httpd import restart

pytestmark = pytest.mark.module

ALICE = {"Authorization": basic("alice", "alicepw")}


@pytest.fixture
def stall(memcached, httpd):
    """stall() stops memcached; resume() lets it go; teardown resumes it and restarts httpd."""
    state = {"stopped": False}

    def stop():
        memcached.pause()
        state["stopped"] = True

    def resume():
        if state["stopped"]:
            memcached.resume()
            state["stopped"] = False

    try:
        yield stop, resume
    finally:
        resume()
        restart(httpd, signal.SIGUSR1)


def _consecutive(check, n: int):
    """A probe that is true once `check` held n times in a row (a run spread over the children)."""
    run = {"ok": 0}

    def probe():
        run["ok"] = run["ok"] + 1 if check() else 0
        return run["ok"] >= n

    return probe


def test_stalled_store_gives_a_quick_401_and_the_session_resumes(client, login, whoami, stall):
    stop, resume = stall
    cookie = login("alice")
    assert whoami(cookie)[0] == 200
    stop()
    for _ in range(3):
        t = time.monotonic()
        r = client.get("/app/env.cgi", cookie=cookie)
        elapsed = time.monotonic() - t
        assert r.status == 401, r.describe()
        assert elapsed < 1.5, f"took {elapsed:.2f}s with MemSessionTimeout 200ms"
        c = r.cookie("memsession")
        assert c is None or (c.value and c.get("max-age") != "0"), \
            f"a store error must not clear the cookie: {c.raw}"
    resume()
    procs.wait_until("the session to be recognised again in every child after the store came back",
                     _consecutive(lambda: whoami(cookie)[0] == 200, 20), 15, interval_s=0.05)


def retry_after_and_a_plain_message(r) -> None:
    """README: a login while memcached is unavailable is a 503 with Retry-After and a plain
    message."""
    retry = r.header("Retry-After")
    assert retry is not None and retry.isdigit() and int(retry) > 0, r.describe()
    assert (r.header("Content-Type") or "").startswith("text/plain"), r.describe()
    assert "session store is unavailable" in r.text, r.describe()


def test_login_while_the_store_is_stalled_is_503(client, stall):
    stop, resume = stall
    stop()
    t = time.monotonic()
    r = client.get("/login", headers=ALICE)
    elapsed = time.monotonic() - t
    resume()
    assert r.status == 503, r.describe()
    assert elapsed < 1.5, f"took {elapsed:.2f}s with MemSessionTimeout 200ms"
    assert r.headers_all("Set-Cookie") == []
    retry_after_and_a_plain_message(r)
    procs.wait_until("login to work again in every child",
                     _consecutive(lambda: client.get("/login", headers=ALICE).status == 303, 20),
                     15, interval_s=0.05)


def test_password_form_login_while_the_store_is_stalled_is_503(client, stall):
    """The same answer from memsession-login-form: the password is right, the session cannot be
    stored."""
    stop, resume = stall
    stop()
    try:
        r = client.post("/form-login", body=b"user=alice&password=alicepw",
                        headers={"Content-Type": "application/x-www-form-urlencoded",
                                 "Origin": client.origin})
    finally:
        resume()
    assert r.status == 503, r.describe()
    assert r.headers_all("Set-Cookie") == []
    retry_after_and_a_plain_message(r)
