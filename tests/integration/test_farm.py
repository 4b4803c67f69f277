"""Farms: Apache nodes sharing one key prefix, and several memcached servers.

README: sessions are "shared by every Apache process and every node of a farm"; MemSessionServers
"Several form a farm: each key goes to jump_consistent_hash(fnv1a64(key), N) over the servers in
the order listed". The placement is recomputed here from that text (harness/derivation.py), not
from the module's code. A second httpd plays the other node, or the farm's client (its
MemSessionServers lists the run's memcached, then a second one).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from pathlib import Path

import pytest

from harness import ctl, procs
from harness.derivation import (global_epoch_key, record_key, replica_for_key, server_for_key,
                                user_epoch_key)
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
    # Every server holding a session holds the epochs it is checked against (README, "Keys in
    # memcached": a copy of the global and of each user's epoch on every server).
    for home in (0, 1):
        for key in (global_epoch_key(prefix), user_epoch_key("alice", prefix),
                    user_epoch_key("bob", prefix)):
            assert stores[home].get(key) is not None, f"epoch {key!r} has no copy on {home}"
    print(f"\nfarm of 2: records per server {held}")


def test_a_stopped_server_ends_no_session_held_by_the_other(another_httpd, second_memcached):
    """With the second server stopped (SIGSTOP: alive, silent), a session whose record is on
    the first is served as before (its epochs are copies on the same server); the others get
    the unauthenticated answer within MemSessionTimeout, keep their cookie, and are served
    again once it answers. Whichever server the hash puts the epochs' keys on (the prefixes
    cover both), nothing of the first server's sessions lives on the second."""
    prefix = f"farm{os.getpid()}:"
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


# ---- Three memcached servers, two httpd nodes (issue 16) ----------------------------------

@pytest.fixture
def three_memcached(components, paths):
    servers = []
    try:
        for _ in range(3):
            root = Path(tempfile.mkdtemp(prefix="memsession-farm-", dir=paths.root))
            os.chmod(root, 0o755)
            (root / "logs").mkdir()
            server = MemcachedServer(components.memcached, root)
            servers.append(server)
            server.start()
        yield servers
    finally:
        for server in servers:
            if server.proc is not None:
                try:
                    server.resume()
                except Exception:
                    pass
            server.stop()


def farm_of_three(another_httpd, servers, prefix: str, replicas: int | None = None):
    """Two httpd nodes sharing three memcached servers (MemSessionServers in this order)."""
    rest = " ".join(f"unix:{s.sock_path}" for s in servers[1:])
    extra = f"\nMemSessionServers {rest}\n"
    if replicas is not None:
        extra += f"MemSessionReplicas {replicas}\n"
    return [another_httpd(key_prefix=prefix, memcached_sock=Path(servers[0].sock_path),
                          extra_conf=extra) for _ in range(2)]


def ctl_for(servers, prefix: str, *flags: str):
    def do(*args: str, stdin: str | None = None):
        return ctl.run(["--servers", ",".join(f"unix:{s.sock_path}" for s in servers),
                        "--prefix", prefix, "--secret-file", ctl.secret_file(), *flags, *args],
                       stdin=stdin)
    return do


def spread(nodes, prefix: str, users=("alice", "bob"), each: int = 3) -> list[tuple[str, str, int]]:
    """Logins, alternating users and nodes, until every server holds `each` sessions of every
    user: (cookie, user, server)."""
    sessions = []
    for i in range(300):
        user = users[i % len(users)]
        cookie = login_at(nodes[i % 2], user)
        sessions.append((cookie, user, server_for_key(record_key(cookie, prefix), 3)))
        if all(sum(1 for _, u, h in sessions if u == user and h == home) >= each
               for user in users for home in range(3)):
            return sessions
    counts = [[sum(1 for _, u, h in sessions if u == user and h == home) for home in range(3)]
              for user in users]
    raise AssertionError(f"300 logins and a server still lacks sessions: {counts}")


BREAKER_PROBE_S = 2.0  # README: a failing server is probed again after 2 s


def settle() -> None:
    """After a server is back: every child's breaker for it is due a probe, so the next
    request to it in any child asks it (the breaker's own recovery, tested in test_faults)."""
    time.sleep(BREAKER_PROBE_S + 0.5)


@contextlib.contextmanager
def one_server_failing(server, fault: str):
    """`server` killed, flushed or stopped (SIGSTOP) for the body; afterwards it is back
    (restarted empty, or resumed) and the nodes' breakers are due to ask it again."""
    if fault == "kill":
        server.kill()
    elif fault == "flush":
        assert server.client().command(b"flush_all") == b"OK"
    else:
        server.pause()
    try:
        yield
    finally:
        if fault == "kill":
            server.start()
        elif fault == "stop":
            server.resume()
    settle()


def logins_work(nodes) -> None:
    """Logins at either node are honoured by the other (while a server is out, they land on
    a working one)."""
    for i in range(6):
        fresh = login_at(nodes[i % 2])
        assert user_of(nodes[(i + 1) % 2].client, fresh) == "alice"


def ask(nodes, sessions, i0: int = 0):
    """Each session asked once, nodes alternating: [(status, cookie expired?)]."""
    out = []
    for i, (cookie, _, _) in enumerate(sessions):
        r = nodes[(i + i0) % 2].client.get("/app/index.html", cookie=cookie)
        c = r.cookie("memsession")
        assert r.status in (200, 401), r.describe()
        out.append((r.status, c is not None and c.get("max-age") == "0"))
    return out


@pytest.mark.parametrize("fault", ["kill", "flush", "stop"])
def test_losing_one_server_costs_at_most_its_own_sessions(another_httpd, three_memcached, fault):
    """Each server in turn is killed (then restarted, empty), flushed, or stopped (SIGSTOP, then
    resumed), with live sessions on all three: sessions lost are at most that server's share
    (none for a stop), no cookie of a session held elsewhere (or coming back) is expired, and a
    login made meanwhile lands on a working server."""
    prefix = f"farm3{fault}{os.getpid()}:"
    nodes = farm_of_three(another_httpd, three_memcached, prefix)
    figures = []
    for k, server in enumerate(three_memcached):
        sessions = spread(nodes, prefix)
        on_k = sum(1 for _, _, h in sessions if h == k)
        with one_server_failing(server, fault):
            during = ask(nodes, sessions)
            for (status, expired), (_, _, home) in zip(during, sessions):
                if home != k:
                    assert (status, expired) == (200, False), f"a session on {home}, {k} down"
                elif fault == "flush":
                    assert (status, expired) == (401, True), "a flushed session is gone"
                else:
                    assert (status, expired) == (401, False), "a store failure keeps the cookie"
            logins_work(nodes)
        after = ask(nodes, sessions, 1)
        lost = wrongly_expired = 0
        for (status, expired), (_, _, home) in zip(after, sessions):
            if status != 200:
                lost += 1
                assert home == k, f"a session on server {home} was lost when {k} failed"
            wrongly_expired += expired and home != k
        if fault == "stop":
            assert lost == 0, f"{lost} sessions lost to a stop of server {k}"
        assert lost <= on_k and wrongly_expired == 0
        figures.append(f"server {k}: {lost} of {len(sessions)} sessions lost "
                       f"({on_k} stored there), {wrongly_expired} cookies wrongly expired")
    print(f"\n{fault}: " + "; ".join(figures))


@pytest.mark.parametrize("fault", ["stop", "kill"])
def test_a_revocation_a_server_missed_fails_names_it_and_a_rerun_completes_it(
        another_httpd, three_memcached, fault):
    """revoke-user with each server in turn unreachable: exit 2 naming that server, never a
    success; the servers that took it end alice's sessions at once; `check` shows the server
    that missed it as BEHIND once it is back; re-running completes it, and bob keeps every
    session."""
    prefix = f"farm3rev{fault}{os.getpid()}:"
    nodes = farm_of_three(another_httpd, three_memcached, prefix)
    memsessionctl = ctl_for(three_memcached, prefix)
    false_successes = 0
    for k, server in enumerate(three_memcached):
        sessions = spread(nodes, prefix)
        with one_server_failing(server, fault):
            r = memsessionctl("revoke-user", "alice")
            false_successes += r.code == 0
            assert r.code == 2, r.describe()
            assert server.sock_path in r.stderr and "NOT complete" in r.stderr, r.describe()
            for other in three_memcached:
                if other is not server:
                    assert other.sock_path not in r.stderr, r.describe()
            j = memsessionctl("--json", "revoke-user", "alice")
            data = json.loads(j.stdout)
            assert j.code == 2 and data["ok"] is False and data["reached"] == 2, j.describe()
            assert [m["server"] for m in data["missed"]] == [f"unix:{server.sock_path}"]
        if fault == "stop":
            # Back with the old epochs: the farm's revocation generation shows it missed one.
            c = memsessionctl("check")
            assert c.code == 2 and "BEHIND" in c.stderr and server.sock_path in c.stderr, \
                c.describe()
        r = memsessionctl("revoke-user", "alice")
        assert r.code == 0, r.describe()
        assert "on all 3 servers" in r.stdout, r.describe()
        c = memsessionctl("check")
        assert "BEHIND" not in c.stdout + c.stderr, c.describe()
        for (status, expired), (_, user, home) in zip(ask(nodes, sessions), sessions):
            if user == "alice":
                assert status == 401, f"alice's session on {home} survived ({k} missed it)"
            elif fault == "stop" or home != k:
                assert (status, expired) == (200, False), f"bob's session on {home} ended"
    assert false_successes == 0
    print(f"\nrevoke-user with one server {'stopped' if fault == 'stop' else 'killed'} in turn: 3 of 3 reported failed "
          f"(exit 2), {false_successes} false successes; re-runs completed them")


def test_a_server_that_missed_a_revocation_is_reset_not_served(another_httpd, three_memcached):
    """revoke-all while one server is stopped; it comes back holding the old global epoch. A
    node that saw the revocation on another server resets it BEHIND_GRACE (5 s) later, at its
    next request there: none of the revoked sessions is served after that, by either node,
    and new logins land there again."""
    prefix = f"farm3reset{os.getpid()}:"
    nodes = farm_of_three(another_httpd, three_memcached, prefix)
    memsessionctl = ctl_for(three_memcached, prefix)
    sessions = spread(nodes, prefix)
    k = 1
    three_memcached[k].pause()
    try:
        r = memsessionctl("revoke-all")
        assert r.code == 2 and three_memcached[k].sock_path in r.stderr, r.describe()
    finally:
        three_memcached[k].resume()
    # Every node and child learns the revocation from any session stored elsewhere.
    for status, _ in ask(nodes, [s for s in sessions if s[2] != k] * 3):
        assert status == 401
    time.sleep(5.5)
    # The first request on server k's sessions in a process that saw the revocation resets
    # it; a process that did not (the window README states) may serve one until then.
    passes, served = 0, 0
    while True:
        passes += 1
        statuses = [status for status, _ in ask(nodes, sessions, passes)]
        if all(status == 401 for status in statuses):
            break
        served += statuses.count(200)
        assert passes < 10, "the server that missed the revocation was never reset"
    for _ in range(3):
        for status, _ in ask(nodes, sessions):
            assert status == 401, "a revoked session was served after the reset"
    c = memsessionctl("check")
    assert c.code in (0, 1) and "BEHIND" not in c.stdout + c.stderr, c.describe()
    more = spread(nodes, prefix, users=("bob",), each=1)
    assert all(status == 200 for status, _ in ask(nodes, more))
    print(f"\nrevoke-all missed by server {k}: {served} revoked sessions served after the "
          f"grace, all refused from pass {passes} on")


# ---- MemSessionReplicas 1: each session on its home server and on a replica (issue 16) ----

def copies(servers, cookie: str, prefix: str) -> list[bool]:
    """Which servers hold a record of the session, as memcached itself says."""
    key = record_key(cookie, prefix)
    return [s.client().get(key) is not None for s in servers]


def placed(cookie: str, prefix: str) -> tuple[int, int]:
    """(home, replica) of a session, as README documents them."""
    key = record_key(cookie, prefix)
    return server_for_key(key, 3), replica_for_key(key, 3)


@pytest.mark.parametrize("fault", ["kill", "flush", "stop"])
def test_with_replicas_losing_any_one_server_loses_no_session(another_httpd, three_memcached,
                                                              fault):
    """MemSessionReplicas 1: each server in turn is killed (then restarted empty), flushed, or
    stopped, with live sessions on all three: every session is still served during the fault
    and after it, no cookie is expired, and the sessions whose home server came back empty
    are back on it (repaired from their replica)."""
    prefix = f"farm3r{fault}{os.getpid()}:"
    nodes = farm_of_three(another_httpd, three_memcached, prefix, replicas=1)
    figures = []
    for k, server in enumerate(three_memcached):
        sessions = spread(nodes, prefix)
        for cookie, _, home in sessions:
            h, r = placed(cookie, prefix)
            want = [i in (h, r) for i in range(3)]
            assert copies(three_memcached, cookie, prefix) == want, \
                f"a session of home {h} must be on {h} and its replica {r} only"
        on_k = sum(1 for _, _, h in sessions if h == k)
        lost = wrongly_expired = 0
        with one_server_failing(server, fault):
            for (status, expired), (_, _, home) in zip(ask(nodes, sessions), sessions):
                lost += status != 200
                wrongly_expired += expired
            logins_work(nodes)
        for (status, expired), _ in zip(ask(nodes, sessions, 1), sessions):
            lost += status != 200
            wrongly_expired += expired
        if fault != "stop":
            # The ones it lost are back at home (a repair by whichever node asked first).
            back = sum(copies(three_memcached, c, prefix)[k] for c, _, h in sessions if h == k)
            assert back == on_k, f"{back} of {on_k} sessions repaired on server {k}"
        assert (lost, wrongly_expired) == (0, 0), \
            f"server {k} {fault}: {lost} sessions lost, {wrongly_expired} cookies expired"
        figures.append(f"server {k}: {lost} of {len(sessions)} sessions lost ({on_k} homed "
                       f"there), {wrongly_expired} cookies wrongly expired")
    print(f"\nreplicas, {fault}: " + "; ".join(figures))


def test_with_replicas_a_logout_deletes_both_copies(another_httpd, three_memcached):
    """A logout on either node leaves neither copy in memcached, and the session is not
    served by either node, even once its home server has lost its copy (flushed)."""
    prefix = f"farm3rlogout{os.getpid()}:"
    nodes = farm_of_three(another_httpd, three_memcached, prefix, replicas=1)
    sessions = spread(nodes, prefix, users=("alice",), each=2)
    for i, (cookie, _, home) in enumerate(sessions):
        assert sum(copies(three_memcached, cookie, prefix)) == 2
        node = nodes[i % 2]
        r = node.client.post("/logout", cookie=cookie, body=b"",
                             headers={"Origin": node.client.origin})
        assert r.status == 303, r.describe()
        for other in nodes:
            assert other.client.get("/app/index.html", cookie=cookie).status == 401, \
                f"a logged-out session (home {home}) was served"
        assert copies(three_memcached, cookie, prefix) == [False] * 3, \
            f"a copy of a logged-out session (home {home}) is still in memcached"
    for server in three_memcached:
        assert server.client().command(b"flush_all") == b"OK"
        for status, expired in ask(nodes, sessions):
            assert status == 401, "a logged-out session was served"
    print(f"\nreplicas: {len(sessions)} logouts, 0 copies left in memcached")


def test_with_replicas_a_revoked_session_is_not_revived_from_its_replica(another_httpd,
                                                                         three_memcached):
    """revoke-user alice, then each server in turn loses what it holds (flushed, or killed and
    restarted empty): alice's sessions whose home copy is gone are looked for on their
    replica, whose epochs say revoked; none is served or put back home. Bob's all are."""
    prefix = f"farm3rrev{os.getpid()}:"
    nodes = farm_of_three(another_httpd, three_memcached, prefix, replicas=1)
    memsessionctl = ctl_for(three_memcached, prefix, "--replicas", "1")
    revived = 0
    for k, server in enumerate(three_memcached):
        sessions = spread(nodes, prefix)
        r = memsessionctl("revoke-user", "alice")
        assert r.code == 0, r.describe()
        if k == 1:
            server.kill()
            server.start()
        else:
            assert server.client().command(b"flush_all") == b"OK"
        settle()
        for (status, expired), (cookie, user, home) in zip(ask(nodes, sessions), sessions):
            if user == "alice":
                revived += status == 200
                assert (status, expired) == (401, True), \
                    f"alice's session (home {home}, server {k} lost) after revoke-user"
                if home == k:
                    assert not copies(three_memcached, cookie, prefix)[k], \
                        "a revoked session was repaired onto its home server"
            else:
                assert (status, expired) == (200, False), f"bob's session on {home}"
    assert revived == 0
    print(f"\nreplicas: revoke-user, then each server lost in turn: {revived} revoked sessions "
          f"served")


def test_with_replicas_a_copy_on_a_server_without_its_epochs_is_not_served(another_httpd,
                                                                          three_memcached):
    """The only copy left of a session is on a server whose epoch copies are gone (evicted,
    deleted) while the record stayed: it fails closed, as a record at home would, whichever
    epoch is missing."""
    prefix = f"farm3repoch{os.getpid()}:"
    nodes = farm_of_three(another_httpd, three_memcached, prefix, replicas=1)
    sessions = spread(nodes, prefix, users=("alice",), each=1)
    (first, _, _), (second, _, _) = sessions[:2]
    for cookie, epoch_key in ((first, global_epoch_key(prefix)),
                              (second, user_epoch_key("alice", prefix))):
        home, replica = placed(cookie, prefix)
        assert nodes[0].client.get("/app/index.html", cookie=cookie).status == 200
        held = three_memcached[replica].client().get(epoch_key)
        assert held is not None
        assert three_memcached[replica].client().delete(epoch_key)
        assert three_memcached[home].client().delete(record_key(cookie, prefix))
        for node in nodes:
            r = node.client.get("/app/index.html", cookie=cookie)
            assert r.status == 401, \
                f"a copy checked against no epoch was served ({epoch_key!r} missing)"
        three_memcached[replica].client().set(epoch_key, held)


def test_memsessionctl_shows_where_the_copies_of_a_session_are(another_httpd, three_memcached):
    """session-info with replicas names the home server and the replica and whether each holds
    a copy; it looks without writing (a copy missing at home stays missing)."""
    prefix = f"farm3rctl{os.getpid()}:"
    nodes = farm_of_three(another_httpd, three_memcached, prefix, replicas=1)
    memsessionctl = ctl_for(three_memcached, prefix, "--replicas", "1")
    cookie = login_at(nodes[0])
    home, replica = placed(cookie, prefix)
    socks = [f"unix:{s.sock_path}" for s in three_memcached]
    r = memsessionctl("session-info", stdin=cookie)
    assert r.code == 0 and "validity: valid" in r.stdout, r.describe()
    assert f"copies: {socks[home]} (home, held), {socks[replica]} (replica, held)" in r.stdout, \
        r.describe()
    assert "replicas: 1" in r.stdout, r.describe()
    assert three_memcached[home].client().delete(record_key(cookie, prefix))
    j = memsessionctl("--json", "session-info", stdin=cookie)
    data = json.loads(j.stdout)
    assert j.code == 0 and data["validity"] == "valid", j.describe()
    assert data["copies"] == [{"server": socks[home], "role": "home", "held": False},
                              {"server": socks[replica], "role": "replica", "held": True}]
    assert not copies(three_memcached, cookie, prefix)[home], "session-info wrote a copy home"
