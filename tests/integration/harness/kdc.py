"""A throwaway MIT Kerberos realm per test run: its own krb5.conf and database in the run's temp
dir, krb5kdc on a free loopback port in its own process group, principals for alice, bob and the
service HTTP/localhost (keytab readable by www-data only), killed in a finalizer.

Nothing here reads /etc/krb5.conf or the system's default ccache: every client gets KRB5_CONFIG
and its own KRB5CCNAME (see Realm.client_env / Realm.kinit).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from . import procs

REALM = "MEMSESSION.TEST"
SERVICE = f"HTTP/localhost@{REALM}"
PASSWORDS = {"alice": "alice-krb-pw", "bob": "bob-krb-pw", "carol": "carol-krb-pw"}
# carol's tickets last SHORT_LIFE_S at most (a password login's TGT caps its session).
SHORT_LIFE_USER = "carol"
SHORT_LIFE_S = 8
# A realm whose only KDC is a loopback port nothing listens on.
DOWN_REALM = "DOWN.TEST"
# A realm whose only KDC takes connections and never answers: libkrb5 waits about 25 s.
SILENT_REALM = "SILENT.TEST"
MASTER_PASSWORD = "memsession-throwaway-master"
# The KDC's longest ticket; short enough that nothing outlives the run by much.
MAX_LIFE = "1h"
HTTPD_USER = "www-data"

# Debian package that provides each program (for a loud failure when one is missing).
PROGRAMS = {
    "krb5kdc": "krb5-kdc",
    "kdb5_util": "krb5-kdc",
    "kadmin.local": "krb5-admin-server",
    "kinit": "krb5-user",
    "klist": "krb5-user",
    "kdestroy": "krb5-user",
    "kvno": "krb5-user",
    "ktutil": "krb5-user",
}
GSSAPI_MODULE = "mod_auth_gssapi.so"


def find_program(name: str) -> str | None:
    return shutil.which(name) or next(
        (str(Path(d) / name) for d in ("/usr/sbin", "/usr/bin", "/sbin")
         if os.access(Path(d) / name, os.X_OK)), None)


def missing(modules_dir: Path) -> list[str]:
    """What the Kerberos tests need and cannot find, each with the package that provides it."""
    problems = [f"{name} not found (install the Debian package '{pkg}')"
                for name, pkg in PROGRAMS.items() if find_program(name) is None]
    if not (modules_dir / GSSAPI_MODULE).is_file():
        problems.append(f"{modules_dir / GSSAPI_MODULE} not found (install the Debian package "
                        "'libapache2-mod-auth-gssapi')")
    if shutil.which("curl") is None:
        problems.append("curl not found (install the Debian package 'curl')")
    return problems


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _chown_httpd(path: Path, mode: int) -> None:
    pw = pwd.getpwnam(HTTPD_USER)
    os.chown(path, pw.pw_uid, pw.pw_gid)
    os.chmod(path, mode)


@dataclass(frozen=True)
class RealmPaths:
    """Where the realm lives inside the run's ServerRoot (site.py renders the same paths)."""
    dir: Path

    @property
    def krb5_conf(self) -> Path:
        return self.dir / "krb5.conf"

    @property
    def kdc_conf(self) -> Path:
        return self.dir / "kdc.conf"

    @property
    def database(self) -> Path:
        return self.dir / "principal"

    @property
    def keytab(self) -> Path:
        """HTTP/localhost's key: owned by www-data, 0600."""
        return self.dir / "http.keytab"

    @property
    def wrong_keytab(self) -> Path:
        """HTTP/localhost with a key the KDC never had: what a spoofed KDC's answers would be
        checked against (www-data, 0600)."""
        return self.dir / "wrong.keytab"

    @property
    def deleg_dir(self) -> Path:
        """mod_auth_gssapi's GssapiDelegCcacheDir (www-data, 0700)."""
        return self.dir / "deleg"

    @property
    def delegation_dir(self) -> Path:
        """MemSessionDelegationDir: where the module lends ccaches to backends (www-data, 0700)."""
        return self.dir / "lent"

    @property
    def rcache_dir(self) -> Path:
        """KRB5RCACHEDIR for httpd: the acceptor's replay cache, private to this run."""
        return self.dir / "rcache"

    @property
    def ccaches(self) -> Path:
        """Client caches (one per kinit)."""
        return self.dir / "clients"

    @property
    def kdc_log(self) -> Path:
        return self.dir / "kdc.log"


class Realm(procs.GroupProcess):
    def __init__(self, root: Path, realm: str = REALM):
        self.realm = realm
        self.p = RealmPaths(root)
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self._n = 0
        # SILENT_REALM's KDC: connections complete in the backlog and are never read.
        self.silent_kdc = socket.socket()
        self.silent_kdc.bind(("127.0.0.1", 0))
        self.silent_kdc.listen(64)

    # -- set-up ------------------------------------------------------------------------------

    def _write_confs(self) -> None:
        p, r = self.p, self.realm
        p.krb5_conf.write_text(f"""[libdefaults]
    default_realm = {r}
    dns_lookup_kdc = false
    dns_lookup_realm = false
    dns_canonicalize_hostname = false
    rdns = false
    ignore_acceptor_hostname = true
    forwardable = true
    udp_preference_limit = 1
    clockskew = 300
    default_ccache_name = FILE:{p.ccaches}/default

[realms]
    {r} = {{
        kdc = 127.0.0.1:{self.port}
        admin_server = 127.0.0.1:{self.port}
    }}
    {DOWN_REALM} = {{
        kdc = 127.0.0.1:1
    }}
    {SILENT_REALM} = {{
        kdc = 127.0.0.1:{self.silent_kdc.getsockname()[1]}
    }}

[domain_realm]
    localhost = {r}
    .localhost = {r}
""")
        p.kdc_conf.write_text(f"""[kdcdefaults]
    kdc_listen = 127.0.0.1:{self.port}
    kdc_tcp_listen = 127.0.0.1:{self.port}

[realms]
    {r} = {{
        database_name = {p.database}
        key_stash_file = {p.dir}/stash
        acl_file = {p.dir}/kadm5.acl
        max_life = {MAX_LIFE}
        max_renewable_life = 0
        supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal
    }}

[logging]
    kdc = FILE:{p.kdc_log}
""")
        (p.dir / "kadm5.acl").write_text("")
        for f in (p.krb5_conf, p.kdc_conf):
            os.chmod(f, 0o644)

    def env(self) -> dict[str, str]:
        """Environment for the realm's admin tools and the KDC."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("KRB5")}
        env.update(KRB5_CONFIG=str(self.p.krb5_conf), KRB5_KDC_PROFILE=str(self.p.kdc_conf),
                   KRB5CCNAME=f"FILE:{self.p.ccaches}/admin-unused", LANG="C")
        return env

    def server_env(self) -> dict[str, str]:
        """What httpd must be started with (mod_auth_gssapi and libkrb5 read it in the child)."""
        return {"KRB5_CONFIG": str(self.p.krb5_conf), "KRB5RCACHEDIR": str(self.p.rcache_dir)}

    def _run(self, argv: list[str], stdin: str | None = None) -> str:
        r = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=60,
                           env=self.env(), cwd=str(self.p.dir))
        if r.returncode != 0:
            raise procs.NotReady(f"{' '.join(argv)} failed ({r.returncode}):\n{r.stdout}{r.stderr}")
        return r.stdout

    def kadmin(self, query: str) -> str:
        return self._run([find_program("kadmin.local"), "-r", self.realm, "-q", query])

    def start(self) -> None:
        absent = [f"{name} not found (install the Debian package '{pkg}')"
                  for name, pkg in PROGRAMS.items() if find_program(name) is None]
        if absent:
            raise procs.NotReady("the test realm cannot start: " + "; ".join(absent))
        self.p.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.p.dir, 0o755)
        self.p.ccaches.mkdir(exist_ok=True)
        for attempt in range(3):
            self.port = free_port()
            self._write_confs()
            if attempt == 0:
                self._run([find_program("kdb5_util"), "-r", self.realm, "create", "-s",
                           "-P", MASTER_PASSWORD])
                for user, password in PASSWORDS.items():
                    self.kadmin(f"addprinc -pw {password} {user}@{self.realm}")
                self.kadmin(f'modprinc -maxlife "{SHORT_LIFE_S} seconds" '
                            f"{SHORT_LIFE_USER}@{self.realm}")
                self.kadmin(f"addprinc -randkey {SERVICE.replace(REALM, self.realm)}")
                self.kadmin(f"ktadd -k {self.p.keytab} HTTP/localhost@{self.realm}")
                _chown_httpd(self.p.keytab, 0o600)
                self._write_wrong_keytab()
                for d in (self.p.deleg_dir, self.p.delegation_dir, self.p.rcache_dir):
                    d.mkdir(exist_ok=True)
                    _chown_httpd(d, 0o700)
            self.proc = procs.spawn([find_program("krb5kdc"), "-n", "-r", self.realm],
                                    str(self.p.dir / "krb5kdc.stdout"), cwd=str(self.p.dir),
                                    env=self.env())
            try:
                self._wait_ready()
                return
            except procs.NotReady as exc:
                log = self._log_tail()
                self.stop()
                if "Address already in use" in log and attempt < 2:
                    continue
                raise procs.NotReady(f"krb5kdc did not come up on 127.0.0.1:{self.port}: {exc}\n"
                                     f"{log}")

    def _write_wrong_keytab(self) -> None:
        # kvno 2 is the real key's (addprinc -randkey, then ktadd): same name and version,
        # another key.
        self._run([find_program("ktutil")],
                  stdin=f"addent -password -p HTTP/localhost@{self.realm} -k 2 "
                        "-e aes256-cts-hmac-sha1-96\nnot-the-service-key\n"
                        f"wkt {self.p.wrong_keytab}\nquit\n")
        _chown_httpd(self.p.wrong_keytab, 0o600)

    def _log_tail(self) -> str:
        out = []
        for f in (self.p.kdc_log, self.p.dir / "krb5kdc.stdout"):
            try:
                out.append(f.read_text(errors="replace")[-3000:])
            except OSError:
                pass
        return "\n".join(out)

    def _wait_ready(self) -> None:
        def probe() -> bool:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True

        def dead() -> str | None:
            if self.proc is not None and self.proc.poll() is not None:
                return f"krb5kdc exited with {self.proc.returncode}"
            return None

        procs.wait_until(f"krb5kdc on 127.0.0.1:{self.port}", probe, 15, interval_s=0.05,
                         alive=dead)

    # -- clients -----------------------------------------------------------------------------

    def new_ccache(self, name: str = "cc") -> Path:
        """A fresh, unused ccache path (FILE:) for one client."""
        self._n += 1
        return self.p.ccaches / f"{name}-{os.getpid()}-{self._n}"

    def client_env(self, ccache: Path | str | None) -> dict[str, str]:
        """Environment for a client (curl, klist, a browser) bound to this realm and `ccache`.
        ccache=None: a cache that does not exist (no credentials at all)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("KRB5")}
        env["KRB5_CONFIG"] = str(self.p.krb5_conf)
        env["KRB5CCNAME"] = f"FILE:{ccache if ccache is not None else self.new_ccache('none')}"
        env["LANG"] = "C"
        return env

    def kinit(self, user: str = "alice", lifetime: str | None = None,
              ccache: Path | None = None, password: str | None = None,
              extra: list[str] | None = None) -> Path:
        """kinit -f, password on stdin, into a fresh (or the given) FILE ccache: its path."""
        ccache = ccache or self.new_ccache(user)
        argv = [find_program("kinit"), "-f"]
        if lifetime:
            argv += ["-l", lifetime]
        argv += (extra or []) + [f"{user}@{self.realm}"]
        r = subprocess.run(argv, input=(password or PASSWORDS[user]) + "\n", capture_output=True,
                           text=True, timeout=30, env=self.client_env(ccache))
        if r.returncode != 0:
            raise AssertionError(f"kinit {user} failed ({r.returncode}): {r.stdout}{r.stderr}")
        return ccache

    def klist(self, ccache: Path) -> str:
        r = subprocess.run([find_program("klist"), "-f"], capture_output=True, text=True,
                           timeout=30, env=self.client_env(ccache))
        return r.stdout + r.stderr


def lent_files(realm: Realm) -> list[str]:
    """What MemSessionDelegationDir holds now."""
    return sorted(p.name for p in realm.p.delegation_dir.iterdir())


def wait_lent_dir_empty(realm: Realm, deadline_s: float = 5.0) -> None:
    """The lent ccache is removed by the request pool's cleanup, just after the response."""
    try:
        procs.wait_until("MemSessionDelegationDir empty", lambda: not lent_files(realm) or None,
                         deadline_s)
    except procs.NotReady:
        raise AssertionError(f"lent ccache(s) left behind after the request: {lent_files(realm)}")


# -- curl as the Negotiate client --------------------------------------------------------------

@dataclass
class CurlResult:
    """Every response curl saw for one command (a Negotiate exchange is 401, then the answer)."""
    statuses: list[int]
    headers: list[list[tuple[str, str]]]  # per response
    requests: list[list[tuple[str, str]]]  # headers curl sent, per request
    body: bytes
    argv: list[str]
    stderr: str

    @property
    def status(self) -> int:
        return self.statuses[-1] if self.statuses else 0

    def final_headers(self) -> list[tuple[str, str]]:
        return self.headers[-1] if self.headers else []

    def header(self, name: str) -> str | None:
        values = [v for k, v in self.final_headers() if k.lower() == name.lower()]
        return values[-1] if values else None

    def cookie(self, name: str = "memsession"):
        from .http import parse_set_cookie
        found = [parse_set_cookie(v) for resp in self.headers for k, v in resp
                 if k.lower() == "set-cookie"]
        found = [c for c in found if c.name == name]
        return found[-1] if found else None

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def env(self) -> dict[str, str]:
        from .http import parse_env
        assert self.status == 200, f"expected 200, got:\n{self.describe()}"
        return parse_env(self.text)

    def sent_authorization(self) -> list[str | None]:
        """The Authorization header of each request curl sent (None: none)."""
        return [next((v for k, v in req if k.lower() == "authorization"), None)
                for req in self.requests]

    def describe(self) -> str:
        parts = [" ".join(self.argv)]
        for status, hdrs in zip(self.statuses, self.headers):
            parts.append(f"  <- {status}\n" + "\n".join(f"     {k}: {v}" for k, v in hdrs))
        parts.append(f"  body: {self.body[:600]!r}\n  curl -v:\n{self.stderr[-4000:]}")
        return "\n".join(parts)


def curl(realm: Realm, port: int, path: str, ccache: Path | None = None, negotiate: bool = True,
         delegation: str | None = None, cookie: str | None = None,
         headers: dict[str, str] | None = None, method: str = "GET",
         krb5_config: Path | None = None, timeout_s: float = 20) -> CurlResult:
    """curl http://localhost:PORT/path, optionally `--negotiate -u :` with `ccache`.

    The host is `localhost` (the service principal is HTTP/localhost), pinned to 127.0.0.1 with
    --resolve so nothing leaves loopback. Redirects are not followed."""
    import tempfile

    env = realm.client_env(ccache)
    if krb5_config is not None:
        env["KRB5_CONFIG"] = str(krb5_config)
    with tempfile.TemporaryDirectory(prefix="curl-", dir=realm.p.ccaches) as tmp:
        body = Path(tmp) / "body"
        # -v: curl writes every request and response head to stderr ("> ", "< "), including the
        # 401s of a Negotiate exchange that -D leaves out
        argv = ["curl", "-sS", "-v", "--max-time", str(timeout_s), "--resolve",
                f"localhost:{port}:127.0.0.1", "-o", str(body), "-X", method]
        if negotiate:
            argv += ["--negotiate", "-u", ":"]
        if delegation:
            argv += ["--delegation", delegation]
        if cookie is not None:
            argv += ["-b", f"memsession={cookie}"]
        for k, v in (headers or {}).items():
            argv += ["-H", f"{k}: {v}"]
        argv.append(f"http://localhost:{port}{path}")
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s + 10, env=env)
        if r.returncode != 0:
            raise AssertionError(f"curl failed ({r.returncode}): {' '.join(argv)}\n{r.stderr}")
        statuses, all_headers = _parse_heads(r.stderr, "< ")
        _, sent = _parse_heads(r.stderr, "> ")
        return CurlResult(statuses=statuses, headers=all_headers, requests=sent,
                          body=body.read_bytes(), argv=argv, stderr=r.stderr)


def _parse_heads(verbose: str, prefix: str) -> tuple[list[int], list[list[tuple[str, str]]]]:
    """Heads from curl -v output: prefix "< " for responses, "> " for requests."""
    statuses: list[int] = []
    heads: list[list[tuple[str, str]]] = []
    for line in verbose.splitlines():
        if not line.startswith(prefix):
            continue
        line = line[len(prefix):].rstrip("\r")
        if line.startswith("HTTP/") or (prefix == "> " and " HTTP/" in line):
            statuses.append(int(line.split()[1]) if line.startswith("HTTP/") else 0)
            heads.append([])
        elif ":" in line and heads:
            k, v = line.split(":", 1)
            heads[-1].append((k.strip(), v.strip()))
    return statuses, heads
