"""Who runs SQLite's WAL checkpoints for radiusd: the recorder's checkpoint thread; never a
request, nor a commit that radiusd waits for.

A checkpoint runs inside whichever commit finds the WAL over the connection's threshold; in
a request it would stall the whole server (rlm_python3 serialises calls), so the request
connection's threshold is a high backstop, and the recorder's connection has none: it
checkpoints by itself every CHECKPOINT_RECORDS records.
"""

from __future__ import annotations

from radius_hook import frames, module, recorder


def _autocheckpoint(gate) -> int:
    return gate._connection().raw.execute("PRAGMA wal_autocheckpoint").fetchone()[0]


def test_recorder_checkpoints_and_requests_do_not(guard, monkeypatch):
    monkeypatch.setenv("PAM_GUARD_CACHE_DIR", guard.cache_dir)
    loaded = module.Guard(guard.path)
    loaded.load()
    recorder_gate = recorder.Recording(guard.path).gate
    try:
        assert loaded.error == ""
        request_pages = _autocheckpoint(loaded.gate)
        recorder_pages = _autocheckpoint(recorder_gate)
        assert request_pages == module.REQUEST_CHECKPOINT_PAGES
        assert recorder_pages == 0
        # A plain store.db connection keeps SQLite's default: only radiusd's are tuned.
        from store.db import connect

        plain = connect(guard.url)
        assert plain.raw.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000
        plain.close()
    finally:
        recorder_gate.close()
        loaded.close()


def test_recorder_checkpoints_after_enough_records(guard, monkeypatch):
    """Run the recorder on a pipe: after CHECKPOINT_RECORDS records the WAL is copied back
    (a reader then finds the rows in the database file itself)."""
    import os
    import threading

    from policy.types import SUCCESS

    monkeypatch.setenv("PAM_GUARD_CACHE_DIR", guard.cache_dir)
    monkeypatch.setattr(recorder, "CHECKPOINT_RECORDS", 50)
    calls = []
    real = recorder.Checkpointer.request
    monkeypatch.setattr(
        recorder.Checkpointer, "request", lambda self: (calls.append(1), real(self))
    )
    to_rec, from_main = os.pipe()
    from_rec, to_main = os.pipe()
    worker = threading.Thread(target=recorder.run, args=(guard.path, to_rec, to_main))
    worker.start()
    key = ("10.0.0.1", None, None, None, None, None, None)
    for i in range(120):
        os.write(from_main, frames.frame((i + 1, SUCCESS, f"c{i % 9}", 1.8e9 + i, key, ())))
    os.close(from_main)
    worker.join(timeout=30)
    os.close(to_rec)
    os.close(to_main)
    os.close(from_rec)
    assert not worker.is_alive() and calls  # at least one checkpoint was asked for
    assert guard.query("SELECT count(*) FROM events")[0][0] == 120
