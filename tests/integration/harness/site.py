"""The one httpd.conf every module test talks to.

All locations live in one server so one cookie, minted at one login, is checked everywhere.
The harness-only mode (MEMSESSION_HARNESS_ONLY=1) renders the same server without our
LoadModule and without any MemSession* directive, so the harness can be proven on its own.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from . import kdc
from .components import Components

# Under the threaded MPMs (event, worker): this many children, of this many request threads.
THREADED_CHILDREN = 2
THREADS_PER_CHILD = 8

USERS = {"alice": "alicepw", "bob": "bobpw"}

# Trusted third-party origin configured on /trusted.
TRUSTED_ORIGIN = "https://portal.example"
COOKIE_DOMAIN = "example.test"
INACTIVITY_S = 3  # /short
MAX_LIFETIME_S = 3  # /brief
GRACEFUL_SHUTDOWN_TIMEOUT_S = 5  # bounds Httpd.stop()'s graceful stop
# The server secret (MemSessionSecretFile) of every httpd in one test run: servers that share
# a memcached and a prefix share sessions, as the nodes of a farm do.
SECRET = os.urandom(32)


@dataclass(frozen=True)
class Paths:
    root: Path

    @property
    def conf(self) -> Path:
        return self.root / "conf" / "httpd.conf"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def error_log(self) -> Path:
        return self.logs / "error_log"

    @property
    def access_log(self) -> Path:
        return self.logs / "access_log"

    @property
    def htdocs(self) -> Path:
        return self.root / "htdocs"

    @property
    def cgi_bin(self) -> Path:
        return self.root / "cgi-bin"

    @property
    def htpasswd(self) -> Path:
        return self.root / "conf" / "htpasswd"

    @property
    def secret_file(self) -> Path:
        return self.root / "conf" / "memsession.secret"

    @property
    def memcached_sock(self) -> Path:
        return self.root / "memcached.sock"


def core(c: Components, p: Paths, port: int, module: bool, server_directives: bool = True,
         key_prefix: str = "memsession:", memcached_sock: Path | str | None = None) -> str:
    """Everything but the locations: what a configtest snippet is appended to as well.

    server_directives=False leaves out MemSessionServers/Timeout/KeyPrefix (the module is still
    loaded) so a config test can give its own. key_prefix and memcached_sock let a second httpd
    (another deployment) share the first one's memcached under another prefix."""
    m = c.modules_dir
    lines = [
        f'ServerRoot "{p.root}"',
        f"Listen 127.0.0.1:{port}",
        f"ServerName 127.0.0.1:{port}",
        f'PidFile "{p.logs}/httpd.pid"',
        f'DefaultRuntimeDir "{p.logs}"',
        f'ErrorLog "{p.error_log}"',
        "LogLevel warn auth_memsession:debug" if module else "LogLevel warn",
        f"LoadModule mpm_{c.mpm}_module {m}/mod_mpm_{c.mpm}.so",
    ]
    for name in ("authn_core", "authn_file", "authz_core", "authz_host", "authz_user", "auth_basic",
                 "alias",
                 "mime", "proxy", "proxy_http"):
        lines.append(f"LoadModule {name}_module {m}/mod_{name}.so")
    if c.threaded:
        lines += [f"LoadModule cgid_module {m}/mod_cgid.so", f'ScriptSock "{p.logs}/cgid.sock"',
                  f"StartServers {THREADED_CHILDREN}", f"ServerLimit {THREADED_CHILDREN}",
                  f"ThreadsPerChild {THREADS_PER_CHILD}", "MaxRequestWorkers 16",
                  "MinSpareThreads 8", "MaxSpareThreads 16"]
    else:
        lines += [f"LoadModule cgi_module {m}/mod_cgi.so",
                  "StartServers 4", "MinSpareServers 4", "MaxSpareServers 8",
                  "MaxRequestWorkers 16"]
    lines += [
        "User www-data",
        "Group www-data",
        "Timeout 10",
        f"GracefulShutdownTimeout {GRACEFUL_SHUTDOWN_TIMEOUT_S}",
        "KeepAlive Off",
        "TypesConfig /etc/mime.types",
        f'DocumentRoot "{p.htdocs}"',
        # The Cookie header as the backend got it, then as the client sent it (the module's
        # note, where it took the session cookie out: MemSessionStripCookie).
        'LogFormat "%h %l %u %t \\"%r\\" %>s %b \\"%{Authorization}i\\" \\"%{Cookie}i\\" '
        '\\"%{memsession-client-cookie}n\\" pid=%P" memsession',
        f'CustomLog "{p.access_log}" memsession',
        "<Directory />\n    AllowOverride None\n    Require all denied\n</Directory>",
        f'<Directory "{p.htdocs}">\n    Require all granted\n</Directory>',
        f'<Directory "{p.cgi_bin}">\n    Options +ExecCGI\n    Require all granted\n</Directory>',
    ]
    if module:
        lines.append(f"LoadModule auth_memsession_module {c.module}")
    if module and server_directives:
        lines += [
            # A str is a MemSessionServers value of its own (a TCP server, say).
            "MemSessionServers " + (memcached_sock if isinstance(memcached_sock, str)
                                    else f"unix:{memcached_sock or p.memcached_sock}"),
            "MemSessionTimeout 200ms",
            f"MemSessionKeyPrefix {key_prefix}",
            f'MemSessionSecretFile "{p.secret_file}"',
            # Every test logs in from 127.0.0.1: the guessing budgets (on by default) are off
            # here and tested on servers of their own (test_login_budget.py).
            "MemSessionLoginLimitUser Off",
            "MemSessionLoginLimitAddress Off",
            # Many tests mint sessions for alice through MemSession On: the bound on them
            # (MemSessionMintLimit, 10 a minute by default) is tested on a server of its own.
            "MemSessionMintLimit Off",
        ]
    return "\n".join(lines) + "\n"


def _basic(p: Paths) -> str:
    return ("    AuthType Basic\n    AuthName test\n    AuthBasicProvider file\n"
            f'    AuthUserFile "{p.htpasswd}"\n    Require valid-user\n')


def locations(p: Paths, module: bool, backend_port: int) -> str:
    cgi = f'ScriptAliasMatch "/env\\.cgi$" "{p.cgi_bin}/env.cgi"\n'
    backend = f"http://127.0.0.1:{backend_port}"
    harness = f"""
# --- the harness's own locations (present in both modes) ---
<Location /harness/basic>
{_basic(p)}</Location>
<Location /harness/proxied/>
    Require all granted
    ProxyPass {backend}/harness/proxied/
</Location>
"""
    if not module:
        return cgi + harness

    def login(path: str, extra: str = "") -> str:
        return f"<Location {path}>\n{_basic(p)}    SetHandler memsession-login\n{extra}</Location>\n"

    def app(path: str, extra: str = "", require: str = "valid-user") -> str:
        return (f"<Location {path}>\n    AuthType MemSession\n    Require {require}\n"
                f"    MemSessionCookieSecure Off\n{extra}</Location>\n")

    off = "    MemSessionCookieSecure Off\n"
    blocks = [
        "# --- login locations ---",
        login("/login", off),
        login("/login-secure"),
        login("/login-named", off + "    MemSessionCookieName othersess\n"),
        login("/login-strict", off + "    MemSessionCookieSameSite Strict\n"
              f"    MemSessionCookieDomain {COOKIE_DOMAIN}\n    MemSessionCookiePath /app\n"),
        login("/login-none", "    MemSessionCookieSameSite None\n"),
        login("/login-persistent", off + "    MemSessionCookiePersistent On\n"),
        "# --- session-protected locations ---",
        app("/app", "    MemSessionUnauthenticated 401\n    MemSessionUserHeader X-Remote-User\n"),
        app("/named-app", "    MemSessionCookieName othersess\n"),
        app("/only-bob", require="user bob"),
        app("/redir", "    MemSessionUnauthenticated redirect\n    MemSessionLoginURL /login\n"),
        app("/auto", "    MemSessionUnauthenticated auto\n    MemSessionLoginURL /login\n"),
        app("/csrf-off", "    MemSessionCSRFCheck Off\n"),
        app("/trusted", f"    MemSessionTrustedOrigin {TRUSTED_ORIGIN}\n"),
        "<Location /open>\n    Require all granted\n    MemSessionUserHeader X-Remote-User\n"
        "</Location>\n",
        app("/proxied/", "    MemSessionUserHeader X-Remote-User\n"
            f"    ProxyPass {backend}/proxied/\n"),
        "<Location /open-proxied/>\n    Require all granted\n    MemSessionUserHeader X-Remote-User\n"
        f"    ProxyPass {backend}/open-proxied/\n</Location>\n",
        "# --- logout ---",
        "<Location /logout>\n    SetHandler memsession-logout\n    MemSessionLogoutRedirect /bye\n"
        + off + "</Location>\n",
        "<Location /logout-get>\n    SetHandler memsession-logout\n"
        "    MemSessionLogoutRedirect /bye\n    MemSessionLogoutAllowGet On\n" + off + "</Location>\n",
        "# --- expiry ---",
        f"<Location /short>\n    MemSessionInactivityTimeout {INACTIVITY_S}s\n" + off + "</Location>\n",
        login("/short/login"),
        app("/short/app"),
        f"<Location /brief>\n    MemSessionMaxLifetime {MAX_LIFETIME_S}s\n"
        "    MemSessionInactivityTimeout 1h\n" + off + "</Location>\n",
        login("/brief/login"),
        app("/brief/app"),
        "# --- password form, checked through Apache's authn providers ---",
        "<Location /form-login>\n    SetHandler memsession-login-form\n"
        f'    AuthUserFile "{p.htpasswd}"\n' + off + "</Location>\n",
        "<Location /form-login-missing-provider>\n    SetHandler memsession-login-form\n"
        "    MemSessionPasswordProvider nosuchprovider\n" + off + "</Location>\n",
        "# --- metrics (test_status.py): loopback only, as docs/directives.md advises ---",
        "<Location /memsession-status>\n    SetHandler memsession-status\n"
        "    Require ip 127.0.0.1\n</Location>\n",
        "<Location /memsession-status-remote-only>\n    SetHandler memsession-status\n"
        "    Require ip 192.0.2.1\n</Location>\n",
        "# --- another auth module, then ride the cookie ---",
        "<Location /basic-app>\n" + _basic(p) + "    MemSession On\n" + off + "</Location>\n",
    ]
    return cgi + harness + "\n".join(blocks)


# --- Kerberos (harness/kdc.py runs the realm; tests in test_kerberos*.py) -----------------------

def realm_dir(p: Paths) -> Path:
    """Where harness/kdc.py lays out the throwaway realm (krb5.conf, keytab, ccache dirs)."""
    return p.root / "krb5"


# Prints what a backend behind MemSessionDelegation sees. KRB5_CONFIG is the realm's (a CGI
# does not inherit httpd's environment); KRB5CCNAME is only what the module set.
KRB_CGI = """#!/bin/sh
export KRB5_CONFIG="{krb5_conf}"
echo "Content-Type: text/plain"
echo
echo "REMOTE_USER=$REMOTE_USER"
echo "AUTH_TYPE=$AUTH_TYPE"
echo "KRB5CCNAME=${{KRB5CCNAME:-}}"
if [ -n "${{KRB5CCNAME:-}}" ]; then
    echo "CCACHE_STAT=$(stat -c '%a %U' "${{KRB5CCNAME#FILE:}}" 2>&1)"
    echo "CCACHE_FILE=${{KRB5CCNAME#FILE:}}"
else
    echo "CCACHE_STAT="
fi
if klist -s 2>/dev/null; then echo "KLIST_S=KLIST_OK"; else echo "KLIST_S=KLIST_FAILED"; fi
echo "KLIST=$(klist -f 2>&1)"
# what this backend saw, for tests whose client cannot show the body (a browser's screenshot)
klist -s 2>/dev/null && k=KLIST_OK || k=KLIST_FAILED
echo "$QUERY_STRING REMOTE_USER=$REMOTE_USER KLIST_S=$k" \\
    "HTTP_AUTHORIZATION=${{HTTP_AUTHORIZATION:-}}" >> "{record}"
"""


def krb_cgi_record(p: Paths) -> Path:
    """One line per krb.cgi request: query string, REMOTE_USER, klist -s result."""
    return p.logs / "krb-cgi.log"


def write_kerberos_files(p: Paths) -> None:
    import os

    import pwd

    cgi = p.cgi_bin / "krb.cgi"
    cgi.write_text(KRB_CGI.format(krb5_conf=realm_dir(p) / "krb5.conf",
                                  record=krb_cgi_record(p)))
    os.chmod(cgi, 0o755)
    krb_cgi_record(p).touch()
    www = pwd.getpwnam("www-data")
    os.chown(krb_cgi_record(p), www.pw_uid, www.pw_gid)
    page = p.htdocs / "krb" / "browser-app"
    page.mkdir(parents=True, exist_ok=True)
    os.chmod(p.htdocs / "krb", 0o755)
    os.chmod(page, 0o755)
    (page / "index.html").write_text(BROWSER_PAGE)


# The page a browser lands on after the SPNEGO login. Its script asks the CGI for the user
# (a second request, on the cookie alone) with a synchronous XMLHttpRequest, so the answer is in
# the DOM before the load event that `--dump-dom` and `--screenshot` wait for.
BROWSER_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>memsession browser app</title></head>
<body><pre id="out">LOADING</pre>
<script>
var probe = new URLSearchParams(location.search).get("probe") || "none";
var out = document.getElementById("out");
try {
  var x = new XMLHttpRequest();
  x.open("GET", "/krb/browser-app/krb.cgi?probe=" + encodeURIComponent(probe), false);
  x.setRequestHeader("X-Requested-With", "XMLHttpRequest");
  x.send();
  out.textContent = "XHR_STATUS=" + x.status + "\\n" + x.responseText;
  document.title = "XHR_STATUS=" + x.status;
} catch (e) {
  out.textContent = "XHR_ERROR=" + e;
}
</script></body></html>
"""


def kerberos_locations(c: Components, p: Paths) -> str:
    """Locations for the Kerberos tests: mod_auth_gssapi at the logins, the module behind."""
    d = realm_dir(p)
    gss = ("    AuthType GSSAPI\n    AuthName \"memsession kerberos\"\n"
           f"    GssapiCredStore keytab:{d / 'http.keytab'}\n"
           "    GssapiAllowedMech krb5\n    GssapiBasicAuth Off\n"
           "    GssapiUseS4U2Proxy Off\n    Require valid-user\n")
    deleg = f"    GssapiDelegCcacheDir {d / 'deleg'}\n"
    lend = f"    MemSessionDelegationDir {d / 'lent'}\n"
    off = "    MemSessionCookieSecure Off\n"

    def password_form(realm: str = kdc.REALM, keytab: str = "http.keytab") -> str:
        return ("    SetHandler memsession-login-form\n"
                f"    MemSessionKerberosRealm {realm}\n"
                f"    MemSessionKerberosKeytab {d / keytab}\n" + off)

    def loc(path: str, body: str) -> str:
        return f"<Location {path}>\n{body}</Location>\n"

    blocks = [
        "# --- Kerberos: mod_auth_gssapi at the login, then ride the cookie ---",
        f"LoadModule auth_gssapi_module {c.modules_dir}/mod_auth_gssapi.so",
        'ScriptAliasMatch "/krb\\.cgi$" "' + str(p.cgi_bin / "krb.cgi") + '"',
        loc("/krb/login", gss + deleg + "    SetHandler memsession-login\n" + off),
        # GssapiLocalName On: r->user is the local name (krb5_aname_to_localname: alice)
        loc("/krb/login-localname", gss + deleg + "    GssapiLocalName On\n"
            "    SetHandler memsession-login\n" + off),
        loc("/krb/app", "    AuthType MemSession\n    Require valid-user\n"
            "    MemSessionUnauthenticated 401\n    MemSessionDelegation On\n" + lend + off),
        loc("/krb/nodeleg-app", "    AuthType MemSession\n    Require valid-user\n"
            "    MemSessionUnauthenticated 401\n" + off),
        loc("/krb/negotiate-app", gss + "    MemSession On\n" + off),
        # password logins through Kerberos in-process (test_kerberos_form_login.py)
        loc("/krb/form-login", password_form()),
        loc("/krb/form-login-and-file", password_form()
            + f'    MemSessionPasswordProvider file\n    AuthUserFile "{p.htpasswd}"\n'),
        loc("/krb/form-login-wrong-key", password_form(keytab="wrong.keytab")),
        loc("/krb/form-login-kdc-down", password_form(realm=kdc.DOWN_REALM)),
        loc("/krb/form-login-kdc-silent", password_form(realm=kdc.SILENT_REALM)),
        loc("/krb/form-login-no-keytab", password_form(keytab="no-such.keytab")),
        # the guessing budget in front of a KDC lockout (test_login_budget.py)
        loc("/krb/form-login-limited", password_form() + "    MemSessionLoginLimitUser 3\n"),
        loc("/krb/browser-app", "    AuthType MemSession\n    Require valid-user\n"
            "    MemSessionUnauthenticated auto\n    MemSessionLoginURL /krb/login\n"
            "    MemSessionDelegation On\n" + lend + off),
    ]
    return "\n".join(blocks)


def render(c: Components, p: Paths, port: int, backend_port: int, key_prefix: str = "memsession:",
           memcached_sock: Path | None = None, extra: str = "", kerberos: bool = True) -> str:
    """The test server. A second httpd (another deployment, a test-only module build) passes
    its key_prefix, the first one's memcached_sock, kerberos=False (the realm's files are the
    first server's) and `extra` locations, appended."""
    module = not c.harness_only
    out = (core(c, p, port, module, key_prefix=key_prefix, memcached_sock=memcached_sock)
           + locations(p, module, backend_port))
    if module and kerberos:
        out += "\n" + kerberos_locations(c, p)
    return out + extra
