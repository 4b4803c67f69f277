"""The harness proves itself: memcached, httpd, the CGI, Basic auth, the log and store readers.

These run in every mode, including MEMSESSION_HARNESS_ONLY=1 (httpd without our module).
"""

import os
import stat
import subprocess
import uuid

import pytest

from conftest import crash_lines
from harness.http import basic, parse_env, parse_set_cookie
from harness.httpd import READY_TEXT, access_log_line


def test_memcached_listens_on_a_socket_everyone_may_use(memcached, store):
    mode = stat.S_IMODE(os.stat(memcached.sock_path).st_mode)
    assert mode == 0o777
    assert store.version().startswith("1.")


def test_store_reader_lists_reads_and_deletes_keys(store):
    key = b"harness-selftest:" + uuid.uuid4().hex.encode() + b" \x01"
    store.set(key, b"value\r\nwith crlf")
    try:
        assert key in store.keys()
        assert store.get(key) == b"value\r\nwith crlf"
    finally:
        assert store.delete(key)
    assert key not in store.keys()
    assert store.get(key) is None


def test_httpd_serves_a_static_file(client):
    r = client.get("/harness/ready.txt")
    assert r.status == 200
    assert r.text == READY_TEXT


def test_httpd_runs_the_requested_mpm(httpd, components):
    r = subprocess.run([components.apache2, "-t", "-D", "DUMP_MODULES", "-d", str(httpd.p.root),
                        "-f", str(httpd.p.conf)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"mpm_{components.mpm}_module" in r.stdout
    cgi = "cgi_module" if components.mpm == "prefork" else "cgid_module"
    assert f" {cgi} " in r.stdout


def test_cgi_prints_its_environment(client):
    r = client.get("/harness/open/env.cgi?q=1", headers={"X-Probe": "seen"})
    assert r.status == 200, r.describe()
    assert r.header("Content-Type").startswith("text/plain")
    env = r.env()
    assert env["REQUEST_METHOD"] == "GET"
    assert env["QUERY_STRING"] == "q=1"
    assert env["HTTP_X_PROBE"] == "seen"
    assert "REMOTE_USER" not in env


def test_basic_auth_lets_alice_and_bob_in(client):
    for user, password in (("alice", "alicepw"), ("bob", "bobpw")):
        r = client.get("/harness/basic/env.cgi", headers={"Authorization": basic(user, password)})
        env = r.env()
        assert env["REMOTE_USER"] == user
        assert env["AUTH_TYPE"] == "Basic"


def test_basic_auth_refuses_a_wrong_password_with_a_challenge(client):
    r = client.get("/harness/basic/env.cgi", headers={"Authorization": basic("alice", "nope")})
    assert r.status == 401
    assert r.header("WWW-Authenticate").startswith("Basic")
    r = client.get("/harness/basic/env.cgi")
    assert r.status == 401


def test_access_log_shows_user_authorization_and_cookie(httpd, client):
    probe = uuid.uuid4().hex
    r = client.get(f"/harness/basic/env.cgi?probe={probe}",
                   headers={"Authorization": basic("alice", "alicepw")}, cookie="c-" + probe)
    assert r.status == 200
    line = access_log_line(httpd.p, probe)
    assert " alice " in line
    assert f'"{basic("alice", "alicepw")}"' in line
    assert f'"memsession=c-{probe}"' in line


def test_raw_requests_reach_httpd(client):
    r = client.raw(b"GET /harness/ready.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    assert r.status == 200
    assert r.body == READY_TEXT.encode()


def test_configtest_accepts_the_core_config_and_reports_unknown_directives(httpd):
    rc, out = httpd.configtest("")
    assert rc == 0, out
    rc, out = httpd.configtest("NoSuchDirectiveAtAll on")
    assert rc != 0
    assert "NoSuchDirectiveAtAll" in out


def test_set_cookie_parser_reads_every_attribute():
    c = parse_set_cookie("memsession=abc-_9; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0")
    assert (c.name, c.value) == ("memsession", "abc-_9")
    assert c.get("path") == "/" and c.get("samesite") == "Lax" and c.get("max-age") == "0"
    assert c.has("secure") and c.has("httponly") and not c.has("domain")
    assert parse_set_cookie("memsession=; Max-Age=0").value == ""


def test_env_parser_keeps_multiline_values():
    env = parse_env("A=1\nB=two\nlines\nHTTP_X_Y=z\n")
    assert env == {"A": "1", "B": "two\nlines", "HTTP_X_Y": "z"}


# What the module wrote when test_faults_panic.py made its fault-injection build panic
# (src/apache/handlers.rs), copied from that test's error log; the live lines are checked by
# that test too.
REAL_PANIC_LINE = (
    "[Mon Nov 30 05:35:46.204886 2026] [auth_memsession:error] [pid 9791:tid 9794] "
    "[client 127.0.0.1:47456] internal error (panic) in mod_auth_memsession: "
    "memsession-test-panic at /panic (fault injection) at src/apache/handlers.rs:41")


def test_crash_detector_knows_the_crash_lines():
    lines = [
        "[Mon Jan 01 00:00:00 2024] [core:notice] [pid 1] AH00052: child pid 7 exit signal Segmentation fault (11)",
        REAL_PANIC_LINE,
        "[auth_memsession:error] [pid 5] mod_auth_memsession: panic in post_config: x at src/a.rs:1",
        "[core:warn] AH00045: child process 3 still did not exit",
        "[auth_memsession:debug] session rejected: malformed cookie",
        "[auth_memsession:error] [client 127.0.0.1:1] login form: no KDC of realm X answered",
    ]
    assert crash_lines(lines) == lines[:3]


def test_proxied_backend_sees_raw_request_headers(client):
    from harness.http import backend_headers
    r = client.get("/harness/proxied/x?y=1", headers=[("X_Odd_Name", "u"), ("x-lower", "l")])
    hdrs = backend_headers(r)
    assert ("X_Odd_Name", "u") in hdrs
    assert ("x-lower", "l") in hdrs
    assert r.json()["path"] == "/harness/proxied/x?y=1"


def test_graceful_restart_replaces_the_children(httpd, client):
    import signal
    from harness.httpd import restart
    restart(httpd, signal.SIGUSR1)
    assert client.get("/harness/ready.txt").status == 200


@pytest.mark.crash_expected
def test_error_log_guard_sees_a_child_killed_by_a_signal(httpd):
    """Proves the guard can fire: SIGSEGV one httpd child (the newest: the cgid daemon is forked
    before the MPM's children), wait for the parent's AH00052 line."""
    import signal
    from harness import procs
    from harness.httpd import child_pids
    offset = httpd.error_log.size()
    victim = max(child_pids(httpd.proc.pid))
    os.kill(victim, signal.SIGSEGV)
    procs.wait_until("the parent to log the crash",
                     lambda: [ln for ln in httpd.error_log.since(offset) if "AH00052" in ln], 10)


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_cgi_answers_requests_with_a_body(client, method):
    r = client.request(method, "/harness/open/env.cgi", body=b"a=1" * 1000,
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    env = r.env()
    assert env["REQUEST_METHOD"] == method
    assert env["CONTENT_LENGTH"] == "3000"
