"""memsessionctl against the live harness: revocation seen by httpd at the next request,
session-info without the id, check against a stopped memcached, exit codes and --json."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest

from harness import ctl
from harness.memcached import MemcachedServer

pytestmark = pytest.mark.module


@pytest.fixture
def memsessionctl(paths, memcached):
    return ctl.for_socket(paths.memcached_sock)


def test_revoke_user_ends_that_users_sessions_only(memsessionctl, login, whoami):
    alice1, alice2, bob = login("alice"), login("alice"), login("bob")
    for cookie in (alice1, alice2, bob):
        assert whoami(cookie)[0] == 200
    r = memsessionctl("revoke-user", "alice")
    assert r.code == 0, r.describe()
    assert "alice" in r.stdout and r.stderr == ""
    assert whoami(alice1)[0] == 401
    assert whoami(alice2)[0] == 401
    status, env = whoami(bob)
    assert status == 200 and env["REMOTE_USER"] == "bob"
    fresh = login("alice")
    assert whoami(fresh)[0] == 200, "a login after the revocation works"


def test_revoke_all_ends_every_session(memsessionctl, login, whoami):
    alice, bob = login("alice"), login("bob")
    assert whoami(alice)[0] == 200 and whoami(bob)[0] == 200
    r = memsessionctl("--json", "revoke-all")
    assert r.code == 0, r.describe()
    assert json.loads(r.stdout) == {"command": "revoke-all", "ok": True, "exit": 0,
                                    "prefix": "memsession:"}
    assert whoami(alice)[0] == 401
    assert whoami(bob)[0] == 401
    assert whoami(login("bob"))[0] == 200


def test_session_info_shows_the_user_never_the_id(memsessionctl, login, whoami):
    cookie = login("alice")
    r = memsessionctl("session-info", stdin=cookie + "\n")
    assert r.code == 0, r.describe()
    assert cookie not in r.stdout + r.stderr
    fields = dict(line.split(": ", 1) for line in r.stdout.splitlines())
    assert fields["user"] == "alice"
    assert fields["validity"] == "valid"
    assert fields["auth-type"] == "Basic"
    assert fields["delegated-credentials"] == "no"
    assert fields["created"].endswith("Z") and fields["expires"].endswith("Z")
    assert fields["session"] and fields["session"] not in cookie

    j = memsessionctl("--json", "session-info", stdin=f"Cookie: other=1; memsession={cookie}")
    assert j.code == 0, j.describe()
    info = json.loads(j.stdout)
    assert info["user"] == "alice" and info["validity"] == "valid"
    assert info["delegated_credentials"] is False
    assert cookie not in j.stdout

    assert memsessionctl("revoke-user", "alice").code == 0
    revoked = memsessionctl("session-info", stdin=cookie)
    assert revoked.code == 1, revoked.describe()
    assert "validity: revoked-user" in revoked.stdout
    assert "user: alice" in revoked.stdout
    assert whoami(cookie)[0] == 401


def test_session_info_unknown_and_bad_input(memsessionctl, client, login):
    cookie = login("bob")
    assert client.post("/logout", cookie=cookie,
                       headers={"Origin": client.origin}).status == 303
    gone = memsessionctl("session-info", stdin=cookie)
    assert gone.code == 1, gone.describe()
    assert "validity: unknown" in gone.stdout and cookie not in gone.stdout
    bad = memsessionctl("session-info", stdin="not-a-cookie")
    assert bad.code == 65, bad.describe()
    assert len(bad.stderr.splitlines()) == 1 and bad.stdout == ""


def test_check_and_stats_on_a_healthy_store(memsessionctl, paths):
    r = memsessionctl("check")
    assert r.code in (0, 1), r.describe()
    line = r.stdout.strip()
    assert line.startswith(f"unix:{paths.memcached_sock}: "), r.describe()
    assert "memcached 1." in line and "evictions" in line
    j = memsessionctl("--json", "check")
    data = json.loads(j.stdout)
    assert data["command"] == "check" and data["servers"][0]["up"] is True
    assert isinstance(data["servers"][0]["curr_items"], int)
    assert j.code == (1 if data["servers"][0]["evictions"] else 0)

    s = memsessionctl("stats")
    assert s.code == 0, s.describe()
    assert "curr_items=" in s.stdout and "global revocation epoch" in s.stdout
    sj = json.loads(memsessionctl("--json", "stats").stdout)
    assert sj["sessions"]["count"] is None and "note" in sj["sessions"]


def test_check_reads_the_apache_config(components, paths, memcached):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "mods-enabled").mkdir()
        (root / "apache2.conf").write_text("ServerRoot " + str(root) + "\n"
                                           "IncludeOptional mods-enabled/*.conf\n")
        (root / "mods-enabled" / "auth_memsession.conf").write_text(
            "<IfModule auth_memsession_module>\n"
            f"    MemSessionServers unix:{paths.memcached_sock}\n"
            f"    MemSessionSecretFile {paths.secret_file}\n"
            "    MemSessionTimeout 300ms\n</IfModule>\n")
        r = ctl.run(["--config", str(root / "apache2.conf"), "--json", "check"])
        assert r.code in (0, 1), r.describe()
        data = json.loads(r.stdout)
        assert data["servers"][0]["server"] == f"unix:{paths.memcached_sock}"
        assert data["timeout_ms"] == 500, "the CLI waits at least its own default"
        assert data["source"] == str(root / "apache2.conf")

        (root / "mods-enabled" / "bad.conf").write_text("MemSessionTimeout soon\n")
        bad = ctl.run(["--config", str(root / "apache2.conf"), "check"])
        assert bad.code == 78, bad.describe()
        assert "bad.conf:1: MemSessionTimeout" in bad.stderr

        # without the secret it cannot name a single key: a configuration error, not defaults
        (root / "mods-enabled" / "bad.conf").unlink()
        conf = root / "mods-enabled" / "auth_memsession.conf"
        conf.write_text("\n".join(line for line in conf.read_text().splitlines()
                                  if "MemSessionSecretFile" not in line) + "\n")
        unkeyed = ctl.run(["--config", str(root / "apache2.conf"), "revoke-all"])
        assert unkeyed.code == 78, unkeyed.describe()
        assert "MemSessionSecretFile" in unkeyed.stderr, unkeyed.describe()


def test_check_against_a_stopped_memcached_fails_with_one_line(components, paths):
    root = Path(tempfile.mkdtemp(prefix="memsessionctl-stopped-", dir=paths.root))
    (root / "logs").mkdir()
    server = MemcachedServer(components.memcached, root)
    server.start()
    try:
        assert ctl.for_socket(server.sock_path)("check").code in (0, 1)
    finally:
        server.stop()
    r = ctl.for_socket(server.sock_path)("check")
    assert r.code == 2, r.describe()
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.describe()
    assert server.sock_path in lines[0]
    assert "memsessionctl: " in lines[0] and "connect" in lines[0], lines[0]
    assert r.stdout == ""
    for command in (["revoke-all"], ["revoke-user", "alice"], ["stats"]):
        other = ctl.for_socket(server.sock_path)(*command)
        assert other.code == 2, other.describe()
    j = ctl.for_socket(server.sock_path)("--json", "check")
    assert j.code == 2
    data = json.loads(j.stdout)
    assert data["status"] == "error" and data["servers"][0]["up"] is False
    assert server.sock_path in data["servers"][0]["error"]


def test_usage_errors_exit_64():
    for args in ([], ["frobnicate"], ["revoke-user"], ["--servers"], ["--bogus", "check"]):
        r = ctl.run(args)
        assert r.code == 64, r.describe()
        assert r.stderr.startswith("memsessionctl: ")
    assert ctl.run(["--help"]).code == 0
