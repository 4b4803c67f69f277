#!/usr/bin/env python3
"""The loaded server, profiled: for each contender, wrk drives httpd (the same configuration as
`make bench`: event MPM, 2 children of 25 threads) while perf counts, over httpd's
children, task-clock, context switches and futex calls (an uncontended pthread or Rust
mutex makes no system call) and entries into the module's contended-mutex path (a uprobe),
then records call graphs of the futex calls and
of CPU time (cpu-clock: this VM has no hardware counters).

    python3 bench/profile.py [--only memsession-cache1s,memsession] [--seconds 5]

Prints per request: httpd CPU µs, context switches, futex calls (and how many of them came
from the module, by call graph), and the top of the CPU profile by shared object and by
symbol in the module. perf data and reports are kept in results/profile-<time>/.
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402

REPO = bench.REPO


def children(server: bench.Httpd) -> list[int]:
    parent = int((server.dir / "httpd.pid").read_text())
    return [pid for pid in server.pids() if pid != parent]


# A uprobe on the module's own mutexes' contended path (Rust's std futex mutex enters it only
# when the lock was held): the local cache's lock shared by the 25 threads of a child, and
# the shared round trips' state in strict mode. Call graphs cannot tell: neither libc nor the
# Rust code keeps frame pointers, so perf's stacks stop at libc.
PROBE = "probe_mod_auth_memsession:ms_lock_contended"


def add_probe(module: Path) -> bool:
    subprocess.run(["perf", "probe", "-q", "-d", PROBE], stderr=subprocess.DEVNULL, check=False)
    symbols = subprocess.run(["nm", str(module)], capture_output=True, text=True).stdout
    match = re.search(r"^\S+ t (\S*Mutex14lock_contended)$", symbols, re.M)
    if not match:
        return False
    added = subprocess.run(["perf", "probe", "-q", "-x", str(module), "--add",
                            f"ms_lock_contended={match.group(1)}"], capture_output=True)
    return added.returncode == 0


def perf_stat(pids: list[int], seconds: float, out: Path, probe: bool) -> dict[str, float]:
    events = "task-clock,context-switches,syscalls:sys_enter_futex" + (f",{PROBE}" if probe else "")
    proc = subprocess.Popen(["perf", "stat", "-x", ",", "-e", events, "-p", ",".join(map(str, pids)),
                             "-o", str(out), "--", "sleep", str(seconds)])
    return {"proc": proc}


def read_stat(out: Path) -> dict[str, float]:
    values = {}
    for line in out.read_text().splitlines():
        parts = line.split(",")
        if len(parts) > 3 and parts[0] and parts[0][0].isdigit():
            values[parts[2]] = float(parts[0])
    return values


def futex_sources(data: Path, module: str) -> tuple[int, int, dict[str, int]]:
    """(futex calls sampled, of which with the module on the stack, top module frames)."""
    script = subprocess.run(["perf", "script", "-i", str(data), "-F", "event,ip,sym,dso"],
                            capture_output=True, text=True).stdout
    total = ours = 0
    frames: dict[str, int] = defaultdict(int)
    for block in script.split("\n\n"):
        if "sys_enter_futex" not in block:
            continue
        total += 1
        mine = [line.split(None, 1)[1] for line in block.splitlines()[1:]
                if module in line and len(line.split(None, 1)) > 1]
        if mine:
            ours += 1
            frames[re.sub(r"\s*\(.*\)$", "", mine[0])[:100]] += 1
    return total, ours, frames


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="memsession,memsession-cache1s")
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--mpm", default="event")
    parser.add_argument("--module", default=str(REPO / "build" / "mod_auth_memsession.so"))
    args = parser.parse_args()
    if bench.missing_tools("profile", ("perf", "wrk", "apache2", "memcached", "htpasswd", "curl")):
        return 2
    results = REPO / "results" / time.strftime("profile-%Y%m%d-%H%M%S")
    results.mkdir(parents=True)
    work = bench.new_workdir("memsession-profile-")
    mc = bench.Memcached(work, "sessions", tcp=False)
    mc_tcp = bench.Memcached(work, "socache", tcp=True)
    wanted = [bench.ANON, *[n for n in args.only.split(",") if n]]
    chosen = {c.name: c for c in bench.contenders(work, mc_tcp) if not c.kerberos}
    module = Path(args.module).name
    servers: dict[str, bench.Httpd] = {}
    probe = add_probe(Path(args.module).resolve())
    lines = [f"wrk -t{args.threads} -c{args.connections} -d{args.seconds:g}s, {args.mpm} MPM; perf over "
             "httpd's children; per request:", "",
             f"{'contender':20s} {'req/s':>8s} {'cpu us':>7s} {'cswitch':>8s} {'futex':>7s} "
             f"{'module futex':>12s} {'contended module locks':>22s}"]
    details: list[str] = []
    try:
        for name in wanted:
            c = chosen[name]
            servers[name] = bench.Httpd(work, c, args.mpm, Path(args.module), mc.sock)
            url = servers[name].url
            if c.login == "memsession":
                c.headers = [f"Cookie: {bench.login_cookie(url)}"]
            elif c.login == "anon":
                c.headers = ["Authorization: Basic YW5vbnltb3VzOng="]
            bench.wrk(url + "/bench/index.html", c.headers, args, 1, None)  # warm-up
        for name in wanted:
            c, server = chosen[name], servers[name]
            url = server.url + "/bench/index.html"
            pids = children(server)
            # Counting pass.
            stat_out = results / f"stat-{name}.txt"
            counting = perf_stat(pids, args.seconds, stat_out, probe)["proc"]
            r = bench.wrk(url, c.headers, args, args.seconds, results / f"wrk-{name}.txt")
            counting.wait()
            stat = read_stat(stat_out)
            # Call graphs of the futex calls, then of CPU time.
            futex_data = results / f"futex-{name}.data"
            rec = subprocess.Popen(["perf", "record", "-q", "-g", "-e", "syscalls:sys_enter_futex",
                                    "-o", str(futex_data), "-p", ",".join(map(str, pids)), "--",
                                    "sleep", str(args.seconds)], stderr=subprocess.DEVNULL)
            bench.wrk(url, c.headers, args, args.seconds, None)
            rec.wait()
            total, ours, frames = futex_sources(futex_data, module)
            cpu_data = results / f"cpu-{name}.data"
            rec = subprocess.Popen(["perf", "record", "-q", "-g", "-e", "cpu-clock", "-F", "2000",
                                    "-o", str(cpu_data), "-p", ",".join(map(str, pids)), "--",
                                    "sleep", str(args.seconds)], stderr=subprocess.DEVNULL)
            bench.wrk(url, c.headers, args, args.seconds, None)
            rec.wait()
            n = max(r["requests"], 1)
            share = ours / total if total else 0.0
            futex = stat.get("syscalls:sys_enter_futex", 0) / n
            stat = {key.split("/")[0]: value for key, value in stat.items()}
            lines.append(f"{name:20s} {r['rps']:8.0f} {stat.get('task-clock', 0) * 1000 / n:7.1f} "
                         f"{stat.get('context-switches', 0) / n:8.2f} {futex:7.2f} {futex * share:12.3f} "
                         + (f"{stat.get(PROBE, 0) / n:22.4f}" if probe else f"{'(no uprobe)':>22s}"))
            by_dso = subprocess.run(["perf", "report", "-i", str(cpu_data), "--no-children", "--sort",
                                     "dso", "--stdio", "-q", "-g", "none"], capture_output=True, text=True).stdout
            ours_sym = subprocess.run(["perf", "report", "-i", str(cpu_data), "--no-children", "--sort",
                                       "sym", "--dsos", module, "--stdio", "-q", "-g", "none"],
                                      capture_output=True, text=True).stdout
            (results / f"report-{name}.txt").write_text(by_dso + "\n" + ours_sym)
            details.append(f"\n== {name}: CPU samples by object (top 8)")
            details += ["  " + l.strip() for l in by_dso.splitlines() if l.strip()][:8]
            details.append(f"  {module}, top symbols (share of all samples)")
            details += ["  " + l.strip()[:110] for l in ours_sym.splitlines() if l.strip()][:10]
            if frames:
                details.append(f"  futex calls with the module on the stack: {ours} of {total} sampled; "
                               "nearest module frame:")
                details += [f"    {count:6d}  {frame}" for frame, count in
                            sorted(frames.items(), key=lambda kv: -kv[1])[:6]]
    finally:
        for server in servers.values():
            server.begin_stop()
        for server in servers.values():
            server.wait_stopped()
        mc.stop()
        mc_tcp.stop()
        shutil.rmtree(work, ignore_errors=True)
        if probe:
            subprocess.run(["perf", "probe", "-q", "-d", PROBE], stderr=subprocess.DEVNULL, check=False)
    text = "\n".join(lines + details) + "\n"
    (results / "summary.txt").write_text(text)
    print(text)
    print(f"perf data: {results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
