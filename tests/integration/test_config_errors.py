"""Config-time errors name their directive: `apache2 -t` fails and says which directive is wrong.

Each bad snippet has a good twin that must pass, so a failure is the value's fault and nothing
else's."""

import os
import secrets
from pathlib import Path

import pytest

from harness.http import basic
from harness.site import USERS

pytestmark = pytest.mark.module

LOC = "<Location /x>\n    {}\n</Location>"

# (directive, bad snippet, good twin, whether the core config's server-scope directives stay)
CASES = {
    "unauthenticated": ("MemSessionUnauthenticated", LOC.format("MemSessionUnauthenticated sometimes"),
                        LOC.format("MemSessionUnauthenticated auto"), True),
    "timeout": ("MemSessionTimeout", "MemSessionServers unix:{sock}\nMemSessionTimeout soon",
                "MemSessionServers unix:{sock}\nMemSessionTimeout 250ms", False),
    "samesite": ("MemSessionCookieSameSite", LOC.format("MemSessionCookieSameSite Sideways"),
                 LOC.format("MemSessionCookieSameSite Strict"), True),
    "servers-no-arg": ("MemSessionServers", "MemSessionServers", "MemSessionServers unix:{sock}", False),
    "servers-empty-unix": ("MemSessionServers", "MemSessionServers unix:",
                           "MemSessionServers unix:{sock}", False),
    "inactivity-negative": ("MemSessionInactivityTimeout", LOC.format("MemSessionInactivityTimeout -1"),
                            LOC.format("MemSessionInactivityTimeout 0"), True),
    "replicas": ("MemSessionReplicas", "MemSessionReplicas 2", "MemSessionReplicas 1", True),
    "replicas-word": ("MemSessionReplicas", "MemSessionReplicas On", "MemSessionReplicas 0", True),
    # a store directive: server scope only (so never in .htaccess either)
    "replicas-in-location": ("MemSessionReplicas", LOC.format("MemSessionReplicas 1"),
                             "MemSessionReplicas 1", True),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_value_fails_configtest_naming_the_directive(httpd, case):
    directive, bad, good, server_directives = CASES[case]
    sock = httpd.p.memcached_sock
    rc, out = httpd.configtest(good.format(sock=sock), server_directives)
    assert rc == 0, f"the good twin must pass:\n{good}\n{out}"
    rc, out = httpd.configtest(bad.format(sock=sock), server_directives)
    assert rc != 0, f"apache2 -t accepted:\n{bad}\n{out}"
    assert directive in out, f"the error does not name {directive}:\n{out}"


def test_every_documented_value_passes_configtest(httpd):
    snippet = "\n".join([
        "MemSessionLocalCache 0",
        "<Location /a>",
        "    AuthType MemSession",
        "    Require valid-user",
        "    MemSessionUnauthenticated redirect",
        "    MemSessionLoginURL /login",
        "    MemSessionCookieName sess",
        "    MemSessionCookiePath /a",
        "    MemSessionCookieDomain example.test",
        "    MemSessionCookieSameSite None",
        "    MemSessionCookieSecure On",
        "    MemSessionCookiePersistent On",
        "    MemSessionInactivityTimeout 1h",
        "    MemSessionMaxLifetime 8h",
        "    MemSessionCSRFCheck Off",
        "    MemSessionTrustedOrigin https://portal.example",
        "    MemSessionUserHeader X-Remote-User",
        "    MemSessionExtend Off",
        "</Location>",
        "<Location /b>",
        "    MemSession On",
        "    MemSessionUnauthenticated 401",
        "    MemSessionCookieSameSite Lax",
        "    MemSessionInactivityTimeout 0",
        "    MemSessionMaxLifetime 0",
        "</Location>",
        "<Location /c>",
        "    SetHandler memsession-logout",
        "    MemSessionLogoutRedirect /",
        "    MemSessionLogoutAllowGet On",
        "</Location>",
    ])
    rc, out = httpd.configtest(snippet)
    assert rc == 0, out


# -- start-up warnings (README: MemSessionServers "Unreachable at start-up: a warning naming the
# directive"; MemSessionCookieSecure Off "logs a warning at start-up") -------------------------

def warnings_containing(server, text: str) -> list[str]:
    lines = [line for line in server.error_log.since(0) if text in line]
    assert all("[auth_memsession:warn]" in line for line in lines), lines
    return lines


def test_an_unreachable_store_at_start_up_is_a_warning_and_httpd_runs(another_httpd):
    sock = Path(f"/nonexistent-memsession-{os.getpid()}/memcached.sock")
    server = another_httpd(memcached_sock=sock)
    found = warnings_containing(server, f"MemSessionServers: unix:{sock} is unreachable at start-up")
    assert len(found) == 1, server.error_log.since(0)[-20:]
    # httpd runs: logins are refused for now, cookie requests get the unauthenticated answer
    r = server.client.get("/login", headers={"Authorization": basic("alice", USERS["alice"])})
    assert r.status == 503 and r.header("Retry-After"), r.describe()
    assert server.client.get("/app/index.html", cookie=secrets.token_urlsafe(32)).status == 401


def test_a_reachable_store_gives_no_warning(another_httpd):
    server = another_httpd()
    assert warnings_containing(server, "is unreachable at start-up") == []
    assert [line for line in server.error_log.since(0) if "MemSessionServers: unix:" in line
            and " answers (memcached " in line], "no start-up check of the store was logged"


def test_cookie_secure_off_is_a_warning_at_start_up(another_httpd):
    """Once per location that turns it off, naming it: not once per pass over the config."""
    server = another_httpd()
    found = warnings_containing(server, "MemSessionCookieSecure Off in ")
    assert found, "the harness sets MemSessionCookieSecure Off, yet no warning was logged"
    messages = [line[line.index("MemSessionCookieSecure Off in "):] for line in found]
    assert all(": session cookies will be sent over plain http" in m for m in messages), messages
    assert len(set(messages)) == len(messages), messages
    assert any("MemSessionCookieSecure Off in /login:" in m for m in messages), messages
    # httpd's first read of the configuration (the dry run) prints to its stderr, the
    # administrator's console: it warns nothing the real pass does not say again.
    console = Path(server.stdout_path).read_text(errors="replace")
    assert "MemSessionCookieSecure Off" not in console, console[-2000:]


def test_replicas_with_a_single_server_is_a_warning_at_start_up(another_httpd):
    """README: MemSessionReplicas 1 with one server "is a no-op, with a warning at start-up"."""
    server = another_httpd(extra_conf="\nMemSessionReplicas 1\n")
    found = warnings_containing(server, "MemSessionReplicas 1 with a single server")
    assert len(found) == 1, server.error_log.since(0)[-20:]
    r = server.client.get("/login", headers={"Authorization": basic("alice", USERS["alice"])})
    assert r.status == 303, r.describe()
    cookie = r.cookie("memsession").value
    assert server.client.get("/app/index.html", cookie=cookie).status == 200
