#!/usr/bin/env python3
"""make bench: contenders side by side in one run, as ratios to a static file.

One httpd per contender (same MPM, same worker settings, same tiny file), memcached on a UNIX
socket for this module (and on loopback TCP for mod_authn_socache, whose apr_memcache client
speaks TCP only), wrk driving each in turn (bench/negotiate_load.c for negotiate-fresh, which
needs a new Kerberos token per request), rounds interleaved so machine drift is shared.
Raw output goes to results/bench-<time>/; the table is printed last.
"""
from __future__ import annotations

import argparse
import base64
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))
from harness import kdc  # noqa: E402  (the test suite's throwaway MIT realm)
MODULES = Path("/usr/lib/apache2/modules")
CLK_TCK = os.sysconf("SC_CLK_TCK")
GRACEFUL_SHUTDOWN_TIMEOUT_S = 5
# httpd's cheapest authentication: every memsession row is also printed as a ratio to it.
ANON = "anon-basic"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {what}")


def cpu_ticks(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            pass
    return total


def process_tree(root: int) -> list[int]:
    """root and its children (httpd's workers are children of the parent)."""
    pids = [root]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == root:
                pids.append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            pass
    return pids


class Memcached:
    def __init__(self, work: Path, name: str, tcp: bool, threads: int = 4):
        self.port = free_port() if tcp else 0
        self.sock = work / f"{name}.sock"
        args = ["memcached", "-u", "root", "-m", "64", "-U", "0", "-t", str(threads)]
        args += ["-l", "127.0.0.1", "-p", str(self.port)] if tcp else ["-s", str(self.sock), "-a", "0777"]
        self.proc = subprocess.Popen(args, start_new_session=True)
        wait_for(self._ready, f"memcached {name}")

    def _connect(self) -> socket.socket:
        if self.port:
            return socket.create_connection(("127.0.0.1", self.port), timeout=2)
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(2)
        s.connect(str(self.sock))
        return s

    def _ready(self) -> bool:
        try:
            self.stats()
            return True
        except OSError:
            return False

    def stats(self) -> dict[str, int]:
        with self._connect() as s:
            s.sendall(b"stats\r\n")
            data = b""
            while not data.endswith(b"END\r\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        out = {}
        for line in data.decode().splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[0] == "STAT":
                try:
                    out[parts[1]] = int(float(parts[2]))
                except ValueError:
                    pass
        return out

    def cpu(self) -> int:
        return cpu_ticks([self.proc.pid])

    def stop(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=5)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self.proc.pid, signal.SIGKILL)


@dataclass
class Contender:
    name: str
    location: str  # the <Location /bench> body
    server: str = ""  # server-scope extra directives
    modules: list[str] = field(default_factory=list)
    headers: list[str] = field(default_factory=list)  # wrk -H values, filled after login
    login: str | None = None  # "memsession", "basic", "negotiate", "gssapi-session" or None
    note: str = ""
    kerberos: bool = False  # needs the realm (httpd started with its environment)
    env: dict = field(default_factory=dict)
    fresh_tokens: bool = False  # driven by negotiate_load (a new token per request), not wrk
    farm: bool = False  # MemSessionServers lists three memcached servers, not one


class Httpd:
    def __init__(self, work: Path, contender: Contender, mpm: str, module: Path, mc_sock: Path,
                 env: dict | None = None, start: bool = True, farm: list[Path] | None = None):
        self.c = contender
        self.dir = work / contender.name
        (self.dir / "htdocs" / "bench").mkdir(parents=True)
        (self.dir / "logs").mkdir()
        (self.dir / "htdocs" / "bench" / "index.html").write_text("hello\n")
        self.port = free_port()
        load = [f"mpm_{mpm}", "authn_core", "authn_file", "authz_core", "authz_user", "auth_basic"]
        load += contender.modules
        lines = [f'ServerRoot "{self.dir}"', "ServerName 127.0.0.1", f"Listen 127.0.0.1:{self.port}",
                 f'PidFile "{self.dir}/httpd.pid"', f'ErrorLog "{self.dir}/logs/error.log"',
                 "LogLevel warn", "User www-data", "Group www-data"]
        lines += [f"LoadModule {m}_module {MODULES}/mod_{m}.so" for m in load]
        lines += [f"LoadModule auth_memsession_module {module}",
                  f'DocumentRoot "{self.dir}/htdocs"',
                  # The same worker settings for every contender.
                  "StartServers 2", "ServerLimit 2", "ThreadsPerChild 25", "MaxRequestWorkers 50",
                  "MaxConnectionsPerChild 0", "KeepAlive On", "MaxKeepAliveRequests 0",
                  f"GracefulShutdownTimeout {GRACEFUL_SHUTDOWN_TIMEOUT_S}",
                  # As Debian's apache2.conf has it: no .htaccess lookups on every request.
                  "<Directory />\n    AllowOverride None\n</Directory>",
                  "MemSessionServers " + " ".join(
                      f"unix:{sock}" for sock in ([mc_sock, *(farm or [])] if contender.farm
                                                  else [mc_sock])),
                  "MemSessionCookieSecure Off",
                  f'MemSessionSecretFile "{work}/memsession.secret"',
                  contender.server,
                  f"<Location /bench>\n{contender.location}\n</Location>",
                  "<Location /login>\n    AuthType Basic\n    AuthName bench\n"
                  f'    AuthUserFile "{work}/htpasswd-sha1"\n    Require valid-user\n'
                  "    SetHandler memsession-login\n</Location>",
                  "<Location /krb-login>\n" + gssapi_auth(work) + "    SetHandler memsession-login\n"
                  "</Location>" if contender.kerberos else ""]
        (self.dir / "httpd.conf").write_text("\n".join(lines) + "\n")
        self.dir.chmod(0o755)
        if not start:  # bench/callgrind.py runs it itself (httpd -X under valgrind)
            return
        subprocess.run(["apache2", "-f", str(self.dir / "httpd.conf"), "-k", "start"], check=True,
                       stderr=subprocess.PIPE, env={**os.environ, **(env or {}), **contender.env})
        wait_for(lambda: (self.dir / "httpd.pid").exists(), f"httpd {contender.name} pid")
        wait_for(self._answers, f"httpd {contender.name}")

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"GET / HTTP/1.0\r\n\r\n")
                return s.recv(12).startswith(b"HTTP/")
        except OSError:
            return False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def pids(self) -> list[int]:
        return process_tree(int((self.dir / "httpd.pid").read_text()))

    def begin_stop(self) -> None:
        """As Debian's `systemctl stop apache2` does: graceful-stop, bounded by
        GracefulShutdownTimeout. An ungraceful stop races inside the event MPM and now and then
        leaves a child segfault in the error log kept with the results."""
        subprocess.run(["apache2", "-f", str(self.dir / "httpd.conf"), "-k", "graceful-stop"],
                       stderr=subprocess.DEVNULL, check=False)

    def wait_stopped(self) -> None:
        """Until the parent is gone (it removes its pid file); past the graceful bound, stop
        it outright."""
        try:
            wait_for(lambda: not (self.dir / "httpd.pid").exists(), f"httpd {self.c.name} to stop",
                     GRACEFUL_SHUTDOWN_TIMEOUT_S + 5)
        except RuntimeError:
            subprocess.run(["apache2", "-f", str(self.dir / "httpd.conf"), "-k", "stop"],
                           stderr=subprocess.DEVNULL, check=False)


def login_cookie(url: str) -> str:
    auth = base64.b64encode(b"alice:alicepw").decode()
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-D", "-", "-H", f"Authorization: Basic {auth}",
                          f"{url}/login"], capture_output=True, text=True, timeout=10).stdout
    match = re.search(r"^Set-Cookie: (memsession=[A-Za-z0-9_-]{43})", out, re.M | re.I)
    if not match:
        raise RuntimeError(f"login failed at {url}: {out}")
    return match.group(1)


def gssapi_auth(work: Path) -> str:
    keytab = work / "realm" / "http.keytab"
    return ("    AuthType GSSAPI\n    AuthName bench\n"
            f"    GssapiCredStore keytab:{keytab}\n    GssapiAllowedMech krb5\n"
            "    Require valid-user\n")


def negotiate(realm, ccache: Path, url: str) -> tuple[str, str]:
    """One Negotiate exchange with curl: (the Authorization value it sent, Set-Cookie lines)."""
    port = url.rsplit(":", 1)[1].split("/", 1)[0]
    target = url.replace("127.0.0.1", "localhost")
    out = subprocess.run(["curl", "-sv", "-o", "/dev/null", "--negotiate", "-u", ":",
                          "--resolve", f"localhost:{port}:127.0.0.1", target],
                         capture_output=True, text=True, timeout=20, env=realm.client_env(ccache))
    token = re.search(r"^> Authorization: (Negotiate \S+)", out.stderr, re.M)
    if not token:
        raise RuntimeError(f"no Negotiate token for {target}:\n{out.stderr[-2000:]}")
    cookies = re.findall(r"^< Set-Cookie: ([^;\r\n]+)", out.stderr, re.M | re.I)
    return token.group(1), "; ".join(cookies)


def refuses_replay(realm, ccache: Path, url: str) -> bool:
    """Whether a token the server has already accepted once is refused (its replay cache is on)."""
    token = negotiate(realm, ccache, url)[0]
    status = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H",
                             f"Authorization: {token}", url], capture_output=True, text=True,
                            timeout=20).stdout
    return status == "401"


def negotiate_load(binary: Path, realm, ccache: Path, url: str, args, seconds: float,
                   raw: Path | None) -> dict:
    """bench/negotiate_load.c: wrk's -c and -d, but a fresh Negotiate token for every request."""
    port, path = url.split("://", 1)[1].split(":", 1)[1].split("/", 1)
    cmd = [str(binary), "127.0.0.1", port, "/" + path, "HTTP@localhost", str(args.connections),
           str(int(round(seconds)))]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30,
                         env=realm.client_env(ccache))
    if raw:
        raw.write_text(" ".join(cmd) + "\n" + out.stdout + out.stderr)
    fields = dict(kv.split("=", 1) for kv in out.stdout.split())
    if "requests" not in fields:
        raise RuntimeError(f"negotiate_load failed ({out.returncode}) at {url}:\n{out.stderr[-2000:]}")
    return {"rps": float(fields["rps"]), "requests": int(fields["requests"]),
            "non2xx": int(fields["non2xx"]), "errors": int(fields["errors"]),
            "retried": int(fields["retried"]),
            "p50": float(fields["p50_us"]), "p99": float(fields["p99_us"]),
            "client_us": float(fields["client_cpu_us_per_req"])}


def wrk(url: str, headers: list[str], args, seconds: float, raw: Path | None) -> dict:
    cmd = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{int(round(seconds))}s", "--latency"]
    for h in headers:
        cmd += ["-H", h]
    cmd.append(url)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30).stdout
    if raw:
        raw.write_text(" ".join(cmd) + "\n" + out)
    result = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
              "requests": int(re.search(r"(\d+) requests in", out).group(1)),
              "non2xx": int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0}
    for pct in ("50", "99"):
        value, unit = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)", out, re.M).groups()
        result[f"p{pct}"] = float(value) * {"us": 1, "ms": 1000, "s": 1e6}[unit]
    return result


def missing_tools(program: str, tools: tuple[str, ...]) -> bool:
    """Says which of `tools` is not installed, as `program`; True if any is missing."""
    missing = [tool for tool in tools if not shutil.which(tool)]
    for tool in missing:
        print(f"{program}: {tool} is missing (make deps installs it)", file=sys.stderr)
    return bool(missing)


def new_workdir(prefix: str) -> Path:
    """A private directory httpd (as www-data) can enter, holding a fresh server secret and
    alice's SHA-1 htpasswd line."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    work.chmod(0o755)
    secret = os.open(work / "memsession.secret", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(secret, os.urandom(32))
    os.close(secret)
    subprocess.run(["htpasswd", "-bcs", str(work / "htpasswd-sha1"), "alice", "alicepw"], check=True,
                   stderr=subprocess.DEVNULL)
    return work


def contenders(work: Path, mc_tcp: Memcached) -> list[Contender]:
    basic = "    AuthType Basic\n    AuthName bench\n    Require valid-user\n"
    session = ("    GssapiUseSessions On\n    Session On\n"
               "    SessionCookieName gssapi_session path=/;httponly\n")
    # A replayed token is accepted only with the replay cache off: this flatters Negotiate.
    no_rcache = {"KRB5RCACHETYPE": "none"}
    return [
        Contender("static", "    Require all granted"),
        Contender("memsession", "    AuthType MemSession\n    Require valid-user", login="memsession",
                  note="strict: every request asks memcached"),
        Contender("memsession-cache1s", "    AuthType MemSession\n    Require valid-user",
                  server="MemSessionLocalCache 1s", login="memsession", note="MemSessionLocalCache 1s"),
        # DESIGN: a farm costs nothing per request (within 5% of one server, in the same run).
        Contender("memsession-farm3", "    AuthType MemSession\n    Require valid-user",
                  login="memsession", farm=True, note="strict, MemSessionServers: three memcached"),
        Contender("memsession-farm3-replicas", "    AuthType MemSession\n    Require valid-user",
                  server="MemSessionReplicas 1", login="memsession", farm=True,
                  note="strict, three memcached, MemSessionReplicas 1"),
        # httpd's cheapest authentication (no hash, no store): the limit of an auth module here.
        Contender("anon-basic", "    AuthType Basic\n    AuthName anon\n    AuthBasicProvider anon\n"
                  "    Anonymous anonymous\n    Anonymous_NoUserID on\n    Anonymous_MustGiveEmail off\n"
                  "    Require valid-user", modules=["authn_anon"], login="anon",
                  note="mod_authn_anon, Basic anonymous:x (httpd's cheapest auth)"),
        Contender("basic-sha1", basic + f'    AuthUserFile "{work}/htpasswd-sha1"', login="basic",
                  note="mod_authn_file, SHA1 htpasswd"),
        Contender("basic-memcached", basic + "    AuthBasicProvider socache file\n"
                  "    AuthnCacheProvideFor file\n    AuthnCacheContext bench\n    AuthnCacheTimeout 600\n"
                  f'    AuthUserFile "{work}/htpasswd-sha1"',
                  server=f"AuthnCacheSOCache memcache:127.0.0.1:{mc_tcp.port}",
                  modules=["socache_memcache", "authn_socache"], login="basic",
                  note="+ mod_authn_socache on memcached (apr_memcache, TCP)"),
        Contender("basic-bcrypt", basic + f'    AuthUserFile "{work}/htpasswd-bcrypt"', login="basic",
                  note="mod_authn_file, bcrypt htpasswd"),
        Contender("negotiate", gssapi_auth(work), modules=["auth_gssapi"], login="negotiate",
                  kerberos=True, env=no_rcache,
                  note="mod_auth_gssapi every request, one token replayed, replay cache off: flattered"),
        # What real clients pay: a new token (authenticator) per request, checked against the
        # replay cache (libkrb5's default, in the realm's KRB5RCACHEDIR).
        Contender("negotiate-fresh", gssapi_auth(work), modules=["auth_gssapi"], kerberos=True,
                  fresh_tokens=True,
                  note="mod_auth_gssapi every request, fresh token per request, replay cache on: honest"),
        Contender("gssapi-session", gssapi_auth(work) + session,
                  modules=["auth_gssapi", "session", "session_cookie"], login="gssapi-session",
                  kerberos=True, note="mod_auth_gssapi GssapiUseSessions (sealed cookie, no revocation)"),
        Contender("gssapi-session-crypto", gssapi_auth(work) + session +
                  "    SessionCryptoPassphrase bench-passphrase\n",
                  modules=["auth_gssapi", "session", "session_cookie", "session_crypto"],
                  login="gssapi-session", kerberos=True, note="the same wrapped in mod_session_crypto"),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--mpm", default="event")
    parser.add_argument("--only", default="", help="comma-separated contender names (static is always "
                        "run, and anon-basic with any memsession row)")
    parser.add_argument("--module", default=str(REPO / "build" / "mod_auth_memsession.so"))
    parser.add_argument("--memcached-threads", type=int, default=4,
                        help="memcached -t for the session store (its default is 4)")
    parser.add_argument("--no-kerberos", action="store_true", help="leave out the Kerberos contenders")
    parser.add_argument("--latency-seconds", type=float, default=3,
                        help="length of each one-connection latency run (0: skip them)")
    parser.add_argument("--negotiate-load", default=str(REPO / "build" / "negotiate_load"),
                        help="bench/negotiate_load.c built (make bench builds it)")
    args = parser.parse_args()
    if missing_tools("bench", ("wrk", "apache2", "memcached", "htpasswd", "curl")):
        return 2

    results_dir = REPO / "results" / time.strftime("bench-%Y%m%d-%H%M%S")
    results_dir.mkdir(parents=True)
    work = new_workdir("memsession-bench-")
    subprocess.run(["htpasswd", "-bcB", str(work / "htpasswd-bcrypt"), "alice", "alicepw"], check=True,
                   stderr=subprocess.DEVNULL)
    realm = None
    if not args.no_kerberos:
        realm = kdc.Realm(work / "realm")
        realm.start()
    mc = Memcached(work, "sessions", tcp=False, threads=args.memcached_threads)
    mc_tcp = Memcached(work, "socache", tcp=True)
    servers: dict[str, Httpd] = {}
    farm: list[Memcached] = []
    try:
        chosen = contenders(work, mc_tcp)
        if realm is None:
            chosen = [c for c in chosen if not c.kerberos]
        else:
            # The memsession contenders also get the Negotiate login location.
            for c in chosen:
                if c.login == "memsession":
                    c.kerberos = True
                    c.modules = [*c.modules, "auth_gssapi"]
                    c.env = {"KRB5RCACHETYPE": "none"}
        if args.only:
            wanted = {"static", *args.only.split(",")}
            if any(name.startswith("memsession") for name in wanted):
                wanted.add(ANON)  # every memsession row is also a ratio to it
            if any(name.startswith("memsession-farm") for name in wanted):
                wanted.add("memsession")  # a farm row is a ratio to one server's
            chosen = [c for c in chosen if c.name in wanted]
        farm = [Memcached(work, f"farm{n}", tcp=False, threads=args.memcached_threads)
                for n in (2, 3)] if any(c.farm for c in chosen) else []
        stores = [mc, *farm]
        load_client = Path(args.negotiate_load)
        if any(c.fresh_tokens for c in chosen) and not os.access(load_client, os.X_OK):
            print(f"bench: {load_client} is missing (make bench builds it)", file=sys.stderr)
            return 2
        ccache = realm.kinit("alice") if realm else None
        realm_env = realm.server_env() if realm else {}

        def credentials(c: Contender) -> list[str]:
            url = servers[c.name].url
            if c.login == "memsession":
                return [f"Cookie: {login_cookie(url)}"]
            if c.login == "basic":
                return ["Authorization: Basic " + base64.b64encode(b"alice:alicepw").decode()]
            if c.login == "anon":
                return ["Authorization: Basic " + base64.b64encode(b"anonymous:x").decode()]
            if c.login == "negotiate":
                return [f"Authorization: {negotiate(realm, ccache, url + '/bench/index.html')[0]}"]
            if c.login == "gssapi-session":
                cookie = negotiate(realm, ccache, url + "/bench/index.html")[1]
                if "gssapi_session" not in cookie:
                    raise RuntimeError(f"{c.name}: no gssapi_session cookie ({cookie!r})")
                return [f"Cookie: {cookie}"]
            return []

        def mc_cpu() -> int:
            return sum(m.cpu() for m in [*stores, mc_tcp])

        def mc_stats() -> dict[str, int]:
            total: dict[str, int] = {}
            for m in stores:
                for key, value in m.stats().items():
                    total[key] = total.get(key, 0) + value
            return total

        def drive(c: Contender, url: str, seconds: float, raw: Path | None, load=args) -> dict:
            if c.fresh_tokens:
                return negotiate_load(load_client, realm, ccache, url, load, seconds, raw)
            return wrk(url, c.headers, load, seconds, raw)

        for c in chosen:
            servers[c.name] = Httpd(work, c, args.mpm, Path(args.module), mc.sock,
                                    realm_env if c.kerberos else None,
                                    farm=[m.sock for m in farm])
            c.headers = credentials(c)
            url = servers[c.name].url + "/bench/index.html"
            if c.fresh_tokens and not refuses_replay(realm, ccache, url):
                raise RuntimeError(f"{c.name} accepts a replayed token: its replay cache is off")
        for c in chosen:  # warm up: children started, caches filled
            drive(c, servers[c.name].url + "/bench/index.html", 1, None)

        rows: dict[str, list[dict]] = {c.name: [] for c in chosen}
        for round_no in range(args.rounds):
            order = chosen[round_no % len(chosen):] + chosen[:round_no % len(chosen)]
            for c in order:
                if c.login == "negotiate":
                    c.headers = credentials(c)
                server = servers[c.name]
                pids = server.pids()
                before_cpu, mc_before, stats_before = cpu_ticks(pids), mc_cpu(), mc_stats()
                r = drive(c, server.url + "/bench/index.html", args.seconds,
                          results_dir / f"round{round_no + 1}-{c.name}.txt")
                after_cpu, mc_after, stats_after = cpu_ticks(pids), mc_cpu(), mc_stats()
                n = max(r["requests"], 1)
                r["httpd_us"] = (after_cpu - before_cpu) / CLK_TCK * 1e6 / n
                r["memcached_us"] = (mc_after - mc_before) / CLK_TCK * 1e6 / n
                for stat in ("cmd_get", "cmd_set", "cmd_touch", "delete_hits"):
                    r[stat] = (stats_after.get(stat, 0) - stats_before.get(stat, 0)) / n
                rows[c.name].append(r)
                print(f"round {round_no + 1} {c.name:20s} {r['rps']:9.0f} req/s  p50 {r['p50']:7.0f} us",
                      flush=True)

        # Unloaded: one connection, so p50 is the latency a request pays, not queueing behind 31
        # others. Each contender right after a static run, so both see the same machine.
        single = argparse.Namespace(**{**vars(args), "threads": 1, "connections": 1})
        latency: dict[str, tuple[float, float]] = {}
        for c in chosen:
            if c.name == "static" or args.latency_seconds <= 0:
                continue
            base = wrk(servers["static"].url + "/bench/index.html", [], single, args.latency_seconds,
                       results_dir / f"latency-static-before-{c.name}.txt")
            r = drive(c, servers[c.name].url + "/bench/index.html", args.latency_seconds,
                      results_dir / f"latency-{c.name}.txt", single)
            latency[c.name] = (base["p50"], r["p50"])

        login_rates = {}
        if "memsession" in servers:
            url = servers["memsession"].url
            auth = "Authorization: Basic " + base64.b64encode(b"alice:alicepw").decode()
            seconds = max(3, args.seconds / 2)
            login_rates["Basic at /login"] = wrk(url + "/login", [auth], args, seconds,
                                                 results_dir / "login-basic.txt")["rps"]
            if realm is not None:
                token = negotiate(realm, ccache, url + "/krb-login")[0]
                how = "Negotiate at /krb-login, one token replayed, replay cache off: flattered"
                login_rates[how] = wrk(url + "/krb-login", [f"Authorization: {token}"], args, seconds,
                                       results_dir / "login-negotiate.txt")["rps"]
        if "negotiate-fresh" in servers:
            # The same memsession-login handler, on the server whose replay cache is on.
            c = next(c for c in chosen if c.name == "negotiate-fresh")
            r = drive(c, servers[c.name].url + "/krb-login", max(3, args.seconds / 2),
                      results_dir / "login-negotiate-fresh.txt")
            how = "Negotiate at /krb-login, fresh token each, replay cache on: honest"
            bad = r["non2xx"] + r["errors"]
            how += f" [{bad} failed!]" if bad else ""
            how += f" [{r['retried']} sent again after a keep-alive close]" if r["retried"] else ""
            login_rates[how] = r["rps"]

        table = render(chosen, rows, login_rates, latency, args)
        (results_dir / "table.txt").write_text(table)
        print()
        print(table)
        print(f"raw output: {results_dir}")
        return 0
    finally:
        for server in servers.values():
            server.begin_stop()  # all at once: each graceful stop takes a second or more
        for name, server in servers.items():
            server.wait_stopped()
            # Kept with the raw output: a crash or an error behind a failed request shows here.
            shutil.copy(server.dir / "logs" / "error.log", results_dir / f"error-{name}.log")
        mc.stop()
        mc_tcp.stop()
        for m in farm:
            m.stop()
        if realm is not None:
            realm.stop()
        shutil.rmtree(work, ignore_errors=True)


def render(chosen: list[Contender], rows: dict[str, list[dict]], login_rates: dict,
           latency: dict[str, tuple[float, float]], args) -> str:
    static = rows["static"]
    lines = [f"wrk -t{args.threads} -c{args.connections} -d{args.seconds:g}s, {args.mpm} MPM, "
             f"{args.rounds} interleaved rounds; medians; ratio = median of per-round ratios to static",
             "",
             f"{'contender':26s} {'req/s':>9s} {'ratio':>6s} {'spread':>9s} {'p50 us':>8s} {'p99 us':>8s} "
             f"{'Δp50':>6s} {'httpd us/req':>12s} {'mc us/req':>9s} {'gets/req':>8s} {'sets/req':>8s}  note"]
    for c in chosen:
        rs = rows[c.name]
        med = lambda key: statistics.median(r[key] for r in rs)  # noqa: E731
        ratio, low, high = per_round_spread(rows, c.name, "static")
        dp50 = statistics.median(r["p50"] - s["p50"] for r, s in zip(rs, static))
        bad = sum(r["non2xx"] for r in rs)
        errors = sum(r.get("errors", 0) for r in rs)
        note = c.note + (f" [{bad} non-2xx!]" if bad else "") + (f" [{errors} errors!]" if errors else "")
        if c.fresh_tokens:
            note += f" (negotiate_load client: {med('client_us'):.0f} us CPU/req"
            retried = sum(r["retried"] for r in rs)
            note += f"; {retried} sent again after a keep-alive close)" if retried else ")"
        lines.append(f"{c.name:26s} {med('rps'):9.0f} {ratio:6.2f} {low:4.2f}–{high:4.2f} "
                     f"{med('p50'):8.0f} {med('p99'):8.0f} "
                     f"{dp50:+6.0f} {med('httpd_us'):12.1f} {med('memcached_us'):9.1f} "
                     f"{med('cmd_get'):8.2f} {med('cmd_set'):8.3f}  {note}")
    lines += against_anon(chosen, rows, args.rounds)
    lines += against_one_server(chosen, rows, args.rounds)
    lines += comparisons(chosen, rows)
    if latency:
        lines += ["", f"one connection (wrk -t1 -c1 -d{args.latency_seconds:g}s), each right after static: "
                  "the latency a request pays, without queueing"]
        for name, (static_p50, p50) in latency.items():
            lines.append(f"{name:20s} p50 {p50:7.0f} us  static {static_p50:7.0f} us  Δp50 {p50 - static_p50:+6.0f} us")
    if login_rates:
        lines.append("")
    for how, rate in login_rates.items():
        lines.append(f"login ({how}, each creating a session): {rate:.0f} sessions/s")
    return "\n".join(lines) + "\n"


def per_round(rows: dict[str, list[dict]], name: str, other: str) -> float:
    """Median over rounds of name's req/s over other's in the same round."""
    return per_round_spread(rows, name, other)[0]


def per_round_spread(rows: dict[str, list[dict]], name: str, other: str) -> tuple[float, float, float]:
    """(median, min, max) over rounds of name's req/s over other's in the same round."""
    ratios = [a["rps"] / b["rps"] for a, b in zip(rows[name], rows[other])]
    return statistics.median(ratios), min(ratios), max(ratios)


def against_anon(chosen: list[Contender], rows: dict[str, list[dict]], rounds: int) -> list[str]:
    """Every memsession row as a ratio to httpd's cheapest authentication, in the same round."""
    names = [c.name for c in chosen if c.name.startswith("memsession")]
    if ANON not in rows or not names:
        return []
    lines = ["", f"× {ANON} (median of per-round ratios to {ANON}, min–max over {rounds} rounds; "
             f"{ANON} itself {per_round(rows, ANON, 'static'):.2f} × static)"]
    for name in names:
        ratio, low, high = per_round_spread(rows, name, ANON)
        lines.append(f"{name:26s} {ratio:6.2f}  ({low:.2f}–{high:.2f})")
    return lines


def against_one_server(chosen: list[Contender], rows: dict[str, list[dict]], rounds: int) -> list[str]:
    """The farm rows as a ratio to strict mode on one server, in the same round (DESIGN: within
    5%)."""
    names = [c.name for c in chosen if c.farm]
    if "memsession" not in rows or not names:
        return []
    lines = ["", f"× memsession on one server (median of per-round ratios, min–max over {rounds} rounds)"]
    for name in names:
        ratio, low, high = per_round_spread(rows, name, "memsession")
        lines.append(f"{name:26s} {ratio:6.2f}  ({low:.2f}–{high:.2f})")
    return lines


def comparisons(chosen: list[Contender], rows: dict[str, list[dict]]) -> list[str]:
    """The issue's bars as multiples, and what one memcached round trip costs on this box."""
    names = {c.name for c in chosen}
    lines = []
    for ours in ("memsession", "memsession-cache1s"):
        if ours not in names:
            continue
        multiples = [f"{per_round(rows, ours, peer):.2f}x {peer}"
                     for peer in ("gssapi-session", "negotiate", "negotiate-fresh") if peer in names]
        if multiples:
            lines.append(f"{ours}: " + ", ".join(multiples))
    if {"memsession", "basic-sha1", "basic-memcached"} <= names:
        # Costs in units of one static request (1/ratio - 1): the same get through Apache's own
        # client is the price of a round trip here; what strict mode spends beyond it is ours.
        cost = lambda name: 1 / per_round(rows, name, "static") - 1  # noqa: E731
        trip = cost("basic-memcached") - cost("basic-sha1")
        beyond = cost("memsession") - trip
        lines.append(f"one memcached round trip (basic-memcached - basic-sha1) costs {trip:.2f} static "
                     f"requests; strict memsession costs {cost('memsession'):.2f}, of which "
                     f"{beyond:+.2f} beyond the round trip; with nothing beyond it strict mode would reach "
                     f"{1 / (1 + trip):.2f} x static")
    return [""] + lines if lines else []


if __name__ == "__main__":
    sys.exit(main())
