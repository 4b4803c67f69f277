"""Someone who can read and write memcached (a CGI or PHP script running as the Apache user, a
host on a farm's network, an SSRF into memcached) but cannot read MemSessionSecretFile.

They see every key and value. They can seal a record in the module's format for any user, with
the current epoch values copied from the store, under the key derivation as it would be without
the secret (or with a guessed one): every such cookie must be refused. The same forgery with the
real secret is the control: it must succeed, so the refusals are the secret's doing, not a broken
forger's.
"""

from __future__ import annotations

import hashlib
import secrets
import time

import pytest

from harness import derivation, site

pytestmark = pytest.mark.module

PREFIX = "memsession:"


def epochs_seen_in_the_store(store, user: str) -> tuple[list[bytes], list[bytes]]:
    """(global epoch candidates, user epoch candidates): what a key listing shows. memcached's
    LRU crawler can miss fresh items in one listing, so listings are united (for at most 10 s)
    until they hold the current global epoch and `user`'s: an attacker watching the store sees
    them sooner or later. (The test knows their keys; the forger only uses the listing.)"""
    keys: set[bytes] = set()
    wanted = {derivation.global_epoch_key(), derivation.user_epoch_key(user)}
    deadline = time.monotonic() + 10
    while True:
        keys.update(store.keys())
        if wanted <= keys or time.monotonic() > deadline:
            return _epochs(store, keys)


def _epochs(store, keys) -> tuple[list[bytes], list[bytes]]:
    globals_, users = [], []
    for key in sorted(keys):
        if not key.startswith(PREFIX.encode()):
            continue
        kind = key[len(PREFIX):len(PREFIX) + 1]
        value = store.get(key)
        # a global epoch copy may carry the farm's revocation generation after its 16 bytes
        if value is None or len(value) not in ((16, 24) if kind == b"g" else (16,)):
            continue
        (globals_ if kind == b"g" else users if kind == b"u" else []).append(value[:16])
    return globals_, users


def forge(store, client, user: str, seen, **derive) -> list[int]:
    """Seal a record for `user` with every epoch pair the store showed (`seen`), each under a
    fresh id and the given derivation (secret= or salt=); return the status of /app/env.cgi for
    each cookie and, for a 200, check who the backend saw."""
    globals_, users = seen
    assert globals_ and users, "no epochs in the store: log in first"
    statuses = []
    for global_epoch in globals_:
        for user_epoch in users:
            cookie = secrets.token_urlsafe(32)
            store_key, record_key = derivation.session_keys(cookie, PREFIX, **derive)
            sealed = derivation.seal(store_key, record_key, user, user_epoch, global_epoch,
                                     int(time.time()))
            store.set(store_key, sealed, ttl=300)
            r = client.get("/app/env.cgi", cookie=cookie)
            if r.status == 200:
                assert r.env()["REMOTE_USER"] == user
            statuses.append(r.status)
    return statuses


def test_a_record_sealed_without_the_secret_mints_nothing(client, login, store):
    login("bob")
    login("alice")
    seen = epochs_seen_in_the_store(store, "bob")
    unkeyed = forge(store, client, "bob", seen, salt=derivation.unkeyed_salt(PREFIX))
    assert 200 not in unkeyed, f"a record sealed without the secret was accepted: {unkeyed}"
    guessed = forge(store, client, "bob", seen, secret=secrets.token_bytes(32))
    assert 200 not in guessed, f"a record sealed under a guessed secret was accepted: {guessed}"
    empty = forge(store, client, "bob", seen, secret=b"")
    assert 200 not in empty, f"a record sealed under an empty secret was accepted: {empty}"
    # the control: with the real secret, the forger's records are accepted
    assert 200 in forge(store, client, "bob", seen, secret=site.SECRET), \
        "the forger does not produce the module's records: the refusals above prove nothing"


DICTIONARY = ["alice", "bob", "admin", "root", "www-data", "alice@EXAMPLE.TEST",
              "bob@EXAMPLE.TEST", "Administrator"]


def test_a_key_listing_does_not_tell_who_has_sessions(login, store):
    login("alice")
    login("bob")
    keys = set(store.keys())
    deadline = time.monotonic() + 5
    while derivation.user_epoch_key("alice") not in keys and time.monotonic() < deadline:
        keys.update(store.keys())  # one listing can miss fresh items
    for key in keys:
        # prefix, kind, then only a hash: nowhere for a name to sit (a 43-character hash may
        # spell "bob" by chance, so names are looked for outside it)
        named, _, hashed = key.rpartition(b":")
        assert len(hashed) == 43, key
        for user in DICTIONARY:
            assert user.encode() not in named, f"{user} appears in a key: {key!r}"
        # without the secret, hashing a dictionary of names finds no epoch key
        unkeyed = hashlib.sha256(b"memsession user epoch\0" + PREFIX.encode() + b"\0"
                                 + user.encode()).digest()
        for guess in (derivation._b64(unkeyed),
                      derivation._b64(hashlib.sha256(user.encode()).digest())):
            assert not any(key.endswith(guess) for key in keys), \
                f"the epoch key of {user} can be found by hashing a dictionary"
    # while the module, which has the secret, does keep one there
    assert derivation.user_epoch_key("alice") in keys
