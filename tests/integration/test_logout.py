"""SetHandler memsession-logout: revoke the session, expire the cookie, redirect or answer JSON."""

import pytest

from harness.http import location_path

pytestmark = pytest.mark.module


def _expired_cookie(r):
    c = r.cookie("memsession")
    assert c is not None, f"logout must expire the cookie:\n{r.describe()}"
    assert c.value == "", c.raw
    assert c.get("max-age") == "0", c.raw
    assert c.get("path") == "/", f"must match the login cookie's Path to clear it: {c.raw}"
    return c


def test_logout_revokes_the_session_and_expires_the_cookie(client, whoami, store,
                                                          login_with_record):
    cookie, record_key = login_with_record("alice")
    assert whoami(cookie)[0] == 200
    assert store.get(record_key) is not None
    r = client.post("/logout", cookie=cookie, headers={"Origin": client.origin}, body=b"")
    assert r.status == 303, r.describe()
    assert location_path(r, client.origin) == "/bye"
    _expired_cookie(r)
    assert whoami(cookie)[0] == 401
    assert store.get(record_key) is None, "the session record is still in memcached"
    assert record_key not in store.keys()


def test_logout_ends_only_its_own_session(client, login, whoami):
    first, second = login("alice"), login("alice")
    r = client.post("/logout", cookie=first, headers={"Origin": client.origin}, body=b"")
    assert r.status == 303, r.describe()
    assert whoami(first)[0] == 401
    status, env = whoami(second)
    assert status == 200
    assert env["REMOTE_USER"] == "alice"


def test_logout_by_get_is_405_and_keeps_the_session(client, login, whoami):
    cookie = login("alice")
    r = client.get("/logout", cookie=cookie)
    assert r.status == 405, r.describe()
    assert r.cookie("memsession") is None or r.cookie("memsession").value != ""
    assert whoami(cookie)[0] == 200


def test_logout_by_get_works_when_allowed(client, login, whoami):
    cookie = login("alice")
    r = client.get("/logout-get", cookie=cookie)
    assert r.status == 303, r.describe()
    assert location_path(r, client.origin) == "/bye"
    _expired_cookie(r)
    assert whoami(cookie)[0] == 401


def test_xhr_logout_answers_json(client, login, whoami):
    cookie = login("alice")
    r = client.post("/logout", cookie=cookie, body=b"",
                    headers={"Origin": client.origin, "X-Requested-With": "XMLHttpRequest"})
    assert r.status == 200, r.describe()
    assert r.header("Content-Type").split(";")[0].strip() == "application/json", r.describe()
    r.json()  # a well-formed JSON body
    _expired_cookie(r)
    assert whoami(cookie)[0] == 401


def test_logout_while_memcached_is_stopped_is_a_503_that_expires_the_cookie(client, login,
                                                                           whoami, store_fault):
    """README: logout while memcached is unavailable expires the cookie anyway, and a 503 says
    the session ends at its expiry (the record could not be deleted)."""
    cookie = login("alice")
    assert whoami(cookie)[0] == 200
    store_fault.stop()
    r = client.post("/logout", cookie=cookie, headers={"Origin": client.origin}, body=b"")
    assert r.status == 503, r.describe()
    _expired_cookie(r)
    assert "ends at its expiry" in r.text, r.describe()
    assert r.header("Location") is None, "a failed logout must not look like a done one"
    store_fault.resume()
