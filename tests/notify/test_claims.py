"""The claim logic of pam_guard.deliver on both engines: a claimed notice is nobody else's
until its lease ends; sent, failed and given-up notices leave the queue as they should.
PostgreSQL runs on the real throwaway server of tests/support/postgres.py."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from pam_guard import deliver
from store import logins
from store.db import connect
from store.migrate import create_or_upgrade, engine_for
from store.schema import outbox
from tests.support.postgres import postgres_server, postgres_url  # noqa: F401

NOW = 1_800_000_000.0


def _queue(url: str, count: int, now: float = NOW) -> None:
    conn = connect(url)
    try:
        conn.begin(write=True)
        for i in range(count):
            logins.queue_notice(conn, now, "status", f"u{i}", "root@localhost", f"t{i}", "b", 0)
        conn.commit()
    finally:
        conn.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/store/claims.db"
        create_or_upgrade(url)
        return url
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def engine(url):
    engine = engine_for(url)
    yield engine
    engine.dispose()


def test_a_claim_is_exclusive_until_its_lease_ends(url, engine):
    _queue(url, 5)
    first = deliver.claim(engine, "A", NOW, limit=3)
    assert [r.id for r in first] == [1, 2, 3]
    second = deliver.claim(engine, "B", NOW, limit=10)
    assert [r.id for r in second] == [4, 5]
    assert deliver.claim(engine, "C", NOW + 1, limit=10) == []
    # A dies; once its lease is over, its notices go to whoever runs next.
    later = NOW + deliver.LEASE + 1
    deliver._finish(engine, "B", 4, {"sent_at": NOW})
    deliver._finish(engine, "B", 5, {"sent_at": NOW})
    assert [r.id for r in deliver.claim(engine, "C", later, limit=10)] == [1, 2, 3]


def test_not_due_sent_and_given_up_are_not_claimed(url, engine):
    _queue(url, 3)
    rows = deliver.claim(engine, "A", NOW, limit=3)
    deliver.mark_sent(engine, "A", rows[0], NOW)
    assert deliver.mark_failed(engine, "A", rows[1], NOW, "451 try later") is False
    assert deliver.mark_failed(engine, "A", rows[2], NOW, "550 no", permanent=True) is True
    assert deliver.claim(engine, "B", NOW + 30) == []  # 2 waits for its backoff
    assert [r.id for r in deliver.claim(engine, "B", NOW + 61)] == [2]
    assert deliver.waiting(engine) == 1
    assert [r.id for r in deliver.given_up(engine)] == [3]


def test_finishing_needs_the_claim(url, engine):
    """A run whose lease ran out and was taken over cannot overwrite the new owner's state."""
    _queue(url, 1)
    [row] = deliver.claim(engine, "A", NOW)
    [again] = deliver.claim(engine, "B", NOW + deliver.LEASE + 1)
    deliver.mark_failed(engine, "A", row, NOW, "late")
    deliver.mark_sent(engine, "B", again, NOW + deliver.LEASE + 2)
    with engine.connect() as conn:
        state = conn.execute(select(outbox.c.sent_at, outbox.c.attempts, outbox.c.last_error)).one()
    assert state == (NOW + deliver.LEASE + 2, 1, None)  # A's late failure changed nothing


def test_racing_claimers_share_without_overlap(url, engine):
    _queue(url, 200)
    taken: dict[str, list[int]] = {}

    def worker(name):
        got = []
        while True:
            rows = deliver.claim(engine, name, NOW, limit=7)
            if not rows:
                break
            got.extend(r.id for r in rows)
            for r in rows:
                deliver.mark_sent(engine, name, r, NOW)
        taken[name] = got

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    every = [i for ids in taken.values() for i in ids]
    assert sorted(every) == list(range(1, 201))  # each exactly once


def test_a_run_that_lost_its_claim_does_not_send(url, engine):
    """A too slow run (its lease ran out, another run took over) must skip the notice."""
    _queue(url, 2)
    rows = deliver.claim(engine, "A", NOW)
    assert deliver.hold(engine, "A", rows[0].id, NOW + 5)  # still ours: lease renewed
    later = NOW + 5 + deliver.LEASE + 1
    assert [r.id for r in deliver.claim(engine, "B", later)] == [1, 2]
    assert not deliver.hold(engine, "A", 1, later)
    assert not deliver.hold(engine, "A", 2, later)
    assert deliver.hold(engine, "B", 1, later)


def test_renewed_lease_keeps_others_out(url, engine):
    _queue(url, 1)
    [row] = deliver.claim(engine, "A", NOW)
    renewed_at = NOW + deliver.LEASE - 1
    assert deliver.hold(engine, "A", row.id, renewed_at)
    assert deliver.claim(engine, "B", NOW + deliver.LEASE + 1) == []  # the renewal counts
