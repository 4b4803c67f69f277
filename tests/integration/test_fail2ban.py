"""The shipped fail2ban filter (apache-conf/fail2ban/) against the error log a real httpd wrote:
every refused login (401 and 429) of memsession-login-form is matched with its client address,
and nothing else is (successful logins, the module's debug lines, a store outage)."""

from __future__ import annotations

import collections
import configparser
import shutil
import subprocess
import tempfile
import urllib.parse
import uuid
from pathlib import Path

import pytest

from harness.http import Client

pytestmark = pytest.mark.module

SHIPPED = Path(__file__).resolve().parents[2] / "apache-conf" / "fail2ban"
FILTER = SHIPPED / "filter.d" / "apache-memsession.conf"
JAIL = SHIPPED / "jail.d" / "apache-memsession.conf"
DEBIAN_FILTERS = Path("/etc/fail2ban/filter.d")


def fail2ban_regex() -> str:
    found = shutil.which("fail2ban-regex")
    if not found:
        pytest.fail("fail2ban-regex not found (install the Debian package 'fail2ban'; "
                    "build-aux/install-deps.sh does)")
    return found


def attempt(port: int, user: str, password: str, source: str):
    client = Client("127.0.0.1", port, source=source)
    return client.post("/f2b-login", body=urllib.parse.urlencode({"user": user, "password": password}),
                       headers={"Content-Type": "application/x-www-form-urlencoded",
                                "Origin": client.origin})


def matched_addresses(log_text: str) -> list[str]:
    """Runs fail2ban-regex with the shipped filter and Debian's apache-common.conf, which it
    includes; returns the address of every matched line, in order."""
    with tempfile.TemporaryDirectory(prefix="memsession-f2b-") as d:
        conf = Path(d) / "filter.d"
        conf.mkdir()
        for name in ("common.conf", "apache-common.conf"):
            shutil.copy(DEBIAN_FILTERS / name, conf / name)
        shutil.copy(FILTER, conf / FILTER.name)
        log = Path(d) / "error.log"
        log.write_text(log_text)
        r = subprocess.run([fail2ban_regex(), "-c", d, "-o", "ip", str(log), str(conf / FILTER.name)],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        return r.stdout.split()


def test_the_filter_bans_exactly_the_refused_logins_httpd_logged(another_httpd, paths):
    server = another_httpd(
        key_prefix=f"f2b-{uuid.uuid4().hex[:8]}:",
        extra_conf=("\n<Location /f2b-login>\n    SetHandler memsession-login-form\n"
                    f'    AuthUserFile "{paths.htpasswd}"\n    MemSessionCookieSecure Off\n'
                    "    MemSessionLoginLimitUser 2\n    MemSessionLoginLimitAddress Off\n"
                    "    MemSessionLoginLimitWindow 60s\n</Location>\n"))
    offset = server.error_log.size()
    expected = collections.Counter()
    # 127.0.0.2: one wrong password (401), then its share of alice's budget is spent (429 x2)
    assert attempt(server.port, "alice", "wrong", "127.0.0.2").status == 401
    for _ in range(2):
        assert attempt(server.port, "alice", "alicepw", "127.0.0.2").status == 429
    expected["127.0.0.2"] += 3
    # 127.0.0.4: unknown users, one with a name meant to confuse the filter
    for user in ('mallory', 'x" [client 10.9.9.9:1] "', "\u00e9v\u00eel\n[client 10.8.8.8:1]"):
        assert attempt(server.port, user, "guess", "127.0.0.4").status == 401
    expected["127.0.0.4"] += 3
    # 127.0.0.3: right passwords only: never matched
    for user, password in (("bob", "bobpw"), ("bob", "bobpw")):
        assert attempt(server.port, user, password, "127.0.0.3").status == 303
    lines = server.error_log.since(offset)
    assert any("127.0.0.3" in line for line in lines), "the successful logins were logged too"
    got = collections.Counter(matched_addresses("\n".join(lines) + "\n"))
    assert got == expected, f"matched {dict(got)}, expected {dict(expected)}:\n" + "\n".join(lines)


def test_a_store_outage_is_not_the_clients_fault():
    line = ("[Mon Nov 30 06:20:12.311747 2026] [auth_memsession:error] [pid 1:tid 2] "
            "[client 192.0.2.7:35602] memsession-login-form: login refused for user \"a\": the "
            "session store cannot count failed logins (timeout); no password was checked\n")
    assert matched_addresses(line) == []


def test_the_jail_names_the_filter_and_reads_apaches_error_log():
    jail = configparser.ConfigParser(interpolation=None)
    jail.read(JAIL)
    section = jail["apache-memsession"]
    assert section["filter"] == FILTER.stem
    assert section["logpath"] == "%(apache_error_log)s"
    assert section.getboolean("enabled")
    assert int(section["maxretry"]) > 0
