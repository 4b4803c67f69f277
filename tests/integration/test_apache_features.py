"""The Apache features administrators combine with an auth module, tried as an attacker would:
a failed login never yields a usable session, no protected byte reaches a client without one,
and a directory owner's .htaccess mints nothing.

One extra httpd (same memcached, same key prefix as the main one) carries these locations, so a
cookie minted here by mistake would be honoured by the main server's /app — the tests check that
too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import crash_lines
from harness.http import basic
from harness.httpd import Httpd, free_port, prepare_root

pytestmark = pytest.mark.module

RIGHT = {"Authorization": basic("alice", "alicepw")}
WRONG = {"Authorization": basic("alice", "WRONG")}
UNKNOWN = {"Authorization": basic("nobody-at-all", "x")}
SECRET = "protected-content-7c1f"
MALLORY = ("mallory", "mallorypw")


def _basic_auth(p) -> str:
    return ("    AuthType Basic\n    AuthName features\n    AuthBasicProvider file\n"
            f'    AuthUserFile "{p.htpasswd}"\n')


def _conf(c, p, cache_root: Path, tls_port: int) -> str:
    m = c.modules_dir
    mods = "".join(f"LoadModule {name}_module {m}/mod_{name}.so\n" for name in
                   ("rewrite", "include", "dir", "negotiation", "cache", "cache_disk", "headers",
                    "socache_shmcb", "ssl", "http2"))
    # HTTP/2 over TLS: every location below is served on this virtual host too
    tls = (f"Listen 127.0.0.1:{tls_port}\n<VirtualHost 127.0.0.1:{tls_port}>\n"
           "    Protocols h2 http/1.1\n    SSLEngine on\n"
           f'    SSLCertificateFile "{p.root}/conf/tls.crt"\n'
           f'    SSLCertificateKeyFile "{p.root}/conf/tls.key"\n</VirtualHost>\n')
    basic_ = _basic_auth(p)
    off = "    MemSessionCookieSecure Off\n"

    def loc(path: str, body: str) -> str:
        return f"<Location {path}>\n{body}</Location>\n"

    mint = basic_ + "    Require valid-user\n    MemSession On\n" + off
    htdocs = p.htdocs
    return mods + tls + """
DirectoryIndex index.html
AddType text/html .shtml
AddOutputFilter INCLUDES .shtml
RewriteEngine On
RewriteRule ^/pt/(.*)$ /ed/static/$1 [PT]
""" + "".join([
        # ErrorDocument inside the protected location: a static page, and a CGI
        loc("/ed/static", mint + "    ErrorDocument 401 /ed/static/denied.html\n"),
        loc("/ed/cgi", mint + "    ErrorDocument 401 /ed/cgi/env.cgi\n"),
        # ... and pointing elsewhere, to a location that also issues sessions
        loc("/ed/elsewhere", mint + "    ErrorDocument 401 /open-mint/denied.html\n"),
        loc("/open-mint", "    Require all granted\n    MemSession On\n" + off),
        # 403: the right password, a user this location does not admit
        loc("/ed/forbidden", basic_ + "    Require user bob\n    MemSession On\n" + off
            + "    AuthzSendForbiddenOnFailure On\n"
            + "    ErrorDocument 403 /ed/forbidden/denied.html\n"),
        # the login handler with its error document inside it
        loc("/ed/login", basic_ + "    Require valid-user\n    SetHandler memsession-login\n" + off
            + "    ErrorDocument 401 /ed/login/denied\n"),
        # DirectoryIndex (mod_dir) and MultiViews (mod_negotiation): internal fast redirects
        loc("/dirindex", mint),
        f'<Directory "{htdocs}/mv">\n    Options +MultiViews\n</Directory>\n',
        loc("/mv", mint),
        # SSI include virtual: subrequests into a protected location
        loc("/ssi", "    Require all granted\n    Options +Includes\n"),
        # an open location whose error document is a session-protected CGI
        loc("/ed/open", "    Require all granted\n    ErrorDocument 404 /strict/env.cgi\n"),
        # a login location under MemSession On, reached with only a cookie
        loc("/renew", mint),
        loc("/renew/login", "    SetHandler memsession-login\n"),
        # .htaccess (Debian's userdir grants FileInfo AuthConfig)
        f'<Directory "{htdocs}/user">\n    AllowOverride AuthConfig FileInfo\n</Directory>\n',
        f'<Directory "{htdocs}/user/inherits">\n    MemSession On\n'
        "    MemSessionCookieSecure Off\n</Directory>\n",
        # internal redirects (per-directory mod_rewrite keeps the method) from a lenient
        # location into stricter ones: the CSRF rule and a shorter lifetime apply there
        loc("/lenient", "    AuthType MemSession\n    Require valid-user\n"
            "    MemSessionCSRFCheck Off\n" + off),
        f'<Directory "{htdocs}/lenient">\n    Options +FollowSymLinks\n    RewriteEngine On\n'
        "    RewriteRule ^csrf$ /strict/env.cgi [L]\n"
        "    RewriteRule ^old$ /strict-time/env.cgi [L]\n</Directory>\n",
        loc("/strict", "    AuthType MemSession\n    Require valid-user\n" + off),
        loc("/strict-time", "    AuthType MemSession\n    Require valid-user\n"
            "    MemSessionMaxLifetime 1s\n" + off),
        # mod_cache in front of a session-protected path
        f'CacheRoot "{cache_root}"\nCacheEnable disk /cached\nCacheIgnoreNoLastMod On\n'
        "CacheDefaultExpire 300\n",
        loc("/cached", "    AuthType MemSession\n    Require valid-user\n" + off),
        'ScriptAliasMatch "/cc-(public|nostore)\\.cgi$" "' + str(p.cgi_bin) + '/cc-$1.cgi"\n',
    ])


HTACCESS = {
    # a directory owner's own password file and MemSession On: refused by httpd
    "mint": "MemSession On\n",
    "delegation": "AuthType MemSession\nRequire valid-user\nMemSessionDelegation On\n",
    # the login handlers through FileInfo/AuthConfig: no session minted
    "handler": "SetHandler memsession-login\n",
    "form": "SetHandler memsession-login-form\n",
    # under a directory where the administrator turned MemSession On
    "inherits": "",
    # a store directive: the server's alone
    "replicas": "MemSessionReplicas 0\n",
    # handing visitors' session cookies to the owner's own scripts
    "strip": "MemSessionStripCookie Off\n",
}

CC_CGI = """#!/bin/sh
echo "Content-Type: text/plain"
echo "Cache-Control: {value}"
echo
echo {secret}
"""


def _owner_auth(userfile: Path) -> str:
    return ("AuthType Basic\nAuthName owner\nAuthBasicProvider file\n"
            f'AuthUserFile "{userfile}"\nRequire valid-user\n')


def _lay_out(c, p) -> None:
    h = p.htdocs
    pages = {
        "ed/static/index.html": SECRET, "ed/static/denied.html": "denied",
        "ed/forbidden/index.html": SECRET, "ed/forbidden/denied.html": "denied",
        "open-mint/denied.html": "denied", "dirindex/index.html": SECRET,
        "mv/page.html": SECRET, "renew/index.html": SECRET, "cached/page.html": SECRET,
        "lenient/index.html": "lenient",
        "ssi/page.shtml": 'before <!--#include virtual="/ed/static/index.html" --> after',
        "ssi/cgi.shtml": 'before <!--#include virtual="/strict/env.cgi" --> after',
    }
    for rel, text in pages.items():
        path = h / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
    userfile = p.root / "conf" / "owner-htpasswd"
    subprocess.run([c.htpasswd, "-bc", str(userfile), *MALLORY], check=True,
                   capture_output=True, timeout=30)
    os.chmod(userfile, 0o644)
    for name, extra in HTACCESS.items():
        d = h / "user" / name
        d.mkdir(parents=True, exist_ok=True)
        auth = ("" if name == "delegation" else f'AuthUserFile "{userfile}"\n' if name == "form"
                else _owner_auth(userfile))
        (d / ".htaccess").write_text(auth + extra)
        (d / "index.html").write_text(SECRET + "\n")
    for kind, value in (("public", "public, max-age=600"), ("nostore", "no-store")):
        cgi = p.cgi_bin / f"cc-{kind}.cgi"
        cgi.write_text(CC_CGI.format(value=value, secret=SECRET))
        os.chmod(cgi, 0o755)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-keyout", str(p.root / "conf" / "tls.key"),
                    "-out", str(p.root / "conf" / "tls.crt")],
                   check=True, capture_output=True, timeout=60)
    for dirpath, dirs, files in os.walk(p.root):
        for d in dirs:
            os.chmod(Path(dirpath) / d, 0o755)


@pytest.fixture(scope="module")
def features(components, memcached, backend, httpd):
    """The extra httpd (another ServerRoot, same memcached and prefix as the main one)."""
    root = Path(tempfile.mkdtemp(prefix="memsession-features-"))
    p = prepare_root(components, root)
    cache_root = root / "cache"
    cache_root.mkdir()
    shutil.chown(cache_root, "www-data", "www-data")
    _lay_out(components, p)
    tls_port = free_port()
    server = Httpd(components, p, backend.port, memcached_sock=Path(memcached.sock_path),
                   extra_conf=_conf(components, p, cache_root, tls_port), kerberos=False)
    server.tls_port = tls_port
    try:
        server.start()
        yield server
    finally:
        server.stop()
        # httpd reports a refused .htaccess directive at [core:alert]: expected here
        bad = [line for line in crash_lines(server.error_log.since(0))
               if "not allowed here" not in line]
        shutil.rmtree(root, ignore_errors=True)
        assert not bad, "the features httpd logged crash lines:\n" + "\n".join(bad)


def no_session(r, main_client) -> None:
    """No memsession cookie on the response; and had there been one, the main server's /app
    would have to refuse it."""
    cookies = [c for c in r.set_cookies() if c.name == "memsession" and c.value]
    for c in cookies:
        seen = main_client.get("/app/env.cgi", cookie=c.value)
        assert seen.status != 200, ("a failed login minted a session the whole host honours:\n"
                                    + r.describe() + "\n" + seen.describe())
    assert not cookies, f"a session cookie was issued:\n{r.describe()}"


def no_protected_bytes(r) -> None:
    assert SECRET not in r.text, f"protected content reached a client without a session:\n{r.describe()}"


# --- ErrorDocument -----------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/ed/static/", "/ed/cgi/x", "/ed/elsewhere/x", "/pt/"])
@pytest.mark.parametrize("who", ["wrong password", "unknown user"])
def test_error_document_after_a_failed_password_mints_nothing(features, client, path, who):
    headers = WRONG if who == "wrong password" else UNKNOWN
    r = features.client.get(path, headers=headers)
    assert r.status == 401, r.describe()
    no_session(r, client)
    no_protected_bytes(r)


def test_error_document_login_handler_mints_nothing(features, client):
    r = features.client.get("/ed/login?return=/", headers=WRONG)
    assert r.status == 401, r.describe()
    no_session(r, client)


def test_error_document_403_after_authz_failure_mints_nothing(features, client):
    r = features.client.get("/ed/forbidden/", headers=RIGHT)
    assert r.status == 403, r.describe()
    no_session(r, client)
    no_protected_bytes(r)


def test_the_right_password_still_mints_exactly_one_session(features, client):
    # DirectoryIndex and MultiViews serve through internal (fast) redirects: one session.
    for path in ("/ed/static/", "/dirindex/", "/mv/page", "/pt/"):
        r = features.client.get(path, headers=RIGHT)
        assert r.status == 200 and SECRET in r.text, r.describe()
        cookies = [c for c in r.set_cookies() if c.name == "memsession"]
        assert len(cookies) == 1, f"{path}: expected one session cookie:\n{r.describe()}"
        assert client.get("/app/env.cgi", cookie=cookies[0].value).env()["REMOTE_USER"] == "alice"


@pytest.mark.parametrize("path", ["/dirindex/", "/mv/page"])
def test_internal_fast_redirects_with_a_wrong_password_mint_nothing(features, client, path):
    r = features.client.get(path, headers=WRONG)
    assert r.status == 401, r.describe()
    no_session(r, client)
    no_protected_bytes(r)


# --- subrequests -------------------------------------------------------------------------------

@pytest.mark.parametrize("headers", [{}, WRONG, RIGHT], ids=["anonymous", "wrong", "right"])
def test_ssi_include_virtual_mints_nothing_and_leaks_nothing_unauthenticated(features, client,
                                                                              headers):
    r = features.client.get("/ssi/page.shtml", headers=headers)
    assert r.status == 200 and "before" in r.text and "after" in r.text, r.describe()
    no_session(r, client)
    if headers is not RIGHT:
        no_protected_bytes(r)


# --- the session cookie is the module's: a backend reached through a subrequest or an error
# document gets the request without it, and the module still authenticates on it there -------

def _without_session(body: str, session: str) -> None:
    assert session not in body, f"the session cookie reached a backend:\n{body}"
    assert "HTTP_COOKIE=lang=en\n" in body, body


def test_an_ssi_include_of_a_protected_cgi_runs_on_the_session_without_its_cookie(features,
                                                                                 login):
    session = login("alice")
    r = features.client.get("/ssi/cgi.shtml",
                            headers={"Cookie": f"lang=en; memsession={session}"})
    assert r.status == 200 and "REMOTE_USER=alice" in r.text, r.describe()
    _without_session(r.text, session)
    anonymous = features.client.get("/ssi/cgi.shtml", headers={"Cookie": "lang=en"})
    assert "REMOTE_USER" not in anonymous.text, anonymous.describe()


def test_an_error_document_on_a_protected_cgi_runs_on_the_session_without_its_cookie(features,
                                                                                    login):
    """The open location took the cookie out before its handler ran; the error document's
    internal redirect to a protected location still authenticates on it."""
    session = login("alice")
    r = features.client.get("/ed/open/missing.html",
                            headers={"Cookie": f"lang=en; memsession={session}"})
    assert r.status == 404 and "REMOTE_USER=alice" in r.text, r.describe()
    _without_session(r.text, session)
    anonymous = features.client.get("/ed/open/missing.html")
    assert "REMOTE_USER" not in anonymous.text, anonymous.describe()


# --- no self-renewal ---------------------------------------------------------------------------

def test_a_login_location_reached_with_only_a_cookie_keeps_the_session(features, client):
    first = features.client.get("/renew/", headers=RIGHT)
    cookie = first.cookie("memsession")
    assert cookie is not None, first.describe()
    r = features.client.get("/renew/login?return=/renew/", cookie=cookie.value)
    assert r.status == 303, r.describe()
    assert r.header("Location").endswith("/renew/"), r.describe()
    assert r.cookie("memsession") is None, f"a cookie renewed itself:\n{r.describe()}"
    xhr = features.client.get("/renew/login", cookie=cookie.value,
                              headers={"X-Requested-With": "XMLHttpRequest",
                                       "Accept": "application/json"})
    assert xhr.status == 200 and xhr.json()["user"] == "alice", xhr.describe()
    assert xhr.cookie("memsession") is None, xhr.describe()
    # the session goes on as it was
    assert client.get("/app/env.cgi", cookie=cookie.value).env()["REMOTE_USER"] == "alice"


# --- .htaccess ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name,directive", [("mint", "MemSession"),
                                            ("delegation", "MemSessionDelegation"),
                                            ("replicas", "MemSessionReplicas"),
                                            ("strip", "MemSessionStripCookie")])
def test_htaccess_cannot_turn_on_minting_or_delegation(features, client, name, directive):
    start = features.error_log.size()
    r = features.client.get(f"/user/{name}/", headers={"Authorization": basic(*MALLORY)})
    assert r.status == 500, r.describe()
    no_session(r, client)
    no_protected_bytes(r)
    log = "\n".join(features.error_log.since(start))
    assert f"{directive} not allowed here" in log, log


@pytest.mark.parametrize("name,method", [("handler", "GET"), ("form", "POST")])
def test_htaccess_login_handlers_mint_nothing(features, client, name, method):
    if method == "GET":
        r = features.client.get(f"/user/{name}/", headers={"Authorization": basic(*MALLORY)})
    else:
        r = features.client.post(f"/user/{name}/", body="user=mallory&password=mallorypw",
                                 headers={"Content-Type": "application/x-www-form-urlencoded",
                                          "Origin": features.origin})
    assert r.status == 403, r.describe()
    no_session(r, client)


def test_htaccess_auth_under_an_administrators_memsession_on_mints_nothing(features, client):
    start = features.error_log.size()
    r = features.client.get("/user/inherits/", headers={"Authorization": basic(*MALLORY)})
    # the owner's own authentication still admits the owner's users to the owner's directory
    assert r.status == 200, r.describe()
    no_session(r, client)
    log = "\n".join(features.error_log.since(start))
    assert ".htaccess file in" in log, log


# --- mod_cache ---------------------------------------------------------------------------------

def test_mod_cache_never_serves_a_protected_page_to_a_client_without_a_session(features, client,
                                                                                login):
    cookie = login()
    for _ in range(3):
        r = features.client.get("/cached/page.html", cookie=cookie)
        assert r.status == 200 and SECRET in r.text, r.describe()
        assert "private" in (r.header("Cache-Control") or ""), r.describe()
    anonymous = features.client.get("/cached/page.html")
    assert anonymous.status == 401, anonymous.describe()
    no_protected_bytes(anonymous)


@pytest.mark.parametrize("kind,expected", [("public", "private, max-age=600"),
                                           ("nostore", "no-store")])
def test_a_backends_cache_control_is_made_private_or_kept_when_stricter(features, login, kind,
                                                                          expected):
    cookie = login()
    r = features.client.get(f"/cached/cc-{kind}.cgi", cookie=cookie)
    assert r.status == 200 and SECRET in r.text, r.describe()
    assert r.headers_all("Cache-Control") == [expected], r.describe()
    assert features.client.get(f"/cached/cc-{kind}.cgi").status == 401


def test_proxied_authenticated_responses_are_private(client, login):
    cookie = login()
    r = client.get("/proxied/x", cookie=cookie)
    assert r.status == 200, r.describe()
    assert "private" in (r.header("Cache-Control") or ""), r.describe()


# --- internal redirects apply the rules of the location they land in --------------------------

def test_an_internal_redirect_applies_the_csrf_rule_of_where_it_lands(features, login):
    cookie = login()
    foreign = {"Origin": "https://evil.example", "Content-Type": "text/plain"}
    # the lenient location itself accepts the cross-site POST (MemSessionCSRFCheck Off) ...
    direct = features.client.post("/lenient/index.html", cookie=cookie, headers=foreign,
                                  body="x")
    assert direct.status in (200, 405), direct.describe()
    # ... but not once it is redirected into a location that checks
    r = features.client.post("/lenient/csrf", cookie=cookie, headers=foreign, body="x")
    assert r.status == 403, r.describe()
    same_site = features.client.post("/lenient/csrf", cookie=cookie, body="x",
                                     headers={"Origin": features.origin,
                                              "Content-Type": "text/plain"})
    assert same_site.env()["REMOTE_USER"] == "alice"


def test_an_internal_redirect_applies_the_stricter_lifetime_of_where_it_lands(features, login,
                                                                              client):
    cookie = login()
    assert features.client.get("/lenient/old", cookie=cookie).env()["REMOTE_USER"] == "alice"
    time.sleep(2.2)  # past /strict-time's MemSessionMaxLifetime 1s, within the session's own
    r = features.client.get("/lenient/old", cookie=cookie)
    assert r.status == 401, r.describe()
    assert r.cookie("memsession") is None, f"a location-only refusal ended the session:\n{r.describe()}"
    assert client.get("/app/env.cgi", cookie=cookie).env()["REMOTE_USER"] == "alice"


# --- HTTP/2 over TLS ---------------------------------------------------------------------------

def h2(features, path: str, *args: str) -> tuple[int, str, dict[str, list[str]], str]:
    """curl --http2 over TLS: (status, HTTP version, response headers, body)."""
    url = f"https://127.0.0.1:{features.tls_port}{path}"
    r = subprocess.run(["curl", "-sk", "--http2", "--max-time", "10", "-D", "-",
                        "-w", "\nHTTP_VERSION=%{http_version}", *args, url],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    out, _, version = r.stdout.rpartition("\nHTTP_VERSION=")
    head, _, body = out.partition("\n\n")  # text mode: CRLF reads as \n
    lines = head.split("\n")
    headers: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return int(lines[0].split()[1]), version, headers, body


def test_http2_over_tls_login_ride_and_failed_logins(features, components):
    status, version, headers, _ = h2(features, "/renew/", "-u", "alice:alicepw")
    # mod_http2 does not run under prefork (httpd says so at start-up): HTTP/1.1 there
    assert version == ("1.1" if components.mpm == "prefork" else "2"), version
    assert status == 200, headers
    cookies = [c for c in headers.get("set-cookie", []) if c.startswith("memsession=")]
    assert len(cookies) == 1, headers
    cookie = cookies[0].split(";")[0]
    status, _, _, body = h2(features, "/strict/env.cgi", "-H", f"Cookie: {cookie}")
    assert status == 200 and "REMOTE_USER=alice" in body and "HTTPS=on" in body, body
    assert cookie.split("=", 1)[1] not in body and "HTTP_COOKIE" not in body, body
    # HTTP/2 carries cookies as several header fields; mod_http2 joins them with "; ". In
    # HTTP/1.1 several Cookie headers are not what browsers send: httpd joins them with ", ",
    # which is part of a value, so no session is taken from them.
    status, _, _, body = h2(features, "/strict/env.cgi", "-H", "Cookie: lang=en",
                            "-H", f"Cookie: {cookie}", "-H", "Cookie: theme=dark")
    if version == "2":
        assert status == 200 and "REMOTE_USER=alice" in body, body
        assert "HTTP_COOKIE=lang=en; theme=dark\n" in body, body
    else:
        assert status == 401, body
    # a failed login behind an error document, and a cached page, over HTTP/2 too
    for path, creds in (("/ed/static/", "alice:WRONG"), ("/ed/login", "nobody-at-all:x")):
        status, _, headers, body = h2(features, path, "-u", creds)
        assert status == 401, (path, headers)
        assert not headers.get("set-cookie"), (path, headers)
        assert SECRET not in body
    status, _, headers, body = h2(features, "/cached/page.html", "-H", f"Cookie: {cookie}")
    assert status == 200 and "private" in headers.get("cache-control", [""])[0], headers
    status, _, _, body = h2(features, "/cached/page.html")
    assert status == 401 and SECRET not in body
