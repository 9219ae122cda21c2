"""The projection radiusd decides on (RadiusGate.projected_state: policy.account.step folded
over outcomes not yet stored) equals the store once they are, for random interleavings of
successes, failed passwords, refusals and admin locks and unlocks, with random gaps across
the lockout window and a lock's end, and any number of them stored already (issue 17). An
admin's write lands in the store while outcomes are in flight, as it would from
`pam-guard lock|unlock` beside a running radiusd: the store then holds it before those
outcomes (the recorder stores them after), and so must the projection."""

from __future__ import annotations

import tempfile

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from policy.types import DENIED, FAILURE, SUCCESS
from store import admin
from store.migrate import create_or_upgrade, engine_for
from tests.store.test_projection import MIN, REFUSED, RULES, T0, _attempt, _comparable, _gate
from tests.store.test_projection import _stored_state as stored_state

UNLOCK = "unlock"
LOCK = "lock"
ADMIN = (UNLOCK, LOCK)
GAPS = [1.0, 30.0, 2 * MIN, 6 * MIN]  # 5 min window, 1 min locks: inside, across, past
STEPS = st.tuples(
    st.sampled_from([SUCCESS, FAILURE, FAILURE, DENIED, UNLOCK, LOCK]), st.sampled_from(GAPS)
)


def _admin(url: str, kind: str, user: str, at: float) -> None:
    """`pam-guard unlock` or `pam-guard lock` of `user` at `at`."""
    engine = engine_for(url)
    try:
        with engine.begin() as conn:
            if kind == UNLOCK:
                admin.unlock(conn, user, at)
            else:
                admin.lock(conn, user, at, "locked by admin")
    finally:
        engine.dispose()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    past=st.lists(STEPS, max_size=6),
    pending=st.lists(STEPS, min_size=1, max_size=6),
    stored_first=st.integers(0, 6),
    rules=st.sampled_from(sorted(RULES)),
    lock_minutes=st.sampled_from([0, 1]),
)
# Found by the search: successes of one projection that left the concurrent window by the
# time of the decision were still counted (policy.account.as_of).
@example(
    past=[],
    pending=[(SUCCESS, 1.0), (SUCCESS, 360.0), (SUCCESS, 360.0), (SUCCESS, 360.0)],
    stored_first=0,
    rules="every rule",
    lock_minutes=0,
)
def test_random_interleavings_project_what_the_store_holds(
    past, pending, stored_first, rules, lock_minutes
):
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite:///{directory}/pam-guard.db"
        create_or_upgrade(url)
        gate = _gate(url, {"unlock_after_minutes": lock_minutes, "period_minutes": 5}, rules)
        user = "mallory"
        at = T0 - 60 * MIN
        for n, (kind, gap) in enumerate(past):  # stored and confirmed long ago
            at += gap
            if kind in ADMIN:
                _admin(url, kind, user, at)
            else:
                gate.record(kind, _attempt(gate, user, at, n), REFUSED if kind == DENIED else ())
        outcomes, admin_writes = [], []
        at = max(at, T0)
        for i, (kind, gap) in enumerate(pending):
            at += gap
            if kind in ADMIN:  # the store's, never in flight
                admin_writes.append((kind, at))
            else:
                reasons = REFUSED if kind == DENIED else ()
                outcomes.append((kind, _attempt(gate, user, at, 100 + i), reasons))
        if not outcomes:
            gate.close()
            return
        for kind, attempt, reasons in outcomes[:stored_first]:  # committed, not confirmed
            gate.record(kind, attempt, reasons)
        for kind, when in admin_writes:  # committed while the rest are in flight
            _admin(url, kind, user, min(when, outcomes[-1][1].time))
        projected = gate.projected_state(outcomes[-1][1], outcomes)
        for kind, attempt, reasons in outcomes[stored_first:]:
            gate.record(kind, attempt, reasons)
        now = outcomes[-1][1].time
        assert _comparable(projected, now) == _comparable(stored_state(gate, outcomes[-1][1]), now)
        gate.close()
