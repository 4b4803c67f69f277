"""A memcached on a UNIX socket, and a tiny client that reads what it holds over its own protocol.

The client is deliberately independent of the module's store code: it lists keys with
`lru_crawler metadump all` (keys come URL-encoded in the dump) and reads/deletes them with the
meta commands, addressing keys in base64 (`b` flag) so any byte in a key is handled.
"""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import time
import urllib.parse
from pathlib import Path

from . import procs


class MemcachedError(Exception):
    pass


class MemcachedClient:
    def __init__(self, sock_path: str, timeout_s: float = 3.0):
        self.sock_path = sock_path
        self.timeout_s = timeout_s

    def _connect(self) -> socket.socket:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout_s)
        s.connect(self.sock_path)
        return s

    @staticmethod
    def _read_until(s: socket.socket, buf: bytearray, terminator: bytes) -> bytes:
        while terminator not in buf:
            chunk = s.recv(65536)
            if not chunk:
                raise MemcachedError(f"connection closed before {terminator!r}; got {bytes(buf)[-200:]!r}")
            buf += chunk
        idx = buf.index(terminator) + len(terminator)
        out = bytes(buf[:idx])
        del buf[:idx]
        return out

    def command(self, line: bytes) -> bytes:
        """Send one command line, return the first response line (without CRLF)."""
        with self._connect() as s:
            s.sendall(line + b"\r\n")
            buf = bytearray()
            return self._read_until(s, buf, b"\r\n")[:-2]

    def version(self) -> str:
        resp = self.command(b"version")
        if not resp.startswith(b"VERSION "):
            raise MemcachedError(f"unexpected version reply {resp!r}")
        return resp[8:].decode()

    def stats(self) -> dict[str, int]:
        """memcached's general counters (`stats`), the integer ones."""
        with self._connect() as s:
            s.sendall(b"stats\r\n")
            buf = bytearray()
            out = {}
            while (line := self._read_until(s, buf, b"\r\n")[:-2]) != b"END":
                _, name, value = line.decode().split(" ", 2)
                if value.isdigit():
                    out[name] = int(value)
            return out

    def keys(self) -> list[bytes]:
        """Every key memcached holds right now (decoded from the dump's URL encoding).

        The LRU crawler walks memcached's HOT, WARM and COLD lists one after the other, and the
        LRU maintainer moves items between them meanwhile (fresh items out of HOT, read items
        into WARM), so one walk can miss an item: seen under load with fresh epochs and
        records. Walks are united until one adds nothing new (at least two, at most five)."""
        keys = self._dump_keys()
        seen = set(keys)
        for _ in range(4):
            new = [k for k in self._dump_keys() if k not in seen]
            if not new:
                break
            keys += new
            seen.update(new)
        return keys

    def _dump_keys(self) -> list[bytes]:
        deadline = time.monotonic() + 5
        while True:
            with self._connect() as s:
                s.sendall(b"lru_crawler metadump all\r\n")
                buf = bytearray()
                keys: list[bytes] = []
                busy = False
                # item lines end in a bare LF; only the closing END (or an error) ends in CRLF
                while True:
                    raw = self._read_until(s, buf, b"\n")
                    line = raw.rstrip(b"\r\n")
                    if line == b"END":
                        break
                    if line.startswith(b"BUSY"):
                        busy = True
                        break
                    if line.startswith(b"ERROR") or line.startswith(b"CLIENT_ERROR"):
                        raise MemcachedError(f"metadump failed: {line!r}")
                    fields = dict(f.split(b"=", 1) for f in line.split(b" ") if b"=" in f)
                    if b"key" in fields:
                        keys.append(urllib.parse.unquote_to_bytes(fields[b"key"].decode("ascii")))
            if not busy:
                return keys
            if time.monotonic() > deadline:
                raise MemcachedError("lru_crawler stayed BUSY for 5s")
            time.sleep(0.05)

    def get(self, key: bytes) -> bytes | None:
        """The value stored under key, or None on a miss."""
        b64 = base64.b64encode(key)
        with self._connect() as s:
            s.sendall(b"mg " + b64 + b" b v\r\n")
            buf = bytearray()
            head = self._read_until(s, buf, b"\r\n")[:-2]
            if head == b"EN":
                return None
            if not head.startswith(b"VA "):
                raise MemcachedError(f"mg {key!r}: unexpected reply {head!r}")
            size = int(head.split(b" ")[1])
            while len(buf) < size + 2:
                chunk = s.recv(65536)
                if not chunk:
                    raise MemcachedError("connection closed inside a value")
                buf += chunk
            return bytes(buf[:size])

    def ttl(self, key: bytes) -> int | None:
        """Seconds until the item expires (-1: never), or None on a miss."""
        resp = self.command(b"mg " + base64.b64encode(key) + b" b t")
        if resp == b"EN":
            return None
        if not resp.startswith(b"HD"):
            raise MemcachedError(f"mg {key!r} t: unexpected reply {resp!r}")
        for flag in resp.split(b" ")[1:]:
            if flag.startswith(b"t"):
                return int(flag[1:])
        raise MemcachedError(f"mg {key!r} t: no ttl in {resp!r}")

    def delete(self, key: bytes) -> bool:
        resp = self.command(b"md " + base64.b64encode(key) + b" b")
        if resp not in (b"HD", b"NF"):
            raise MemcachedError(f"md {key!r}: unexpected reply {resp!r}")
        return resp == b"HD"

    def set(self, key: bytes, value: bytes, ttl: int = 0) -> None:
        """Store a value as it is: the harness's self-test, and the fault/attack tests that
        plant records and epochs the way someone with access to memcached could."""
        with self._connect() as s:
            s.sendall(b"ms " + base64.b64encode(key) + b" %d b T%d\r\n" % (len(value), ttl)
                      + value + b"\r\n")
            buf = bytearray()
            resp = self._read_until(s, buf, b"\r\n")[:-2]
        if resp != b"HD":
            raise MemcachedError(f"ms {key!r}: unexpected reply {resp!r}")

    def dump(self) -> dict[bytes, bytes | None]:
        """Every key and its value (None if it vanished between listing and reading)."""
        return {k: self.get(k) for k in self.keys()}


class MemcachedServer(procs.GroupProcess):
    def __init__(self, binary: str, root: Path):
        self.binary = binary
        self.root = root
        self.sock_path = str(root / "memcached.sock")
        self.log_path = str(root / "logs" / "memcached.log")
        self.proc: subprocess.Popen | None = None

    def pause(self) -> None:
        """SIGSTOP: alive, its socket still accepting, nothing answered. Returns once every
        thread has stopped: kill(2) returns before a worker busy on another core has."""
        os.kill(self.proc.pid, signal.SIGSTOP)
        self._wait_stopped(True)

    def resume(self) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)
        self._wait_stopped(False)

    def _wait_stopped(self, stopped: bool) -> None:
        deadline = time.monotonic() + 5
        while self._all_threads_stopped() != stopped:
            if time.monotonic() > deadline:
                raise MemcachedError(f"memcached did not {'stop' if stopped else 'resume'}")
            time.sleep(0.001)

    def _all_threads_stopped(self) -> bool:
        states = []
        for task in Path(f"/proc/{self.proc.pid}/task").iterdir():
            try:
                states.append(task.joinpath("stat").read_text().rsplit(") ", 1)[1][0])
            except (OSError, IndexError):
                pass  # a thread that ended meanwhile
        return all(state == "T" for state in states)

    def start(self, memory_mb: int = 64, argv: list[str] | None = None) -> None:
        """Start (or start again, on the same socket). memory_mb: memcached's -m, tiny to make
        it evict. argv: memcached's whole command line instead (it must listen on sock_path,
        mode 0777)."""
        if os.path.exists(self.sock_path):
            os.unlink(self.sock_path)
        argv = argv or [self.binary, "-u", "root", "-s", self.sock_path, "-a", "0777", "-m",
                        str(memory_mb), "-U", "0", "-c", "256"]
        self.proc = procs.spawn(argv, self.log_path)
        client = self.client()

        def dead() -> str | None:
            if self.proc.poll() is not None:
                return f"memcached exited with {self.proc.returncode}: {self.log_tail()}"
            return None

        procs.wait_until("memcached on " + self.sock_path, client.version, 10, alive=dead)
        mode = os.stat(self.sock_path).st_mode & 0o777
        if mode != 0o777:
            raise procs.NotReady(f"memcached socket mode is {oct(mode)}, want 0o777 "
                                 "(httpd children run as www-data)")

    def log_tail(self) -> str:
        try:
            return Path(self.log_path).read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def client(self) -> MemcachedClient:
        return MemcachedClient(self.sock_path)

    def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer would: no chance to close anything."""
        if self.proc is not None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
            procs.kill_group(self.proc)
            self.proc = None
