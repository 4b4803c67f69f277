"""Config-time errors name their directive: `apache2 -t` fails and says which directive is wrong.

Each bad snippet has a good twin that must pass, so a failure is the value's fault and nothing
else's."""

import pytest

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
