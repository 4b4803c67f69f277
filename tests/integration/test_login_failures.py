"""Failures look alike at memsession-login-form: a wrong password, an unknown user and every
unusable account (expired, not yet valid, disabled, locked principal, expired password) get the
same 401 with the same body; only the log says which."""

from __future__ import annotations

import urllib.parse
import uuid

import pytest

from harness import kdc

pytestmark = pytest.mark.module

# Headers that legitimately differ between two answers.
VARYING = {"date", "connection"}


def form(client, path: str, user: str, password: str):
    return client.post(path, body=urllib.parse.urlencode({"user": user, "password": password}),
                       headers={"Content-Type": "application/x-www-form-urlencoded",
                                "Origin": client.origin})


def shape(r):
    return (r.status, r.body,
            sorted((k.lower(), v) for k, v in r.headers if k.lower() not in VARYING))


def test_kerberos_unknown_disabled_expired_locked_and_wrong_look_alike(client, httpd, realm):
    tag = uuid.uuid4().hex[:6]
    pw = "right-pw-1"
    accounts = {
        "expired": f"-expire 2000-01-01 -pw {pw}",
        "notyet": f"-expire 2099-12-31 -pw {pw}",  # valid: the control below
        "disabled": f"-allow_tix -pw {pw}",
        "pwexpired": f"-pwexpire 2000-01-01 -pw {pw}",
        "locked": f"+requires_preauth -pw {pw} -policy lockout1-{tag}",
    }
    realm.kadmin(f"addpol -maxfailure 1 -lockoutduration 1h lockout1-{tag}")
    for name, options in accounts.items():
        out = realm.kadmin(f"addprinc {options} {name}-{tag}")
        assert "created" in out, out
    # notyet is a control: the right password gets in, so the others fail for their state.
    ok = form(client, "/krb/form-login", f"notyet-{tag}", pw)
    assert ok.status == 303, ok.describe()
    # one wrong password locks locked-<tag> (-maxfailure 1)
    assert form(client, "/krb/form-login", f"locked-{tag}", "wrong").status == 401
    offset = httpd.error_log.size()
    answers = {
        "wrong password": form(client, "/krb/form-login", "alice", "wrong"),
        "unknown": form(client, "/krb/form-login", f"nobody-{tag}", pw),
        "expired principal": form(client, "/krb/form-login", f"expired-{tag}", pw),
        "disabled principal": form(client, "/krb/form-login", f"disabled-{tag}", pw),
        "expired password": form(client, "/krb/form-login", f"pwexpired-{tag}", pw),
        "locked principal": form(client, "/krb/form-login", f"locked-{tag}", pw),
        "empty password": form(client, "/krb/form-login", "alice", ""),
    }
    reference = shape(answers["wrong password"])
    assert reference[0] == 401, answers["wrong password"].describe()
    for what, r in answers.items():
        assert shape(r) == reference, f"{what} answers differently:\n{r.describe()}"
    log = [line for line in httpd.error_log.since(offset) if "login failed for user" in line]
    assert len(log) == len(answers), "\n".join(log)
    text = "\n".join(log)
    for principal in (f"expired-{tag}", f"disabled-{tag}", f"pwexpired-{tag}", f"locked-{tag}"):
        assert f"the KDC refused {principal}@{kdc.REALM}" in text, text
    assert f"the KDC does not know nobody-{tag}@{kdc.REALM}" in text, text


def test_file_provider_unknown_wrong_and_empty_look_alike(client, httpd):
    offset = httpd.error_log.size()
    answers = {
        "wrong password": form(client, "/form-login", "alice", "wrong"),
        "unknown user": form(client, "/form-login", "mallory", "wrong"),
        "empty user or password": form(client, "/form-login", "alice", ""),
    }
    reference = shape(answers["wrong password"])
    assert reference[0] == 401
    for what, r in answers.items():
        assert shape(r) == reference, f"{what} answers differently:\n{r.describe()}"
    text = "\n".join(httpd.error_log.since(offset))
    for reason in answers:
        assert f": {reason}" in text, text
