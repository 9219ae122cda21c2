"""The group-commit writer on a real SQLite store: every queued success is committed,
`settle` returns only once a user's successes are stored, and a store error loses the batch
with a log line instead of killing the thread."""

from __future__ import annotations

from pam_guard.config import load_settings
from pam_guard.gate import Gate
from radius_hook.writer import Writer


def _gate(guard):
    return Gate(load_settings(guard.path))


def test_writer_commits_everything_and_settles(guard, monkeypatch):
    monkeypatch.setenv("PAM_GUARD_CACHE_DIR", guard.cache_dir)
    gate = _gate(guard)
    writer = Writer(_gate(guard))
    for i in range(300):
        writer.success(gate.attempt(f"w{i % 7}", "radius", "vpn", "10.0.0.1", "10.0.0.1"))
    writer.settle("w3")
    assert not writer.pending("w3")
    assert guard.query("SELECT count(*) FROM events WHERE username = 'w3'")[0][0] == 43
    writer.flush()
    assert guard.query("SELECT count(*) FROM events")[0][0] == 300
    writer.stop()


def test_store_error_is_logged_and_thread_survives(guard, monkeypatch):
    monkeypatch.setenv("PAM_GUARD_CACHE_DIR", guard.cache_dir)
    logged = []
    gate = _gate(guard)
    writer = Writer(_gate(guard), log=logged.append)
    writer._gate.record_successes = lambda *a: (_ for _ in ()).throw(RuntimeError("boom"))
    writer.success(gate.attempt("x", "radius", "vpn"))
    writer.flush()
    assert any("lost" in line and "boom" in line for line in logged)
    del writer._gate.record_successes  # the real method again
    writer.success(gate.attempt("y", "radius", "vpn"))
    writer.flush()
    assert guard.query("SELECT username FROM events") == [("y",)]
    writer.stop()
