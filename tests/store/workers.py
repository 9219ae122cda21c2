"""Code that runs in child processes for the concurrency tests (kept light to import)."""

from __future__ import annotations

WORKER = {}


def init(barrier) -> None:
    """Pool initializer: remember the barrier every task of a round waits on."""
    WORKER["barrier"] = barrier


def record_failure_together(
    url: str,
    user: str,
    when: float,
    max_attempts: int,
    ip_alert_attempts: int = 3,
    address: str = "192.0.2.7",
):
    """Connect, wait for every other process, then record one failure for `user` at `when`.

    Returns (locked_here, reasons, last_error, notice kinds) of this process's verdict.
    """
    from pam_guard.gate import Gate
    from policy.settings import build_settings

    settings = build_settings(
        {
            "store": {"url": url, "timeout_seconds": 20},
            "lockout": {"max_attempts": max_attempts, "ip_alert_attempts": ip_alert_attempts},
        },
        "<concurrency>",
    )
    gate = Gate(settings, clock=lambda: when)
    try:
        gate.read(lambda conn: None)  # connected before the start line, not after it
        WORKER["barrier"].wait(60)
        verdict = gate.record_failure(gate.attempt(user, "pam", "sshd", address, address))
        kinds = tuple(n.kind for n in verdict.notices)
        return verdict.lock is not None, verdict.reasons, gate.last_error, kinds
    finally:
        gate.close()
