"""A per-run ServerRoot, an httpd in the foreground in its own process group, config tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from . import load, procs, site
from .components import Components
from .http import Client

ENV_CGI = """#!/bin/sh
# Read the request body first: a CGI that exits with the body unread gets its response cut off.
if [ -n "$CONTENT_LENGTH" ] && [ "$CONTENT_LENGTH" -gt 0 ]; then
    head -c "$CONTENT_LENGTH" > /dev/null
fi
echo "Content-Type: text/plain"
echo
env | sort
"""

READY_TEXT = "memsession-harness-ready\n"
APP_INDEX = "<html><body>memsession app index</body></html>\n"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare_root(c: Components, root: Path) -> site.Paths:
    """Lay out conf, logs, htdocs, cgi-bin and the htpasswd file; everything readable by www-data."""
    p = site.Paths(root)
    os.chmod(root, 0o755)
    for d in (root / "conf", p.logs, p.htdocs, p.htdocs / "app", p.htdocs / "harness", p.cgi_bin):
        d.mkdir(parents=True, exist_ok=True)
        os.chmod(d, 0o755)
    (p.cgi_bin / "env.cgi").write_text(ENV_CGI)
    os.chmod(p.cgi_bin / "env.cgi", 0o755)
    (p.htdocs / "harness" / "ready.txt").write_text(READY_TEXT)
    (p.htdocs / "app" / "index.html").write_text(APP_INDEX)
    (p.htdocs / "bye.txt").write_text("bye\n")
    # root-only, as MemSessionSecretFile requires: created with its mode, never wider
    fd = os.open(p.secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(site.SECRET)
    first = True
    for user, password in site.USERS.items():
        flags = "-bc" if first else "-b"
        first = False
        subprocess.run([c.htpasswd, flags, str(p.htpasswd), user, password], check=True,
                       capture_output=True, timeout=30)
    os.chmod(p.htpasswd, 0o644)
    return p


class ErrorLog:
    """Reads what httpd wrote to its error log since a remembered offset."""

    def __init__(self, path: Path):
        self.path = path

    def size(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def read_from(self, offset: int) -> tuple[list[str], int]:
        """(lines written since offset, the offset after them)."""
        try:
            with open(self.path, "rb") as f:
                f.seek(offset)
                data = f.read()
        except FileNotFoundError:
            return [], offset
        return data.decode("utf-8", errors="replace").splitlines(), offset + len(data)

    def since(self, offset: int) -> list[str]:
        return self.read_from(offset)[0]


class Httpd(procs.GroupProcess):
    def __init__(self, c: Components, p: site.Paths, backend_port: int,
                 extra_env: dict[str, str] | None = None, key_prefix: str = "memsession:",
                 memcached_sock: Path | None = None, extra_conf: str = "",
                 kerberos: bool = True):
        """key_prefix, memcached_sock, extra_conf, kerberos=False: for a second httpd next to
        the main one (another deployment on the same memcached, or a test-only module build);
        see site.render."""
        self.c = c
        self.key_prefix = key_prefix
        self.memcached_sock = memcached_sock
        self.extra_conf = extra_conf
        self.kerberos = kerberos
        self.extra_env = dict(extra_env or {})
        self.backend_port = backend_port
        self.p = p
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self.error_log = ErrorLog(p.error_log)
        self.stdout_path = str(p.logs / "httpd.stdout")

    @property
    def client(self) -> Client:
        return Client("127.0.0.1", self.port)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """As Debian's `systemctl stop apache2` does (apachectl graceful-stop): the children
        finish what they serve and exit, then the parent and what is left of its group go.

        An ungraceful stop races inside the event MPM itself: signal_threads() closes the
        sockets that worker_sockets[] still names while a worker frees that connection's pool,
        and about one stop in a hundred ends with a child segfaulting in apr_os_sock_get (core
        dumps show only httpd and APR frames). The crash-line checks would blame the module."""
        if self.alive():
            workers = load.worker_pids(self.children(), self.c.threaded)
            os.kill(self.proc.pid, signal.SIGWINCH)
            try:
                procs.wait_until("httpd children to finish a graceful stop",
                                 lambda: not workers & self.children(),
                                 site.GRACEFUL_SHUTDOWN_TIMEOUT_S + 2)
            except procs.NotReady:
                pass  # what is left is ended below, as an ungraceful stop would
        super().stop()

    def _write_conf(self) -> None:
        self.p.conf.write_text(site.render(self.c, self.p, self.port, self.backend_port,
                                           key_prefix=self.key_prefix,
                                           memcached_sock=self.memcached_sock,
                                           extra=self.extra_conf, kerberos=self.kerberos))

    def start(self) -> None:
        for attempt in range(3):
            self.port = free_port()
            self._write_conf()
            rc, out = self.configtest_file(self.p.conf)
            if rc != 0:
                raise procs.NotReady(f"httpd -t rejects the test config ({self.p.conf}):\n{out}")
            offset = self.error_log.size()
            self.proc = procs.spawn([self.c.apache2, "-d", str(self.p.root), "-f", str(self.p.conf),
                                     "-DFOREGROUND"], self.stdout_path, cwd=str(self.p.root),
                                    env=self._env())
            try:
                self._wait_ready()
                return
            except procs.NotReady:
                log = "\n".join(self.error_log.since(offset))
                self.stop()
                if "Address already in use" in log and attempt < 2:
                    continue
                raise procs.NotReady(f"httpd did not come up on port {self.port}; error log:\n"
                                     f"{log}\nstdout/stderr:\n{self._stdout_tail()}")

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("APACHE_")}
        env["LANG"] = "C"
        env.update(self.extra_env)  # e.g. the test realm's KRB5_CONFIG (harness/kdc.py)
        return env

    def _stdout_tail(self) -> str:
        try:
            return Path(self.stdout_path).read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def _wait_ready(self) -> None:
        client = self.client

        def probe() -> bool:
            r = client.get("/harness/ready.txt")
            return r.status == 200 and r.text == READY_TEXT

        def dead() -> str | None:
            if self.proc is not None and self.proc.poll() is not None:
                return f"httpd exited with {self.proc.returncode}"
            return None

        procs.wait_until(f"httpd on 127.0.0.1:{self.port}", probe, 15, interval_s=0.1, alive=dead)

    def graceful(self) -> subprocess.CompletedProcess:
        """`apache2 -k graceful` with this server's config, as an administrator would (the
        command signals the pid in the PidFile and returns at once)."""
        return subprocess.run([self.c.apache2, "-d", str(self.p.root), "-f", str(self.p.conf),
                               "-k", "graceful"], capture_output=True, text=True, timeout=30,
                              env=self._env(), cwd=str(self.p.root))

    def children(self) -> set[int]:
        """The parent's children: the MPM's workers (and the cgid daemon under threaded MPMs)."""
        return child_pids(self.proc.pid) if self.proc is not None else set()

    # -- config-time checks -------------------------------------------------------------------

    def configtest_file(self, conf: Path) -> tuple[int, str]:
        r = subprocess.run([self.c.apache2, "-t", "-d", str(self.p.root), "-f", str(conf)],
                           capture_output=True, text=True, timeout=30, env=self._env(),
                           cwd=str(self.p.root))
        return r.returncode, (r.stdout + r.stderr)

    def configtest(self, snippet: str, server_directives: bool = True) -> tuple[int, str]:
        """`apache2 -t` on the core config (module loaded, server-scope directives set unless
        server_directives=False, no locations) plus `snippet`; returns (exit code, output)."""
        conf = self.p.root / "conf" / f"configtest-{time.monotonic_ns()}.conf"
        conf.write_text(site.core(self.c, self.p, free_port(), not self.c.harness_only,
                                  server_directives)
                        + "\n" + snippet + "\n")
        try:
            return self.configtest_file(conf)
        finally:
            conf.unlink()


def access_log_line(p: site.Paths, probe: str, deadline_s: float = 5.0) -> str:
    """The access-log line of the request whose line contains `probe` (logged after the response
    is sent, so poll for it)."""

    def find() -> str | None:
        try:
            text = p.access_log.read_text(errors="replace")
        except FileNotFoundError:
            return None
        hits = [line for line in text.splitlines() if probe in line]
        if len(hits) > 1:
            raise AssertionError(f"probe {probe!r} matches {len(hits)} access-log lines: {hits}")
        return hits[0] if hits else None

    return procs.wait_until(f"access log line with {probe!r}", find, deadline_s)


def child_pids(parent: int) -> set[int]:
    """Processes whose parent is `parent` (httpd children, the cgid daemon)."""
    out = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may contain spaces, so split after the last ')'
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == parent and fields[0] != "Z":  # a zombie has exited
            out.add(int(entry))
    return out


def restart(server: "Httpd", sig: int, deadline_s: float = 20.0) -> None:
    """Send a restart signal (SIGUSR1: graceful, SIGHUP: restart) to the httpd parent and wait
    until every old child is gone, new ones run and a request is served."""
    parent = server.proc.pid
    old = child_pids(parent)
    assert old, "httpd has no children before the restart"
    os.kill(parent, sig)

    def replaced() -> bool:
        now = child_pids(parent)
        if now & old or not now:
            return False
        r = server.client.get("/harness/ready.txt")
        return r.status == 200

    def dead() -> str | None:
        return None if server.alive() else f"httpd exited with {server.proc.returncode}"

    procs.wait_until(f"httpd children replaced after signal {sig}", replaced, deadline_s,
                     interval_s=0.1, alive=dead)
