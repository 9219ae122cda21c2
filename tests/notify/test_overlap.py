"""Two `pam-guard deliver` processes at once over many notices: each notice is sent once."""

from __future__ import annotations

import subprocess

from store import logins
from store.db import connect
from tests.notify.conftest import ADMIN, PAM_GUARD

NOTICES = 120


def _queue_many(site, count: int) -> None:
    """Queue `count` distinct notices through the store's own queueing function."""
    conn = connect(site.url)
    try:
        conn.begin(write=True)
        for i in range(count):
            logins.queue_notice(conn, site.clock(), "lock", f"user{i}", ADMIN,
                                f"pam-guard: account user{i} locked", f"notice {i}\n", 60)
        conn.commit()
    finally:
        conn.close()


def test_two_overlapping_runs_send_each_notice_once(make_site, smtp):
    smtp.delay = 0.02  # each message takes a while, so the two runs really overlap
    site = make_site()
    _queue_many(site, NOTICES)

    runs = [subprocess.Popen([PAM_GUARD, "--config", site.config, "--json", "deliver",
                              "--batch", "5"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=site.env) for _ in range(2)]
    results = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], results

    import json

    sent = [json.loads(out)["sent"] for out, _err in results]
    assert sum(sent) == NOTICES
    assert all(n > 0 for n in sent), sent  # both took part: they did overlap

    messages = smtp.wait_for(NOTICES)
    subjects = sorted(m.message["Subject"] for m in messages)
    assert len(subjects) == NOTICES
    assert len(set(subjects)) == NOTICES  # no notice twice
    ids = {m.message["Message-ID"] for m in messages}
    assert len(ids) == NOTICES
    rows = site.outbox()
    assert all(r["sent_at"] is not None and r["attempts"] == 1 for r in rows)
    assert all(r["claimed_by"] is None for r in rows)
