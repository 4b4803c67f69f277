"""MemSessionLocalCache: each process may reuse a session it validated, for up to the bound,
without asking memcached (README: "Logout in the same process still takes effect at once, and a
revocation made elsewhere within" the bound).

A second httpd with `MemSessionLocalCache 5s` (a server-scope directive), on the run's
memcached. Which process answered is read from the access log (pid=%P), as in
harness/load.py.
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid

import pytest

from harness import procs
from harness.derivation import user_epoch_key
from harness.http import basic
from harness.httpd import access_log_line
from harness.load import served_by_every_worker, worker_pids
from harness.site import USERS

pytestmark = pytest.mark.module

CACHE_S = 5
CACHE_CONF = f"\nMemSessionLocalCache {CACHE_S}s\n"
PAGE = "/app/index.html"


@pytest.fixture
def cached(another_httpd):
    return another_httpd(extra_conf=CACHE_CONF)


def login(server) -> str:
    r = server.client.get("/login", headers={"Authorization": basic("alice", USERS["alice"])})
    assert r.status == 303, r.describe()
    return r.cookie("memsession").value


def pid_of(line: str) -> int:
    return int(line.rsplit("pid=", 1)[1].split()[0])


def round_by_pid(server, cookie: str, concurrency: int = 16) -> list[tuple[int, int]]:
    """One round of concurrent requests (each on its own connection): (pid, status) of each,
    read from the access log."""
    probe = uuid.uuid4().hex
    threads = [threading.Thread(target=server.client.get, args=(f"{PAGE}?probe={probe}-{i}",),
                                kwargs={"cookie": cookie}, daemon=True)
               for i in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)

    def logged():
        with open(server.p.access_log, errors="replace") as f:
            lines = [line for line in f if probe in line]
        return lines if len(lines) >= concurrency else None

    lines = procs.wait_until("the round's access log lines", logged, 5)
    return [(pid_of(line), int(line.split('" ', 1)[1].split()[0])) for line in lines]


def warm_every_worker(server, components, cookie: str) -> float:
    """Every worker validates the session once, so each holds it in its cache; returns when
    this started (no worker's copy is older)."""
    started = time.monotonic()
    workers = worker_pids(server.children(), components.threaded)
    assert workers, "no worker processes"
    served_by_every_worker(server.client, server.p.access_log, workers, PAGE, cookie)
    hits = [line for line in server.error_log.since(0) if "(local cache)" in line]
    assert hits, "no request was served from the local cache: is MemSessionLocalCache on?"
    return started


def test_a_logout_is_seen_at_once_by_the_process_that_served_it(cached, components):
    cookie = login(cached)
    warmed = warm_every_worker(cached, components, cookie)
    probe = uuid.uuid4().hex
    r = cached.client.post(f"/logout?probe={probe}", cookie=cookie, body=b"",
                           headers={"Origin": cached.client.origin})
    assert r.status == 303, r.describe()
    logout_pid = pid_of(access_log_line(cached.p, probe))
    # Until the warm copies expire, only the logout's own process is bound to refuse.
    seen: list[tuple[int, int]] = []
    while time.monotonic() < warmed + CACHE_S - 1:
        seen += round_by_pid(cached, cookie)
        if any(pid == logout_pid for pid, _ in seen):
            break
    mine = [status for pid, status in seen if pid == logout_pid]
    assert mine, f"no request reached the logout's process {logout_pid} in time: {seen}"
    assert set(mine) == {401}, \
        f"the process that served the logout still serves the session from its cache: {seen}"


def test_a_revocation_elsewhere_is_seen_within_the_bound(cached, components, store):
    cookie = login(cached)
    warmed = warm_every_worker(cached, components, cookie)
    store.set(user_epoch_key("alice"), secrets.token_bytes(16))  # revoke-user, on another node
    revoked = time.monotonic()
    # Within the bound a process may still serve its copy: that is the documented staleness
    # (and shows the cache is what this test is about) ...
    stale = round_by_pid(cached, cookie)
    assert 200 in {status for _, status in stale}, f"no cached copy served: {stale}"
    # ... and once the bound has passed, no process does.
    time.sleep(max(0.0, warmed + CACHE_S + 0.5 - time.monotonic()))
    workers = worker_pids(cached.children(), components.threaded)
    served_by_every_worker(cached.client, cached.p.access_log, workers, PAGE, cookie,
                           expect=401)
    print(f"\nlocal cache {CACHE_S}s: revoked session still served by "
          f"{sorted({pid for pid, status in stale if status == 200})} right after, refused "
          f"everywhere {time.monotonic() - revoked:.1f}s after")
