"""Real browsers through the SPNEGO login: headless Chromium and Firefox ESR open a protected
page (MemSessionUnauthenticated auto), are sent to /krb/login, negotiate with the test realm's
ticket, come back, and the page's own request is served on the cookie alone.

What the server recorded decides: the access log (with %u and the Authorization header) must
show the Negotiate at the login and no Authorization header on the page's request, served as
alice; the CGI's answer (in the DOM) must show REMOTE_USER and the delegated ccache."""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path

import pytest

from harness import browsers, kdc, procs, site
from harness.httpd import access_log_line

pytestmark = pytest.mark.module

USER = f"alice@{kdc.REALM}"


def log_lines(paths, needle: str) -> list[str]:
    return [line for line in paths.access_log.read_text(errors="replace").splitlines()
            if needle in line]


def cgi_record(paths, probe: str) -> str:
    """What krb.cgi recorded for the page's request (REMOTE_USER, klist -s of its ccache)."""
    lines = [line for line in site.krb_cgi_record(paths).read_text().splitlines()
             if line.startswith(f"probe={probe} ")]
    assert len(lines) == 1, lines
    return lines[0]


def check_server_side(paths, probe: str) -> None:
    # the page's own request: on the cookie alone, as alice
    xhr = access_log_line(paths, f"/krb/browser-app/krb.cgi?probe={probe}")
    assert f" {USER} " in xhr and '" 200 ' in xhr, xhr
    assert "Negotiate" not in xhr and "memsession=" in xhr, xhr
    # the first navigation was redirected to the login, which negotiated
    nav = log_lines(paths, f"/krb/browser-app/index.html?probe={probe}")
    assert len(nav) == 2, nav
    assert '" 30' in nav[0] and "Negotiate" not in nav[0], nav
    assert f" {USER} " in nav[1] and '" 200 ' in nav[1] and "Negotiate" not in nav[1], nav
    login = [line for line in log_lines(paths, "/krb/login?") if probe in line]
    assert any('"Negotiate ' in line and f" {USER} " in line and '" 303 ' in line
               for line in login), login
    # the backend behind MemSessionDelegation had alice's delegated TGT
    record = cgi_record(paths, probe)
    assert f"REMOTE_USER={USER} " in record and "HTTP_AUTHORIZATION= " in record + " ", record
    assert "KLIST_S=KLIST_OK" in record, f"no delegated credentials reached the CGI: {record}"


def work_dir(realm) -> Path:
    d = Path(tempfile.mkdtemp(prefix="browser-", dir=realm.p.dir))
    d.chmod(0o755)
    return d


def test_chromium_negotiates_once_and_rides_the_cookie(httpd, realm, paths):
    cc = realm.kinit("alice")
    probe = uuid.uuid4().hex
    url = f"http://localhost:{httpd.port}/krb/browser-app/index.html?probe={probe}"
    run = browsers.chromium(url, realm.client_env(cc), work_dir(realm), delegate=True)
    dom = run.stdout
    assert "XHR_STATUS=200" in dom, f"Chromium did not get the page through:\n{run.describe()}"
    assert f"REMOTE_USER={USER}" in dom, run.describe()
    check_server_side(paths, probe)
    # delegation through the private managed policy: the backend had alice's TGT
    assert "KLIST_S=KLIST_OK" in dom, f"no delegated credentials reached the CGI:\n{dom}"


def test_firefox_negotiates_once_and_rides_the_cookie(httpd, realm, paths):
    cc = realm.kinit("alice")
    probe = uuid.uuid4().hex
    url = f"http://localhost:{httpd.port}/krb/browser-app/index.html?probe={probe}"
    work = work_dir(realm)
    run = browsers.firefox(url, realm.client_env(cc), work)
    assert (work / "firefox.png").is_file(), f"Firefox took no screenshot:\n{run.describe()}"
    try:
        procs.wait_until("the page's XHR in the access log",
                         lambda: log_lines(paths, f"krb.cgi?probe={probe}"), 5)
    except procs.NotReady:
        pytest.fail("Firefox never made the page's request; access log for this probe:\n"
                    + "\n".join(log_lines(paths, probe)) + "\n" + run.describe())
    check_server_side(paths, probe)
