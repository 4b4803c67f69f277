"""DESIGN.md: the module works through graceful restarts (httpd unloads and reloads the .so);
sessions live in memcached, so they survive, and no child crashes on the way."""

import signal

import pytest

from harness.httpd import restart

pytestmark = pytest.mark.module


def test_sessions_survive_graceful_and_plain_restarts(httpd, login, whoami):
    cookie = login("alice")
    assert whoami(cookie)[0] == 200
    for sig in (signal.SIGUSR1, signal.SIGUSR1, signal.SIGHUP, signal.SIGUSR1):
        restart(httpd, sig)
        status, env = whoami(cookie)
        assert status == 200, f"after signal {sig!r}"
        assert env["REMOTE_USER"] == "alice"
    fresh = login("bob")
    assert whoami(fresh)[0] == 200
