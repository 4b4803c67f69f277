"""A login always mints a fresh id: a cookie the client brings is never adopted (fixation)."""

import secrets

import pytest

pytestmark = pytest.mark.module


def test_login_does_not_adopt_a_client_chosen_id(login, whoami):
    chosen = secrets.token_urlsafe(32)
    issued = login("alice", cookie=chosen)
    assert issued != chosen
    assert whoami(chosen)[0] == 401
    status, env = whoami(issued)
    assert status == 200
    assert env["REMOTE_USER"] == "alice"


def test_login_replaces_and_revokes_an_existing_session(login, whoami):
    old = login("alice")
    assert whoami(old)[0] == 200
    new = login("alice", cookie=old)
    assert new != old
    assert whoami(old)[0] == 401, "the session the client came with must be revoked at login"
    assert whoami(new)[0] == 200
