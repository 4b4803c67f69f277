"""MemSessionSecretFile: a secret anyone but root could read, a short one, a missing one, or none at
all stops httpd with a message naming the directive; the previous secret keeps its sessions
valid through a rotation, and memsessionctl revokes under both."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from harness import ctl, site
from harness.httpd import Httpd, free_port, prepare_root

pytestmark = pytest.mark.module

DIRECTIVE = "MemSessionSecretFile"


def _secret(dir_: Path, name: str, content: bytes, mode: int = 0o600,
            owner: str | None = None) -> Path:
    path = dir_ / name
    path.write_bytes(content)
    os.chmod(path, mode)
    if owner:
        shutil.chown(path, owner, owner)
    return path


@pytest.fixture(scope="module")
def secrets_dir(paths):
    d = Path(tempfile.mkdtemp(prefix="secrets-", dir=paths.root))
    yield d
    shutil.rmtree(d, ignore_errors=True)


BAD = {
    "group-readable": (0o640, None, 32, "mode 0640"),
    "world-readable": (0o644, None, 32, "mode 0644"),
    "not root's": (0o600, "www-data", 32, "owned by uid"),
    "short": (0o600, None, 31, "holds 31 bytes"),
}


@pytest.mark.parametrize("case", BAD)
def test_a_secret_others_could_read_or_too_short_fails_configtest(httpd, secrets_dir, case):
    mode, owner, size, problem = BAD[case]
    bad = _secret(secrets_dir, f"bad-{case}".replace(" ", "-").replace("'", ""),
                  os.urandom(size), mode, owner)
    good = _secret(secrets_dir, "good", os.urandom(32))
    servers = f"MemSessionServers unix:{httpd.p.memcached_sock}\n"
    rc, out = httpd.configtest(servers + f"{DIRECTIVE} {good}", server_directives=False)
    assert rc == 0, out
    rc, out = httpd.configtest(servers + f"{DIRECTIVE} {bad}", server_directives=False)
    assert rc != 0, f"apache2 -t accepted the secret {case}:\n{out}"
    assert DIRECTIVE in out and problem in out, out
    # the previous secret is checked the same way
    rc, out = httpd.configtest(servers + f"{DIRECTIVE} {good} {bad}", server_directives=False)
    assert rc != 0 and DIRECTIVE in out and problem in out, out
    rc, out = httpd.configtest(servers + f"{DIRECTIVE} {secrets_dir / 'missing'}",
                               server_directives=False)
    assert rc != 0 and DIRECTIVE in out and "cannot open" in out, out


def test_without_a_secret_httpd_refuses_to_start_naming_the_directive(components):
    root = Path(tempfile.mkdtemp(prefix="memsession-nosecret-"))
    try:
        p = prepare_root(components, root)
        conf = (site.core(components, p, free_port(), True, server_directives=False)
                + f"MemSessionServers unix:{p.memcached_sock}\n")
        p.conf.write_text(conf)
        r = subprocess.run([components.apache2, "-d", str(root), "-f", str(p.conf),
                            "-DFOREGROUND"], capture_output=True, text=True, timeout=30)
        log = p.error_log.read_text(errors="replace") if p.error_log.exists() else ""
        assert r.returncode != 0, f"httpd started without a server secret:\n{log}"
        assert f"{DIRECTIVE}: is not set" in log + r.stderr, log + r.stderr
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_rotation_keeps_old_sessions_and_issues_new_ones_under_the_new_secret(
        components, memcached, backend, login, client, store):
    old_cookie = login("alice")
    assert client.get("/app/env.cgi", cookie=old_cookie).status == 200
    root = Path(tempfile.mkdtemp(prefix="memsession-rotated-"))
    server = None
    try:
        p = prepare_root(components, root)
        new_secret = _secret(root / "conf", "new.secret", os.urandom(32))
        conf_extra = f"MemSessionSecretFile {new_secret} {p.secret_file}\n"
        server = RotatedHttpd(components, p, backend.port, memcached_sock=Path(memcached.sock_path),
                              kerberos=False, rotated=conf_extra)
        server.start()
        # a session issued under the previous secret is still valid on the rotated node
        r = server.client.get("/app/env.cgi", cookie=old_cookie)
        assert r.env()["REMOTE_USER"] == "alice"
        # a new login is issued under the new secret: the old-secret node does not know it
        new = server.client.get("/login", headers={"Authorization": _basic("bob")})
        new_cookie = new.cookie("memsession").value
        assert server.client.get("/app/env.cgi", cookie=new_cookie).status == 200
        assert client.get("/app/env.cgi", cookie=new_cookie).status == 401
        # revoke-user with both secrets ends the user's sessions under either
        revoke = ctl.run(["--servers", f"unix:{memcached.sock_path}", "--secret-file",
                          f"{new_secret},{p.secret_file}", "revoke-user", "alice"])
        assert revoke.code == 0, revoke.describe()
        assert server.client.get("/app/env.cgi", cookie=old_cookie).status == 401
        # logout on the rotated node deletes an old-secret session too
        second = login("bob")
        out = server.client.post("/logout", cookie=second,
                                 headers={"Origin": server.origin})
        assert out.status in (200, 303), out.describe()
        assert client.get("/app/env.cgi", cookie=second).status == 401
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(root, ignore_errors=True)


def _basic(user: str) -> str:
    from harness.http import basic
    return basic(user, site.USERS[user])


class RotatedHttpd(Httpd):
    """A node whose MemSessionSecretFile names a new secret first and the run's as previous."""

    def __init__(self, *args, rotated: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.rotated = rotated

    def _write_conf(self) -> None:
        super()._write_conf()
        text = self.p.conf.read_text()
        line = f'MemSessionSecretFile "{self.p.secret_file}"\n'
        assert line in text
        self.p.conf.write_text(text.replace(line, self.rotated))
