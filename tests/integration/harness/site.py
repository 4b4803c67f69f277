"""The one httpd.conf every module test talks to.

All locations live in one server so one cookie, minted at one login, is checked everywhere.
The harness-only mode (MEMSESSION_HARNESS_ONLY=1) renders the same server without our
LoadModule and without any MemSession* directive, so the harness can be proven on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .components import Components

USERS = {"alice": "alicepw", "bob": "bobpw"}

# Trusted third-party origin configured on /trusted.
TRUSTED_ORIGIN = "https://portal.example"
COOKIE_DOMAIN = "example.test"
INACTIVITY_S = 3  # /short
MAX_LIFETIME_S = 3  # /brief


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
    def memcached_sock(self) -> Path:
        return self.root / "memcached.sock"


def core(c: Components, p: Paths, port: int, module: bool, server_directives: bool = True) -> str:
    """Everything but the locations: what a configtest snippet is appended to as well.

    server_directives=False leaves out MemSessionServers/Timeout/KeyPrefix (the module is still
    loaded) so a config test can give its own."""
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
    for name in ("authn_core", "authn_file", "authz_core", "authz_user", "auth_basic", "alias",
                 "mime", "proxy", "proxy_http"):
        lines.append(f"LoadModule {name}_module {m}/mod_{name}.so")
    if c.threaded:
        lines += [f"LoadModule cgid_module {m}/mod_cgid.so", f'ScriptSock "{p.logs}/cgid.sock"',
                  "StartServers 2", "ServerLimit 2", "ThreadsPerChild 8", "MaxRequestWorkers 16",
                  "MinSpareThreads 8", "MaxSpareThreads 16"]
    else:
        lines += [f"LoadModule cgi_module {m}/mod_cgi.so",
                  "StartServers 4", "MinSpareServers 4", "MaxSpareServers 8",
                  "MaxRequestWorkers 16"]
    lines += [
        "User www-data",
        "Group www-data",
        "Timeout 10",
        "KeepAlive Off",
        "TypesConfig /etc/mime.types",
        f'DocumentRoot "{p.htdocs}"',
        'LogFormat "%h %l %u %t \\"%r\\" %>s %b \\"%{Authorization}i\\" \\"%{Cookie}i\\"" memsession',
        f'CustomLog "{p.access_log}" memsession',
        "<Directory />\n    AllowOverride None\n    Require all denied\n</Directory>",
        f'<Directory "{p.htdocs}">\n    Require all granted\n</Directory>',
        f'<Directory "{p.cgi_bin}">\n    Options +ExecCGI\n    Require all granted\n</Directory>',
    ]
    if module:
        lines.append(f"LoadModule auth_memsession_module {c.module}")
    if module and server_directives:
        lines += [
            f"MemSessionServers unix:{p.memcached_sock}",
            "MemSessionTimeout 200ms",
            "MemSessionKeyPrefix memsession:",
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
        "# --- another auth module, then ride the cookie ---",
        "<Location /basic-app>\n" + _basic(p) + "    MemSession On\n" + off + "</Location>\n",
    ]
    return cgi + harness + "\n".join(blocks)


def render(c: Components, p: Paths, port: int, backend_port: int) -> str:
    module = not c.harness_only
    return core(c, p, port, module) + locations(p, module, backend_port)
