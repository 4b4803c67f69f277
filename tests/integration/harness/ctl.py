"""memsessionctl, the admin command built from this crate, run as an administrator would.

The binary is MEMSESSIONCTL when set; otherwise it is built (cargo, release profile, a no-op
when up to date) from this repository. A failing build fails the tests: nothing is skipped.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from . import site
from .components import REPO

_BUILT: dict[str, str] = {}


def binary() -> str:
    explicit = os.environ.get("MEMSESSIONCTL")
    if explicit:
        if not os.access(explicit, os.X_OK):
            raise AssertionError(f"MEMSESSIONCTL={explicit} is not an executable")
        return explicit
    if "path" not in _BUILT:
        cargo = shutil.which("cargo")
        if not cargo:
            raise AssertionError("cargo not found: build memsessionctl (cargo build --release "
                                 "--bin memsessionctl) or set MEMSESSIONCTL")
        r = subprocess.run([cargo, "build", "--release", "--quiet", "--bin", "memsessionctl"],
                           cwd=REPO, capture_output=True, text=True, timeout=900)
        if r.returncode != 0:
            raise AssertionError(f"cargo build --bin memsessionctl failed:\n{r.stderr[-3000:]}")
        _BUILT["path"] = str(REPO / "target" / "release" / "memsessionctl")
    return _BUILT["path"]


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str
    argv: list[str]

    def describe(self) -> str:
        return (f"$ {' '.join(self.argv)}\nexit {self.code}\n--- stdout\n{self.stdout}"
                f"--- stderr\n{self.stderr}")


def run(args: list[str], stdin: str | None = None, timeout_s: float = 30) -> Result:
    argv = [binary(), *args]
    r = subprocess.run(argv, input=stdin if stdin is not None else "", capture_output=True,
                       text=True, timeout=timeout_s, env={**os.environ, "LANG": "C"})
    return Result(r.returncode, r.stdout, r.stderr, argv)


def secret_file() -> str:
    """The run's server secret (site.SECRET) in a root-only file, as memsessionctl wants it."""
    if "secret" not in _BUILT:
        fd, path = tempfile.mkstemp(prefix="memsession-ctl-secret-")  # mode 0600
        with os.fdopen(fd, "wb") as f:
            f.write(site.SECRET)
        atexit.register(os.unlink, path)
        _BUILT["secret"] = path
    return _BUILT["secret"]


def for_socket(sock: Path | str, prefix: str = "memsession:"):
    """run() bound to one memcached socket, key prefix and the run's secret."""

    def do(*args: str, stdin: str | None = None) -> Result:
        return run(["--servers", f"unix:{sock}", "--prefix", prefix,
                    "--secret-file", secret_file(), *args], stdin=stdin)

    return do
