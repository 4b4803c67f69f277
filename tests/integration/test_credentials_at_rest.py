"""Users' Kerberos credentials never stay at rest: a file lent by a process that died mid-request
is swept, the auth module's copy goes when a login fails as when it succeeds, and a
MemSessionDelegationDir others can enter is refused at configuration time."""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

from harness import kdc, procs
from harness.httpd import restart

pytestmark = pytest.mark.module


@pytest.fixture
def neg(httpd, realm):
    """neg(path, ccache=None, **kw) -> kdc.CurlResult against this httpd (curl --negotiate)."""
    return lambda path, ccache=None, **kw: kdc.curl(realm, httpd.port, path, ccache=ccache, **kw)


def dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_a_file_lent_by_a_process_that_died_is_swept(httpd, realm, neg):
    www = pwd.getpwnam("www-data")
    stale = realm.p.delegation_dir / f"krb5cc_memsession_{dead_pid()}_leftoverOfAKilledChild"
    stale.write_bytes(b"a TGT lent to a request whose child was killed")
    os.chown(stale, www.pw_uid, www.pw_gid)
    os.chmod(stale, 0o600)
    # new children (a graceful restart) sweep the directory the first time they lend
    restart(httpd, signal.SIGUSR1)
    ccache = realm.kinit("alice")
    login = neg("/krb/login?return=/krb/app/krb.cgi", ccache, delegation="always")
    assert login.status == 303, login.describe()
    cookie = login.cookie().value
    start = httpd.error_log.size()
    for _ in range(4):  # every child of the threaded MPMs, or a few prefork children
        assert neg("/krb/app/krb.cgi", negotiate=False, cookie=cookie).env()["KLIST_S"] == "KLIST_OK"
        if not stale.exists():
            break
    assert not stale.exists(), f"{stale.name} is still at rest in MemSessionDelegationDir"
    assert any("ended mid-request" in line for line in httpd.error_log.since(start))
    kdc.wait_lent_dir_empty(realm)


def test_the_auth_modules_copy_goes_when_the_login_fails(realm, neg, store_fault):
    ccache = realm.kinit("alice")
    store_fault.stop()  # memcached silent: the login answers 503
    r = neg("/krb/login?return=/krb/app/krb.cgi", ccache, delegation="always")
    assert r.status == 503, r.describe()
    leftovers = lambda: [f.name for f in realm.p.deleg_dir.iterdir()]  # noqa: E731
    try:
        procs.wait_until("GssapiDelegCcacheDir empty", lambda: not leftovers() or None, 5.0)
    except procs.NotReady:
        pytest.fail(f"a failed login left delegated credentials at rest: {leftovers()}")


@pytest.mark.parametrize("mode", [0o755, 0o750, 0o711])
def test_a_delegation_dir_others_can_enter_fails_configtest(httpd, mode):
    with tempfile.TemporaryDirectory() as tmp:
        good, bad = Path(tmp) / "good", Path(tmp) / "bad"
        good.mkdir(mode=0o700)
        bad.mkdir()
        os.chmod(bad, mode)
        snippet = "<Location /x>\n    MemSessionDelegationDir {}\n</Location>"
        rc, out = httpd.configtest(snippet.format(good))
        assert rc == 0, out
        rc, out = httpd.configtest(snippet.format(bad))
        assert rc != 0, f"apache2 -t accepted a {mode:o} MemSessionDelegationDir:\n{out}"
        assert "MemSessionDelegationDir" in out and f"mode {mode:04o}" in out, out
        rc, out = httpd.configtest(snippet.format(Path(tmp) / "missing"))
        assert rc != 0 and "MemSessionDelegationDir" in out, out
