"""The module's documented key derivation (README, "Keys in memcached"; src/session/keys.rs),
recomputed here independently of its code, so tests can find a session's record and epochs in
memcached from the cookie and the server secret; and the record format, so a test can seal a
record the way someone who writes to memcached would."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import struct

from . import site


def _hmac(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def _b64(raw: bytes) -> bytes:
    return base64.urlsafe_b64encode(raw).rstrip(b"=")


def _session_salt(prefix: str, secret: bytes) -> bytes:
    return _hmac(secret, b"memsession v2 session salt\0" + prefix.encode())


def _epoch_key(prefix: str, secret: bytes) -> bytes:
    return _hmac(secret, b"memsession v2 epoch key\0" + prefix.encode())


def session_keys(cookie: str, prefix: str = "memsession:", secret: bytes | None = None,
                 salt: bytes | None = None) -> tuple[bytes, bytes]:
    """(store key, record key) of a session: HKDF-SHA256 of the id under the session salt.
    `salt` replaces the secret-derived one (what a derivation without the secret would use)."""
    session_id = base64.urlsafe_b64decode(cookie + "=")
    if salt is None:
        salt = _session_salt(prefix, site.SECRET if secret is None else secret)
    prk = _hmac(salt, session_id)
    store_hash = _hmac(prk, b"store key\x01")
    record_key = _hmac(prk, b"record key\x01")
    return (prefix + "s:").encode() + _b64(store_hash), record_key


def record_key(cookie: str, prefix: str = "memsession:", secret: bytes | None = None) -> bytes:
    """The store key of a session (named record_key for the record it holds)."""
    return session_keys(cookie, prefix, secret)[0]


def unkeyed_salt(prefix: str = "memsession:") -> bytes:
    """The salt the module used before it had a server secret: public inputs only."""
    return hashlib.sha256(b"memsession v1 salt\0" + prefix.encode()).digest()


def global_epoch_key(prefix: str = "memsession:", secret: bytes | None = None) -> bytes:
    key = _epoch_key(prefix, site.SECRET if secret is None else secret)
    return (prefix + "g:").encode() + _b64(_hmac(key, b"global"))


def user_epoch_key(user: str, prefix: str = "memsession:", secret: bytes | None = None) -> bytes:
    key = _epoch_key(prefix, site.SECRET if secret is None else secret)
    return (prefix + "u:").encode() + _b64(_hmac(key, b"user\0" + user.encode()))


def seal(store_key: bytes, record_key_: bytes, user: str, user_epoch: bytes,
         global_epoch: bytes, now: int, auth_type: str = "Basic") -> bytes:
    """A version-1 record (src/session/record.rs): version | nonce | ChaCha20-Poly1305 of the
    plaintext, associated data version || store key."""
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

    def field(raw: bytes) -> bytes:
        return struct.pack(">I", len(raw)) + raw

    plaintext = (field(user.encode()) + field(auth_type.encode())
                 + struct.pack(">QQQQQ", now, now, 3600, 0, 0) + b"\0"
                 + user_epoch + global_epoch)
    nonce = os.urandom(12)
    sealed = ChaCha20Poly1305(record_key_).encrypt(nonce, plaintext, b"\x01" + store_key)
    return b"\x01" + nonce + sealed


_MASK = (1 << 64) - 1


def fnv1a64(data: bytes) -> int:
    """64-bit FNV-1a (README, MemSessionServers)."""
    h = 0xCBF29CE484222325
    for byte in data:
        h = ((h ^ byte) * 0x100000001B3) & _MASK
    return h


def jump_consistent_hash(key: int, buckets: int) -> int:
    """Lamping & Veach's jump consistent hash, the published code's double arithmetic."""
    b, j = -1, 0
    while j < buckets:
        b = j
        key = (key * 2862933555777941757 + 1) & _MASK
        j = int((b + 1) * (float(1 << 31) / float((key >> 33) + 1)))
    return max(b, 0)


def server_for_key(key: bytes, servers: int) -> int:
    """Which of `servers` memcached servers (in MemSessionServers order) holds `key`, as README
    documents it: jump_consistent_hash(fnv1a64(key), N)."""
    return 0 if servers <= 1 else jump_consistent_hash(fnv1a64(key), servers)


def replica_for_key(key: bytes, servers: int) -> int | None:
    """Which server holds the replica of `key` with MemSessionReplicas 1 (README, "A farm of
    memcached servers"): jump_consistent_hash(fnv1a64(key + b"\\0replica"), N - 1), skipping
    the key's home server; None with fewer than two servers."""
    if servers < 2:
        return None
    home = server_for_key(key, servers)
    pick = jump_consistent_hash(fnv1a64(key + b"\0replica"), servers - 1)
    return pick + 1 if pick >= home else pick
