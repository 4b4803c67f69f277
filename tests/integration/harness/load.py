"""Bounded concurrent load: a few threads, a fixed number of requests each, a deadline, every
request with its own timeout. Each outcome records when it ran, so a test can tell what
happened before, during and after a fault it injected meanwhile."""

from __future__ import annotations

import http.client
import os
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Callable

from . import procs
from .http import Client, Response


@dataclass
class Outcome:
    started: float  # time.monotonic()
    ended: float
    status: int | None  # None: the request failed at the connection level
    error: str | None = None

    @property
    def elapsed(self) -> float:
        return self.ended - self.started


class Load:
    """`threads` threads each send up to `per_thread` requests made by `send()`, stopping at
    `deadline_s` or on stop(). Use as a context manager; `outcomes` holds every result."""

    def __init__(self, send: Callable[[], Response], threads: int, per_thread: int,
                 deadline_s: float):
        self.send = send
        self.threads = threads
        self.per_thread = per_thread
        self.deadline_s = deadline_s
        self.outcomes: list[Outcome] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []

    def _run(self, end: float) -> None:
        for _ in range(self.per_thread):
            if self._stop.is_set() or time.monotonic() >= end:
                return
            t0 = time.monotonic()
            try:
                status, error = self.send().status, None
            except (OSError, http.client.HTTPException) as exc:
                status, error = None, f"{type(exc).__name__}: {exc}"
            outcome = Outcome(t0, time.monotonic(), status, error)
            with self._lock:
                self.outcomes.append(outcome)

    def __enter__(self) -> "Load":
        end = time.monotonic() + self.deadline_s
        self._workers = [threading.Thread(target=self._run, args=(end,), daemon=True)
                         for _ in range(self.threads)]
        for w in self._workers:
            w.start()
        return self

    def done(self) -> int:
        with self._lock:
            return len(self.outcomes)

    def wait_for(self, count: int, deadline_s: float) -> None:
        """Until `count` requests have completed (or the load ended)."""
        procs.wait_until(f"{count} requests of the load", lambda: self.done() >= count
                         or not any(w.is_alive() for w in self._workers), deadline_s)

    def stop(self) -> None:
        self._stop.set()

    def join(self) -> list[Outcome]:
        for w in self._workers:
            w.join(self.deadline_s + 30)
            assert not w.is_alive(), "a load thread outlived its deadline"
        return sorted(self.outcomes, key=lambda o: o.started)

    def __exit__(self, *exc) -> None:
        self.stop()
        self.join()


def worker_pids(children: set[int], threaded: bool) -> set[int]:
    """The children that serve requests. Under threaded MPMs the parent also has mod_cgid's
    daemon, which runs a single thread; the MPM's children run several."""
    if not threaded:
        return set(children)
    out = set()
    for pid in children:
        try:
            with open(f"/proc/{pid}/status") as f:
                threads = next(int(line.split()[1]) for line in f if line.startswith("Threads:"))
        except (OSError, StopIteration):
            continue
        if threads > 1:
            out.add(pid)
    return out


def served_by_every_worker(client: Client, access_log: os.PathLike, workers: set[int],
                           path: str, cookie: str | None, expect: int = 200, rounds: int = 15,
                           concurrency: int = 16, settle: set[int] = frozenset(),
                           settle_rounds: int = 0) -> dict[int, int]:
    """Send rounds of `concurrency` simultaneous requests with the cookie (each on its own
    connection) until every worker pid in `workers` has answered `expect` (read from the access
    log's pid=%P), at most `rounds` rounds. Every answer must be `expect`, except that during
    the first `settle_rounds` rounds answers in `settle` are tolerated (a child whose circuit
    breaker is half-open lets one probe through and refuses the requests that arrive while it
    runs). Returns pid -> count of `expect` answers, for the failure message and the report."""
    probe = uuid.uuid4().hex
    statuses: list[int] = []
    seen: dict[int, int] = {}
    n = 0
    for round_no in range(rounds):
        batch = []
        results: list[int] = []
        lock = threading.Lock()

        def one(i: int) -> None:
            r = client.get(f"{path}?probe={probe}-{i}", cookie=cookie)
            with lock:
                results.append(r.status)

        for _ in range(concurrency):
            batch.append(threading.Thread(target=one, args=(n,), daemon=True))
            n += 1
        for t in batch:
            t.start()
        for t in batch:
            t.join(30)
        allowed = {expect} | (set(settle) if round_no < settle_rounds else set())
        assert set(results) <= allowed, f"round {round_no}: statuses {sorted(results)}, " \
                                        f"expected {sorted(allowed)}"
        statuses += results

        def logged() -> bool:
            with open(access_log, errors="replace") as f:
                lines = [line for line in f if probe in line]
            return len(lines) >= n and lines

        lines = procs.wait_until("access log lines of the probe", logged, 5)
        seen = {}
        for line in lines:
            if f'" {expect} ' not in line:
                continue
            pid = int(line.rsplit("pid=", 1)[1].split()[0])
            seen[pid] = seen.get(pid, 0) + 1
        if workers <= set(seen):
            return seen
    raise AssertionError(f"after {n} requests not every worker answered: workers {sorted(workers)}, "
                         f"served by {seen}")
