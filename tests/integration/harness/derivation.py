"""The module's documented key derivation, recomputed here independently of its code, so
tests can find a session's record in memcached from the cookie alone."""

from __future__ import annotations

import base64
import hashlib
import hmac


def record_key(cookie: str, prefix: str = "memsession:") -> bytes:
    """The store key of a session, derived independently of the module, as README documents
    it: prefix + "s:" + base64url(HKDF-SHA256(salt=SHA-256("memsession v1 salt\\0" + prefix),
    ikm=id, info="store key", 32 bytes))."""
    session_id = base64.urlsafe_b64decode(cookie + "=")
    salt = hashlib.sha256(b"memsession v1 salt\0" + prefix.encode()).digest()
    prk = hmac.new(salt, session_id, hashlib.sha256).digest()
    okm = hmac.new(prk, b"store key\x01", hashlib.sha256).digest()
    return (prefix + "s:").encode() + base64.urlsafe_b64encode(okm).rstrip(b"=")
