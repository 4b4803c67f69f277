"""SetHandler memsession-login-form: user and password POSTed, checked by Apache's providers."""

import urllib.parse

import pytest

from harness.http import location_path

pytestmark = pytest.mark.module

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def form(client, fields, path="/form-login", headers=None):
    body = urllib.parse.urlencode(fields)
    hdrs = {**FORM, "Origin": client.origin, **(headers or {})}
    return client.post(path, headers=hdrs, body=body)


def test_right_password_issues_a_session_and_returns(client, whoami):
    r = form(client, {"user": "alice", "password": "alicepw", "return": "/app/env.cgi"})
    assert r.status == 303, r.describe()
    assert location_path(r, client.origin) == "/app/env.cgi"
    cookie = r.cookie("memsession")
    assert cookie is not None and cookie.has("httponly"), r.describe()
    status, env = whoami(cookie.value)
    assert status == 200
    assert env["REMOTE_USER"] == "alice"
    assert env["MEMSESSION_LOGIN_AUTH_TYPE"] == "Form"


def test_wrong_password_and_unknown_user_look_the_same(client):
    wrong = form(client, {"user": "alice", "password": "nope"})
    unknown = form(client, {"user": "mallory", "password": "nope"})
    for r in (wrong, unknown):
        assert r.status == 401, r.describe()
        assert r.headers_all("Set-Cookie") == []
    assert wrong.body == unknown.body, "the answer must not tell which part was wrong"


def test_empty_password_is_refused(client):
    r = form(client, {"user": "alice", "password": ""})
    assert r.status == 401, r.describe()


def test_xhr_login_gets_json(client):
    r = form(client, {"user": "bob", "password": "bobpw"}, headers={"X-Requested-With": "XMLHttpRequest"})
    assert r.status == 200, r.describe()
    assert r.header("Content-Type").startswith("application/json")
    assert b'"user":"bob"' in r.body
    assert r.cookie("memsession") is not None


def test_get_is_not_a_login(client):
    r = client.get("/form-login?user=alice&password=alicepw")
    assert r.status == 405, r.describe()
    assert "POST" in (r.header("Allow") or "")


def test_other_content_types_are_refused(client):
    r = client.post("/form-login", headers={"Content-Type": "application/json", "Origin": client.origin},
                    body='{"user":"alice","password":"alicepw"}')
    assert r.status == 415, r.describe()


def test_missing_fields_are_a_bad_request(client):
    r = form(client, {"user": "alice"})
    assert r.status == 400, r.describe()


def test_oversized_form_is_refused_without_a_session(client):
    r = form(client, {"user": "alice", "password": "alicepw", "pad": "x" * 20000})
    assert r.status == 413, r.describe()
    assert r.headers_all("Set-Cookie") == []


def test_cross_site_form_post_is_refused(client):
    r = form(client, {"user": "alice", "password": "alicepw"}, headers={"Origin": "https://evil.example"})
    assert r.status == 403, r.describe()
    assert r.headers_all("Set-Cookie") == []


def test_open_redirect_in_the_form_is_refused(client):
    r = form(client, {"user": "alice", "password": "alicepw", "return": "//evil.example/"})
    assert r.status == 303, r.describe()
    assert location_path(r, client.origin) == "/"


def test_unknown_provider_is_a_logged_configuration_error(client, httpd):
    r = form(client, {"user": "alice", "password": "alicepw"}, path="/form-login-missing-provider")
    assert r.status == 500, r.describe()
    assert "MemSessionPasswordProvider nosuchprovider" in httpd.p.error_log.read_text()
