"""Code that runs in child processes for the concurrency tests (kept light to import)."""

from __future__ import annotations

WORKER = {}


def init(barrier) -> None:
    """Pool initializer: remember the barrier every task of a round waits on."""
    WORKER["barrier"] = barrier


def record_failure_together(url: str, user: str, when: float, max_attempts: int):
    """Connect, wait for every other process, then record one failure for `user` at `when`.

    Returns (locked_here, reasons, last_error) of this process's verdict.
    """
    from pam_guard.gate import Gate
    from policy.settings import build_settings

    settings = build_settings({"store": {"url": url, "timeout_seconds": 20},
                               "lockout": {"max_attempts": max_attempts}}, "<concurrency>")
    gate = Gate(settings, clock=lambda: when)
    try:
        gate.read(lambda conn: None)  # connected before the start line, not after it
        WORKER["barrier"].wait(60)
        verdict = gate.record_failure(gate.attempt(user, "pam", "sshd", "192.0.2.7", "192.0.2.7"))
        return verdict.lock is not None, verdict.reasons, gate.last_error
    finally:
        gate.close()
