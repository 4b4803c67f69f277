"""MemSessionCSRFCheck (default On): an unsafe method riding on the cookie needs an Origin (or a
Referer) of this site or of MemSessionTrustedOrigin; else 403. GET is never checked."""

import pytest

from harness.site import TRUSTED_ORIGIN

pytestmark = pytest.mark.module

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def _post(client, cookie, path="/app/env.cgi", method="POST", **headers):
    return client.request(method, path, cookie=cookie, body=b"a=1", headers={**FORM, **headers})


def test_cross_site_origin_is_403(client, login):
    r = _post(client, login("alice"), Origin="https://evil.example")
    assert r.status == 403, r.describe()


def test_same_origin_post_is_served(client, login):
    r = _post(client, login("alice"), Origin=client.origin)
    env = r.env()
    assert env["REMOTE_USER"] == "alice"
    assert env["REQUEST_METHOD"] == "POST"


def test_post_without_origin_or_referer_is_403(client, login):
    r = _post(client, login("alice"))
    assert r.status == 403, r.describe()


def test_same_site_referer_is_enough(client, login):
    r = _post(client, login("alice"), Referer=client.origin + "/app/")
    assert r.env()["REMOTE_USER"] == "alice"


def test_cross_site_referer_is_403(client, login):
    r = _post(client, login("alice"), Referer="https://evil.example/app/")
    assert r.status == 403, r.describe()


def test_null_origin_is_403(client, login):
    r = _post(client, login("alice"), Origin="null")
    assert r.status == 403, r.describe()


@pytest.mark.parametrize("origin", ["http://127.0.0.1:1", "https://127.0.0.1:{port}",
                                    "http://127.0.0.1:{port}.evil.example",
                                    "http://localhost:{port}"])
def test_look_alike_origin_is_403(client, login, origin):
    r = _post(client, login("alice"), Origin=origin.format(port=client.port))
    assert r.status == 403, r.describe()


def test_look_alike_referer_is_403(client, login):
    r = _post(client, login("alice"), Referer=f"http://127.0.0.1:{client.port}.evil.example/app/")
    assert r.status == 403, r.describe()


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_every_unsafe_method_is_checked(client, login, method):
    r = _post(client, login("alice"), method=method, Origin="https://evil.example")
    assert r.status == 403, r.describe()


def test_get_is_never_checked(client, login):
    r = client.get("/app/env.cgi", cookie=login("alice"), headers={"Origin": "https://evil.example"})
    assert r.env()["REMOTE_USER"] == "alice"


def test_csrf_check_off_serves_a_cross_site_post(client, login):
    r = _post(client, login("alice"), path="/csrf-off/env.cgi", Origin="https://evil.example")
    assert r.env()["REMOTE_USER"] == "alice"


def test_trusted_origin_is_served_and_others_are_not(client, login):
    cookie = login("alice")
    r = _post(client, cookie, path="/trusted/env.cgi", Origin=TRUSTED_ORIGIN)
    assert r.env()["REMOTE_USER"] == "alice"
    r = _post(client, cookie, path="/trusted/env.cgi", Origin="https://evil.example")
    assert r.status == 403, r.describe()
