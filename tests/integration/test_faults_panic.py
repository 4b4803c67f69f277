"""A bug in the module (a Rust panic) is a logged 500, and the child lives on (STYLE.md
practice 3): the panic is caught at the boundary, reported through the module's logger with its
location, and never crosses into httpd (which would abort the process and every request in
flight on it).

The panic is provoked with `SetHandler memsession-test-panic`, which exists only in a module
built with the `fault-injection` cargo feature: `make test-module` builds it as
build/test/mod_auth_memsession.so (MEMSESSION_TEST_MODULE overrides the path). It runs in a
second httpd of its own, next to the main one.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from conftest import crash_lines
from harness import components as comp
from harness import load, procs

pytestmark = pytest.mark.module

PANIC_CONF = """
<Location /panic>
    Require all granted
    SetHandler memsession-test-panic
</Location>
"""


@pytest.fixture
def panicking_httpd(another_httpd):
    module = Path(os.environ.get("MEMSESSION_TEST_MODULE",
                                 comp.REPO / "build" / "test" / "mod_auth_memsession.so"))
    if not module.is_file():
        pytest.fail(f"the fault-injection module {module} does not exist: build it with "
                    "`make test-module` (make integration-test does)", pytrace=False)
    return another_httpd(module=module, extra_conf=PANIC_CONF, expect_panics=True)


def pids_of(server, marker: str, count: int) -> list[int]:
    """The pid=%P of the access-log lines containing marker, once `count` are logged."""

    def lines():
        log = server.p.access_log
        text = log.read_text(errors="replace") if log.exists() else ""
        found = [line for line in text.splitlines() if marker in line]
        return found if len(found) >= count else None

    return [int(line.rsplit("pid=", 1)[1].split()[0])
            for line in procs.wait_until(f"{count} access log lines", lines, 5)]


def test_a_panic_is_a_logged_500_and_the_child_lives_on(panicking_httpd):
    """httpd closes the connection after any 500 (ap_status_drops_connection), so "the same
    child" is shown by pid: each child that answered a panic with a 500 answers later requests,
    and is still the same process."""
    server = panicking_httpd
    offset = server.error_log.size()
    panic_marker = f"panic{os.getpid()}x{id(server)}"
    for i in range(4):
        r = server.client.get(f"/panic?{panic_marker}-{i}")
        assert r.status == 500, r.describe()
        assert "memsession-test-panic" not in r.text, "the panic text reached the client"
    panicked = set(pids_of(server, panic_marker, 4))
    # Concurrent rounds: one request after another can all land on the same child.
    load.served_by_every_worker(server.client, server.p.access_log, panicked,
                                "/harness/ready.txt", cookie=None)
    assert panicked <= server.children(), f"a child that panicked is gone: {panicked}"

    log = server.error_log.since(offset)
    panics = [line for line in log if "internal error (panic) in mod_auth_memsession:" in line]
    assert len(panics) == 4, "\n".join(log)
    for line in panics:
        assert "[auth_memsession:" in line, line  # through the module's logger
        assert "memsession-test-panic" in line, line
        assert re.search(r" at src/[\w/]+\.rs:\d+", line), f"no location in {line}"
    crashes = [line for line in log if "exit signal" in line or "AH00052" in line
               or "AH00051" in line]
    assert not crashes, crashes
    # The error-log guard every test runs under (conftest.crash_lines) knows these real lines,
    # and nothing else in this log is a crash.
    assert crash_lines(log) == panics, crash_lines(log)
    print(f"\npanic: 4 panics in children {sorted(panicked)}, which served on; log line: "
          f"{panics[0].split('] ', 3)[-1]}")

    # ... and the server as a whole still authenticates.
    r = server.client.get("/login", headers={"Authorization": "Basic YWxpY2U6YWxpY2Vwdw=="})
    assert r.status == 303, r.describe()
    assert server.client.get("/app/index.html", cookie=r.cookie("memsession").value).status == 200
