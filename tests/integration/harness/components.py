"""Where the things under test live, and a loud failure when one is missing.

Nothing here skips: a missing apache2, memcached, htpasswd or built module fails the run with
a message that says what is missing and how to get it (under CI=true and without it alike).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
APACHE_MODULES = Path(os.environ.get("MEMSESSION_APACHE_MODULES", "/usr/lib/apache2/modules"))
MPMS = ("event", "worker", "prefork")


def truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Components:
    apache2: str
    memcached: str
    htpasswd: str
    module: Path | None  # None only in harness-only mode
    modules_dir: Path
    mpm: str
    harness_only: bool

    @property
    def threaded(self) -> bool:
        return self.mpm != "prefork"


def _which(env: str, name: str, fallback: str) -> str | None:
    explicit = os.environ.get(env)
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    return shutil.which(name) or (fallback if os.access(fallback, os.X_OK) else None)


def resolve() -> tuple[Components | None, list[str]]:
    """Find every component; return (components, problems). Problems non-empty means: fail."""
    problems: list[str] = []
    harness_only = truthy(os.environ.get("MEMSESSION_HARNESS_ONLY"))
    if harness_only and truthy(os.environ.get("CI")):
        problems.append("MEMSESSION_HARNESS_ONLY is set under CI=true: it exists to develop the "
                        "harness without the module and would leave the module untested")
    mpm = os.environ.get("MEMSESSION_MPM", "event").strip() or "event"
    if mpm not in MPMS:
        problems.append(f"MEMSESSION_MPM={mpm!r} is not one of {', '.join(MPMS)}")

    apache2 = _which("MEMSESSION_APACHE2", "apache2", "/usr/sbin/apache2")
    if not apache2:
        problems.append("apache2 not found (install the Debian package 'apache2')")
    memcached = _which("MEMSESSION_MEMCACHED", "memcached", "/usr/bin/memcached")
    if not memcached:
        problems.append("memcached not found (install the Debian package 'memcached')")
    htpasswd = _which("MEMSESSION_HTPASSWD", "htpasswd", "/usr/bin/htpasswd")
    if not htpasswd:
        problems.append("htpasswd not found (install the Debian package 'apache2-utils')")

    needed = ["mod_authn_core.so", "mod_authn_file.so", "mod_authz_core.so", "mod_authz_user.so",
              "mod_auth_basic.so", "mod_alias.so", "mod_mime.so", "mod_proxy.so",
              "mod_proxy_http.so"]
    if mpm in MPMS:
        needed.append(f"mod_mpm_{mpm}.so")
        needed.append("mod_cgi.so" if mpm == "prefork" else "mod_cgid.so")
    for so in needed:
        if not (APACHE_MODULES / so).is_file():
            problems.append(f"httpd module {APACHE_MODULES / so} not found")

    module: Path | None = None
    if not harness_only:
        module = Path(os.environ.get("MEMSESSION_MODULE", REPO / "build" / "mod_auth_memsession.so"))
        if not module.is_file():
            problems.append(
                f"the module under test {module} does not exist: build it with `make` at the "
                "repository root (or set MEMSESSION_MODULE); to check only the harness without the "
                "module, set MEMSESSION_HARNESS_ONLY=1")
    if problems:
        return None, problems
    return Components(apache2=apache2, memcached=memcached, htpasswd=htpasswd, module=module,
                      modules_dir=APACHE_MODULES, mpm=mpm, harness_only=harness_only), []
