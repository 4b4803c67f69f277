"""The shipped memcached unit (apache-conf/memsession-memcached.service) keeps every session over
a planned restart: README "A farm of memcached servers" and the unit's own comments promise that
`systemctl restart` (stop, then start) loses no session, because the unit stops memcached with
SIGUSR1 and keeps item memory in a file on tmpfs (memcached's warm restart).

No systemd runs here, so the test does what systemd would with the unit's own lines: ExecStart
(paths under /run/memsession moved to a fresh tmpfs directory, run as root, socket open to
httpd's children), KillSignal, TimeoutStopSec, ExecStopPost, then ExecStart again. A unit that
stopped with SIGTERM, or kept its memory file where a stop loses it, fails here.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import tempfile
from collections import Counter
from pathlib import Path

import pytest

from harness.components import REPO
from harness.derivation import record_key, server_for_key
from harness.memcached import MemcachedServer
from test_farm import login_at, user_of

pytestmark = pytest.mark.module

UNIT = REPO / "apache-conf" / "memsession-memcached.service"
RUNTIME = "/run/memsession"
SESSIONS = 12


def service_settings() -> dict[str, list[str]]:
    """Every Key=Value of the unit's [Service] section (a key may repeat)."""
    settings: dict[str, list[str]] = {}
    section = None
    for line in UNIT.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line
            continue
        if section == "[Service]":
            key, _, value = line.partition("=")
            settings.setdefault(key, []).append(value)
    return settings


class UnitMemcached(MemcachedServer):
    """memcached started and stopped as the shipped unit says, its /run/memsession moved to
    `runtime` (a tmpfs directory that outlives stops, as RuntimeDirectoryPreserve=yes keeps
    /run/memsession)."""

    def __init__(self, binary: str, root: Path, runtime: Path):
        super().__init__(binary, root)
        self.settings = service_settings()
        self.runtime = runtime
        self.sock_path = str(runtime / "memcached.sock")

    def unit_argv(self) -> list[str]:
        argv = [arg.replace(RUNTIME, str(self.runtime))
                for arg in shlex.split(self.settings["ExecStart"][0])]
        argv[0] = self.binary
        # The unit runs as www-data with a 0700 socket; here root runs memcached and httpd's
        # children (www-data) must still connect.
        mode = argv.index("-a") + 1
        argv[mode] = "0777"
        return argv + ["-u", "root"]

    def start_as_unit(self) -> None:
        self.start(argv=self.unit_argv())

    def stop_as_unit(self) -> int:
        """systemctl stop: KillSignal, wait up to TimeoutStopSec, then ExecStopPost."""
        signum = signal.Signals[self.settings.get("KillSignal", ["SIGTERM"])[0]]
        timeout = float(self.settings.get("TimeoutStopSec", ["90s"])[0].rstrip("s"))
        self.proc.send_signal(signum)
        code = self.proc.wait(timeout=timeout)
        self.proc = None
        for command in self.settings.get("ExecStopPost", []):
            subprocess.run(shlex.split(command), check=True, timeout=30)
        return code


@pytest.fixture
def unit_memcacheds(components, paths):
    """unit_memcacheds(n) -> n memcached servers started as the unit starts one, each with its
    own runtime directory on tmpfs (/dev/shm, as /run is on Debian)."""
    started: list[UnitMemcached] = []

    def start(n: int) -> list[UnitMemcached]:
        for _ in range(n):
            root = Path(tempfile.mkdtemp(prefix="memsession-unit-", dir=paths.root))
            (root / "logs").mkdir()
            runtime = Path(tempfile.mkdtemp(prefix="memsession-run-", dir="/dev/shm"))
            os.chmod(runtime, 0o755)  # httpd's children (www-data) reach the socket through it
            server = UnitMemcached(components.memcached, root, runtime)
            started.append(server)
            server.start_as_unit()
        return started[-n:]

    try:
        yield start
    finally:
        for server in started:
            server.stop()
            shutil.rmtree(server.runtime, ignore_errors=True)


@pytest.fixture
def unit_memcached(unit_memcacheds):
    return unit_memcacheds(1)[0]


def memory_file(server: UnitMemcached) -> Path:
    argv = server.unit_argv()
    assert "-e" in argv, f"the unit's ExecStart gives memcached no memory file (-e): {argv}"
    return Path(argv[argv.index("-e") + 1])


def test_the_unit_keeps_its_memory_file_where_a_stop_keeps_it():
    """A memory file under the unit's private /tmp, or outside what the unit may write and keeps
    across stops, would be lost or refused on every restart."""
    settings = service_settings()
    argv = shlex.split(settings["ExecStart"][0])
    assert "-e" in argv, f"no -e in ExecStart: {argv}"
    memory = argv[argv.index("-e") + 1]
    assert memory.startswith(RUNTIME + "/"), memory
    assert settings["RuntimeDirectory"] == ["memsession"]
    assert settings["RuntimeDirectoryPreserve"] == ["yes"], "a stop would delete the memory file"
    assert RUNTIME in settings["ReadWritePaths"][0].split()


def test_a_restart_as_the_unit_does_it_keeps_every_session(another_httpd, unit_memcached):
    node = another_httpd(memcached_sock=Path(unit_memcached.sock_path))
    users = ["alice", "bob"]
    cookies = [(users[i % 2], login_at(node, users[i % 2])) for i in range(SESSIONS)]
    assert [user_of(node.client, cookie) for _, cookie in cookies] == [u for u, _ in cookies]

    code = unit_memcached.stop_as_unit()
    assert code == 0, f"memcached exited {code} on the unit's stop signal"
    memory = memory_file(unit_memcached)
    assert memory.exists() and Path(f"{memory}.meta").exists(), \
        f"no saved cache after the stop: {sorted(os.listdir(unit_memcached.runtime))}"
    assert memory.stat().st_mode & 0o077 == 0, \
        f"the memory file (every session record) is open to others: {oct(memory.stat().st_mode)}"
    unit_memcached.start_as_unit()

    lost, expired = [], []
    for user, cookie in cookies:
        r = node.client.get("/app/env.cgi", cookie=cookie)
        if r.status != 200 or r.env()["REMOTE_USER"] != user:
            lost.append((user, r.status))
        if r.cookie("memsession") is not None:
            expired.append(r.describe())
    assert not lost, f"{len(lost)} of {SESSIONS} sessions lost over a warm restart: {lost}"
    assert not expired, f"cookies rewritten after a warm restart: {expired[:2]}"


def test_a_stop_with_sigterm_keeps_nothing(another_httpd, unit_memcached):
    """The control for the test above: what the unit's KillSignal saves is what a plain SIGTERM
    (Debian's own memcached unit) loses — every session."""
    node = another_httpd(memcached_sock=Path(unit_memcached.sock_path))
    cookies = [login_at(node, "alice") for _ in range(3)]
    unit_memcached.settings["KillSignal"] = ["SIGTERM"]
    unit_memcached.stop_as_unit()
    unit_memcached.start_as_unit()
    assert [user_of(node.client, cookie) for cookie in cookies] == [None] * 3


def test_a_farm_restarted_server_by_server_keeps_every_session(another_httpd, unit_memcacheds):
    """The planned maintenance of a farm: each of three servers restarted in turn as the unit
    does it, with live sessions spread over the three. Goal (issue 16): 0 sessions lost, 0
    cookies expired, after each restart."""
    servers = unit_memcacheds(3)
    node = another_httpd(memcached_sock=" ".join(f"unix:{s.sock_path}" for s in servers))
    users = ["alice", "bob"]
    cookies = [(users[i % 2], login_at(node, users[i % 2])) for i in range(30)]
    held = Counter(server_for_key(record_key(cookie), 3) for _, cookie in cookies)
    assert len(held) == 3, f"30 sessions not spread over the three servers: {held}"
    for index, server in enumerate(servers):
        assert server.stop_as_unit() == 0
        server.start_as_unit()
        lost = [(user, r.status) for user, cookie in cookies
                if (r := node.client.get("/app/env.cgi", cookie=cookie)).status != 200
                or r.env()["REMOTE_USER"] != user]
        rewritten = [c for _, c in cookies
                     if node.client.get("/app/index.html", cookie=c).cookie("memsession")]
        assert not lost, f"server {index} restarted: {len(lost)} of 30 sessions lost: {lost}"
        assert not rewritten, f"server {index} restarted: {len(rewritten)} cookies rewritten"
    print(f"\nfarm of 3 restarted in turn: records per server {dict(held)}, 0 lost, 0 rewritten")
