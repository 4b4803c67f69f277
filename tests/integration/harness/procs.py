"""Child processes in their own process groups, readiness by polling with a deadline."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from typing import Callable, TypeVar

T = TypeVar("T")


class NotReady(Exception):
    pass


def wait_until(what: str, probe: Callable[[], T | None], deadline_s: float,
               interval_s: float = 0.05, alive: Callable[[], str | None] | None = None) -> T:
    """Call probe until it returns something truthy, or fail after deadline_s.

    `alive` (optional) returns an error text when the thing we wait for has died, which stops the
    wait at once instead of running into the deadline.
    """
    end = time.monotonic() + deadline_s
    last_error: BaseException | None = None
    while True:
        if alive is not None:
            dead = alive()
            if dead:
                raise NotReady(f"{what}: {dead}")
        try:
            result = probe()
            if result:
                return result
        except Exception as exc:  # the probe's own failure is what we are waiting out
            last_error = exc
        if time.monotonic() >= end:
            detail = f" (last error: {last_error!r})" if last_error else ""
            raise NotReady(f"{what}: not ready after {deadline_s:.1f}s{detail}")
        time.sleep(interval_s)


def spawn(argv: list[str], log_path: str, cwd: str | None = None,
          env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start argv in a new session (so a new process group), stdout+stderr to log_path."""
    log = open(log_path, "ab")
    try:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                cwd=cwd, env=env, start_new_session=True)
    finally:
        log.close()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def kill_group(proc: subprocess.Popen, term_grace_s: float = 5.0) -> None:
    """SIGTERM the process group, wait for the leader and the group, then SIGKILL what is left."""
    pgid = proc.pid  # start_new_session: the leader's pid is the group id
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    end = time.monotonic() + term_grace_s
    while time.monotonic() < end:
        if proc.poll() is not None and not _group_alive(pgid):
            break
        time.sleep(0.05)
    if _group_alive(pgid):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)
    # reap stragglers of the group (children re-parented to init are not ours to wait for)
    end = time.monotonic() + 5
    while _group_alive(pgid) and time.monotonic() < end:
        time.sleep(0.05)


class GroupProcess:
    """A server the harness started with spawn(), in its own process group: alive while the
    leader runs; stop() ends the whole group."""

    proc: subprocess.Popen | None = None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is not None:
            kill_group(self.proc)
            self.proc = None
