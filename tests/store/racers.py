"""Child-process side of tests/store/test_first_use.py: processes that race to a store that
does not exist yet (kept light to import: each child imports the gate only when it runs)."""

from __future__ import annotations

RACER = {}


def init(barrier) -> None:
    """Pool initializer: remember the barrier every racer waits on."""
    RACER["barrier"] = barrier


def first_failure(url: str, user: str, when: float):
    """Wait for every other process, then record one failure through the Gate, whose first
    connection finds no store. Returns (made here, tried to make it, reasons, last_error)."""
    import store.migrate
    from pam_guard.gate import Gate
    from policy.settings import build_settings

    made = []
    create = store.migrate.create_sqlite_store

    def counted(path):  # store.db imports it at the moment it needs it: this one
        made.append(create(path))
        return made[-1]

    store.migrate.create_sqlite_store = counted
    settings = build_settings(
        {"store": {"url": url, "timeout_seconds": 20}, "lockout": {"max_attempts": 1000}},
        "<first use>",
    )
    gate = Gate(settings, clock=lambda: when)
    try:
        RACER["barrier"].wait(60)
        verdict = gate.record_failure(gate.attempt(user, "pam", "sshd", "192.0.2.9", "192.0.2.9"))
        return any(made), bool(made), verdict.reasons, gate.last_error
    finally:
        gate.close()
