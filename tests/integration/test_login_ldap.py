"""Canonical names (issue 15): a session carries the name the authn provider settled on, not the
name as typed. Through a real directory — Debian's slapd in a throwaway directory on loopback —
with mod_authnz_ldap as memsession-login-form's provider: uid matches case-insensitively, and
AuthLDAPRemoteUserAttribute uid (or AuthLDAPRemoteUserIsDN On) sets r->user to the directory's
own spelling. So `ALICE` and `alice` are one person with one revocation epoch, and
`memsessionctl revoke-user alice` ends both sessions."""

from __future__ import annotations

import os
import tempfile
import urllib.parse
from pathlib import Path

import pytest

from harness import ctl, ldap
from harness.http import Client

pytestmark = pytest.mark.module

PASSWORD = "alice-directory-pw"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture(scope="module")
def directory(paths):
    root = Path(tempfile.mkdtemp(prefix="memsession-ldap-", dir=paths.root))
    server = ldap.Directory(root)
    try:
        server.start()
        server.add_base()
        server.add_user("alice", PASSWORD)
        yield server
    finally:
        server.stop()


def ldap_node(another_httpd, components, directory, prefix: str, naming: str, limits: str = ""):
    m = components.modules_dir
    return another_httpd(key_prefix=prefix, extra_conf=f"""
LoadModule ldap_module {m}/mod_ldap.so
LoadModule authnz_ldap_module {m}/mod_authnz_ldap.so
<Location /ldap-login>
    SetHandler memsession-login-form
    MemSessionPasswordProvider ldap
    AuthLDAPURL "{directory.url}/{ldap.PEOPLE}?uid?one?(objectClass=inetOrgPerson)"
    {naming}
    {limits}
    MemSessionCookieSecure Off
</Location>
""")


def form_login(node, user: str, password: str = PASSWORD, source: str | None = None):
    client = node.client if source is None else Client("127.0.0.1", node.port, source=source)
    body = urllib.parse.urlencode({"user": user, "password": password}).encode()
    return client.post("/ldap-login", body=body, headers={**FORM, "Origin": client.origin})


def session_of(node, user: str) -> str:
    r = form_login(node, user)
    assert r.status == 303, f"login as {user!r} through LDAP failed:\n{r.describe()}"
    return r.cookie("memsession").value


def remote_user(node, cookie: str) -> str | None:
    r = node.client.get("/app/env.cgi", cookie=cookie)
    return r.env()["REMOTE_USER"] if r.status == 200 else None


def test_every_spelling_carries_the_directorys_name_and_one_revocation_ends_them_all(
        another_httpd, components, directory, memcached):
    prefix = f"ldap{os.getpid()}:"
    node = ldap_node(another_httpd, components, directory, prefix,
                     "AuthLDAPRemoteUserAttribute uid")
    sessions = {spelling: session_of(node, spelling) for spelling in ("ALICE", "alice", "Alice")}
    for spelling, cookie in sessions.items():
        assert remote_user(node, cookie) == "alice", \
            f"the login as {spelling!r} carries another name than the directory's"
    r = ctl.for_socket(memcached.sock_path, prefix)("revoke-user", "alice")
    assert r.code == 0, r.describe()
    for spelling, cookie in sessions.items():
        assert remote_user(node, cookie) is None, \
            f"revoke-user alice left the session logged in as {spelling!r} alive"


def test_with_remote_user_is_dn_the_session_carries_the_entrys_dn(another_httpd, components,
                                                                  directory, memcached):
    prefix = f"ldapdn{os.getpid()}:"
    node = ldap_node(another_httpd, components, directory, prefix,
                     "AuthLDAPRemoteUserIsDN On")
    dn = f"uid=alice,{ldap.PEOPLE}"
    upper, lower = session_of(node, "ALICE"), session_of(node, "alice")
    assert remote_user(node, upper) == dn and remote_user(node, lower) == dn
    r = ctl.for_socket(memcached.sock_path, prefix)("revoke-user", dn)
    assert r.code == 0, r.describe()
    assert remote_user(node, upper) is None and remote_user(node, lower) is None


def test_a_wrong_password_or_an_unknown_name_is_the_same_401(another_httpd, components,
                                                              directory):
    node = ldap_node(another_httpd, components, directory, f"ldapbad{os.getpid()}:",
                     "AuthLDAPRemoteUserAttribute uid")
    for user, password in (("ALICE", "wrong"), ("mallory", PASSWORD)):
        r = form_login(node, user, password)
        assert r.status == 401, r.describe()
        assert r.cookie("memsession") is None, r.describe()
        assert r.text == "Login failed.\n", r.describe()


def test_spellings_the_directory_takes_for_one_user_share_one_guessing_budget(
        another_httpd, components, directory):
    """The directory matches uid without regard to case and to insignificant spaces (RFC 4518):
    ` alice`, `alice ` and `ALICE  ` are alice to it. Were the budget kept per spelling, each
    would buy a fresh budget of guesses against one account (and towards the directory's own
    lockout). After the 2 failures one address may spend of MemSessionLoginLimitUser 4, every
    such spelling from that address is refused before the directory is asked."""
    node = ldap_node(another_httpd, components, directory, f"ldapbudget{os.getpid()}:",
                     "AuthLDAPRemoteUserAttribute uid",
                     "MemSessionLoginLimitUser 4\n    MemSessionLoginLimitAddress Off\n"
                     "    MemSessionLoginLimitWindow 60s")
    source = "127.0.0.9"
    r = form_login(node, " alice ", source=source)
    assert r.status == 303, f"the directory takes ' alice ' as alice:\n{r.describe()}"
    assert remote_user(node, r.cookie("memsession").value) == "alice"
    for _ in range(2):
        assert form_login(node, "alice", "wrong", source=source).status == 401
    for spelling in ("alice", " alice", "alice ", "ALICE  ", "Alice\t"):
        r = form_login(node, spelling, "wrong", source=source)
        assert r.status == 429, f"{spelling!r} got a budget of its own:\n{r.describe()}"
