"""Headless Chromium and Firefox ESR as SPNEGO clients of the test realm.

Each run gets a fresh profile in the run's temp dir, KRB5_CONFIG/KRB5CCNAME of the test realm,
its own HOME, and a deadline; the browser runs in its own process group, killed when the
deadline passes. Nothing touches the machine's browser configuration: Chromium's managed policy
(needed for delegation) is bind-mounted over /etc/chromium/policies/managed inside a private
mount namespace (`unshare -m`), visible only to that one browser process.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from . import procs

PACKAGES = {"chromium": "chromium", "firefox-esr": "firefox-esr"}

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--auth-server-allowlist=localhost",
]
CHROMIUM_POLICY_DIR = "/etc/chromium/policies/managed"


def require(name: str) -> str:
    """The browser's path, or a failure naming the package (never a skip)."""
    path = shutil.which(name)
    if path is None:
        raise AssertionError(f"{name} not found: install the Debian package '{PACKAGES[name]}' "
                             "(build-aux/install-deps.sh does)")
    return path


@dataclass
class BrowserRun:
    argv: list[str]
    returncode: int | None  # None: killed at the deadline
    stdout: str
    stderr: str

    def describe(self) -> str:
        return (f"{' '.join(self.argv)}\n  exit: {self.returncode}\n  stdout: {self.stdout[-3000:]}"
                f"\n  stderr: {self.stderr[-3000:]}")


def _run(argv: list[str], env: dict[str, str], cwd: Path, deadline_s: float) -> BrowserRun:
    out, err = cwd / "browser.stdout", cwd / "browser.stderr"
    with open(out, "wb") as o, open(err, "wb") as e:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=o, stderr=e, env=env,
                                cwd=str(cwd), start_new_session=True)
    try:
        rc: int | None = proc.wait(timeout=deadline_s)
    except subprocess.TimeoutExpired:
        rc = None
    finally:
        procs.kill_group(proc, term_grace_s=3)  # the browser's helpers too
    return BrowserRun(argv=argv, returncode=rc, stdout=out.read_text(errors="replace"),
                      stderr=err.read_text(errors="replace"))


def _env(client_env: dict[str, str], home: Path) -> dict[str, str]:
    env = dict(client_env)
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"),
               XDG_CACHE_HOME=str(home / ".cache"), LANG="C.UTF-8")
    for k in ("DISPLAY", "WAYLAND_DISPLAY", "DBUS_SESSION_BUS_ADDRESS"):
        env.pop(k, None)
    return env


def chromium(url: str, client_env: dict[str, str], work: Path, delegate: bool = True,
             deadline_s: float = 60) -> BrowserRun:
    """`chromium --headless --dump-dom URL` in a fresh profile whose Local State already has
    net.received_http_auth_negotiate_headers=true (else a fresh profile keeps GSSAPI unloaded
    and answers the first Negotiate with the 401). delegate=True adds the managed policy
    AuthNegotiateDelegateAllowlist=localhost, private to this process (unshare -m + bind)."""
    exe = require("chromium")
    profile = work / "chromium-profile"
    profile.mkdir(parents=True, exist_ok=True)
    (profile / "Local State").write_text(json.dumps(
        {"net": {"received_http_auth_negotiate_headers": True}}))
    home = work / "home"
    home.mkdir(exist_ok=True)
    browser = [exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=10000",
               "--dump-dom", url]
    if not delegate:
        return _run(browser, _env(client_env, home), work, deadline_s)
    policies = work / "chromium-policies"
    policies.mkdir(exist_ok=True)
    (policies / "memsession-test.json").write_text(json.dumps({
        "AuthServerAllowlist": "localhost",
        "AuthNegotiateDelegateAllowlist": "localhost",
    }))
    os.chmod(policies, 0o755)
    script = ('set -e; mkdir -p "$1"; mount --bind "$2" "$1"; shift 2; exec "$@"')
    argv = ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh",
            CHROMIUM_POLICY_DIR, str(policies), *browser]
    return _run(argv, _env(client_env, home), work, deadline_s)


FIREFOX_PREFS = {
    "network.negotiate-auth.trusted-uris": "localhost",
    "network.negotiate-auth.delegation-uris": "localhost",
    "network.negotiate-auth.allow-non-fqdn": True,
    # a quiet, offline-ish profile
    "browser.shell.checkDefaultBrowser": False,
    "browser.startup.homepage_override.mstone": "ignore",
    "datareporting.policy.dataSubmissionEnabled": False,
    "toolkit.telemetry.reportingpolicy.firstRun": False,
    "app.update.enabled": False,
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "browser.safebrowsing.malware.enabled": False,
    "browser.safebrowsing.phishing.enabled": False,
    "extensions.update.enabled": False,
    "network.dns.disableIPv6": True,
}


def firefox(url: str, client_env: dict[str, str], work: Path, deadline_s: float = 90) -> BrowserRun:
    """`firefox-esr --headless --screenshot` in a fresh profile whose user.js trusts localhost
    for Negotiate and delegation (and allows the non-FQDN name)."""
    exe = require("firefox-esr")
    profile = work / "firefox-profile"
    profile.mkdir(parents=True, exist_ok=True)
    (profile / "user.js").write_text("".join(
        f"user_pref({json.dumps(k)}, {json.dumps(v)});\n" for k, v in FIREFOX_PREFS.items()))
    home = work / "home"
    home.mkdir(exist_ok=True)
    shot = work / "firefox.png"
    argv = [exe, "--headless", "--no-remote", "--profile", str(profile), "--screenshot",
            str(shot), url]
    env = _env(client_env, home)
    env["MOZ_HEADLESS"] = "1"
    return _run(argv, env, work, deadline_s)
