"""radiusd's one view of its users' account state, and the one way outcomes leave it.

An `Accounts` owns what a request may read a user's state from and where its outcome goes:
- the kept copies of accounts (radius_hook.hot; only under the default rules on SQLite);
- the outcomes handed to the recorder process and not yet stored (radius_hook.handoff);
- the store, through the gate (radius_hook.radius_gate.RadiusGate).

`state_for(attempt)` is the user's History as the next stored outcome will find it: a
current copy, else the store plus the outcomes still in flight (policy.account.step folded
over them, RadiusGate.projected_state), else the store. Nothing waits for the recorder:
rlm_python3 serialises calls, so a wait holds up every request. `after_check` does what the
rules' verdict asks: nothing for a plain yes, a refusal handed over like any outcome, the
gate's recording path for a yes with a flag or notice to record (once the user's outcomes in
flight are stored, so that it is recorded on the stored history). `record_failure` and
`record_success` hand post-auth's outcomes over.

The recorder calls back here (`record_here` when it cannot take an outcome, `store_trouble`
when it could not store).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from pam_guard.logline import announce
from policy.types import DENIED, FAILURE, LOCKED, STORE_ERROR, SUCCESS, History, Verdict
from policy.usernames import escape
from radius_hook import request as rq
from radius_hook.hot import lets_in_quietly


class Accounts:
    """Copies, outcomes in flight and the store of one loaded config (module.Guard)."""

    def __init__(self, gate, copies, log, note, lock: threading.Lock) -> None:
        """`gate`: a RadiusGate; `copies`: a HotAccounts or None; `log(text)` an error line,
        `note(text)` an auth line (a lock) in radiusd's log; `lock`: held around every use of
        the gate's store connection (module._gate_lock). `recorder` (a Handoff) is set once
        made: it calls back here."""
        self.gate = gate
        self.copies = copies
        self.recorder: Any = None  # radius_hook.handoff.Handoff
        self.lock = lock
        self.log = log
        self.note = note

    # --- what a request reads -----------------------------------------------------------

    def quiet(self, user: str) -> bool:
        """The user has a current copy already known to let them in with nothing to say."""
        copies = self.copies
        return copies is not None and copies.quiet(user, time.monotonic())

    def state_for(self, attempt) -> tuple[History, bool]:
        """(History, whether outcomes of the user are still in flight) to decide `attempt`
        on, for a valid user name. Raises what the gate's reads raise."""
        user, copies = attempt.user, self.copies
        if copies is not None:
            kept = copies.get(user, time.monotonic())
            if kept is not None:
                return kept[1], False
        pending = self.recorder.unstored(user)
        if pending:
            outcomes = [
                (kind, rq.attempt_from(self.gate, user, at, facts), reasons)
                for kind, at, facts, reasons in pending
            ]
            with self.lock:
                return self.gate.projected_state(attempt, outcomes)[1], True
        if copies is None:
            with self.lock:
                return self.gate.history_for(attempt), False
        stamp = copies.stamp(user)  # before the read: a write after it shows as a new value
        with self.lock:
            account, history = self.gate.account_state(user, attempt.time)
        if account is not None and not history.denied_recent:
            copies.keep(user, stamp, account, history, time.monotonic())
        return history, False

    def after_check(self, attempt, key: tuple, verdict: Verdict, pending: bool) -> Verdict:
        """What decide.check's `verdict` on `state_for`'s state leads to (`key`: the
        request's facts, request.fact_key)."""
        user, copies = attempt.user, self.copies
        if lets_in_quietly(verdict):
            if copies is not None:
                copies.set_quiet(user)  # its next requests need no check (hot.set_quiet)
            return verdict
        if copies is not None:
            copies.drop(user)
        if not verdict.allowed:
            self.recorder.hand(DENIED, user, attempt.time, key, verdict.reasons)
            return verdict
        if pending:
            self.recorder.settle(user)
        return self.decide_here(attempt)

    def decide_here(self, attempt) -> Verdict:
        """The gate's own path, which reads, decides and records in radiusd: for an invalid
        user name, a yes with something to record, and whenever `state_for` could not read
        (it applies failure.on_store_error)."""
        with self.lock:
            return self.gate.authorize(attempt)

    # --- what post-auth records ---------------------------------------------------------

    def record_failure(self, user, at: float, key: tuple) -> None:
        """A failed password: it may lock, so the user's next request reads the store."""
        if self.copies is not None:
            self.copies.drop(user)
        self.recorder.hand(FAILURE, user, at, key)

    def record_success(self, user, at: float, key: tuple) -> None:
        """A success (successes change no kept copy: hot.py)."""
        self.recorder.hand(SUCCESS, user, at, key)

    # --- the recorder's calls back ------------------------------------------------------

    def record_here(self, kind, user, at, key, reasons=()) -> None:
        """An outcome the recorder could not take: recorded in radiusd, synchronously."""
        attempt = rq.attempt_from(self.gate, user, at, key)
        with self.lock:
            verdict = self.gate.record(kind, attempt, reasons)
        if verdict.lock is not None:
            self.note(announce("lock", attempt, LOCKED, detail=verdict.lock[0]))
        elif STORE_ERROR in verdict.reasons:
            self.log(
                f"post_auth: {kind} of {escape(user)[:100]} not recorded: {self.gate.last_error}"
            )

    def store_trouble(self) -> None:
        """The recorder could not store: no copy is trusted (the next requests read the
        store, and refuse per failure.on_store_error while it is down)."""
        if self.copies is not None:
            self.copies.clear()


__all__ = ["Accounts"]
