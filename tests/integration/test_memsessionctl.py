"""memsessionctl against the live harness: revocation seen by httpd at the next request,
session-info without the id, check against a stopped memcached, exit codes and --json; and
the Apache configuration resolved as httpd would (virtual hosts, <IfDefine>, <IfModule>),
each case either acting on the right store (its epoch keys, read back from memcached) or
refused with a clear message."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest

from harness import ctl
from harness.derivation import user_epoch_key
from harness.memcached import MemcachedServer

pytestmark = pytest.mark.module

LOAD = "LoadModule auth_memsession_module /usr/lib/apache2/modules/mod_auth_memsession.so\n"


def only_the_store(stdout: str) -> bool:
    """Whether stdout says which store the command used, and nothing else."""
    return [line.split(": ")[0] for line in stdout.splitlines()] == [
        "servers", "prefix", "source"]


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
    out = json.loads(r.stdout)
    store = out.pop("store")
    assert isinstance(out.pop("generation"), int)
    assert out == {"command": "revoke-all", "ok": True, "exit": 0, "prefix": "memsession:",
                   "reached": 1, "missed": []}
    assert store["prefix"] == "memsession:" and store["servers"][0].startswith("unix:/")
    assert store["source"] == {"servers": "--servers", "prefix": "--prefix",
                               "secret": f"--secret-file ({ctl.secret_file()})"}
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
    assert len(bad.stderr.splitlines()) == 1, bad.describe()
    assert only_the_store(bad.stdout), bad.describe()


def test_check_and_stats_on_a_healthy_store(memsessionctl, paths):
    r = memsessionctl("check")
    assert r.code in (0, 1), r.describe()
    header, line = r.stdout.strip().rsplit("\n", 1)
    assert f"servers: unix:{paths.memcached_sock}\nprefix: memsession:\n" in header, r.describe()
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
                                           "IncludeOptional mods-enabled/*.load\n"
                                           "IncludeOptional mods-enabled/*.conf\n")
        (root / "mods-enabled" / "auth_memsession.load").write_text(LOAD)
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
        conf = root / "mods-enabled" / "auth_memsession.conf"
        assert data["store"]["source"] == {"servers": f"{conf}:2", "prefix": "default",
                                           "secret": f"{conf}:3 ({paths.secret_file})"}

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
    assert only_the_store(r.stdout), r.describe()
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


# -- the configuration as httpd resolves it -------------------------------------------------

def conf(tmp_path: Path, text: str, **others: str) -> str:
    """apache2.conf (and other files) in tmp_path; {sock} and {secret} are filled in."""
    for name, body in {"apache2.conf": text, **others}.items():
        (tmp_path / name).write_text(body)
    return str(tmp_path / "apache2.conf")


@pytest.fixture
def fill(paths):
    def do(text: str) -> str:
        return text.replace("{sock}", f"unix:{paths.memcached_sock}").replace(
            "{secret}", ctl.secret_file())
    return do


@pytest.fixture
def epochs(store):
    """epochs(user, *prefixes) -> {prefix: the user's epoch value in memcached or None}."""
    def do(user: str, *prefixes: str) -> dict:
        return {p: store.get(user_epoch_key(user, p)) for p in prefixes}
    return do


def changed(before: dict, after: dict) -> set:
    return {p for p in before if after[p] != before[p]}


def test_vhost_only_settings_act_on_the_vhosts_store(tmp_path, fill, epochs, login, whoami):
    """The issue's case: MemSessionServers and MemSessionKeyPrefix only inside <VirtualHost>.
    The vhost's store is the harness's (so httpd sees the revocation); the main server, which
    no Listen reaches, would be the shipped default socket and a decoy prefix."""
    path = conf(tmp_path, fill(
        LOAD + "Listen 80\nMemSessionSecretFile {secret}\nInclude site.conf\n"),
        **{"site.conf": fill("<VirtualHost *:80>\n    ServerName portal.example.com\n"
                             "    MemSessionServers {sock}\n"
                             "    MemSessionKeyPrefix memsession:\n</VirtualHost>\n")})
    cookie = login("alice")
    assert whoami(cookie)[0] == 200
    before = epochs("alice", "memsession:")
    r = ctl.run(["--config", path, "revoke-user", "alice"])
    assert r.code == 0, r.describe()
    assert changed(before, epochs("alice", "memsession:")) == {"memsession:"}
    assert whoami(cookie)[0] == 401, "httpd's own store was revoked"
    site = tmp_path / "site.conf"
    assert f"source: servers from {site}:3; prefix from {site}:4; " \
           f"secret from {tmp_path}/apache2.conf:3" in r.stdout, r.describe()
    assert "hosts: <VirtualHost *:80> at" in r.stdout and "portal.example.com" in r.stdout
    assert "/run/memsession/memcached.sock" not in r.stdout + r.stderr

    j = ctl.run(["--config", path, "--json", "check"])
    data = json.loads(j.stdout)
    assert data["store"]["servers"] == [fill("{sock}")], j.describe()
    assert data["store"]["source"]["servers"] == f"{site}:3"


def test_two_vhosts_with_different_prefixes(tmp_path, fill, epochs):
    path = conf(tmp_path, fill(
        LOAD + "Listen 443\nMemSessionServers {sock}\nMemSessionSecretFile {secret}\n"
        "<VirtualHost *:443>\n  ServerName a.example\n  MemSessionKeyPrefix ctl-a:\n"
        "</VirtualHost>\n"
        "<VirtualHost *:443>\n  ServerName b.example\n  ServerAlias *.b.example\n"
        "  MemSessionKeyPrefix ctl-b:\n</VirtualHost>\n"))
    prefixes = ("ctl-a:", "ctl-b:", "memsession:")

    before = epochs("carol", *prefixes)
    r = ctl.run(["--config", path, "revoke-user", "carol"])
    assert r.code == 0, r.describe()
    assert changed(before, epochs("carol", *prefixes)) == {"ctl-a:", "ctl-b:"}
    assert r.stdout.count("revoked every session of user carol") == 2, r.describe()
    assert "prefix: ctl-a:" in r.stdout and "prefix: ctl-b:" in r.stdout

    j = ctl.run(["--config", path, "--json", "revoke-user", "carol"])
    lines = [json.loads(line) for line in j.stdout.splitlines()]
    assert [(x["ok"], x["store"]["prefix"], x["store"]["hosts"][0].split("(")[1])
            for x in lines] == [(True, "ctl-a:", "a.example)"),
                                (True, "ctl-b:", "b.example *.b.example)")], j.describe()

    before = epochs("carol", *prefixes)
    b = ctl.run(["--config", path, "--vhost", "www.b.example", "revoke-user", "carol"])
    assert b.code == 0, b.describe()
    assert changed(before, epochs("carol", *prefixes)) == {"ctl-b:"}

    info = ctl.run(["--config", path, "session-info"], stdin="x" * 43)
    assert info.code == 64, info.describe()
    assert "2 session stores" in info.stderr and "--vhost" in info.stderr
    unknown = ctl.run(["--config", path, "--vhost", "c.example", "revoke-all"])
    assert unknown.code == 64 and "a.example, b.example, *.b.example" in unknown.stderr, \
        unknown.describe()


@pytest.mark.parametrize("flags, acted", [([], "ctl-live:"),
                                          (["--define", "STAGING"], "ctl-staging:")])
def test_ifdefine_alternatives(tmp_path, fill, epochs, flags, acted):
    path = conf(tmp_path, fill(
        LOAD + "MemSessionServers {sock}\nMemSessionSecretFile {secret}\n"
        "<IfDefine STAGING>\n  MemSessionKeyPrefix ctl-staging:\n</IfDefine>\n"
        "<IfDefine !STAGING>\n  MemSessionKeyPrefix ctl-live:\n</IfDefine>\n"))
    before = epochs("dave", "ctl-live:", "ctl-staging:")
    r = ctl.run(["--config", path, *flags, "revoke-user", "dave"])
    assert r.code == 0, r.describe()
    assert changed(before, epochs("dave", "ctl-live:", "ctl-staging:")) == {acted}
    assert f"prefix: {acted}\n" in r.stdout, r.describe()


@pytest.mark.parametrize("load, acted", [
    ("LoadModule ssl_module /usr/lib/apache2/modules/mod_ssl.so\n", "ctl-tls:"),
    ("", "ctl-plain:")])
def test_ifmodule_of_a_loaded_and_a_missing_module(tmp_path, fill, epochs, load, acted):
    path = conf(tmp_path, fill(
        LOAD + load + "MemSessionServers {sock}\nMemSessionSecretFile {secret}\n"
        "<IfModule mod_ssl.c>\n  MemSessionKeyPrefix ctl-tls:\n</IfModule>\n"
        "<IfModule !ssl_module>\n  MemSessionKeyPrefix ctl-plain:\n</IfModule>\n"))
    before = epochs("erin", "ctl-tls:", "ctl-plain:")
    r = ctl.run(["--config", path, "revoke-user", "erin"])
    assert r.code == 0, r.describe()
    assert changed(before, epochs("erin", "ctl-tls:", "ctl-plain:")) == {acted}


@pytest.mark.parametrize("section, reason", [
    ("<IfVersion >= 2.4.60>\n  MemSessionKeyPrefix ctl-new:\n</IfVersion>", "httpd's version"),
    ("<Macro Site $p>\n  MemSessionKeyPrefix $p\n</Macro>", "mod_macro"),
    ("<IfModule mod_php.c>\n  MemSessionKeyPrefix ctl-php:\n</IfModule>",
     "source file name of php_module is not known"),
])
def test_what_cannot_be_decided_is_refused(tmp_path, fill, epochs, section, reason):
    path = conf(tmp_path, fill(
        LOAD + "LoadModule php_module /usr/lib/apache2/modules/libphp8.2.so\n"
        "MemSessionServers {sock}\nMemSessionSecretFile {secret}\n" + section + "\n"))
    prefixes = ("memsession:", "ctl-new:", "ctl-php:")
    before = epochs("frank", *prefixes)
    for args in (["revoke-user", "frank"], ["--json", "revoke-user", "frank"]):
        r = ctl.run(["--config", path, *args])
        assert r.code == 78, r.describe()
        message = json.loads(r.stdout)["error"] if "--json" in args else r.stderr
        assert f"{path}:5: <" in message and reason in message, r.describe()
        assert "MemSessionKeyPrefix at" in message and "--servers" in message
    assert changed(before, epochs("frank", *prefixes)) == set(), "nothing was written"


def test_no_configuration_is_exit_78_not_the_defaults(tmp_path, fill):
    # the module's directives inside <IfModule> of a module that is not loaded: none apply
    path = conf(tmp_path, fill(
        "<IfModule auth_memsession_module>\n  MemSessionServers {sock}\n"
        "  MemSessionSecretFile {secret}\n</IfModule>\n"))
    for command in (["revoke-all"], ["check"], ["revoke-user", "alice"]):
        r = ctl.run(["--config", path, *command])
        assert r.code == 78, r.describe()
        assert "no MemSession server directive" in r.stderr and "--servers" in r.stderr
        assert r.stdout == ""


# -- where a farm keeps a session and a user's epochs ---------------------------------------

from harness.derivation import record_key, server_for_key  # noqa: E402
from test_farm import farm_httpd, login_at, second_memcached  # noqa: E402,F401


def test_session_info_and_locate_name_the_servers_of_a_farm(another_httpd, memcached,
                                                            second_memcached):
    """session-info names the server a session's record is on (README: its home server, the
    jump hash of its store key, recomputed here independently); `locate USER` reports each
    server's copy of the user's and the global epoch, and a server without them."""
    prefix = f"locate{__import__('os').getpid()}:"
    farm = farm_httpd(another_httpd, second_memcached, prefix)
    socks = [memcached.sock_path, second_memcached.sock_path]
    run = lambda *args, stdin=None: ctl.run(  # noqa: E731
        ["--servers", ",".join(f"unix:{s}" for s in socks), "--prefix", prefix,
         "--secret-file", ctl.secret_file(), *args], stdin=stdin)
    homes = set()
    for _ in range(20):
        cookie = login_at(farm, "alice")
        home = server_for_key(record_key(cookie, prefix), 2)
        homes.add(home)
        r = run("session-info", stdin=cookie)
        assert r.code == 0, r.describe()
        assert f"server: unix:{socks[home]}\n" in r.stdout, r.describe()
        assert json.loads(run("--json", "session-info", stdin=cookie).stdout)["server"] \
            == f"unix:{socks[home]}"
        if homes == {0, 1}:
            break
    assert homes == {0, 1}, "20 logins, all on one server"

    r = run("locate", "alice")
    assert r.code == 0, r.describe()
    for sock in socks:
        assert f"unix:{sock}: user epoch present, global epoch at revocation generation" \
            in r.stdout, r.describe()
    nobody = json.loads(run("--json", "locate", "carol").stdout)
    assert [s["user_epoch"] for s in nobody["servers"]] == [False, False], nobody
    assert [s["global_epoch"] for s in nobody["servers"]] == [True, True], nobody

    assert second_memcached.client().command(b"flush_all") == b"OK"
    flushed = json.loads(run("--json", "locate", "alice").stdout)["servers"]
    assert [(s["user_epoch"], s["global_epoch"]) for s in flushed] == [(True, True),
                                                                       (False, False)]
    second_memcached.stop()
    r = run("locate", "alice")
    assert r.code == 2, r.describe()
    assert second_memcached.sock_path in r.stderr and f"unix:{socks[0]}: user epoch" in r.stdout
