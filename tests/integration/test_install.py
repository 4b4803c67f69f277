"""`make install DESTDIR=...` lays out what a Debian package would, without root."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from harness.components import REPO

pytestmark = pytest.mark.module


def make_install(destdir: Path, *extra: str) -> subprocess.CompletedProcess:
    make = shutil.which("make")
    assert make, "make not found (install the Debian package 'make')"
    r = subprocess.run([make, "-C", str(REPO), "install", f"DESTDIR={destdir}", *extra],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, f"make install failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


def libexecdir() -> str:
    apxs = shutil.which("apxs") or shutil.which("apxs2")
    if apxs:
        out = subprocess.run([apxs, "-q", "LIBEXECDIR"], capture_output=True, text=True,
                             timeout=30).stdout.strip()
        if out:
            return out
    return "/usr/lib/apache2/modules"


def test_make_install_lays_out_a_debian_package():
    destdir = Path(tempfile.mkdtemp(prefix="memsession-install-"))
    try:
        make_install(destdir)
        expected = {
            f"{libexecdir()}/mod_auth_memsession.so": 0o644,
            "/etc/apache2/mods-available/auth_memsession.load": 0o644,
            "/etc/apache2/mods-available/auth_memsession.conf": 0o644,
            "/usr/sbin/memsessionctl": 0o755,
            "/lib/systemd/system/memsession-memcached.service": 0o644,
            "/usr/lib/tmpfiles.d/memsession.conf": 0o644,
            "/usr/share/doc/mod-auth-memsession/directives.md": 0o644,
            "/usr/share/doc/mod-auth-memsession/README.md": 0o644,
            "/usr/share/doc/mod-auth-memsession/example-site.conf": 0o644,
            # fail2ban's filter and jail, as examples only: nothing is enabled
            "/usr/share/doc/mod-auth-memsession/fail2ban/filter.d/apache-memsession.conf": 0o644,
            "/usr/share/doc/mod-auth-memsession/fail2ban/jail.d/apache-memsession.conf": 0o644,
        }
        for path, mode in expected.items():
            f = destdir / path.lstrip("/")
            assert f.is_file(), f"make install did not lay out {path}"
            assert stat.S_IMODE(f.stat().st_mode) == mode, f"{path}: mode {oct(f.stat().st_mode)}"
        installed = {str(p.relative_to(destdir)) for p in destdir.rglob("*") if p.is_file()}
        assert installed == {p.lstrip("/") for p in expected}, "unexpected files installed"

        load = (destdir / "etc/apache2/mods-available/auth_memsession.load").read_text()
        assert f"{libexecdir()}/mod_auth_memsession.so" in load
        ctl = destdir / "usr/sbin/memsessionctl"
        r = subprocess.run([str(ctl), "--help"], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0 and "revoke-user" in r.stdout

        unit = (destdir / "lib/systemd/system/memsession-memcached.service").read_text()
        assert "-s /run/memsession/memcached.sock -a 0700" in unit
        assert "User=www-data" in unit and "[Install]" in unit
        tmpfiles = (destdir / "usr/lib/tmpfiles.d/memsession.conf").read_text()
        assert "d      /run/memsession        0750 www-data www-data" in tmpfiles
        assert "/run/memsession/ccache 0700 www-data www-data" in tmpfiles
    finally:
        shutil.rmtree(destdir, ignore_errors=True)


def test_prefix_moves_the_tools_not_the_apache_files():
    destdir = Path(tempfile.mkdtemp(prefix="memsession-install-"))
    try:
        make_install(destdir, "PREFIX=/usr/local")
        assert (destdir / "usr/local/sbin/memsessionctl").is_file()
        assert (destdir / "usr/local/share/doc/mod-auth-memsession/directives.md").is_file()
        assert (destdir / "etc/apache2/mods-available/auth_memsession.load").is_file()
        assert not (destdir / "usr/sbin").exists()
        assert os.access(destdir / "usr/local/sbin/memsessionctl", os.X_OK)
    finally:
        shutil.rmtree(destdir, ignore_errors=True)
