#!/usr/bin/env python3
"""Instructions per request of each contender, counted by callgrind on `httpd -X`.

Wall-clock benches on a shared machine are noisy; instruction counts are not. Each contender
(the same httpd configuration as `make bench` writes) runs as one process under
`valgrind --tool=callgrind`, is warmed up, has its counters zeroed (`callgrind_control -z`),
serves N requests on one keep-alive connection and dumps (`callgrind_control -d`). Ir / N is
what one request costs the server, every thread of the process included (the event MPM's
listener too); the client runs outside valgrind.

    python3 bench/callgrind.py [--requests 2000] [--only memsession,memsession-cache1s]

Prints Ir per request, each contender minus anon-basic, and the exclusive Ir per request by
object and by function of the module's own code; the dumps are kept in results/callgrind-<time>/
for callgrind_annotate.

    python3 bench/callgrind.py --callees DUMP REGEX N

prints what the functions matching REGEX cost and call, per request (the dump's N requests).
"""
from __future__ import annotations

import argparse
import base64
import http.client
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402

REPO = bench.REPO


# callgrind dumps and zeroes its counters when this runs: httpd calls it for an error
# response, such as the 404 of `mark`, never for the 200s measured. (vgdb, which
# callgrind_control needs, cannot reach a process blocked in a system call here.)
MARK_FN = "ap_send_error_response"


def requests(conn: http.client.HTTPConnection, headers: dict[str, str], n: int) -> None:
    for _ in range(n):
        conn.request("GET", "/bench/index.html", headers=headers)
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"{response.status} {response.reason}")


def mark(conn: http.client.HTTPConnection) -> None:
    conn.request("GET", "/callgrind-mark-404")
    response = conn.getresponse()
    response.read()
    if response.status != 404:
        raise RuntimeError(f"the mark answered {response.status}, not 404")


class NameTable:
    """Callgrind compresses names: "(12) name" defines number 12 for its kind (ob, fn), a
    later "(12)" refers back to it."""

    def __init__(self) -> None:
        self.names: dict[tuple[str, str], str] = {}

    def __call__(self, kind: str, rest: str) -> str:
        match = re.match(r"\((\d+)\)(?: (.*))?", rest)
        if not match:
            return rest
        if match.group(2) is not None:
            self.names[(kind, match.group(1))] = match.group(2)
        return self.names.get((kind, match.group(1)), rest)


def parse(dump: Path) -> tuple[int, dict[str, int], dict[tuple[str, str], int]]:
    """(total Ir, exclusive Ir by object, exclusive Ir by (object, function))."""
    by_ob: dict[str, int] = defaultdict(int)
    by_fn: dict[tuple[str, str], int] = defaultdict(int)
    ob = fn = ""
    skip_next = False
    total = 0

    name = NameTable()

    for line in dump.read_text(errors="replace").splitlines():
        if line.startswith("ob="):
            ob = name("ob", line[3:])
        elif line.startswith("fn="):
            fn = name("fn", line[3:])
        elif line.startswith(("cob=",)):
            name("ob", line[4:])
        elif line.startswith("cfn="):
            name("fn", line[4:])
        elif line.startswith("calls="):
            skip_next = True
        elif line.startswith("summary:") or line.startswith("totals:"):
            total = max(total, int(line.split()[1]))
        elif line and (line[0].isdigit() or line[0] in "+-*"):
            if skip_next:
                skip_next = False
                continue
            parts = line.split()
            if len(parts) >= 2:
                cost = int(parts[1])
                by_ob[ob] += cost
                by_fn[(ob, fn)] += cost
    return total, by_ob, by_fn


def callees(dump: Path, pattern: str, per: int) -> None:
    """Prints, for every function matching `pattern`, its exclusive cost and each callee's
    inclusive cost (Ir per request, the dump's total divided by `per`)."""
    self_cost: dict[str, int] = defaultdict(int)
    edges: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    fn = callee = ""
    in_call = False

    name = NameTable()

    for line in dump.read_text(errors="replace").splitlines():
        if line.startswith("fn="):
            fn = name("fn", line[3:])
        elif line.startswith("cfn="):
            callee = name("fn", line[4:])
        elif line.startswith("calls="):
            in_call = True
        elif line and (line[0].isdigit() or line[0] in "+-*"):
            parts = line.split()
            if len(parts) < 2:
                continue
            if in_call:
                edges[fn][callee] += int(parts[1])
                in_call = False
            else:
                self_cost[fn] += int(parts[1])
    for caller in sorted(set(self_cost) | set(edges)):
        if not re.search(pattern, caller):
            continue
        total = self_cost[caller] + sum(edges[caller].values())
        print(f"{total / per:9.0f} inclusive  {self_cost[caller] / per:7.0f} self  {caller[:120]}")
        for target, cost in sorted(edges[caller].items(), key=lambda kv: -kv[1]):
            if cost / per >= 1:
                print(f"    {cost / per:9.0f}  {target[:120]}")


def main() -> int:
    if len(sys.argv) == 5 and sys.argv[1] == "--callees":
        callees(Path(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--mpm", default="event")
    parser.add_argument("--only", default="memsession,memsession-cache1s",
                        help="contenders besides static and anon-basic")
    parser.add_argument("--module", default=str(REPO / "build" / "mod_auth_memsession.so"))
    parser.add_argument("--top", type=int, default=25, help="functions listed per contender")
    args = parser.parse_args()
    if bench.missing_tools("callgrind", ("valgrind", "callgrind_control", "apache2", "memcached",
                                         "htpasswd", "curl")):
        return 2

    results = REPO / "results" / time.strftime("callgrind-%Y%m%d-%H%M%S")
    results.mkdir(parents=True)
    results.chmod(0o777)  # httpd writes its dumps after it became www-data
    work = bench.new_workdir("memsession-callgrind-")
    mc = bench.Memcached(work, "sessions", tcp=False)
    mc_tcp = bench.Memcached(work, "socache", tcp=True)
    wanted = ["static", bench.ANON, *[n for n in args.only.split(",") if n]]
    chosen = {c.name: c for c in bench.contenders(work, mc_tcp) if not c.kerberos}
    ir: dict[str, float] = {}
    module_name = Path(args.module).name
    report: list[str] = []
    try:
        for name in wanted:
            c = chosen[name]
            server = bench.Httpd(work, c, args.mpm, Path(args.module), mc.sock, start=False)
            out = results / f"callgrind.out.{name}"
            proc = subprocess.Popen(
                ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--vgdb=no",
                 f"--dump-before={MARK_FN}", f"--zero-before={MARK_FN}",
                 "apache2", "-X", "-f", str(server.dir / "httpd.conf")],
                stdout=subprocess.DEVNULL, stderr=open(results / f"valgrind-{name}.log", "w"),
                start_new_session=True)
            try:
                bench.wait_for(server._answers, f"httpd -X {name} under callgrind", 180)
                headers: dict[str, str] = {}
                if c.login == "memsession":
                    headers["Cookie"] = bench.login_cookie(server.url)
                elif c.login == "anon":
                    headers["Authorization"] = "Basic " + base64.b64encode(b"anonymous:x").decode()
                conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
                requests(conn, headers, args.warmup)
                mark(conn)  # dump and zero: the measurement starts
                requests(conn, headers, args.requests)
                mark(conn)  # dump: what the N requests cost
                conn.close()
            finally:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
            # Dumps are numbered in order (the readiness probe's 404 and a login's 303 make
            # some too): the measurement's is the last a mark triggered.
            dumps = sorted(results.glob(f"callgrind.out.{name}.*"),
                           key=lambda d: int(d.name.rsplit(".", 1)[1].split("-")[0]))
            dump = [d for d in dumps if MARK_FN in d.read_text(errors="replace")[:2000]][-1]
            total, by_ob, by_fn = parse(dump)
            ir[name] = total / args.requests
            report.append(f"\n== {name}: {ir[name]:.0f} Ir/request ({dump.name})")
            report.append("  by object (exclusive Ir/request):")
            for ob, cost in sorted(by_ob.items(), key=lambda kv: -kv[1])[:8]:
                report.append(f"    {cost / args.requests:9.0f}  {Path(ob).name}")
            ours = [(fn, cost) for (ob, fn), cost in by_fn.items() if ob.endswith(module_name)]
            if ours:
                report.append(f"  {module_name}, top functions (exclusive Ir/request):")
                for fn, cost in sorted(ours, key=lambda kv: -kv[1])[:args.top]:
                    report.append(f"    {cost / args.requests:9.0f}  {fn[:110]}")
    finally:
        mc.stop()
        mc_tcp.stop()
        shutil.rmtree(work, ignore_errors=True)
    lines = [f"callgrind, httpd -X ({args.mpm} MPM), {args.requests} requests on one keep-alive "
             f"connection after {args.warmup} warm-up; Ir per request, every thread of the process", ""]
    for name, value in ir.items():
        delta = value - ir.get(bench.ANON, value)
        lines.append(f"{name:20s} {value:9.0f} Ir/req  {delta:+8.0f} vs {bench.ANON}  "
                     f"{value / ir['static']:5.2f} × static")
    text = "\n".join(lines + report) + "\n"
    (results / "summary.txt").write_text(text)
    print(text)
    print(f"dumps: {results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
