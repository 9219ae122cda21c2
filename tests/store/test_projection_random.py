"""The projection radiusd decides on (RadiusGate.projected_state: policy.account.step folded
over outcomes not yet stored) equals the store once they are, for random interleavings of
successes, failed passwords, refusals and admin unlocks, with random gaps across the lockout
window and a lock's end, and any number of them stored already (issue 17)."""

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
GAPS = [1.0, 30.0, 2 * MIN, 6 * MIN]  # 5 min window, 1 min locks: inside, across, past
STEPS = st.tuples(
    st.sampled_from([SUCCESS, FAILURE, FAILURE, DENIED, UNLOCK]), st.sampled_from(GAPS)
)


def _unlock(url: str, user: str, at: float) -> None:
    engine = engine_for(url)
    try:
        with engine.begin() as conn:
            admin.unlock(conn, user, at)
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
            if kind == UNLOCK:
                _unlock(url, user, at)
            else:
                gate.record(kind, _attempt(gate, user, at, n), REFUSED if kind == DENIED else ())
        outcomes = []
        at = max(at, T0)
        for i, (kind, gap) in enumerate(pending):
            at += gap
            if kind != UNLOCK:  # an admin's unlock is the store's, never in flight
                reasons = REFUSED if kind == DENIED else ()
                outcomes.append((kind, _attempt(gate, user, at, 100 + i), reasons))
        if not outcomes:
            gate.close()
            return
        for kind, attempt, reasons in outcomes[:stored_first]:  # committed, not confirmed
            gate.record(kind, attempt, reasons)
        projected = gate.projected_state(outcomes[-1][1], outcomes)
        for kind, attempt, reasons in outcomes[stored_first:]:
            gate.record(kind, attempt, reasons)
        now = outcomes[-1][1].time
        assert _comparable(projected, now) == _comparable(stored_state(gate, outcomes[-1][1]), now)
        gate.close()
