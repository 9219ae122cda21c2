"""Two `pam-guard deliver` processes at once over many notices: each notice is sent once, on
SQLite and on a PostgreSQL store (the one several hosts share, each running its timer)."""

from __future__ import annotations

import json
import subprocess

import pytest
from sqlalchemy import select

from store import logins
from store.db import connect
from store.migrate import engine_for
from store.schema import outbox
from tests.notify.conftest import ADMIN, PAM_GUARD
from tests.support.postgres import postgres_server, postgres_url  # noqa: F401

NOTICES = 120


def _queue_many(site, count: int) -> None:
    """Queue `count` distinct notices through the store's own queueing function."""
    conn = connect(site.url)
    try:
        conn.begin(write=True)
        for i in range(count):
            logins.queue_notice(
                conn,
                site.clock(),
                "lock",
                f"user{i}",
                ADMIN,
                f"pam-guard: account user{i} locked",
                f"notice {i}\n",
                60,
            )
        conn.commit()
    finally:
        conn.close()


def _rows(url: str):
    engine = engine_for(url)
    try:
        with engine.connect() as conn:
            return conn.execute(select(outbox)).all()
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request):
    return None if request.param == "sqlite" else request.getfixturevalue("postgres_url")


def test_two_overlapping_runs_send_each_notice_once(make_site, smtp, store_url):
    smtp.delay = 0.02  # each message takes a while, so the two runs really overlap
    site = make_site(url=store_url)
    _queue_many(site, NOTICES)

    runs = [
        subprocess.Popen(
            [PAM_GUARD, "--config", site.config, "--json", "deliver", "--batch", "5"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=site.env,
        )
        for _ in range(2)
    ]
    results = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], results

    sent = [json.loads(out)["sent"] for out, _err in results]
    assert sum(sent) == NOTICES
    assert all(n > 0 for n in sent), sent  # both took part: they did overlap

    messages = smtp.wait_for(NOTICES)
    subjects = [m.message["Subject"] for m in messages]
    assert len(subjects) == NOTICES
    assert len(set(subjects)) == NOTICES  # no notice twice
    assert len({m.message["Message-ID"] for m in messages}) == NOTICES
    rows = _rows(site.url)
    assert len(rows) == NOTICES
    assert all(r.sent_at is not None and r.attempts == 1 and r.claimed_by is None for r in rows)
