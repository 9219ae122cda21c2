"""N processes record a failure for one user at the same moment: N are counted, one locks.

SPEC §10: failure counts are atomic. Each round starts N separate processes (spawned, as
PAM logins and RADIUS servers are), lets each open its own store connection, then releases
them together through a barrier; each calls `Gate.record_failure` once. With max_attempts = N
exactly one of them must set the lock; with N + 1 none may. Nothing may be lost and nobody
may see a deadlock or a timeout. The same holds across users for the password-spraying
alert: N users failing at once from one address reach ip_alert_attempts = N exactly once.
"""

from __future__ import annotations

import multiprocessing

import pytest

from store.db import connect
from tests.store import workers

N = 8
ROUNDS = 3
WHEN = 1_800_000_000.0


@pytest.fixture(scope="module")
def pool():
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(N)
    with ctx.Pool(N, initializer=workers.init, initargs=(barrier,)) as processes:
        yield processes


def _count(url, statement, params):
    conn = connect(url)
    try:
        return conn.one(statement, params)[0]
    finally:
        conn.close()


@pytest.mark.parametrize(
    "max_attempts,locks", [(N, 1), (N + 1, 0)], ids=["threshold-N", "threshold-N+1"]
)
def test_n_simultaneous_failures_count_n(pool, store_url, max_attempts, locks):
    for round_no in range(ROUNDS):
        user = f"target{round_no}"
        when = WHEN + round_no
        tasks = [(store_url, user, when, max_attempts)] * N
        # chunksize 1: each of the N workers takes exactly one task (the rest wait at the barrier)
        results = pool.starmap(workers.record_failure_together, tasks, chunksize=1)
        errors = [(reasons, error) for _locked, reasons, error, _n in results if reasons or error]
        assert errors == [], f"round {round_no}: {errors}"
        assert sum(1 for locked, *_rest in results if locked) == locks, f"round {round_no}"
        failures = _count(
            store_url,
            "SELECT count(*) FROM events WHERE username = :u AND outcome = 'failure'",
            {"u": user},
        )
        assert failures == N, f"round {round_no}: {failures} of {N} failures recorded"
        locked_at = _count(
            store_url, "SELECT locked_at FROM accounts WHERE username = :u", {"u": user}
        )
        assert (locked_at == when) if locks else (locked_at is None)


@pytest.mark.parametrize(
    "threshold,alerts", [(N, 1), (N + 1, 0)], ids=["threshold-N", "threshold-N+1"]
)
def test_n_users_failing_at_once_from_one_address_alert_once(pool, store_url, threshold, alerts):
    for round_no in range(ROUNDS):
        address = f"198.51.100.{round_no + 1}"
        when = WHEN + round_no * 3600  # past the previous round's alert rate limit
        tasks = [
            (store_url, f"sprayed{round_no}_{i}", when, 100, threshold, address) for i in range(N)
        ]
        results = pool.starmap(workers.record_failure_together, tasks, chunksize=1)
        errors = [(reasons, error) for _locked, reasons, error, _n in results if reasons or error]
        assert errors == [], f"round {round_no}: {errors}"
        said = sum(kinds.count("ip_alert") for *_rest, kinds in results)
        queued = _count(
            store_url,
            "SELECT count(*) FROM outbox WHERE kind = 'ip_alert' AND subject = :a",
            {"a": address},
        )
        assert (said, queued) == (alerts, alerts), f"round {round_no}"
