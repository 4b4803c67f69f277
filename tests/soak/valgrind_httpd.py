#!/usr/bin/env python3
"""`make valgrind`: httpd -X (one process) with the module under valgrind memcheck, serving a
few hundred requests of every kind (logins, valid and hostile cookies, logouts, form logins,
password logins through the throwaway realm's KDC, CSRF refusals), then stopped. Fails on any memcheck error or definite leak with a stack frame
in the module; errors elsewhere (httpd, APR) are counted and reported.

Memcheck is first shown to work: a planted invalid read in a small C program must be reported.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))

from harness import components as comp  # noqa: E402
from harness import kdc, site  # noqa: E402
from harness import procs  # noqa: E402
from harness.backend import EchoBackend  # noqa: E402
from harness.http import basic  # noqa: E402
from harness.httpd import READY_TEXT, Httpd, free_port, prepare_root  # noqa: E402
from harness.memcached import MemcachedServer  # noqa: E402
from harness.site import USERS  # noqa: E402

CANARY = r"""
#include <stdlib.h>
#include <stdio.h>
int main(void) {
    int *p = malloc(4 * sizeof *p);
    free(p);
    printf("%d\n", p[1]); /* the planted invalid read */
    return 0;
}
"""

OURS = re.compile(r"mod_auth_memsession|memsession|/src/(apache|flow|session|store|web|config)")


def prove_memcheck(valgrind: str, tmp: Path) -> None:
    src, exe = tmp / "canary.c", tmp / "canary"
    src.write_text(CANARY)
    subprocess.run(["cc", "-g", "-O0", "-o", str(exe), str(src)], check=True)
    r = subprocess.run([valgrind, "--error-exitcode=99", str(exe)], capture_output=True,
                       text=True, timeout=120)
    if r.returncode != 99 or "Invalid read" not in r.stderr:
        raise SystemExit(f"memcheck did not catch the planted invalid read:\n{r.stderr}")
    print("valgrind: planted invalid read caught (memcheck is running)")


def error_blocks(log: str) -> list[str]:
    """memcheck's error reports: a headline and its stack, separated by blank '==pid==' lines."""
    blocks, current = [], []
    for line in log.splitlines():
        body = re.sub(r"^==\d+== ?", "", line)
        if not body.strip():
            if current:
                blocks.append("\n".join(current))
            current = []
        else:
            current.append(body)
    if current:
        blocks.append("\n".join(current))
    heads = ("Invalid read", "Invalid write", "Invalid free", "Mismatched free",
             "Conditional jump", "Use of uninitialised", "Syscall param", "Source and destination")
    leaks = ("definitely lost", "indirectly lost")
    return [b for b in blocks if b.startswith(heads) or (b.split("\n", 1)[0].find(" are ") > 0
                                                         and any(k in b.split("\n", 1)[0]
                                                                 for k in leaks))]


def exercise(client) -> int:
    n = 0
    alice = {"Authorization": basic("alice", USERS["alice"])}
    cookies = []
    for _ in range(20):
        r = client.get("/login?return=/app/index.html", headers=alice)
        assert r.status == 303, r.describe()
        cookies.append(r.cookie("memsession").value)
        n += 1
    for i in range(150):
        r = client.get("/app/index.html", cookie=cookies[i % len(cookies)])
        assert r.status == 200, r.describe()
        n += 1
    hostile = ["", "x" * 43, secrets.token_urlsafe(32), "A" * 5000, cookies[0] + "=",
               cookies[0][:42] + "+"]
    for i in range(60):
        r = client.get("/app/index.html", cookie=hostile[i % len(hostile)])
        assert r.status == 401, r.describe()
        n += 1
    for _ in range(10):
        r = client.post("/app/env.cgi", cookie=cookies[1], body=b"a=1",
                        headers={"Origin": "https://evil.example"})
        assert r.status == 403, r.describe()
        r = client.post("/form-login", body=b"user=alice&password=alicepw",
                        headers={"Content-Type": "application/x-www-form-urlencoded",
                                 "Origin": client.origin})
        assert r.status == 303, r.describe()
        r = client.get("/redir/page?x=%0d%0a", headers={"Accept": "text/html"})
        assert r.status in (302, 303), r.describe()
        n += 3
    for user, password, path, status in [
        ("alice", kdc.PASSWORDS["alice"], "/krb/form-login", 303),
        ("alice", "wrong", "/krb/form-login", 401),
        ("mallory", "x", "/krb/form-login", 401),
        ("alice", kdc.PASSWORDS["alice"], "/krb/form-login-wrong-key", 401),
        ("alice", kdc.PASSWORDS["alice"], "/krb/form-login-no-keytab", 500),
    ] * 4:
        r = client.post(path, body=f"user={user}&password={password}".encode(),
                        headers={"Content-Type": "application/x-www-form-urlencoded",
                                 "Origin": client.origin})
        assert r.status == status, r.describe()
        n += 1
    for c in cookies[:10]:
        r = client.post("/logout", cookie=c, headers={"Origin": client.origin}, body=b"")
        assert r.status == 303, r.describe()
        r = client.get("/app/index.html", cookie=c)
        assert r.status == 401, r.describe()
        n += 2
    return n


def main() -> int:
    valgrind = shutil.which("valgrind")
    if not valgrind:
        print("valgrind not found (apt-get install valgrind)")
        return 3
    os.environ.setdefault("MEMSESSION_MPM", "prefork")
    c, problems = comp.resolve()
    if problems:
        print("valgrind lane cannot run:\n  - " + "\n  - ".join(problems))
        return 3
    root = Path(tempfile.mkdtemp(prefix="memsession-vg-"))
    memcached = MemcachedServer(c.memcached, root)
    backend = EchoBackend()
    realm = None
    proc = None
    try:
        prove_memcheck(valgrind, root)
        paths = prepare_root(c, root)
        realm = kdc.Realm(site.realm_dir(paths))
        site.write_kerberos_files(paths)
        realm.start()
        memcached.start()
        backend.start()
        httpd = Httpd(c, paths, backend.port)
        httpd.port = free_port()
        httpd._write_conf()
        vg_log = root / "logs" / "valgrind.log"
        proc = procs.spawn([valgrind, "--tool=memcheck", "--leak-check=full",
                            "--show-leak-kinds=definite,indirect", "--num-callers=40", "--vgdb=no",
                            f"--log-file={vg_log}", c.apache2, "-X", "-d", str(root), "-f",
                            str(paths.conf)], str(root / "logs" / "httpd.stdout"),
                           cwd=str(root), env={**os.environ, **realm.server_env()})
        client = httpd.client

        def ready() -> bool:
            r = client.get("/harness/ready.txt")
            return r.status == 200 and r.text == READY_TEXT

        procs.wait_until("httpd -X under valgrind", ready, 120, interval_s=0.5,
                         alive=lambda: None if proc.poll() is None else "httpd exited")
        t0 = time.monotonic()
        n = exercise(client)
        print(f"valgrind: {n} requests served in {time.monotonic() - t0:.1f}s under memcheck")
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=120)
        log = vg_log.read_text(errors="replace")
        blocks = error_blocks(log)
        ours = [b for b in blocks if OURS.search(b)]
        summary = re.findall(r"ERROR SUMMARY: .*", log)
        lost = re.findall(r"definitely lost: .*", log)
        print(f"valgrind: {len(blocks)} error/leak reports in all, {len(ours)} in the module; "
              f"{summary[-1] if summary else 'no summary'}; {lost[-1] if lost else ''}")
        for b in ours[:10]:
            print("---\n" + b)
        if not summary:
            print("FAIL: no memcheck summary: did httpd run under valgrind?")
            return 1
        return 1 if ours else 0
    finally:
        if proc is not None and proc.poll() is None:
            procs.kill_group(proc)
        backend.stop()
        memcached.stop()
        if realm is not None:
            realm.stop()
        if not comp.truthy(os.environ.get("MEMSESSION_KEEP_TMP")):
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
