"""What memcached holds: hashed keys under the prefix, sealed values; a missing record is a miss."""

import base64
import re
import urllib.parse

import pytest

pytestmark = pytest.mark.module


def test_store_reveals_neither_the_cookie_nor_the_user(login, store):
    cookie = login("alice")
    raw_id = base64.urlsafe_b64decode(cookie + "=")
    needles = [cookie.encode(), urllib.parse.quote(cookie, safe="").encode(), raw_id,
               b"alice", b"ALICE", base64.b64encode(b"alice").rstrip(b"=")]
    dump = store.dump()
    assert dump, "memcached holds nothing after a login"
    for key, value in dump.items():
        for needle in needles:
            assert needle not in key, f"key {key!r} contains {needle!r}"
            assert value is None or needle not in value, f"value of {key!r} contains {needle!r}"


# What every key in the store is: a deployment's prefix (the run's servers and tools use
# several on this memcached), a kind, and a 256-bit hash in base64url.
KEY_SHAPE = re.compile(rb"^[A-Za-z0-9._-]+:[sgub]:[A-Za-z0-9_-]{43}$")


def test_every_key_carries_the_prefix(login, store):
    login("alice")
    keys = store.keys()
    assert any(k.startswith(b"memsession:") for k in keys)
    assert [k for k in keys if not KEY_SHAPE.match(k)] == []


def test_session_record_expires_in_memcached(login_with_record, store):
    """Expiry goes to memcached on every write: an item without one would be immortal."""
    _, key = login_with_record("alice")
    ttl = store.ttl(key)
    assert ttl is not None and ttl > 0, f"the session record's ttl is {ttl}"


def test_deleting_the_record_ends_the_session(login_with_record, store, whoami):
    cookie, key = login_with_record("alice")
    assert whoami(cookie)[0] == 200
    assert store.delete(key)
    assert whoami(cookie)[0] == 401


def test_a_genuine_miss_expires_the_cookie(login_with_record, store, client):
    """DESIGN.md: a store error keeps the client's cookie; a genuine miss, expiry or revocation
    clears it."""
    cookie, key = login_with_record("alice")
    assert store.delete(key)
    r = client.get("/app/env.cgi", cookie=cookie)
    assert r.status == 401, r.describe()
    c = r.cookie("memsession")
    assert c is not None and c.get("max-age") == "0", r.describe()
