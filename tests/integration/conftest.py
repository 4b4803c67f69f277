"""Integration harness for mod_auth_memsession: one ServerRoot, one memcached, one httpd per run.

    python3 -m pytest -q tests/integration            # against build/mod_auth_memsession.so
    MEMSESSION_MPM=prefork python3 -m pytest -q tests/integration
    MEMSESSION_HARNESS_ONLY=1 python3 -m pytest -q tests/integration   # the harness alone

Nothing is skipped: a missing component fails the run (under CI=true and without it).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import components as comp  # noqa: E402
from harness import kdc  # noqa: E402
from harness import ldap  # noqa: E402
from harness import site  # noqa: E402
from harness.backend import EchoBackend  # noqa: E402
from harness.derivation import record_key  # noqa: E402
from harness.http import Client, basic  # noqa: E402
from harness.httpd import Httpd, prepare_root, restart  # noqa: E402
from harness.memcached import MemcachedClient, MemcachedServer  # noqa: E402

# What the module writes when its panic boundary catches a panic: in a request hook or handler
# (src/apache/hooks.rs: request_entry), in directive handling (config_entries.rs) and in
# post_config (lifecycle.rs). The worker lives on, so no signal line follows: only these tell.
MODULE_PANIC = "internal error (panic) in mod_auth_memsession"
MODULE_PANIC_PATTERNS = (
    MODULE_PANIC,
    "mod_auth_memsession: panic in ",
)

# Lines that mean a crash or a panic, whatever the test was about.
CRASH_PATTERNS = MODULE_PANIC_PATTERNS + (
    # Rust's own panic message, if a panic ever got past the module's hook (it writes to
    # stderr, which httpd sends to the error log)
    "panicked",
    "AH00051",
    "AH00052",
    "exit signal",
    "Segmentation fault",
    "[core:emerg]",
    "[core:alert]",
    "[auth_memsession:emerg]",
    "[auth_memsession:alert]",
    "[auth_memsession:crit]",
)

_STATE: dict = {"components": None, "last_test": None, "late_crash_lines": []}


def crash_lines(lines: list[str]) -> list[str]:
    return [line for line in lines if any(p in line for p in CRASH_PATTERNS)]


# -- run-level checks --------------------------------------------------------------------------

def pytest_sessionstart(session):
    found, problems = comp.resolve()
    if found is not None and not found.harness_only:
        problems += kdc.missing(found.modules_dir)
        problems += ldap.missing(found.modules_dir)
    if problems:
        ci = " (CI=true: a missing component fails the run)" if comp.truthy(os.environ.get("CI")) else ""
        msg = "mod_auth_memsession integration tests cannot run" + ci + ":\n  - " + "\n  - ".join(problems)
        pytest.exit(msg, returncode=3)
    _STATE["components"] = found


def pytest_report_header(config):
    c = _STATE["components"]
    if c is None:
        return None
    mode = "HARNESS ONLY (no module loaded; module tests deselected)" if c.harness_only else f"module {c.module}"
    return [f"memsession: mpm={c.mpm}, {mode}"]


def pytest_collection_modifyitems(config, items):
    c = _STATE["components"]
    if c is None or not c.harness_only:
        return
    keep, drop = [], []
    for item in items:
        (drop if item.get_closest_marker("module") else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    c = _STATE["components"]
    if c is not None and c.harness_only:
        terminalreporter.write_line(
            "MEMSESSION_HARNESS_ONLY=1: httpd ran WITHOUT mod_auth_memsession; module tests were "
            "deselected, this run proves only the harness.", yellow=True)
    late = _STATE["late_crash_lines"]
    if late:
        terminalreporter.section("httpd crash lines logged after the last test", red=True)
        terminalreporter.write_line(f"(probably caused by {_STATE['last_test']})")
        for line in late:
            terminalreporter.write_line(line)


def pytest_sessionfinish(session, exitstatus):
    if _STATE["late_crash_lines"] and session.exitstatus == 0:
        session.exitstatus = 1


# -- processes ---------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def components() -> comp.Components:
    return _STATE["components"]


@pytest.fixture(scope="session")
def paths(components) -> site.Paths:
    root = Path(tempfile.mkdtemp(prefix="memsession-it-"))
    p = prepare_root(components, root)
    yield p
    if comp.truthy(os.environ.get("MEMSESSION_KEEP_TMP")):
        print(f"\nmemsession: ServerRoot kept at {root}")
    else:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def memcached(components, paths) -> MemcachedServer:
    server = MemcachedServer(components.memcached, paths.root)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def backend() -> EchoBackend:
    echo = EchoBackend()
    echo.start()
    try:
        yield echo
    finally:
        echo.stop()


@pytest.fixture(scope="session")
def realm(components, paths) -> kdc.Realm:
    """The throwaway MIT realm (harness/kdc.py); httpd is started with its KRB5_CONFIG."""
    r = kdc.Realm(site.realm_dir(paths))
    site.write_kerberos_files(paths)
    try:
        r.start()
        yield r
    finally:
        r.stop()


@pytest.fixture(scope="session")
def httpd(components, paths, memcached, backend, realm) -> Httpd:
    server = Httpd(components, paths, backend.port, extra_env=realm.server_env())
    try:
        server.start()
        _STATE["log_offset"] = server.error_log.size()
        yield server
    finally:
        server.stop()
        # a child killed by a signal is reported by the parent later, possibly at shutdown
        late = crash_lines(server.error_log.since(_STATE.get("log_offset", 0)))
        _STATE["late_crash_lines"] = late


@pytest.fixture
def client(httpd) -> Client:
    return httpd.client


@pytest.fixture
def store(memcached) -> MemcachedClient:
    return memcached.client()


@pytest.fixture(autouse=True)
def error_log_guard(request, httpd):
    """Fail the test if httpd logged a crash or a panic while it ran (or its parent died)."""
    start = httpd.error_log.size()
    previous = _STATE["last_test"]
    _STATE["last_test"] = request.node.nodeid
    yield
    lines, _STATE["log_offset"] = httpd.error_log.read_from(start)
    if lines:
        request.node.add_report_section("teardown", "httpd error log during this test",
                                        "\n".join(lines[-200:]))
    if not httpd.alive():
        pytest.fail("the httpd parent process died during this test; error log:\n" + "\n".join(lines[-50:]))
    bad = crash_lines(lines)
    if request.node.get_closest_marker("crash_expected"):
        if not bad:
            pytest.fail("the error-log guard saw no crash line although this test caused one")
        return
    if bad:
        pytest.fail("httpd logged a crash/panic during this test (a child killed by a signal is "
                    f"reported up to a second late: the previous test was {previous}):\n"
                    + "\n".join(bad), pytrace=False)


# -- session helpers -----------------------------------------------------------------------

@pytest.fixture
def login(client):
    """login(user="alice", path="/login", headers=None, cookie=None, cookie_name="memsession")
    -> the new cookie value; asserts the 303 and the Set-Cookie."""

    def do(user: str = "alice", path: str = "/login", headers: dict | None = None,
           cookie: str | None = None, cookie_name: str = "memsession") -> str:
        h = {"Authorization": basic(user, site.USERS[user])}
        h.update(headers or {})
        r = client.get(path, headers=h, cookie=cookie, cookie_name=cookie_name)
        assert r.status == 303, f"login as {user} at {path} failed:\n{r.describe()}"
        c = r.cookie(cookie_name)
        assert c is not None and c.value, f"login at {path} set no {cookie_name} cookie:\n{r.describe()}"
        return c.value

    return do


@pytest.fixture
def whoami(client):
    """whoami(cookie, path="/app/env.cgi") -> (status, env or None)."""

    def do(cookie: str | None, path: str = "/app/env.cgi", cookie_name: str = "memsession"):
        r = client.get(path, cookie=cookie, cookie_name=cookie_name)
        return r.status, (r.env() if r.status == 200 else None)

    return do


@pytest.fixture
def login_with_record(login, whoami, store):
    """login_with_record(user) -> (cookie, store key of that login's record), the key derived
    from the cookie and checked to hold the record (a listing of memcached's keys can miss
    fresh items under load, so no before/after diff)."""

    def do(user: str = "alice"):
        cookie = login(user)
        assert whoami(cookie)[0] == 200
        key = record_key(cookie)
        assert store.get(key) is not None, f"no record at the derived key {key!r}"
        return cookie, key

    return do


# -- faults and second servers ---------------------------------------------------------------

class StoreFault:
    """Faults injected into the run's memcached: stop()/resume() (SIGSTOP/SIGCONT: alive but
    silent), kill()/start() (SIGKILL; start again on the same socket, empty)."""

    def __init__(self, memcached: MemcachedServer):
        self.memcached = memcached
        self.stopped = False
        self.restarted = False

    def stop(self) -> None:
        self.memcached.pause()
        self.stopped = True

    def resume(self) -> None:
        if self.stopped:
            self.memcached.resume()
            self.stopped = False

    def kill(self) -> None:
        self.resume()
        self.memcached.kill()
        self.restarted = True

    def start(self, memory_mb: int = 64) -> None:
        if self.memcached.proc is not None:
            self.memcached.stop()
        self.memcached.start(memory_mb=memory_mb)
        self.restarted = memory_mb != 64


@pytest.fixture
def store_fault(memcached, httpd):
    """A StoreFault; teardown resumes memcached (restarts it as normal if the test killed or
    resized it) and gracefully restarts httpd, so the next test starts with fresh children
    whose circuit breakers are closed whatever happened here."""
    fault = StoreFault(memcached)
    try:
        yield fault
    finally:
        fault.resume()
        if fault.restarted or memcached.proc is None or memcached.proc.poll() is not None:
            fault.start()
        restart(httpd, signal.SIGUSR1)


@pytest.fixture
def another_httpd(components, memcached, backend):
    """another_httpd(module=None, key_prefix="memsession:", extra_conf="", expect_panics=False,
    extra_env=None, memcached_sock=None) -> a started Httpd in its own ServerRoot (same
    memcached unless memcached_sock names another, same backend); stopped and checked for crash
    lines at teardown. For another node or deployment (another key prefix), locations or
    server directives the main server lacks (extra_conf), or a test-only module build.
    expect_panics: the test provokes module panics on purpose; their lines are then required,
    and any other crash line still fails the test. extra_env: e.g. realm.server_env() for
    password logins through the test realm."""
    started: list[Httpd] = []
    roots: list[Path] = []

    def start(module: Path | None = None, key_prefix: str = "memsession:",
              extra_conf: str = "", expect_panics: bool = False,
              extra_env: dict[str, str] | None = None,
              memcached_sock: Path | None = None) -> Httpd:
        c = components if module is None else dataclasses.replace(components, module=module)
        root = Path(tempfile.mkdtemp(prefix="memsession-it2-"))
        roots.append(root)
        server = Httpd(c, prepare_root(c, root), backend.port, key_prefix=key_prefix,
                       memcached_sock=memcached_sock or Path(memcached.sock_path),
                       extra_conf=extra_conf, kerberos=False, extra_env=extra_env)
        server.start()
        started.append((server, expect_panics))
        return server

    try:
        yield start
    finally:
        bad = []
        for server, expect_panics in started:
            server.stop()
            lines = crash_lines(server.error_log.since(0))
            if expect_panics:
                # The test provoked panics: the guard must have seen them, and nothing else.
                panics = [line for line in lines if MODULE_PANIC in line]
                if not panics:
                    bad.append("(the guard saw no panic line although this test provoked one)")
                lines = [line for line in lines if line not in panics]
            bad += lines
        for root in roots:
            shutil.rmtree(root, ignore_errors=True)
        if bad:
            pytest.fail("a second httpd logged crash lines:\n" + "\n".join(bad), pytrace=False)


@pytest.fixture
def no_id_in_error_log(httpd):
    """watch(*ids); at teardown no error-log line written during the test contains one."""
    start = httpd.error_log.size()
    ids: list[str] = []
    yield lambda *secrets_: ids.extend(secrets_)
    leaked = [line for line in httpd.error_log.since(start) if any(i in line for i in ids)]
    assert not leaked, f"a session id reached the error log: {leaked}"
