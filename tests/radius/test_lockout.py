"""Lockout over RADIUS: failures counted once per request, the lock's Reply-Message, unlock."""

from __future__ import annotations

from tests.radius.helpers import LOCK_MESSAGE, outcomes, wait_for

ADDR = {"Calling_Station_Id": "192.0.2.10", "NAS_Port_Type": "Virtual"}


def test_three_wrong_passwords_lock_until_unlock(guard, server):
    for _ in range(3):
        assert server.auth("alice", "wrong", **ADDR).code == "Access-Reject"
    reply = server.auth("alice", server.password, **ADDR)
    assert reply.code == "Access-Reject"
    assert reply.attrs.get("Reply-Message", "").startswith(LOCK_MESSAGE)
    # the lock and the refusal in the one key=value shape of pam_guard.logline (the lock is
    # the recorder's: radiusd writes its line when it next reads the recorder's answers)
    assert wait_for(
        lambda: (
            server.auth("alice", server.password, **ADDR)
            and "event=lock rhost=192.0.2.10 reason=locked user=alice service=" in server.log_text()
        )
    )
    assert "event=refused rhost=192.0.2.10 reason=locked user=alice service=" in server.log_text()
    assert " channel=radius phase=authorize" in server.log_text()
    guard.cli("unlock", "alice")
    reply = server.auth("alice", server.password, **ADDR)
    assert reply.code == "Access-Accept", reply
    assert wait_for(lambda: outcomes(guard, "alice")[-1:] == [("success", "")])


def test_failures_are_counted_once_per_request(guard, server):
    for _ in range(3):
        server.auth("bob", "wrong", **ADDR)
    server.auth("bob", server.password, **ADDR)  # refused in authorize: a denial, no failure
    assert wait_for(
        lambda: outcomes(guard, "bob") == [("failure", "")] * 3 + [("denied", "locked")]
    )
    (events,) = guard.query("SELECT count(*) FROM events WHERE username = 'bob'")
    assert events == (4,)


def test_two_failures_then_success_does_not_lock(guard, server):
    for _ in range(2):
        server.auth("carol", "wrong", **ADDR)
    assert server.auth("carol", server.password, **ADDR).code == "Access-Accept"
    # The success reset the count: two more failures still do not lock.
    wait_for(lambda: ("success", "") in outcomes(guard, "carol"))
    for _ in range(2):
        server.auth("carol", "wrong", **ADDR)
    assert server.auth("carol", server.password, **ADDR).code == "Access-Accept"
    (locked,) = guard.query("SELECT locked_at FROM accounts WHERE username = 'carol'")
    assert locked == (None,)


def test_failed_login_records_source_and_session_type(guard, server):
    server.auth(
        "dave",
        "wrong",
        Calling_Station_Id="::ffff:198.51.100.7",
        NAS_Port_Type="Wireless-802.11",
        NAS_Identifier="ap-1",
    )
    (row,) = wait_for(
        lambda: guard.query("SELECT address, service, client FROM events WHERE username = 'dave'")
    )
    assert row[0] == "198.51.100.7" and row[1] == "wifi"
    assert "nas=ap-1" in row[2]


REJECT_REX = 'if (&User-Name == "rex") {\n\t\treject\n\t}'


def test_post_auth_reject_after_success_is_not_a_failure(guard, start_server):
    # A post-auth policy after pam_guard rejects: FreeRADIUS 3.2.1 then runs post_auth again
    # (Post-Auth-Type REJECT) for the same request. The right password is no failure.
    server = start_server(guard, post_auth_after=REJECT_REX)
    for _ in range(4):
        assert server.auth("rex", server.password).code == "Access-Reject"
    assert wait_for(lambda: len(outcomes(guard, "rex")) == 4)
    assert set(outcomes(guard, "rex")) == {("success", "")}
    assert "not counted as a failed password" in server.log_text()


def test_post_auth_reject_before_pam_guard_counts_once(guard, start_server):
    # A policy before pam_guard rejects: only the REJECT path reaches pam_guard, where the
    # packaged snippet's `update control` marks it; one failure per request.
    server = start_server(guard, post_auth_before=REJECT_REX)
    server.auth("rex", server.password)
    # The recorder stores in order: once a later request is stored, rex's record(s) are too.
    assert server.auth("zed", server.password).code == "Access-Accept"
    assert wait_for(lambda: outcomes(guard, "zed"))
    assert outcomes(guard, "rex") == [("failure", "")]


def test_admin_lock_and_unlock_act_on_the_next_request(guard, server):
    """The module keeps a copy of a user's account once it has seen them (radius_hook.hot):
    an admin's lock and unlock must still act on the very next request."""
    for _ in range(3):  # the copy is loaded, and kept current by the module's own successes
        assert server.auth("dora", server.password, **ADDR).code == "Access-Accept"
    guard.cli("lock", "dora")
    reply = server.auth("dora", server.password, **ADDR)
    assert reply.code == "Access-Reject" and reply.attrs["Reply-Message"].startswith(LOCK_MESSAGE)
    guard.cli("unlock", "dora")
    assert server.auth("dora", server.password, **ADDR).code == "Access-Accept"


def test_kept_copy_counts_failures_and_locks(guard, server):
    """Successes through the kept copy, then failures: the lock still comes at the third."""
    for _ in range(2):
        assert server.auth("emil", server.password, **ADDR).code == "Access-Accept"
    for _ in range(2):
        assert server.auth("emil", "wrong", **ADDR).code == "Access-Reject"
    assert server.auth("emil", server.password, **ADDR).code == "Access-Accept"  # resets
    for _ in range(3):
        assert server.auth("emil", "wrong", **ADDR).code == "Access-Reject"
    reply = server.auth("emil", server.password, **ADDR)
    assert reply.code == "Access-Reject" and reply.attrs["Reply-Message"].startswith(LOCK_MESSAGE)
    assert wait_for(
        lambda: (
            [o for o, _r in outcomes(guard, "emil")]
            == [
                "success",
                "success",
                "failure",
                "failure",
                "success",
                "failure",
                "failure",
                "failure",
                "denied",
            ]
        )
    )


def test_removed_change_counters_are_noticed(guard, server):
    """The counter file removed under a running radiusd: writers find none to bump, and
    the module's copies would never hear of a change. Within a second the module notices,
    makes a new file and reads the store again, so an admin's lock still acts."""
    import os

    for _ in range(2):
        assert server.auth("ivy", server.password, **ADDR).code == "Access-Accept"
    os.unlink(guard.store_path + "-changes")
    guard.cli("lock", "ivy")
    # the module looks at its files once a second: the first request after that is refused
    assert wait_for(lambda: server.auth("ivy", server.password, **ADDR).code == "Access-Reject")
    reply = server.auth("ivy", server.password, **ADDR)
    assert reply.code == "Access-Reject" and reply.attrs["Reply-Message"].startswith(LOCK_MESSAGE)


def test_copies_loaded_at_start_still_see_a_lock_made_later(guard, start_server):
    """radiusd starts with copies of the recently active accounts (radius_hook.hot.preload);
    a lock an admin makes afterwards still refuses at once (the change counters)."""
    first = start_server(guard)
    assert first.auth("erin", first.password, **ADDR).code == "Access-Accept"
    assert wait_for(lambda: outcomes(guard, "erin") == [("success", "")])
    first.stop()
    server = start_server(guard)
    assert wait_for(lambda: "1 copies of accounts loaded" in server.log_text()), server.log_text()
    assert server.auth("erin", server.password, **ADDR).code == "Access-Accept"
    guard.cli("lock", "erin")
    reply = server.auth("erin", server.password, **ADDR)
    assert reply.code == "Access-Reject"
    assert reply.attrs.get("Reply-Message", "").startswith(LOCK_MESSAGE)


def test_a_drop_in_takes_effect_in_a_running_radiusd(guard, server):
    """A file added to pam-guard.d beside the config is read by radiusd within a second, as
    a change to the main file is (SPEC §2 drop-ins): here it turns the address lists on,
    which authorize applies itself."""
    import os

    from pam_guard.config import dropin_dir

    guard.cli("ip", "allow", "jill", "10.0.0.0/8")  # not enforced: ip_lock is off
    assert server.auth("jill", server.password, **ADDR).code == "Access-Accept"
    directory = dropin_dir(guard.path)
    os.makedirs(directory, mode=0o755, exist_ok=True)
    with open(os.path.join(directory, "10-ip-lock.toml"), "w") as handle:
        handle.write("[ip_lock]\nenabled = true\n")
    # the module looks at its files once a second
    assert wait_for(lambda: server.auth("jill", server.password, **ADDR).code == "Access-Reject")
    reply = server.auth("jill", server.password, **ADDR)
    assert reply.code == "Access-Reject", reply
    assert "not allowed from this address" in reply.attrs.get("Reply-Message", "")
