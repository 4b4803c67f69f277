#!/usr/bin/env python3
"""`make soak`: a long, bounded run on one valid session against the real httpd + memcached,
with the resident memory (VmRSS) of every httpd child sampled after a warm-up and at the end.

    python3 tests/soak/soak.py --requests 200000 --max-growth-kb 2048 [--mpm event]

Load comes from wrk when installed (apt-get install wrk), else from a threaded Python client.
Fails if a child's RSS grew more than --max-growth-kb, if any answer was not 200, or if httpd
logged a crash. Bounded: --max-seconds (default 600) ends the run whatever the count.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))

from conftest import crash_lines  # noqa: E402
from harness import components as comp  # noqa: E402
from harness.backend import EchoBackend  # noqa: E402
from harness.http import basic  # noqa: E402
from harness.httpd import Httpd, prepare_root  # noqa: E402
from harness.load import worker_pids  # noqa: E402
from harness.memcached import MemcachedServer  # noqa: E402
from harness.site import USERS  # noqa: E402

PATH = "/app/index.html"


def rss_kb(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def run_wrk(wrk: str, url: str, cookie: str, requests: int, deadline: float) -> tuple[int, int]:
    """Rounds of wrk until `requests` are done or the deadline; (requests, non-2xx/3xx)."""
    done = bad = 0
    rate = 2000.0  # requests per second, a first guess; then measured
    while done < requests and time.monotonic() < deadline:
        wanted = (requests - done) / rate
        seconds = max(1, min(30, round(wanted + 0.5), int(deadline - time.monotonic())))
        t0 = time.monotonic()
        out = subprocess.run([wrk, "-t2", "-c16", f"-d{seconds}s", "--timeout", "5s",
                              "-H", f"Cookie: memsession={cookie}", url],
                             capture_output=True, text=True, timeout=seconds + 60).stdout
        m = re.search(r"(\d+) requests in", out)
        if not m:
            raise SystemExit(f"cannot read wrk's output:\n{out}")
        done += int(m.group(1))
        rate = max(100.0, int(m.group(1)) / max(0.5, time.monotonic() - t0))
        m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        bad += int(m.group(1)) if m else 0
        m = re.search(r"Socket errors: (.*)", out)
        if m:
            print(f"  wrk socket errors: {m.group(1)}")
    return done, bad


def run_python(client, cookie: str, requests: int, deadline: float) -> tuple[int, int]:
    counts = {"done": 0, "bad": 0}
    lock = threading.Lock()

    def worker(n: int) -> None:
        for _ in range(n):
            if time.monotonic() >= deadline:
                return
            status = client.get(PATH, cookie=cookie).status
            with lock:
                counts["done"] += 1
                counts["bad"] += status != 200

    threads = [threading.Thread(target=worker, args=(requests // 8,)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return counts["done"], counts["bad"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--requests", type=int, default=200_000)
    ap.add_argument("--warmup", type=int, default=5_000)
    ap.add_argument("--max-growth-kb", type=int, default=2048)
    ap.add_argument("--max-seconds", type=float, default=600)
    ap.add_argument("--mpm", default=os.environ.get("MEMSESSION_MPM", "event"))
    ap.add_argument("--python-client", action="store_true", help="do not use wrk")
    args = ap.parse_args()
    os.environ["MEMSESSION_MPM"] = args.mpm

    c, problems = comp.resolve()
    if problems:
        print("soak cannot run:\n  - " + "\n  - ".join(problems))
        return 3
    wrk = None if args.python_client else shutil.which("wrk")
    root = Path(tempfile.mkdtemp(prefix="memsession-soak-"))
    memcached = MemcachedServer(c.memcached, root)
    backend = EchoBackend()
    httpd = None
    try:
        paths = prepare_root(c, root)
        memcached.start()
        backend.start()
        httpd = Httpd(c, paths, backend.port, kerberos=False)  # no realm here
        httpd.start()
        client = httpd.client
        r = client.get("/login", headers={"Authorization": basic("alice", USERS["alice"])})
        assert r.status == 303, r.describe()
        cookie = r.cookie("memsession").value
        assert client.get(PATH, cookie=cookie).status == 200
        deadline = time.monotonic() + args.max_seconds
        url = f"http://127.0.0.1:{httpd.port}{PATH}"
        drive = ((lambda n: run_wrk(wrk, url, cookie, n, deadline)) if wrk
                 else (lambda n: run_python(client, cookie, n, deadline)))

        warm, warm_bad = drive(args.warmup)
        workers = worker_pids(httpd.children(), c.threaded)
        start = {pid: rss_kb(pid) for pid in workers}
        t0 = time.monotonic()
        done, bad = drive(args.requests)
        elapsed = time.monotonic() - t0
        end = {pid: rss_kb(pid) for pid in worker_pids(httpd.children(), c.threaded)}

        print(f"soak: mpm={args.mpm} client={'wrk' if wrk else 'python'} "
              f"{done} requests in {elapsed:.1f}s ({done / elapsed:.0f}/s) after {warm} warm-up; "
              f"non-200: {bad + warm_bad}")
        failures = []
        for pid in sorted(set(start) | set(end)):
            s, e = start.get(pid), end.get(pid)
            if s is None or e is None:
                print(f"  child {pid}: RSS start {s} kB, end {e} kB (started or ended meanwhile)")
                continue
            print(f"  child {pid}: RSS start {s} kB, end {e} kB, growth {e - s:+d} kB")
            if e - s > args.max_growth_kb:
                failures.append(f"child {pid} grew {e - s} kB (> {args.max_growth_kb})")
        if not set(start) & set(end):
            failures.append("no child lived through the whole run: nothing to compare")
        if done < args.requests:
            failures.append(f"only {done} of {args.requests} requests within {args.max_seconds}s")
        if bad + warm_bad:
            failures.append(f"{bad + warm_bad} answers were not 200")
        crashes = crash_lines(httpd.error_log.since(0))
        if crashes:
            failures.append("crash lines in the error log:\n" + "\n".join(crashes[:20]))
        for f in failures:
            print("FAIL: " + f)
        return 1 if failures else 0
    finally:
        if httpd is not None:
            httpd.stop()
        backend.stop()
        memcached.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
