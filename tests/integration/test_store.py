"""What memcached holds: hashed keys under the prefix, sealed values; a missing record is a miss."""

import urllib.parse

import pytest

pytestmark = pytest.mark.module


def _forms(text: str) -> list[bytes]:
    return [text.encode(), urllib.parse.quote(text, safe="").encode()]


def test_store_reveals_neither_the_cookie_nor_the_user(login, store):
    cookie = login("alice")
    dump = store.dump()
    assert dump, "memcached holds nothing after a login"
    for key, value in dump.items():
        for needle in _forms(cookie) + [b"alice", b"ALICE", b"YWxpY2"]:  # YWxpY2: base64 of "alic"
            assert needle not in key, f"key {key!r} contains {needle!r}"
            assert value is None or needle not in value, f"value of {key!r} contains {needle!r}"
        # the raw 32 bytes of the id must not be there either
        import base64
        raw_id = base64.urlsafe_b64decode(cookie + "=")
        assert raw_id not in key and (value is None or raw_id not in value), key


def test_every_key_carries_the_prefix(login, store):
    login("alice")
    keys = store.keys()
    assert keys
    assert all(k.startswith(b"memsession:") for k in keys), [k for k in keys if not k.startswith(b"memsession:")]


def test_record_has_an_expiry_in_memcached(login_with_record, store):
    """A write without an expiry would make the item immortal."""
    _, key = login_with_record("alice")
    with store._connect() as s:
        import base64
        s.sendall(b"mg " + base64.b64encode(key) + b" b t\r\n")
        reply = s.recv(4096)
    assert reply.startswith(b"HD"), reply
    ttl = int(reply.split(b" t")[1].split()[0])
    assert ttl > 0, f"the session record never expires (ttl {ttl})"


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
