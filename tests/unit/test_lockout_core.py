"""The pure parts of issue 18 (no store): sources, growing locks, which count a failure goes
to, address blocks and the lock notices' rate-limit keys. The case files (tests/cases) show
the same rules through the gate and the store."""

from __future__ import annotations

import pytest

from policy import decide, locks
from policy.sources import block_key, familiar_key, is_familiar, normal_mac, radius_source
from policy.types import REPEATED, UNFAMILIAR, AddressBlock
from tests.unit.build import DAY, MINUTE, NOW, attempt, history, settings

# --- sources ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "station,framed,source",
    [
        ("192.0.2.7", "10.0.0.1", "192.0.2.7"),  # the station's address before Framed-IP
        ("00:11:22:AA:BB:CC", None, "00-11-22-aa-bb-cc"),
        ("0011.22aa.bbcc", None, "00-11-22-aa-bb-cc"),
        ("001122AABBCC", None, "00-11-22-aa-bb-cc"),
        (None, "10.0.0.9", "10.0.0.9"),
        ("", "10.0.0.9", "10.0.0.9"),
        ("  ", None, None),
        (None, None, None),
        ("x" * 500, None, "x" * 64),  # an odd station is kept, cut short
    ],
)
def test_radius_source(station, framed, source):
    assert radius_source(station, framed) == source


def test_normal_mac_refuses_what_is_not_one():
    assert normal_mac("00:11:22:33:44") is None
    assert normal_mac("00:11:22:33:44:gg") is None


@pytest.mark.parametrize(
    "source,familiar,block",
    [
        ("198.51.100.7", "198.51.100.0/24", "198.51.100.7"),
        ("2001:db8:1:2::5", "2001:db8:1:2::/64", "2001:db8:1:2::/64"),
        ("00-11-22-aa-bb-cc", "00-11-22-aa-bb-cc", None),  # a station: never blocked
        ("local", None, None),
        (None, None, None),
    ],
)
def test_familiar_and_block_keys(source, familiar, block):
    assert familiar_key(source) == familiar
    assert block_key(source) == block


def test_local_and_unknown_sources_are_always_familiar():
    assert is_familiar("local", ())
    assert is_familiar(None, ())
    assert is_familiar("198.51.100.9", ("198.51.100.0/24",))
    assert not is_familiar("198.51.101.9", ("198.51.100.0/24",))


# --- growing locks ------------------------------------------------------------------------


def test_locks_grow_up_to_the_cap_then_permanent():
    grow = settings(lockout={"increment": 2.0, "max_unlock_after_minutes": 30})
    assert [locks.lock_minutes(n, 5, grow) for n in (1, 2, 3, 4, 50)] == [5, 10, 20, 30, 30]
    permanent = settings(lockout={"increment": 2.0, "permanent_after": 3})
    assert [locks.lock_minutes(n, 5, permanent) for n in (1, 2, 3)] == [5, 10, None]
    # an address block never becomes permanent
    assert locks.lock_minutes(3, 5, permanent, permanent=False) == 20
    assert locks.lock_minutes(1, 0, grow) is None  # unlock_after_minutes = 0: an admin lifts it
    huge = settings(lockout={"increment": 100.0, "max_unlock_after_minutes": 60})
    assert locks.lock_minutes(10_000, 5, huge) == 60  # overflow: the cap


def test_the_count_starts_again_after_the_window():
    s = settings(lockout={"increment_window_days": 1})
    assert locks.next_lock_count(3, NOW - DAY + 1, NOW, s) == 4
    assert locks.next_lock_count(3, NOW - DAY - 1, NOW, s) == 1
    assert locks.next_lock_count(0, None, NOW, s) == 1


# --- which count a failure goes to ---------------------------------------------------------

REPEATS = settings(lockout={"ignore_repeated_password": True})


def _failed(digest, minutes_ago=0, address="203.0.113.5"):
    return attempt(address=address, time=NOW - minutes_ago * MINUTE)._replace(digest=digest)


def test_a_repeated_wrong_password_counts_nowhere_and_others_count():
    seen = history(recent_digests=((NOW - MINUTE, "a"),))
    bucket, after = decide.count_failure(_failed("a"), seen, REPEATS)
    assert bucket == REPEATED and after.failures == 0
    bucket, after = decide.count_failure(_failed("b"), seen, REPEATS)
    assert bucket is None and after.failures == 1
    old = history(recent_digests=((NOW - 6 * MINUTE, "a"),))  # outside period_minutes
    assert decide.count_failure(_failed("a"), old, REPEATS)[0] is None
    off = settings()
    assert decide.count_failure(_failed("a"), seen, off)[0] is None


def test_the_last_three_distinct_passwords_are_remembered():
    """The phone's stale password A, then B typed three times: A is still known."""
    h = history()
    for digest in ("a", "b", "b", "b"):
        _bucket, h = decide.count_failure(_failed(digest), h, REPEATS)
    assert [d for _t, d in h.recent_digests] == ["b", "a"]
    assert decide.count_failure(_failed("a"), h, REPEATS)[0] == REPEATED
    for digest in ("c", "d"):
        _bucket, h = decide.count_failure(_failed(digest), h, REPEATS)
    assert [d for _t, d in h.recent_digests] == ["d", "c", "b"]  # three at most


def test_unfamiliar_failures_count_apart():
    smart = settings(lockout={"unfamiliar_attempts": 5})
    known = history(familiar_sources=("198.51.100.0/24",))
    bucket, after = decide.count_failure(_failed(None, address="203.0.113.5"), known, smart)
    assert bucket == UNFAMILIAR and after.unfamiliar_failures == 1 and after.failures == 0
    bucket, after = decide.count_failure(_failed(None, address="198.51.100.5"), known, smart)
    assert bucket is None and after.failures == 1


# --- address blocks -----------------------------------------------------------------------

BLOCKS = settings(
    address_block={"enabled": True, "attempts": 3, "block_minutes": 10},
    lockout={"increment": 2.0, "permanent_after": 2},
)


def _spray(block=None, earlier=(("bob", NOW - 60), ("carol", NOW - 30))):
    failed = attempt(address="203.0.113.9")
    _bucket, h = decide.count_failure(failed, history(address_block=block), BLOCKS)
    return decide.after_failure(failed, h, BLOCKS, earlier, None)


def test_a_block_records_the_failures_that_set_it():
    verdict = _spray()
    assert verdict.block == AddressBlock(
        "203.0.113.9", NOW, NOW + 10 * MINUTE, 1, None, 3, ("alice", "bob", "carol")
    )
    assert ("203.0.113.9 blocked", "ip_alert") in [(n.subject, n.kind) for n in verdict.notices]


def test_two_failures_set_no_block():
    assert _spray(earlier=(("bob", NOW - 60),)).block is None


def test_a_second_block_grows_but_never_becomes_permanent():
    ended = AddressBlock("203.0.113.9", NOW - 20 * MINUTE, NOW - 10 * MINUTE, 1)
    earlier = (("bob", NOW - 60), ("carol", NOW - 30))
    verdict = _spray(ended, earlier)
    assert verdict.block.count == 2  # permanent_after = 2 applies to locks only
    assert verdict.block.expires == NOW + 20 * MINUTE


# --- lock notices -------------------------------------------------------------------------


def test_the_unfamiliar_lock_notice_has_its_own_rate_limit_key():
    smart = settings(lockout={"unfamiliar_attempts": 1, "unlock_after_minutes": 5})
    failed = attempt(address="203.0.113.5")
    bucket, h = decide.count_failure(failed, history(), smart)
    unfamiliar = decide.after_failure(failed, h, smart, (), bucket)
    assert [n.subject for n in unfamiliar.notices if n.kind == "lock"] == [
        "alice (unfamiliar sources)"
    ]
    local = attempt(address=None)
    bucket, h = decide.count_failure(local, history(failures=2), smart)
    account = decide.after_failure(local, h, smart, (), bucket)
    assert [n.subject for n in account.notices if n.kind == "lock"] == ["alice"]
