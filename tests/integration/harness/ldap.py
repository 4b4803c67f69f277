"""A throwaway OpenLDAP directory (Debian's slapd) on loopback, for the canonical-name tests:
mod_authnz_ldap as the form login's authn provider, a real directory behind it.

slapd runs from a slapd.conf in its own directory (mdb database, the stock core, cosine and
inetorgperson schemas), in the foreground of its own process group, on a free port; entries are
added with ldapadd as the directory's root DN, as an administrator would. Nothing is skipped:
what is missing is reported by missing() and fails the run (harness/components.py).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from . import procs
from .kdc import free_port

SUFFIX = "dc=example,dc=test"
PEOPLE = f"ou=people,{SUFFIX}"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PW = "directory-admin-pw"
SCHEMA_DIR = Path("/etc/ldap/schema")
MODULE_DIR = Path("/usr/lib/ldap")
# MEMSESSION_SLAPD names another slapd (and lets a test of the harness name a missing one).
SLAPD = os.environ.get("MEMSESSION_SLAPD", "/usr/sbin/slapd")
HTTPD_MODULES = ("mod_ldap.so", "mod_authnz_ldap.so")


def missing(modules_dir: Path) -> list[str]:
    """What the LDAP tests need and cannot find, each with the package that provides it."""
    problems = []
    if not Path(SLAPD).is_file():
        problems.append(f"{SLAPD} not found (install the Debian package 'slapd')")
    for tool in ("ldapadd", "ldapsearch"):
        if shutil.which(tool) is None:
            problems.append(f"{tool} not found (install the Debian package 'ldap-utils')")
    for schema in ("core.schema", "cosine.schema", "inetorgperson.schema"):
        if not (SCHEMA_DIR / schema).is_file():
            problems.append(f"{SCHEMA_DIR / schema} not found (install the Debian package 'slapd')")
    if not (MODULE_DIR / "back_mdb.la").exists() and not (MODULE_DIR / "back_mdb.so").exists():
        problems.append(f"{MODULE_DIR}/back_mdb not found (install the Debian package 'slapd')")
    for so in HTTPD_MODULES:
        if not (modules_dir / so).is_file():
            problems.append(f"httpd module {modules_dir / so} not found (Debian's 'apache2-bin')")
    return problems


class Directory(procs.GroupProcess):
    """slapd serving SUFFIX at ldap://127.0.0.1:<port>/ from `root`."""

    def __init__(self, root: Path):
        self.root = root
        self.port = 0

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    def _conf(self) -> str:
        return "\n".join([
            *(f"include {SCHEMA_DIR / s}" for s in ("core.schema", "cosine.schema",
                                                     "inetorgperson.schema")),
            f"pidfile {self.root / 'slapd.pid'}",
            f"argsfile {self.root / 'slapd.args'}",
            f"modulepath {MODULE_DIR}",
            "moduleload back_mdb",
            "database mdb",
            "maxsize 10485760",
            f'suffix "{SUFFIX}"',
            f'rootdn "{ROOT_DN}"',
            f"rootpw {ROOT_PW}",
            f"directory {self.root / 'db'}",
            "index uid eq",
            # Anyone may search and bind (what mod_authnz_ldap's anonymous search then bind as
            # the user does); nobody but the root DN may read a password.
            "access to attrs=userPassword by anonymous auth by * none",
            "access to * by * read",
            "",
        ])

    def start(self) -> None:
        (self.root / "db").mkdir(parents=True, exist_ok=True)
        conf = self.root / "slapd.conf"
        conf.write_text(self._conf())
        log = str(self.root / "slapd.log")
        for _ in range(3):
            self.port = free_port()
            self.proc = procs.spawn([SLAPD, "-d", "0", "-f", str(conf), "-h", f"{self.url}/"], log)

            def dead() -> str | None:
                if self.alive():
                    return None
                return "slapd exited:\n" + Path(log).read_text(errors="replace")[-3000:]

            try:
                procs.wait_until("slapd answers", self._answers, 15, alive=dead)
                return
            except procs.NotReady:
                self.stop()
                if "Address already in use" not in Path(log).read_text(errors="replace"):
                    raise
        raise procs.NotReady("slapd could not bind a free port three times")

    def _answers(self) -> bool:
        r = subprocess.run(["ldapsearch", "-x", "-H", self.url, "-b", "", "-s", "base",
                            "(objectClass=*)", "namingContexts"],
                           capture_output=True, text=True, timeout=5)
        return r.returncode == 0

    def add(self, ldif: str) -> None:
        r = subprocess.run(["ldapadd", "-x", "-H", self.url, "-D", ROOT_DN, "-w", ROOT_PW],
                           input=ldif, capture_output=True, text=True, timeout=15)
        if r.returncode != 0:
            raise AssertionError(f"ldapadd failed ({r.returncode}):\n{r.stderr}\n{ldif}")

    def add_base(self) -> None:
        self.add(f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\n"
                 "dc: example\no: Example\n\n"
                 f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n")

    def add_user(self, uid: str, password: str) -> None:
        self.add(f"dn: uid={uid},{PEOPLE}\nobjectClass: inetOrgPerson\nuid: {uid}\n"
                 f"cn: {uid}\nsn: {uid}\nuserPassword: {password}\n")
