"""Who runs SQLite's WAL checkpoints for radiusd: the success recorder, not a request.

A checkpoint runs inside whichever commit finds the WAL over the connection's threshold; in
a request it would stall the whole server (rlm_python3 serialises calls), so the request
connection's threshold is a high backstop and the recorder's is the one reached first.
"""

from __future__ import annotations

from radius_hook import module, recorder


def _autocheckpoint(gate) -> int:
    return gate._connection().raw.execute("PRAGMA wal_autocheckpoint").fetchone()[0]


def test_recorder_checkpoints_and_requests_do_not(guard, monkeypatch):
    monkeypatch.setenv("PAM_GUARD_CACHE_DIR", guard.cache_dir)
    loaded = module.Guard(guard.path)
    loaded.load()
    recorder_gate = recorder._gate(guard.path)
    try:
        assert loaded.error == ""
        request_pages = _autocheckpoint(loaded.gate)
        recorder_pages = _autocheckpoint(recorder_gate)
        assert request_pages == module.REQUEST_CHECKPOINT_PAGES
        assert recorder_pages == recorder.CHECKPOINT_PAGES
        assert recorder_pages < request_pages
        # A plain store.db connection keeps SQLite's default: only radiusd's are tuned.
        from store.db import connect

        plain = connect(guard.url)
        assert plain.raw.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000
        plain.close()
    finally:
        recorder_gate.close()
        loaded.close()
