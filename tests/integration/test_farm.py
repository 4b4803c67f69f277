"""Farms: Apache nodes sharing one key prefix, and several memcached servers.

README: sessions are "shared by every Apache process and every node of a farm"; MemSessionServers
"Several form a farm: each key goes to jump_consistent_hash(fnv1a64(key), N) over the servers in
the order listed". The placement is recomputed here from that text (harness/derivation.py), not
from the module's code. A second httpd plays the other node, or the farm's client (its
MemSessionServers lists the run's memcached, then a second one).
"""

from __future__ import annotations

import itertools
import os
import tempfile
import time
from pathlib import Path

import pytest

from harness import procs
from harness.derivation import global_epoch_key, record_key, server_for_key, user_epoch_key
from harness.http import basic
from harness.memcached import MemcachedServer
from harness.site import USERS
from test_faults import MARGIN_S, TIMEOUT_S

pytestmark = pytest.mark.module


def login_at(server, user: str = "alice") -> str:
    r = server.client.get("/login", headers={"Authorization": basic(user, USERS[user])})
    assert r.status == 303, r.describe()
    return r.cookie("memsession").value


def user_of(client, cookie: str) -> str | None:
    r = client.get("/app/env.cgi", cookie=cookie)
    return r.env()["REMOTE_USER"] if r.status == 200 else None


def test_two_nodes_sharing_a_prefix_share_sessions(client, login, another_httpd):
    """A session minted on one node is served by the other, and a logout on either ends it on
    both: nothing of a session lives in a node."""
    node_b = another_httpd()  # the same memcached and key prefix as the main server
    from_a = login("alice")
    from_b = login_at(node_b, "bob")
    assert user_of(node_b.client, from_a) == "alice"
    assert user_of(client, from_b) == "bob"
    r = node_b.client.post("/logout", cookie=from_a, body=b"",
                           headers={"Origin": node_b.client.origin})
    assert r.status == 303, r.describe()
    assert client.get("/app/index.html", cookie=from_a).status == 401, \
        "a logout on node B left the session alive on node A"
    r = client.post("/logout", cookie=from_b, body=b"", headers={"Origin": client.origin})
    assert r.status == 303, r.describe()
    assert node_b.client.get("/app/index.html", cookie=from_b).status == 401


@pytest.fixture
def second_memcached(components, paths):
    root = Path(tempfile.mkdtemp(prefix="memsession-mc2-", dir=paths.root))
    os.chmod(root, 0o755)  # httpd's children (www-data) reach the socket through it
    (root / "logs").mkdir()
    server = MemcachedServer(components.memcached, root)
    try:
        server.start()
        yield server
    finally:
        server.stop()


def farm_httpd(another_httpd, second_memcached, prefix: str):
    """An httpd whose MemSessionServers are the run's memcached, then the second one."""
    return another_httpd(key_prefix=prefix,
                         extra_conf=f"\nMemSessionServers unix:{second_memcached.sock_path}\n")


def test_keys_go_to_the_server_the_documented_hash_names(another_httpd, store,
                                                         second_memcached):
    prefix = f"farm{os.getpid()}:"
    farm = farm_httpd(another_httpd, second_memcached, prefix)
    stores = [store, second_memcached.client()]
    held = [0, 0]
    for i in range(24):
        user = ("alice", "bob")[i % 2]
        cookie = login_at(farm, user)
        if i < 4:
            assert user_of(farm.client, cookie) == user
        else:
            assert farm.client.get("/app/index.html", cookie=cookie).status == 200
        key = record_key(cookie, prefix)
        home = server_for_key(key, 2)
        assert stores[home].get(key) is not None, f"record {key!r} is not on server {home}"
        assert stores[1 - home].get(key) is None, f"record {key!r} is also on server {1 - home}"
        held[home] += 1
    assert all(held), f"24 sessions, yet one server holds none: {held}"
    for key in (global_epoch_key(prefix), user_epoch_key("alice", prefix),
                user_epoch_key("bob", prefix)):
        home = server_for_key(key, 2)
        assert stores[home].get(key) is not None, f"epoch {key!r} is not on server {home}"
        assert stores[1 - home].get(key) is None, f"epoch {key!r} is also on server {1 - home}"
    print(f"\nfarm of 2: records per server {held}")


def test_a_stopped_server_ends_no_session_held_by_the_other(another_httpd, second_memcached):
    """With the second server stopped (SIGSTOP: alive, silent), a session whose record and
    epochs are on the first is served as before; the others get the unauthenticated answer
    within MemSessionTimeout, keep their cookie, and are served again once it answers.

    The prefix is chosen so that the global epoch and alice's epoch live on the first server:
    an epoch is held by one server only, so sessions depending on the stopped one's epochs
    cannot be served meanwhile (see docs/testing.md)."""
    prefix = next(p for p in (f"farm{n}:" for n in itertools.count())
                  if server_for_key(global_epoch_key(p), 2) == 0
                  and server_for_key(user_epoch_key("alice", p), 2) == 0)
    farm = farm_httpd(another_httpd, second_memcached, prefix)
    cookies = [login_at(farm) for _ in range(12)]
    on_first = [c for c in cookies if server_for_key(record_key(c, prefix), 2) == 0]
    on_second = [c for c in cookies if c not in on_first]
    assert on_first and on_second, "12 sessions all on one server: choose more"
    second_memcached.pause()
    try:
        for cookie in cookies:
            started = time.monotonic()
            r = farm.client.get("/app/index.html", cookie=cookie)
            took = time.monotonic() - started
            expect = 200 if cookie in on_first else 401
            assert r.status == expect, r.describe()
            assert took < TIMEOUT_S + MARGIN_S, f"{took:.3f}s with one server stopped"
            assert r.cookie("memsession") is None, \
                f"a store failure must not expire the cookie:\n{r.describe()}"
    finally:
        second_memcached.resume()
    for cookie in on_second:
        procs.wait_until("a session of the resumed server to be served again",
                         lambda: farm.client.get("/app/index.html", cookie=cookie).status == 200,
                         10, interval_s=0.2)
