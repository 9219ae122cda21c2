"""The Gate as FreeRADIUS's module and recorder use it (pam_guard.gate.Gate and more).

PAM asks one question a call and writes one transaction a login; radiusd answers thousands
of requests a second from copies of accounts (radius_hook.hot) while its recorder stores
outcomes in group commits (radius_hook.recorder). What only that needs lives here: the
one-statement reads copies start from, a user's state with outcomes not yet stored
(policy.account.step folded over them), and the recorder's batches.
"""

from __future__ import annotations

import time

from pam_guard.gate import Gate
from policy import account as transition
from policy.rules import MINUTE
from policy.types import FAILURE, SUCCESS, UNFAMILIAR, History, Verdict
from policy.usernames import invalid_reason
from store import logins
from store import statements as sql


class RadiusGate(Gate):
    """A Gate with the reads and batched writes of a RADIUS server."""

    def history_for(self, attempt) -> History:
        """What decide.check needs to decide `attempt` (a valid user name), read the
        cheapest way: when the enabled rules need nothing of the history but the account and
        its recent denials (`logins.account_only`, the default settings), one SELECT, and on
        SQLite no transaction around it (one statement reads one consistent snapshot);
        otherwise the whole History (Gate.history). Raises StoreError, DirectoryError."""
        if not logins.account_only(self.settings):
            return self.history(attempt)
        directory = self._directory_state(attempt.user)

        def body(conn):
            return logins.account_and_denials(
                conn, attempt.user, attempt.time, self.settings, directory
            )[1]

        return self._read_single(body)

    def account_state(self, user: str, now: float):
        """(account dict or None, History) read in one statement, under `logins.account_only`
        settings without custom authentication: what a copy kept in memory starts from
        (radius_hook.hot). Raises StoreError."""
        return self._read_single(
            lambda conn: logins.account_and_denials(conn, user, now, self.settings)
        )

    def recent_account_states(self, now: float, active_seconds: float, limit: int) -> list:
        """`account_state` of the accounts most recently active, in one read, for copies
        loaded in bulk when a RADIUS module starts (logins.recent_accounts). Raises
        StoreError."""
        return self._read_single(
            lambda conn: logins.recent_accounts(conn, now, self.settings, active_seconds, limit)
        )

    def projected_state(self, attempt, pending) -> tuple:
        """(account dict or None, History) for deciding `attempt` as if `pending` were
        stored: what a RADIUS module handed to its recorder and has not seen confirmed,
        [(kind, Attempt, reasons)] of attempt's user in order (SUCCESS, FAILURE, and DENIED
        with the reasons it was refused for). One snapshot tells how far the recorder got;
        the rest are applied as the gate will store them (policy.account.step), so a decision need
        not wait for the recorder. Under
        `logins.account_only` settings the History is `account_state`'s with `failures`
        counted; otherwise it is the full one `authorize` reads. Raises StoreError (and
        DirectoryError with custom authentication)."""
        user = attempt.user
        first = pending[0][1].time
        full = not logins.account_only(self.settings)
        directory = self._directory_state(user) if full else None

        def body(conn):
            if full:
                account = logins.account_row(conn, user, attempt.time, lock=False)
                history = logins.load_history(
                    conn, attempt, self.settings, account, full=True, directory=directory
                )
            else:
                account, history = logins.account_and_denials(conn, user, first, self.settings)
            # One read tells how far the recorder got (outcomes from `first` on) and when the
            # failures fell that can still count at `first` or later (the lockout window).
            since = first - self.settings.lockout.period_minutes * MINUTE
            rows = conn.all(sql.OUTCOMES_SINCE, {"user": user, "since": since})
            return account, history, rows

        account, history, rows = self.read(body)
        stored = {(ts, outcome) for ts, outcome, _bucket in rows if ts >= first}
        # when the failures that still count fell, by count (policy.types: None, UNFAMILIAR)
        failed: dict = {None: [], UNFAMILIAR: []}
        for ts, outcome, bucket in rows:
            if outcome == FAILURE and bucket in failed:
                failed[bucket].append(ts)
        # The recorder stores a user's outcomes in order: everything up to the last one
        # found stored is done with (even one that left no event).
        done = max(
            (
                i
                for i, (kind, outcome, _refused) in enumerate(pending)
                if (outcome.time, kind) in stored
            ),
            default=-1,
        )
        for kind, outcome, refused in pending[done + 1 :]:
            # The count as the window stands at this outcome (a +1 a failure would keep
            # failures the window has left behind: found by test_projection_random.py).
            history = self._failures_at(failed, account, history, outcome.time)
            account, history, verdict = transition.step(
                account, history, kind, outcome, self.settings, refused
            )
            if kind == FAILURE and verdict.bucket in failed:
                failed[verdict.bucket].append(outcome.time)
        return account, self._failures_at(failed, account, history, attempt.time)

    def _failures_at(self, failed, account, history, now):
        """`history` as read at `now`: the failure counts then (policy.account.failures_at)
        and the windows slid (policy.account.as_of)."""
        state = account if account is not None else transition.new_account(now)
        history = transition.as_of(history, now, self.settings)
        return history._replace(
            failures=transition.failures_at(failed[None], state, now, self.settings),
            unfamiliar_failures=transition.failures_at(
                failed[UNFAMILIAR], state, now, self.settings, UNFAMILIAR
            )
            if self.settings.lockout.unfamiliar_attempts
            else 0,
        )

    def record(self, kind: str, attempt, reasons: tuple = ()) -> Verdict:
        """Store one outcome a RADIUS module handed over: a success, a failed password, or
        a refusal before authentication (DENIED, with the reasons radiusd refused for:
        policy.account.refusal_verdict)."""
        if kind == SUCCESS:
            return self.record_success(attempt)
        if kind == FAILURE:
            return self.record_failure(attempt)
        return self._decide(attempt, full=True, record_success=False, refused=tuple(reasons))

    def record_outcomes(self, runs, copies=None) -> list:
        """Record runs of good logins and failed passwords a RADIUS module handed over, all
        in one transaction, one commit (the recorder's group commit): [(kind, [Attempt])],
        kind SUCCESS or FAILURE, each user's in the order they happened. Each run's verdicts:
        a success of an invalid user name is skipped (it has none), a failure of one is
        stored as its refusal (`_invalid`). Raises StoreError (then nothing is stored).

        Inside a transaction each record reads what the ones before wrote, so a run of
        failures locks exactly as one by one. Only users with a failure bump the change
        counters: no success can change a copy radiusd keeps (radius_hook.hot). `copies`
        (the recorder's radius_hook.hot.HotAccounts, under `logins.account_only` settings):
        kept copies of accounts, used instead of reading an account that has a current
        one and kept current with what a success records (policy.account.step). A failure
        drops its user's; once the transaction has committed, the user's state read at its
        end is kept instead when no other writer came between (HotAccounts.keep_written)."""
        # each user's last failure: who bumps, and the time their state is read as of
        last_failure = {a.user: a for kind, run in runs if kind != SUCCESS for a in run}
        failing = sorted(last_failure)
        stamps: dict = {}
        states: dict = {}

        def body(conn):
            if copies is not None:
                for user in failing:  # before anything of theirs is read
                    stamps[user] = copies.stamp(user)
            verdicts: list = []
            for kind, run in runs:
                if kind == SUCCESS:
                    valid = [a for a in run if invalid_reason(a.user) is None]
                    if logins.account_only(self.settings):
                        verdicts.append(self._successes_in(conn, valid, copies))
                    else:
                        verdicts.append([self._success_in(conn, a) for a in valid])
                    continue
                verdicts.append([])
                for attempt in run:
                    if invalid_reason(attempt.user) is not None:
                        verdicts[-1].append(self._invalid_in(conn, attempt))
                        continue
                    if copies is not None:
                        copies.drop(attempt.user)
                    verdicts[-1].append(self._failure_in(conn, attempt))
            if copies is not None:
                # read as of each user's last failure: a window of denials reaching back
                # from an earlier time holds at least as many, so a copy kept (none) is
                # right for any later record of theirs in the transaction too
                for user in failing:
                    if invalid_reason(user) is None:
                        states[user] = logins.account_and_denials(
                            conn, user, last_failure[user].time, self.settings
                        )
            return verdicts

        verdicts = self._in_transaction(failing, body)
        if copies is not None:  # committed: nothing here may raise (callers would retry)
            now = time.monotonic()
            for user, (account, history) in states.items():
                try:
                    copies.keep_written(user, stamps[user], account, history, self.last_noted, now)
                except Exception:  # noqa: BLE001 - no copy: the next success reads the store
                    copies.drop(user)
        return verdicts

    def _account_for_success(self, conn, user, now, copies):
        """(account, history) before a success: a current kept copy, else read (and kept
        when it may be: an account with no recent denials), the account made at first
        sight."""
        if copies is not None:
            state = copies.get(user, time.monotonic())
            if state is not None:
                return state
            stamp = copies.stamp(user)
        account, history = logins.account_and_denials(conn, user, now, self.settings)
        if account is None:  # first sight of the user: make the account row
            logins.account_row(conn, user, now, lock=True)
            account, history = logins.account_and_denials(conn, user, now, self.settings)
        if copies is not None and not history.denied_recent:
            copies.keep(user, stamp, account, history, time.monotonic())
        return account, history

    def _successes_in(self, conn, attempts, copies=None) -> list:
        """`_success_in` for each attempt in turn, under `logins.account_only` settings,
        with fewer statements: at most one read and one account update a success, and the
        event rows and account updates sent in runs by execute_many. (One JSON statement a
        run was tried on SQLite: its JSON parsing cost more, 51 vs 23 us a success.) The
        same rows and verdicts as `_success_in`, except that with `copies` the account row
        of a success that changes nothing but its times is left alone for a while
        (policy.account.success_changes_account)."""
        events: list[dict] = []
        updates: list[dict] = []
        touched: set[str] = set()

        def flush():
            conn.execute_many(sql.INSERT_EVENT, events)
            conn.execute_many(sql.RECORD_SUCCESS, updates)
            events.clear()
            updates.clear()
            touched.clear()

        verdicts = []
        for attempt in attempts:
            user, now = attempt.user, attempt.time
            if user in touched:
                flush()  # a second success of one user reads what the first one wrote
            if conn.dialect != "sqlite":
                # PostgreSQL: the account's row lock first, as _success_in takes it (SQLite's
                # BEGIN IMMEDIATE already holds the write lock).
                logins.account_row(conn, user, now, lock=True)
            account, history = self._account_for_success(conn, user, now, copies)
            verdict = transition.success_verdict(history, attempt, self.settings)
            events.append(logins.event_row(attempt, SUCCESS))
            touched.add(user)
            if copies is None or transition.success_changes_account(
                copies.written(user), account, now, verdict
            ):
                if copies is not None:
                    after = transition.succeeded(account, history, attempt, self.settings, verdict)
                    copies.update(
                        user,
                        *after,
                        written=transition.stored_status(verdict.status, verdict.status_why),
                    )
                updates.append(logins.success_update(user, now, verdict.status, verdict.status_why))
            if verdict.notices or account["notify_on"]:
                flush()  # what a notice tells is stored before the notice is queued
                self._user_notice(conn, attempt, account, SUCCESS)
                for notice in verdict.notices:
                    self._queue(conn, now, notice)
            verdicts.append(verdict)
        flush()
        return verdicts
