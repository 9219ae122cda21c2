"""The one entry point both adapters call: check an attempt, record its outcome, track sessions.

The PAM hook and the FreeRADIUS module translate their calls into an `Attempt` and one of these
methods; everything else (what to read, what the rules say, what to write, who to tell) is
here and in policy/, so both channels behave the same. Each method is one short transaction.
Store or directory trouble never raises out of here: it becomes a verdict per
`failure.on_store_error`, with reason `store_error`, and `Gate.last_error` says what happened.

Imports stay light (no SQLAlchemy, no tomllib): this runs inside every login process.
"""

from __future__ import annotations

import time

from pam_guard.errors import DirectoryError
from policy import account as transition
from policy import decide
from policy.types import (
    DENIED,
    FAILURE,
    INVALID_USER,
    STORE_ERROR,
    SUCCESS,
    Attempt,
    History,
    Notice,
    Verdict,
)
from policy.usernames import escape, invalid_reason
from store import changes, logins
from store import statements as sql
from store.db import StoreError, connect


def _sanitize_text(value, limit: int = 256):
    if value is None:
        return None
    return escape(value)[:limit]


class Gate:
    """Decisions and records for one store; one instance per process (adapters cache it)."""

    def __init__(
        self, settings, clock=time.time, directory=None, connector=connect, on_commit=None
    ) -> None:
        """`on_commit(users)` runs after each committed write (users: names, or None for
        a change that touches everyone); by default it bumps the store's change counters
        (store.changes) so that processes keeping copies of account state see it at once."""
        self.settings = settings
        self.clock = clock
        self._connector = connector
        self._on_commit = on_commit or (
            lambda users: changes.note_change(settings.store.url, users)
        )
        self._conn = None
        self._directory = directory
        self.last_error = ""
        # What on_commit returned for the last commit: note_change's {slot: value before}
        # (record_outcomes tells from it whether a copy read inside is still current).
        self.last_noted: dict | None = None

    # --- connection ------------------------------------------------------------------------

    def _connection(self):
        if self._conn is None:
            self._conn = self._connector(
                self.settings.store.url, self.settings.store.timeout_seconds
            )
        return self._conn

    def close(self) -> None:
        """Close the store connection, and the directory's (both reopen on next use)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        # An LDAP socket left open until interpreter shutdown aborts radiusd at exit.
        closer = getattr(self._directory, "close", None)
        if closer is not None:
            closer()

    def directory(self):
        """The LDAP directory client, made on first use (only with custom authentication)."""
        if self._directory is None:
            from pam_guard.directory import Directory  # ldap3: paid only where LDAP is used

            self._directory = Directory(self.settings.custom_authentication)
        return self._directory

    # --- attempts --------------------------------------------------------------------------

    def attempt(
        self,
        user,
        channel,
        service,
        address=None,
        address_raw=None,
        client=None,
        secure=None,
        ruser=None,
    ) -> Attempt:
        """An Attempt stamped with the gate's clock; `address` must be canonical or None."""
        return Attempt(
            user,
            channel,
            service or "",
            address,
            _sanitize_text(address_raw),
            _sanitize_text(client),
            secure,
            self.clock(),
            _sanitize_text(ruser),
        )

    def preauth(self, attempt) -> Verdict:
        """Before the password: refuse a locked account (pam-guard's lock or the directory's).

        Most logins are not locked, so the first look is one read that takes no write lock;
        only a refusal goes on to the write transaction that records it.
        """

        def run(attempt):
            directory = self._directory_state(attempt.user)
            account = self._read_single(
                lambda conn: logins.account_row(conn, attempt.user, attempt.time, lock=False)
            )
            history = logins.load_history(
                None, attempt, self.settings, account, full=False, directory=directory
            )
            verdict = decide.check_preauth(attempt, history, self.settings)
            if verdict.allowed:
                return verdict
            return self._in_transaction(
                (attempt.user,),
                lambda conn: self._decide_in(conn, attempt, False, False, directory),
            )

        return self._guarded(attempt, run)

    def login(self, attempt) -> Verdict:
        """After a good password (PAM account phase): every rule; records success or denial."""
        return self._decide(attempt, full=True, record_success=True)

    def authorize(self, attempt) -> Verdict:
        """Before authentication (RADIUS authorize): every rule; records only a denial."""
        return self._decide(attempt, full=True, record_success=False)

    def explain(self, attempt):
        """(verdict, history): what every rule would decide for `attempt` now, writing nothing.

        Store and directory errors are raised (StoreError, DirectoryError), not turned into a
        verdict: the admin wants to know.
        """
        invalid = invalid_reason(attempt.user)
        if invalid is not None:
            return Verdict(False, (INVALID_USER,), None, (), None, invalid, None), History()
        directory = self._directory_state(attempt.user)

        def body(conn):
            account = logins.account_row(conn, attempt.user, attempt.time, lock=False)
            history = logins.load_history(
                conn, attempt, self.settings, account, full=True, directory=directory
            )
            return decide.check(attempt, history, self.settings), history

        return self.read(body)

    def check_quick(self, attempt) -> Verdict:
        """`explain`'s verdict, read with one statement when the settings allow it.

        RADIUS authorize's first look, so the cheapest read that gives the same answer: when
        the enabled rules need nothing of the history but the account and its recent
        denials (`logins.account_only`, the default settings), one SELECT, and on SQLite no
        transaction around it (one statement reads one consistent snapshot). Otherwise,
        and for an invalid user name, exactly `explain`. Raises like `explain`.
        """
        if not logins.account_only(self.settings) or invalid_reason(attempt.user) is not None:
            return self.explain(attempt)[0]
        directory = self._directory_state(attempt.user)

        def body(conn):
            return logins.account_and_denials(
                conn, attempt.user, attempt.time, self.settings, directory
            )[1]

        return decide.check(attempt, self._read_single(body), self.settings)

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
                if account is not None:
                    history = history._replace(
                        failures=logins.count_failures(conn, user, first, self.settings, account)
                    )
            stored = {
                (ts, outcome)
                for ts, outcome in conn.all(sql.OUTCOMES_SINCE, {"user": user, "since": first})
            }
            return account, history, stored

        account, history, stored = self.read(body)
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
            account, history, _verdict = transition.step(
                account, history, kind, outcome, self.settings, refused
            )
        return account, history

    def record(self, kind: str, attempt, reasons: tuple = ()) -> Verdict:
        """Store one outcome a RADIUS module handed over: a success, a failed password, or
        a refusal before authentication (DENIED, with the reasons radiusd refused for:
        policy.account.refusal_verdict)."""
        if kind == SUCCESS:
            return self.record_success(attempt)
        if kind == FAILURE:
            return self.record_failure(attempt)
        return self._decide(attempt, full=True, record_success=False, refused=tuple(reasons))

    def _read_single(self, body):
        """body(conn) for a read of one statement, with no transaction around it
        (Connection.read_alone)."""
        return self._connection().read_alone(body)

    def read(self, body):
        """Run body(conn) in a read-only transaction and return its result (admin reports)."""
        conn = self._connection()
        conn.begin(write=False)
        try:
            return body(conn)
        finally:
            conn.rollback()

    def status_of(self, user: str):
        """Recompute and save a user's status now (pam-guard status): (history, status, why).

        None when the store has no account for the user. Raises StoreError/DirectoryError.
        Reads first and writes only a status that changed (then read again under the write
        lock): `status` over every user must not take the write lock, and bump the change
        counters that RADIUS modules' copies of accounts hang on, once a user.
        """
        probe = self.attempt(user, "admin", "")
        directory = self._directory_state(user)

        def recompute(conn):
            account = logins.account_row(conn, user, probe.time, lock=False)
            if account is None:
                return None
            history = logins.load_history(
                conn, probe, self.settings, account, full=True, directory=directory
            )
            status, why = decide.compute_status(history, self.settings, now=probe.time)
            return history, status, why

        def changed(found) -> bool:
            return found is not None and found[1] != found[0].status

        def save(conn):
            found = recompute(conn)
            if changed(found):
                history, status, why = found
                logins.set_status(conn, user, probe.time, status, why)
                for notice in decide.status_notices(user, history.status, status, why):
                    self._queue(conn, probe.time, notice)
            return found

        found = self.read(recompute)
        return self._in_transaction((user,), save) if changed(found) else found

    def record_success(self, attempt) -> Verdict:
        """A good password already let in (RADIUS post-auth): record it, reset the failures."""
        return self._guarded(attempt, self._record_success)

    def record_failure(self, attempt) -> Verdict:
        """A failed authentication: record it; it may lock the account and alert the admin."""
        return self._guarded(attempt, self._record_failure)

    # --- sessions --------------------------------------------------------------------------

    def session_start(self, user, channel, service, key, nas="", address=None, client=None):
        return self._session(sql.OPEN_SESSION, user, channel, service, key, nas, address, client)

    def session_update(self, user, channel, key, nas=""):
        return self._session(sql.TOUCH_SESSION, user, channel, "", key, nas)

    def session_stop(self, user, channel, key, nas=""):
        return self._session(sql.CLOSE_SESSION, user, channel, "", key, nas)

    def nas_restart(self, channel, nas) -> bool:
        """A NAS rebooted (Accounting-On/Off): every session it had open has ended."""
        return self._write(
            None,
            lambda conn, now: conn.execute(
                sql.CLOSE_NAS_SESSIONS, {"channel": channel, "nas": nas, "now": now}
            ),
        )

    # --- internals -------------------------------------------------------------------------

    def _fail_closed(self, attempt, reason_text: str) -> Verdict:
        self.last_error = reason_text
        allowed = self.settings.failure.on_store_error == "allow"
        return Verdict(allowed, (STORE_ERROR,), None, (), None, reason_text, None)

    def _invalid(self, attempt):
        """Refuse a bad user name at once; record it escaped, never as given."""
        why = invalid_reason(attempt.user)
        if why is None:
            return None
        self.last_error = f"invalid user name ({why}): {escape(attempt.user)}"
        try:
            self._write((escape(attempt.user),), lambda conn, now: self._invalid_in(conn, attempt))
        except Exception:  # noqa: BLE001 - the refusal stands even if it cannot be recorded
            pass
        return Verdict(False, (INVALID_USER,), None, (), None, why, None)

    def _invalid_in(self, conn, attempt) -> Verdict:
        """A bad user name's refusal, recorded escaped (never as given)."""
        escaped = attempt._replace(user=escape(attempt.user))
        logins.insert_event(conn, escaped, DENIED, (INVALID_USER,))
        return Verdict(False, (INVALID_USER,), None, (), None, invalid_reason(attempt.user), None)

    def _guarded(self, attempt, action) -> Verdict:
        invalid = self._invalid(attempt)
        if invalid is not None:
            return invalid
        try:
            return action(attempt)
        except StoreError as exc:
            self.close()
            return self._fail_closed(attempt, f"store: {exc}")
        except DirectoryError as exc:
            verdict = self._fail_closed(attempt, f"directory: {exc}")
            if not verdict.allowed:
                # The store still works: record the refusal like any other (SPEC §4).
                error = self.last_error
                self._write(
                    (attempt.user,),
                    lambda conn, now: logins.insert_event(conn, attempt, DENIED, verdict.reasons),
                )
                self.last_error = error
            return verdict

    def _directory_state(self, user):
        if not self.settings.custom_authentication.enabled:
            return None
        return self.directory().state(user)

    def _decide(self, attempt, full: bool, record_success: bool, refused: tuple = ()) -> Verdict:
        def run(attempt):
            # Ask the directory before taking the store's write lock: never hold a lock on I/O.
            directory = self._directory_state(attempt.user)
            return self._in_transaction(
                (attempt.user,),
                lambda conn: self._decide_in(
                    conn, attempt, full, record_success, directory, refused
                ),
            )

        return self._guarded(attempt, run)

    def _decide_in(
        self, conn, attempt, full, record_success, directory, refused: tuple = ()
    ) -> Verdict:
        account = logins.account_row(conn, attempt.user, attempt.time, lock=True)
        history = logins.load_history(
            conn, attempt, self.settings, account, full=full, directory=directory
        )
        if full:
            verdict = transition.refusal_verdict(attempt, history, self.settings, refused)
        else:
            verdict = decide.check_preauth(attempt, history, self.settings)
            if not verdict.allowed:
                # A refusal saves a new status: decide it on the full history (denials,
                # sessions), not on the locks-only read, or a high_risk user falls back.
                history = logins.load_history(
                    conn, attempt, self.settings, account, full=True, directory=directory
                )
                verdict = decide.check_preauth(attempt, history, self.settings)
        if not verdict.allowed:
            logins.insert_event(conn, attempt, DENIED, verdict.reasons)
        elif record_success:
            logins.insert_event(conn, attempt, SUCCESS, verdict.reasons)
            logins.reset_failures(conn, attempt.user, attempt.time)
            self._user_notice(conn, attempt, account, SUCCESS)
        self._finish(conn, attempt, verdict, touch=not verdict.allowed or record_success)
        return verdict

    def record_outcomes(self, runs, copies=None, kept=None) -> list:
        """Record runs of good logins and failed passwords a RADIUS module handed over, all
        in one transaction, one commit (the recorder's group commit): [(kind, [Attempt])],
        kind SUCCESS or FAILURE, each user's in the order they happened. Each run's verdicts:
        a success of an invalid user name is skipped (it has none), a failure of one is
        stored as its refusal (`_invalid`). Raises StoreError (then nothing is stored).

        A failure alone costs a commit (measured in the recorder: ~0.8 ms of CPU, so 2 %
        of wrong passwords added 17 us to every record). Inside a transaction each record
        reads what the ones before wrote, so a run of failures locks exactly as one by one.
        Only users with a failure bump the change counters: no success can change a copy
        radiusd keeps (radius_hook.hot). `copies` (radius_hook.hot.HotAccounts, under
        `logins.account_only` settings): kept copies of accounts, used instead of reading
        an account that has a current one and kept current with what a success records
        (policy.account.step). A failure drops its user's; once the transaction has
        committed, the user's state read at its end is kept instead when no other writer
        came between (HotAccounts.keep_written), and also put in `kept` (a dict, when
        given) as {user: (stamp, account, History)}: the RADIUS module keeps it too, so
        the user's next request reads nothing."""
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
                    stamp = copies.keep_written(
                        user, stamps[user], account, history, self.last_noted, now
                    )
                except Exception:  # noqa: BLE001 - no copy: the next request reads the store
                    copies.drop(user)
                    continue
                if stamp is not None and kept is not None:
                    kept[user] = (stamp, account, history)
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

    def _record_success(self, attempt) -> Verdict:
        return self._in_transaction((attempt.user,), lambda conn: self._success_in(conn, attempt))

    def _success_in(self, conn, attempt) -> Verdict:
        account = logins.account_row(conn, attempt.user, attempt.time, lock=True)
        history = logins.load_history(conn, attempt, self.settings, account, full=True)
        verdict = transition.success_verdict(history, attempt, self.settings)
        logins.insert_event(conn, attempt, SUCCESS)
        logins.reset_failures(conn, attempt.user, attempt.time)
        self._user_notice(conn, attempt, account, SUCCESS)
        self._finish(conn, attempt, verdict, touch=True)
        return verdict

    def _record_failure(self, attempt) -> Verdict:
        return self._in_transaction((attempt.user,), lambda conn: self._failure_in(conn, attempt))

    def _failure_in(self, conn, attempt) -> Verdict:
        account = logins.account_row(conn, attempt.user, attempt.time, lock=True)
        logins.insert_event(conn, attempt, FAILURE)
        history = logins.load_history(conn, attempt, self.settings, account, full=True)
        spray = logins.address_failure_users(conn, attempt.address, attempt.time, self.settings)
        verdict = decide.after_failure(attempt, history, self.settings, spray)
        if verdict.lock is not None:
            logins.set_lock(conn, attempt.user, attempt.time, *verdict.lock)
        self._user_notice(conn, attempt, account, FAILURE)
        self._finish(conn, attempt, verdict, touch=True)
        return verdict

    def _finish(self, conn, attempt, verdict, touch: bool) -> None:
        """Save the status and queue the verdict's notices, in the caller's transaction."""
        if touch and verdict.status is not None:
            logins.save_status(conn, attempt.user, attempt.time, verdict.status, verdict.status_why)
        for notice in transition.notices_to_queue(verdict, status_saved=touch):
            self._queue(conn, attempt.time, notice)

    def _user_notice(self, conn, attempt, account, outcome) -> None:
        wanted = account.get("notify_on", "") if account else ""
        if not wanted or outcome not in wanted.split(","):
            return
        facts = (
            ("user", attempt.user),
            ("time", attempt.time),
            ("outcome", outcome),
            ("address", attempt.address or attempt.address_raw or "local"),
            ("service", attempt.service),
        )
        self._queue(
            conn,
            attempt.time,
            Notice(f"user_{outcome}", attempt.user, facts),
            account.get("notify_to", ""),
        )

    def _queue(self, conn, now, notice, user_addresses: str = "") -> None:
        from pam_guard.notices import recipients, render

        to = recipients(notice, self.settings, user_addresses)
        if not to:
            return
        title, body = render(notice, self.settings, conn)
        logins.queue_notice(
            conn,
            now,
            notice.kind,
            notice.subject,
            to,
            title,
            body,
            self.settings.notify.repeat_minutes,
        )

    def _in_transaction(self, users, body):
        """body(conn) in a write transaction; once committed, `on_commit(users)` (the users
        whose state it may change; None: anyone's)."""
        conn = self._connection()
        conn.begin(write=True)
        try:
            result = body(conn)
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        self.last_noted = self._on_commit(users)
        return result

    def _write(self, users, body) -> bool:
        """Run body(conn, now) in a write transaction; False (and last_error) on store trouble."""
        try:
            self._in_transaction(users, lambda conn: body(conn, self.clock()))
            return True
        except StoreError as exc:
            self.close()
            self.last_error = f"store: {exc}"
            return False

    def _session(self, statement, user, channel, service, key, nas, address=None, client=None):
        if invalid_reason(user) is not None or not key:
            self.last_error = f"session ignored: bad user or no session key ({escape(user)})"
            return False
        params = {
            "user": user,
            "channel": channel,
            "service": service or "",
            "key": key[:256],
            "nas": (nas or "")[:256],
            "address": address,
            "client": _sanitize_text(client),
        }

        def body(conn, now):
            params["now"] = now
            conn.execute(statement, params)
            conn.execute(sql.TOUCH_ACTIVITY, {"user": user, "now": now})

        return self._write((user,), body)


__all__ = ["Gate", "DirectoryError"]
