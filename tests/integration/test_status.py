"""memsession-status: counters aggregated over every Apache process (shared memory made before
fork), exact to the requests a test made; Prometheus text and JSON; memcached figures."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import signal
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from harness import site
from harness.http import basic
from harness.httpd import Httpd, prepare_root, restart
from harness.memcached import MemcachedServer

pytestmark = pytest.mark.module

SAMPLE = re.compile(r'^([a-z_]+)(\{[^}]*\})? (\S+)$')

# Prints which httpd child ran it (mod_cgi forks the CGI from the child under prefork), slowly
# enough that concurrent requests must be spread over several children.
PID_CGI = """#!/bin/sh
sleep 0.2
echo "Content-Type: text/plain"
echo
echo "HTTPD_CHILD=$PPID"
env | sort
"""


def samples(text: str) -> dict[str, float]:
    """{'name{labels}': value} of a Prometheus text exposition; checks every line's shape."""
    out = {}
    for line in text.splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            continue
        m = SAMPLE.match(line)
        assert m, f"not a Prometheus sample line: {line!r}"
        out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


def scrape(client, path="/memsession-status") -> dict[str, float]:
    r = client.get(path)
    assert r.status == 200, r.describe()
    assert r.header("Content-Type") == "text/plain; version=0.0.4; charset=utf-8"
    assert r.header("Cache-Control") == "no-store"
    return samples(r.text)


def test_exposition_and_json_on_the_main_server(client, paths, login, whoami):
    before = scrape(client)
    cookie = login("alice")
    assert whoami(cookie)[0] == 200
    assert whoami(None)[0] == 401
    after = scrape(client)
    ok = 'memsession_validations_total{outcome="ok"}'
    assert after[ok] - before[ok] >= 1
    assert after['memsession_logins_total{result="ok"}'] > before['memsession_logins_total{result="ok"}']
    sock = f"unix:{paths.memcached_sock}"
    up = [k for k in after if k.startswith("memsession_memcached_up{") and sock in k]
    assert len(up) == 1 and after[up[0]] == 1.0
    assert after[f'memsession_memcached_curr_items{{server="{sock}"}}'] >= 1
    inf = 'memsession_store_round_trip_seconds_bucket{le="+Inf"}'
    assert after[inf] == after["memsession_store_round_trip_seconds_count"]
    buckets = [v for k, v in after.items() if k.startswith("memsession_store_round_trip_seconds_bucket")]
    assert buckets == sorted(buckets), "histogram buckets are cumulative"

    for r in (client.get("/memsession-status?format=json"),
              client.get("/memsession-status", headers={"Accept": "application/json"})):
        assert r.status == 200 and r.header("Content-Type") == "application/json"
        data = json.loads(r.text)
        assert data["validations"]["ok"] >= after[ok]
        assert data["memcached"][0]["server"] == sock and data["memcached"][0]["up"] is True
        assert data["store"]["round_trip_seconds"]["buckets"]["+Inf"] == \
            data["store"]["round_trip_seconds"]["count"]


def test_status_obeys_access_control(client):
    assert client.get("/memsession-status-remote-only").status == 403
    assert client.post("/memsession-status", body="").status == 405


@pytest.fixture
def prefork_httpd(components, paths, backend):
    """A dedicated httpd under prefork (4 children) with its own memcached, so a test can
    count from a known state and stop the store without disturbing the run's server."""
    c = dataclasses.replace(components, mpm="prefork")
    root = Path(tempfile.mkdtemp(prefix="memsession-status-", dir=paths.root))
    p = prepare_root(c, root)
    (p.cgi_bin / "env.cgi").write_text(PID_CGI)
    os.chmod(p.cgi_bin / "env.cgi", 0o755)
    store = MemcachedServer(c.memcached, root)
    # no realm behind this server: leave out the Kerberos locations (their directories and
    # keytab are the run's server's)
    server = Httpd(c, p, backend.port, kerberos=False)
    server.memcached = store
    try:
        store.start()
        server.start()
        yield server
    finally:
        server.stop()
        store.stop()
        crashes = [line for line in server.error_log.since(0)
                   if "panicked" in line or "AH00051" in line or "AH00052" in line]
        shutil.rmtree(root, ignore_errors=True)
        assert not crashes, crashes


def test_counters_are_exact_across_prefork_children(prefork_httpd):
    client = prefork_httpd.client
    before = scrape(client)
    n_logins, m_valid, k_anonymous = 5, 12, 4

    def do_login(user):
        r = client.get("/login", headers={"Authorization": basic(user, site.USERS[user])})
        assert r.status == 303, r.describe()
        return r.cookie("memsession").value

    with ThreadPoolExecutor(max_workers=8) as pool:
        cookies = list(pool.map(do_login, ["alice", "bob", "alice", "bob", "alice"]))
        valid = list(pool.map(lambda i: client.get("/app/env.cgi", cookie=cookies[i % n_logins]),
                              range(m_valid)))
        anonymous = list(pool.map(lambda _: client.get("/app/env.cgi"), range(k_anonymous)))
    assert len(cookies) == n_logins
    assert all(r.status == 200 for r in valid), [r.describe() for r in valid if r.status != 200]
    assert all(r.status == 401 for r in anonymous)
    children = {r.env()["HTTPD_CHILD"] for r in valid}
    assert len(children) >= 2, f"requests were not spread over several children: {children}"

    after = scrape(client)

    def delta(name):
        return after.get(name, 0) - before.get(name, 0)

    assert delta('memsession_logins_total{result="ok"}') == n_logins
    assert delta('memsession_validations_total{outcome="ok"}') == m_valid
    assert delta('memsession_validations_total{outcome="no-cookie"}') == k_anonymous
    for outcome in ("malformed-cookie", "ambiguous-cookie", "unknown", "expired",
                    "revoked-user", "revoked-all", "store-error", "store-timeout", "other"):
        assert delta(f'memsession_validations_total{{outcome="{outcome}"}}') == 0, outcome
    for name in ('memsession_logins_total{result="failed"}',
                 'memsession_logins_total{result="store-unavailable"}',
                 "memsession_store_timeouts_total", "memsession_store_errors_total",
                 "memsession_csrf_refusals_total"):
        assert delta(name) == 0, name
    trips = delta("memsession_store_round_trips_total")
    # A login: epochs (one multi-get) + add; a validation: at least the one multi-get.
    assert trips >= 2 * n_logins + m_valid
    assert delta("memsession_store_round_trip_seconds_count") == trips

    # One logout, one cross-site POST, one bad cookie: each lands in its own counter.
    assert client.post("/logout", cookie=cookies[0], headers={"Origin": client.origin}).status == 303
    assert client.post("/app/env.cgi", cookie=cookies[1],
                       headers={"Origin": "https://evil.example"}).status == 403
    assert client.get("/app/env.cgi", cookie="x" * 43).status == 401
    assert client.get("/app/env.cgi", cookie=cookies[0]).status == 401
    last = scrape(client)
    assert last["memsession_logouts_total"] - after["memsession_logouts_total"] == 1
    assert last["memsession_csrf_refusals_total"] - after["memsession_csrf_refusals_total"] == 1
    unknown = 'memsession_validations_total{outcome="unknown"}'
    assert last[unknown] - after[unknown] == 1
    malformed = 'memsession_validations_total{outcome="malformed-cookie"}'
    assert last[malformed] - after[malformed] == 1

    # Counters live in the parent's process pool: they run on across a graceful restart.
    restart(prefork_httpd, signal.SIGUSR1)
    again = scrape(client)
    assert again['memsession_logins_total{result="ok"}'] >= last['memsession_logins_total{result="ok"}']


def test_store_down_is_counted_and_reported(prefork_httpd):
    client = prefork_httpd.client
    login = client.get("/login", headers={"Authorization": basic("bob", site.USERS["bob"])})
    assert login.status == 303
    value = login.cookie("memsession").value
    assert client.get("/app/env.cgi", cookie=value).status == 200
    before = scrape(client)
    prefork_httpd.memcached.stop()
    assert client.get("/app/env.cgi", cookie=value).status == 401
    again = client.get("/login", headers={"Authorization": basic("bob", site.USERS["bob"])})
    assert again.status == 503
    after = scrape(client)
    err = 'memsession_validations_total{outcome="store-error"}'
    assert after[err] - before[err] == 1
    unavailable = 'memsession_logins_total{result="store-unavailable"}'
    assert after[unavailable] - before[unavailable] == 1
    assert after["memsession_store_errors_total"] > before["memsession_store_errors_total"]
    down = [k for k in after if k.startswith("memsession_memcached_up{")]
    assert len(down) == 1 and after[down[0]] == 0.0, down
    assert 'version=""' in down[0]
    data = json.loads(client.get("/memsession-status?format=json").text)
    assert data["memcached"][0]["up"] is False and data["memcached"][0]["error"]


def test_steady_state_is_one_round_trip_per_request_and_one_write_per_refresh(prefork_httpd):
    """The performance contract's traffic shape, counted by memcached and by the module: a
    request on a known session is one multi-get (record, global and user epoch), and the
    sliding window is written back at most once per refresh interval, not per request."""
    client = prefork_httpd.client
    store = prefork_httpd.memcached.client()
    r = client.get("/short/login", headers={"Authorization": basic("alice", site.USERS["alice"])})
    assert r.status == 303, r.describe()
    cookie = r.cookie("memsession").value
    warm = [client.get("/short/app/env.cgi", cookie=cookie) for _ in range(8)]
    known_to = {r.env()["HTTPD_CHILD"] for r in warm}
    trips = "memsession_store_round_trips_total"
    first, second = scrape(client), scrape(client)
    per_scrape = second[trips] - first[trips]

    stats_before, before = store.stats(), scrape(client)
    started, batch = time.monotonic(), []
    while time.monotonic() - started < 2.5:  # /short: a 3 s window, slid at most once a second
        batch.append(client.get("/short/app/env.cgi", cookie=cookie))
    after, stats_after = scrape(client), store.stats()

    assert all(r.status == 200 for r in batch), [r.describe() for r in batch if r.status != 200]
    # A process seeing the session for the first time also fetches the user's epoch key,
    # which only the record names: one more round trip, the same three keys in all.
    new_children = {r.env()["HTTPD_CHILD"] for r in batch} - known_to
    writes = stats_after["cmd_set"] - stats_before["cmd_set"]
    assert 1 <= writes <= 3, f"{writes} writes for {len(batch)} requests over 2.5 s"
    assert stats_after["cmd_get"] - stats_before["cmd_get"] == 3 * len(batch)
    assert after[trips] - before[trips] - per_scrape == len(batch) + writes + len(new_children)
