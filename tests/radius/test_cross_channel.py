"""One store, two channels: a lock made over RADIUS holds for PAM logins and the other way
round (real pam_python stack driven by pamtester, real freeradius)."""

from __future__ import annotations

import pytest

from tests.radius.helpers import LOCK_MESSAGE, wait_for
from tests.support import pam as pam_support

pytestmark = pytest.mark.pam


@pytest.fixture
def pam_login(guard):
    """(user, login(password) -> LoginResult) on the packaged stack using guard's config."""
    why = pam_support.have_pam_tools()
    if why:
        pytest.skip(why)
    user = pam_support.create_user(pam_support.unique_name("pgrad"))
    service = pam_support.write_service(
        pam_support.packaged_stack(guard.path), pam_support.unique_name("pgrad")
    )

    def login(password):
        return pam_support.pamtester(
            service, user.name, password, rhost="192.0.2.20", env=guard.env
        )

    yield user, login
    pam_support.remove_service(service)
    pam_support.remove_user(user.name)


def test_lock_over_radius_refuses_pam_login(guard, server, pam_login):
    user, login = pam_login
    assert login(user.password).ok
    for _ in range(3):
        server.auth(user.name, "wrong", Calling_Station_Id="192.0.2.30")
    # The module's recorder stores the failures (and so the lock) a moment after the
    # replies: a PAM login started at once can come first (one CI run did).
    assert wait_for(
        lambda: (
            guard.query(
                "SELECT locked_at IS NOT NULL FROM accounts WHERE username = ?", (user.name,)
            )
            == [(1,)]
        )
    )
    refused = login(user.password)
    assert not refused.ok and LOCK_MESSAGE in refused.output
    guard.cli("unlock", user.name)
    assert login(user.password).ok


def test_lock_over_pam_refuses_radius_login(guard, server, pam_login):
    user, login = pam_login
    assert server.auth(user.name, server.password).code == "Access-Accept"
    for i in range(3):
        assert not login(f"wrong-{i}").ok
    reply = server.auth(user.name, server.password)
    assert reply.code == "Access-Reject"
    assert reply.attrs["Reply-Message"].startswith(LOCK_MESSAGE)
    # The refusal is stored by the module's recorder, a moment after the reply.
    assert wait_for(
        lambda: (
            guard.query(
                "SELECT channel, outcome FROM events WHERE username = ? ORDER BY ts", (user.name,)
            )[-4:]
            == [("pam", "failure")] * 3 + [("radius", "denied")]
        )
    )
