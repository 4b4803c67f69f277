"""A farm's memcached over the network: TLS and authentication (README "A farm of memcached
servers", directives MemSessionTLSCAFile, MemSessionTLSClientCertificate, MemSessionAuthFile).

A real memcached on loopback TCP with TLS (-Z, verifying client certificates) and an ASCII auth
file (-Y); certificates from tests/tls/make-certs.sh. The module must carry sessions over it,
and must not talk to a server its CA did not vouch for, or without credentials; memsessionctl
reads the same directives.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from harness import ctl, procs, site
from harness.components import REPO
from harness.httpd import free_port, prepare_root
from harness.http import basic
from test_farm import login_at, user_of

pytestmark = pytest.mark.module

AUTH = "farm:tls-s3cret\n"


class TlsMemcached(procs.GroupProcess):
    def __init__(self, binary: str, root: Path):
        self.root = root
        subprocess.run([str(REPO / "tests" / "tls" / "make-certs.sh"), str(root)], check=True)
        self.auth = self.private("auth", AUTH)
        self.port = free_port()
        tls = (f"ssl_chain_cert={root}/server.pem,ssl_key={root}/server.key,"
               f"ssl_ca_cert={root}/ca.pem,ssl_verify_mode=3")
        self.proc = procs.spawn([binary, "-u", "root", "-U", "0", "-m", "16", "-l",
                                 f"127.0.0.1:{self.port}", "-Z", "-o", tls, "-Y", self.auth],
                                str(root / "memcached.log"))
        procs.wait_until("TLS memcached", self._listening, 10)

    def _listening(self) -> bool:
        import socket
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def private(self, name: str, text: str) -> str:
        path = self.root / name
        path.write_text(text)
        os.chmod(path, 0o600)
        return str(path)

    def directives(self, ca: str = "ca.pem", client: bool = True, auth: bool = True) -> str:
        lines = [f"MemSessionServers 127.0.0.1:{self.port}",
                 f"MemSessionTLSCAFile {self.root / ca}"]
        if client:
            lines.append(f"MemSessionTLSClientCertificate {self.root}/client.pem "
                         f"{self.root}/client.key")
        if auth:
            lines.append(f"MemSessionAuthFile {self.auth}")
        return "\n".join(lines) + "\n"


@pytest.fixture
def tls_memcached(components, paths):
    root = Path(tempfile.mkdtemp(prefix="memsession-tls-", dir=paths.root))
    server = TlsMemcached(components.memcached, root)
    try:
        yield server
    finally:
        server.stop()


def tls_httpd(another_httpd, tls_memcached, **directives):
    """An httpd whose only store is the TLS memcached (its MemSessionServers replaced)."""
    conf = tls_memcached.directives(**directives)
    server_line, rest = conf.split("\n", 1)
    return another_httpd(memcached_sock=server_line.split(" ", 1)[1], extra_conf="\n" + rest)


def test_sessions_ride_a_verified_authenticated_tls_memcached(another_httpd, tls_memcached):
    node = tls_httpd(another_httpd, tls_memcached)
    cookie = login_at(node, "alice")
    assert user_of(node.client, cookie) == "alice"
    # memsessionctl reads the same directives from httpd's configuration, finds the session
    # on that server, and can revoke over TLS.
    conf = ["--config", str(node.p.conf)]
    r = ctl.run([*conf, "session-info"], stdin=cookie)
    assert r.code == 0, r.describe()
    assert "validity: valid\nuser: alice\n" in r.stdout, r.describe()
    assert f"server: 127.0.0.1:{tls_memcached.port}\n" in r.stdout, r.describe()
    r = ctl.run([*conf, "revoke-user", "alice"])
    assert r.code == 0, r.describe()
    assert user_of(node.client, cookie) is None
    r = node.client.get("/app/index.html", cookie=login_at(node, "bob"))
    assert r.status == 200, r.describe()


def login_status(node) -> int:
    return node.client.get("/login", headers={"Authorization": basic("alice",
                                                                       site.USERS["alice"])}).status


@pytest.mark.parametrize("case", ["untrusted CA", "no credentials"])
def test_a_server_not_vouched_for_or_without_credentials_gets_nothing(another_httpd,
                                                                     tls_memcached, case):
    """A login answers 503 (no session without the store), the error log says why; nothing is
    sent to a server the CA did not vouch for."""
    directives = {"untrusted CA": {"ca": "other-ca.pem"}, "no credentials": {"auth": False}}
    node = tls_httpd(another_httpd, tls_memcached, **directives[case])
    assert login_status(node) == 503
    why = {"untrusted CA": "certificate", "no credentials": "unauthenticated"}[case]
    log = "\n".join(node.error_log.since(0))
    assert why in log and f"127.0.0.1:{tls_memcached.port}" in log, log[-3000:]


def test_bad_tls_and_auth_files_fail_configtest_naming_the_directive(httpd, tls_memcached):
    root = tls_memcached.root
    servers = f"MemSessionServers 127.0.0.1:{tls_memcached.port}\n"
    good = tls_memcached.directives()
    rc, out = httpd.configtest(good, server_directives=False)
    assert rc == 0, out
    open_auth = tls_memcached.private("open-auth", AUTH)
    os.chmod(open_auth, 0o644)
    open_key = root / "open-client.key"
    shutil.copy(root / "client.key", open_key)
    os.chmod(open_key, 0o644)
    cases = {
        "MemSessionTLSCAFile": f"MemSessionTLSCAFile {root}/client.key",
        "MemSessionAuthFile": f"MemSessionAuthFile {open_auth}",
        "MemSessionTLSClientCertificate": (f"MemSessionTLSClientCertificate {root}/client.pem "
                                           f"{open_key}"),
    }
    for directive, bad in cases.items():
        rc, out = httpd.configtest(servers + bad, server_directives=False)
        assert rc != 0, f"apache2 -t accepted {bad}:\n{out}"
        assert directive in out, out


def test_a_client_certificate_without_a_ca_stops_start_up(components, tls_memcached):
    root = Path(tempfile.mkdtemp(prefix="memsession-tls-noca-"))
    try:
        p = prepare_root(components, root)
        conf = (site.core(components, p, free_port(), True)
                + f"MemSessionTLSClientCertificate {tls_memcached.root}/client.pem "
                  f"{tls_memcached.root}/client.key\n")
        p.conf.write_text(conf)
        r = subprocess.run([components.apache2, "-d", str(root), "-f", str(p.conf),
                            "-DFOREGROUND"], capture_output=True, text=True, timeout=30)
        log = p.error_log.read_text(errors="replace") if p.error_log.exists() else ""
        assert r.returncode != 0, f"httpd started with a client certificate and no CA:\n{log}"
        assert "MemSessionTLSClientCertificate: needs MemSessionTLSCAFile" in log + r.stderr, \
            log + r.stderr
    finally:
        shutil.rmtree(root, ignore_errors=True)
