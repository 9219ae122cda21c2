"""A store that is down (PostgreSQL stopped): authorize follows failure.on_store_error,
accounting is not acknowledged, and the server answers again once the store is back."""

from __future__ import annotations

import pytest

from tests.support.postgres import postgres_server, postgres_url  # noqa: F401

pytestmark = pytest.mark.postgres


@pytest.mark.parametrize("mode", ["deny", "allow"])
def test_store_down(make_guard, start_server, postgres_server, postgres_url, mode):  # noqa: F811
    guard = make_guard({"store": {"url": postgres_url}, "failure": {"on_store_error": mode}})
    server = start_server(guard)
    assert server.auth("zoe", server.password).code == "Access-Accept"
    postgres_server.pause()
    try:
        reply = server.auth("zoe", server.password)
        if mode == "deny":
            assert reply.code == "Access-Reject"
            assert "login service unavailable" in reply.attrs["Reply-Message"]
        else:
            assert reply.code == "Access-Accept"
        # Not stored, so not acknowledged: the NAS will send it again.
        assert server.acct("Start", "zoe", "s-9", NAS_IP_Address="192.0.2.1").code is None
        assert server.running()
    finally:
        postgres_server.resume()
    assert server.auth("zoe", server.password).code == "Access-Accept"
    assert (
        server.acct("Start", "zoe", "s-9", NAS_IP_Address="192.0.2.1").code == "Accounting-Response"
    )
