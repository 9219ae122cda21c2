"""The one entry point both adapters call: check an attempt, record its outcome, track sessions.

The PAM hook and the FreeRADIUS module translate their calls into an `Attempt` and one of these
methods; everything else (what to read, what the rules say, what to write, who to tell) is
here and in policy/, so both channels behave the same. Each method is one short transaction.
Store or directory trouble never raises out of here: it becomes a verdict per
`failure.on_store_error`, with reason `store_error`, and `Gate.last_error` says what happened.

What only a RADIUS server needs (reads for its copies of accounts, a user's state with
outcomes not yet stored, the recorder's batches) is radius_hook.radius_gate.RadiusGate.

Imports stay light (no SQLAlchemy, no tomllib): this runs inside every login process.
"""

from __future__ import annotations

import time

from pam_guard.errors import DirectoryError
from policy import account as transition
from policy import decide
from policy.sources import pam_source
from policy.types import (
    DENIED,
    FAILURE,
    INVALID_USER,
    PAM,
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
        # (RadiusGate.record_outcomes tells from it whether a copy read inside is still current).
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
        source=None,
        digest=None,
    ) -> Attempt:
        """An Attempt stamped with the gate's clock; `address` must be canonical or None.
        `source` (policy.sources): on PAM the address, else `local`, unless given."""
        if source is None and channel == PAM:
            source = pam_source(address)
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
            source,
            digest,
        )

    def preauth(self, attempt) -> Verdict:
        """Before the password: refuse a locked account (pam-guard's lock or the directory's).

        Most logins are not locked, so the first look is one read that takes no write lock;
        only a refusal goes on to the write transaction that records it.
        """
        directory = None

        def read(conn):
            account = logins.account_row(conn, attempt.user, attempt.time, lock=False)
            return logins.load_history(
                conn, attempt, self.settings, account, full=False, directory=directory
            )

        def run(attempt):
            nonlocal directory
            directory = self._directory_state(attempt.user)
            # one statement needs no transaction around it; smart lockout and address
            # blocks read more (logins.lock_facts)
            reader = self.read if logins.locks_read_more(self.settings) else self._read_single
            history = reader(read)
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
        history = self.history(attempt)
        return decide.check(attempt, history, self.settings), history

    def history(self, attempt) -> History:
        """Everything every rule reads for `attempt` (a valid user name), writing nothing.
        Raises StoreError, DirectoryError."""
        directory = self._directory_state(attempt.user)

        def body(conn):
            account = logins.account_row(conn, attempt.user, attempt.time, lock=False)
            return logins.load_history(
                conn, attempt, self.settings, account, full=True, directory=directory
            )

        return self.read(body)

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

    def failed_since_last_login(self, user):
        """(how many, when the last, where from) of `user`'s failures between this login
        and the one before, or None (the session-open line). Raises StoreError."""
        return self.read(lambda conn: logins.failures_since_last_login(conn, user))

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
            logins.note_familiar(conn, attempt, self.settings)
            self._user_notice(conn, attempt, account, SUCCESS)
        self._finish(conn, attempt, verdict, touch=not verdict.allowed or record_success)
        return verdict

    def _record_success(self, attempt) -> Verdict:
        return self._in_transaction((attempt.user,), lambda conn: self._success_in(conn, attempt))

    def _success_in(self, conn, attempt) -> Verdict:
        account = logins.account_row(conn, attempt.user, attempt.time, lock=True)
        history = logins.load_history(conn, attempt, self.settings, account, full=True)
        verdict = transition.success_verdict(history, attempt, self.settings)
        logins.insert_event(conn, attempt, SUCCESS)
        logins.reset_failures(conn, attempt.user, attempt.time)
        logins.note_familiar(conn, attempt, self.settings)
        self._user_notice(conn, attempt, account, SUCCESS)
        self._finish(conn, attempt, verdict, touch=True)
        return verdict

    def _record_failure(self, attempt) -> Verdict:
        return self._in_transaction((attempt.user,), lambda conn: self._failure_in(conn, attempt))

    def _failure_in(self, conn, attempt) -> Verdict:
        """A failure, as policy.account.step makes it: counted in its bucket, then what it
        leads to (locks, an address block, notices)."""
        settings, now = self.settings, attempt.time
        account = logins.account_row(conn, attempt.user, now, lock=True)
        history = logins.load_history(conn, attempt, settings, account, full=True)
        earlier = logins.address_failures(conn, attempt, settings)
        bucket, history = decide.count_failure(attempt, history, settings)
        verdict = decide.after_failure(attempt, history, settings, earlier, bucket)
        logins.insert_event(conn, attempt, FAILURE, (), bucket)
        locks = transition.failure_locks(verdict, history, now, settings)
        if locks:
            logins.write_locks(conn, attempt.user, {**(account or {}), **locks})
        if verdict.block is not None:
            logins.write_block(conn, verdict.block)
        self._user_notice(conn, attempt, account, FAILURE)
        if locks:
            self._user_notice(conn, attempt, account, "lock", verdict)
        self._finish(conn, attempt, verdict, touch=True)
        return verdict

    def _finish(self, conn, attempt, verdict, touch: bool) -> None:
        """Save the status and queue the verdict's notices, in the caller's transaction."""
        if touch and verdict.status is not None:
            logins.save_status(conn, attempt.user, attempt.time, verdict.status, verdict.status_why)
        for notice in transition.notices_to_queue(verdict, status_saved=touch):
            self._queue(conn, attempt.time, notice)

    def _user_notice(self, conn, attempt, account, outcome, verdict=None) -> None:
        """The user's own notice of a failure, a success, or (`outcome` "lock", with the
        failure's verdict) a lock of their account, when they asked for it."""
        wanted = account.get("notify_on", "") if account else ""
        if not wanted or outcome not in wanted.split(","):
            return
        facts: tuple = (
            ("user", attempt.user),
            ("time", attempt.time),
            ("outcome", outcome),
            ("address", attempt.address or attempt.address_raw or "local"),
            ("service", attempt.service),
        )
        if verdict is not None:
            lock = verdict.lock or verdict.unfamiliar_lock
            scope = "account" if verdict.lock is not None else "unfamiliar sources"
            told = next((dict(n.facts) for n in verdict.notices if n.kind == "lock"), {})
            facts += (
                ("expires", lock[1]),
                ("scope", scope),
                ("failures", told.get("failures", 1)),
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
