"""`pam-guard deliver`: send the notices queued in the store's outbox over SMTP.

The login path only queues (pam_guard.gate, in the event's transaction); this runs from the
systemd timer every minute. Rules:

- Claim before sending. A claim is one conditional UPDATE (`sent_at IS NULL` and no live
  claim by anyone else), so two overlapping runs, on one host or on many hosts sharing a
  PostgreSQL store, never take the same notice: the second UPDATE finds the row already
  claimed and leaves it. A claim is a lease (`claimed_until`): a run that dies mid-way holds
  its notices only until the lease ends, then another run takes them. Right before each
  message is sent its lease is renewed, and a run that finds it lost the claim (it was too
  slow, and another run took over) skips the message.
- A failed try counts in `attempts`, records `last_error` and waits `backoff(attempts)`
  (1, 2, 4 ... minutes, at most 4 hours) in `next_try`. After MAX_ATTEMPTS (about 3.7 days
  of retries, as a mail server keeps a queue for days) or a permanent refusal (SMTP 5xx for
  every recipient) the notice is given up: it stays in the outbox, unsent, and the run says
  so and exits non-zero.
- A mail server that cannot be reached ends the run after marking the notices it held; the
  rest stay due for the next run. A session the server drops (421, e.g. its limit of
  messages per session) is reopened and the message tried once more.

Admin side: SQLAlchemy Core, smtplib and email.message are fine here.
"""

from __future__ import annotations

import os
import smtplib
import socket
import ssl
import time
import uuid
from collections import namedtuple
from email.message import EmailMessage
from email.utils import formatdate

from sqlalchemy import and_, or_, select, update

from store.schema import outbox

MAX_ATTEMPTS = 30
MAX_BACKOFF = 4 * 3600.0
SMTP_TIMEOUT = 30.0
MAX_DROPS = 3  # sessions dropped in a row, with nothing sent between, before a run gives up
BATCH = 20
# A claim outlives the slowest message: connect, TLS, login and send, each timing out once.
LEASE = 10 * SMTP_TIMEOUT

Report = namedtuple("Report", "sent failed gave_up waiting unreachable errors")
Report.__doc__ = """What one run did: counts of notices sent, failed (will retry), given up;
waiting: still queued afterwards; unreachable: the mail server could not be reached (text of
the error, or ""); errors: one line per failed or given-up notice."""


class DeliveryConfigError(Exception):
    """The [notify] settings cannot be used to send (e.g. an unreadable password file)."""


class ServerUnreachable(Exception):
    """The mail server could not be reached or refused the session (connect, TLS, auth)."""


def backoff(attempts: int) -> float:
    """Seconds to wait after the `attempts`-th failed try: 1 min, doubling, at most 4 h."""
    return min(60.0 * 2 ** max(0, attempts - 1), MAX_BACKOFF)


def worker_id() -> str:
    """A claim owner name unique to this run: host, pid and a random part."""
    return f"{socket.gethostname()[:64]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


# --- claims --------------------------------------------------------------------------------


def _waiting():
    """Unsent and not given up."""
    return and_(outbox.c.sent_at.is_(None), outbox.c.attempts < MAX_ATTEMPTS)


def _unclaimed(now: float):
    """Not held by a live claim (a lease that ended counts as no claim)."""
    return or_(outbox.c.claimed_until.is_(None), outbox.c.claimed_until < now)


def _due(now: float):
    return and_(_waiting(), _unclaimed(now), outbox.c.next_try <= now)


def flush(engine, now: float) -> int:
    """Make every waiting notice due now, ignoring backoff (like `postqueue -f`)."""
    with engine.begin() as conn:
        return conn.execute(
            update(outbox)
            .where(and_(_waiting(), _unclaimed(now), outbox.c.next_try > now))
            .values(next_try=now)
        ).rowcount


def claim(engine, me: str, now: float, limit: int = BATCH) -> list:
    """Claim up to `limit` due notices for worker `me`, oldest first; returns their rows.

    The UPDATE's WHERE repeats the "nobody holds it" test, so a row is claimed by exactly one
    worker. On SQLite the UPDATE picks its rows itself, in one statement under the write lock
    (a read first, then a write, could fail on a stale snapshot). On PostgreSQL the rows are
    first locked with SELECT ... FOR UPDATE SKIP LOCKED, so a second claimer passes over them
    instead of waiting for them and then finding them taken.
    """
    candidates = (
        select(outbox.c.id).where(_due(now)).order_by(outbox.c.next_try, outbox.c.id).limit(limit)
    )
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            ids = conn.execute(candidates.with_for_update(skip_locked=True)).scalars().all()
            chosen = outbox.c.id.in_(ids)
        else:
            chosen = outbox.c.id.in_(candidates.scalar_subquery())
        conn.execute(
            update(outbox)
            .where(and_(chosen, _due(now)))
            .values(claimed_by=me, claimed_until=now + LEASE)
        )
    with engine.connect() as conn:
        return conn.execute(
            select(outbox)
            .where(
                and_(
                    outbox.c.claimed_by == me,
                    outbox.c.sent_at.is_(None),
                    outbox.c.claimed_until > now,
                )
            )
            .order_by(outbox.c.id)
        ).all()


def hold(engine, me: str, notice_id: int, now: float) -> bool:
    """Renew our lease on a notice just before sending it; False when it is no longer ours."""
    with engine.begin() as conn:
        return (
            conn.execute(
                update(outbox)
                .where(
                    and_(
                        outbox.c.id == notice_id,
                        outbox.c.claimed_by == me,
                        outbox.c.sent_at.is_(None),
                    )
                )
                .values(claimed_until=now + LEASE)
            ).rowcount
            == 1
        )


def _finish(engine, me: str, notice_id: int, values: dict) -> None:
    """Release our claim on a notice with its new state (only if we still hold it)."""
    with engine.begin() as conn:
        conn.execute(
            update(outbox)
            .where(and_(outbox.c.id == notice_id, outbox.c.claimed_by == me))
            .values(claimed_by=None, claimed_until=None, **values)
        )


def mark_sent(engine, me: str, row, now: float, error: str = "") -> None:
    _finish(
        engine,
        me,
        row.id,
        {"sent_at": now, "attempts": row.attempts + 1, "last_error": error[:512] or None},
    )


def mark_failed(engine, me: str, row, now: float, error: str, permanent: bool = False) -> bool:
    """Count a failed try; True when the notice is now given up."""
    attempts = MAX_ATTEMPTS if permanent else row.attempts + 1
    _finish(
        engine,
        me,
        row.id,
        {"attempts": attempts, "next_try": now + backoff(attempts), "last_error": error[:512]},
    )
    return attempts >= MAX_ATTEMPTS


def waiting(engine) -> int:
    """Notices still to be sent (not given up)."""
    from sqlalchemy import func

    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(outbox).where(_waiting())).scalar_one()


def unsent_by_kind(conn) -> list:
    """[(kind, given up, count)] of the notices not sent yet (`pam-guard metrics`)."""
    from sqlalchemy import func

    gave_up = outbox.c.attempts >= MAX_ATTEMPTS
    return conn.execute(
        select(outbox.c.kind, gave_up, func.count())
        .where(outbox.c.sent_at.is_(None))
        .group_by(outbox.c.kind, gave_up)
    ).all()


def unsent(engine) -> list:
    """Every notice not sent yet (waiting or given up), oldest first: `deliver --list`."""
    with engine.connect() as conn:
        return conn.execute(
            select(outbox).where(outbox.c.sent_at.is_(None)).order_by(outbox.c.id)
        ).all()


def state(row, now: float) -> str:
    """'given up', 'sending' (claimed by a live run) or 'waiting'."""
    if row.attempts >= MAX_ATTEMPTS:
        return "given up"
    if row.claimed_until is not None and row.claimed_until >= now:
        return "sending"
    return "waiting"


def given_up(engine) -> list:
    """Notices that will not be tried again, newest first."""
    with engine.connect() as conn:
        return conn.execute(
            select(outbox)
            .where(and_(outbox.c.sent_at.is_(None), outbox.c.attempts >= MAX_ATTEMPTS))
            .order_by(outbox.c.id.desc())
        ).all()


# --- messages and SMTP ---------------------------------------------------------------------


def split_recipients(text: str) -> list[str]:
    return [a.strip() for a in (text or "").split(",") if a.strip()]


def build_message(row, notify) -> EmailMessage:
    """The email for one outbox row. The Message-ID is the notice's own, so a retry after a
    crash between send and mark is recognisable as the same message."""
    msg = EmailMessage()
    msg["From"] = notify.sender
    msg["To"] = ", ".join(split_recipients(row.recipients))
    msg["Subject"] = row.title
    msg["Date"] = formatdate(row.created, localtime=True)
    msg["Message-ID"] = f"<pam-guard.{row.id}.{int(row.created)}@{socket.getfqdn() or 'localhost'}>"
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to this
    msg["X-Pam-Guard-Kind"] = row.kind
    msg.set_content(row.body)
    return msg


def read_password(path: str) -> str:
    """The SMTP password from its file, which must be root's (or ours) and mode 0600."""
    try:
        st = os.stat(path)
        with open(path, encoding="utf-8") as handle:
            password = handle.read().strip("\r\n")
    except OSError as exc:
        raise DeliveryConfigError(f"notify.smtp_password_file {path}: {exc.strerror}") from None
    if st.st_uid not in (0, os.geteuid()) or st.st_mode & 0o077:
        raise DeliveryConfigError(
            f"notify.smtp_password_file {path} must be owned by root with mode 0600 "
            f"(it is {st.st_mode & 0o777:04o}): chmod 600 {path}"
        )
    return password


def check_settings(notify) -> str | None:
    """The SMTP password to log in with (None: no auth); raises DeliveryConfigError."""
    if not notify.smtp_user:
        return None
    if not notify.starttls:
        raise DeliveryConfigError(
            "notify.smtp_user is set but notify.starttls is false: the password would cross "
            "the network in clear (set starttls = true)"
        )
    if not notify.smtp_password_file:
        raise DeliveryConfigError("notify.smtp_user is set but notify.smtp_password_file is empty")
    return read_password(notify.smtp_password_file)


def open_smtp(notify, password):
    """An SMTP session ready to send: connected, STARTTLS (certificate checked) and logged in
    as configured. Raises ServerUnreachable."""
    try:
        smtp = smtplib.SMTP(notify.smtp_host, notify.smtp_port, timeout=SMTP_TIMEOUT)
    except (OSError, smtplib.SMTPException) as exc:
        raise ServerUnreachable(f"{notify.smtp_host}:{notify.smtp_port}: {exc}") from None
    try:
        smtp.ehlo()
        if notify.starttls:
            smtp.starttls(context=ssl.create_default_context())
            smtp.ehlo()
        if password is not None:
            smtp.login(notify.smtp_user, password)
    except (OSError, smtplib.SMTPException) as exc:
        _quit(smtp)
        raise ServerUnreachable(f"{notify.smtp_host}:{notify.smtp_port}: {exc}") from None
    return smtp


def _quit(smtp) -> None:
    try:
        smtp.quit()
    except (OSError, smtplib.SMTPException):
        smtp.close()


def _describe(row) -> str:
    return f"notice {row.id} ({row.kind}: {row.title!r} to {row.recipients})"


def _send_one(smtp, row, notify):
    """(outcome, text): 'sent' (text: recipients refused, if any), 'failed' (4xx: retry
    later), 'refused' (5xx: never), or 'broken' (the session dropped: try a new one)."""
    to = split_recipients(row.recipients)
    try:
        message = build_message(row, notify)
    except (ValueError, TypeError) as exc:  # e.g. a line break in a header: never sendable
        return "refused", f"cannot build the message: {exc}"
    try:
        refused = smtp.send_message(message, from_addr=notify.sender, to_addrs=to)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        return ("refused" if all(c >= 500 for c in codes) else "failed"), _refusals(exc.recipients)
    except smtplib.SMTPResponseException as exc:
        text = f"{exc.smtp_code} {_text(exc.smtp_error)}"
        if exc.smtp_code == 421:  # the server closes the session (e.g. its per-session limit)
            return "broken", text
        return ("refused" if exc.smtp_code >= 500 else "failed"), text
    except (OSError, smtplib.SMTPException) as exc:
        return "broken", f"{type(exc).__name__}: {exc}"
    return "sent", _refusals(refused)


class _Mailer:
    """The SMTP session of one run: opened on first use, reopened when the server drops it
    (a server may limit messages per session), but not after MAX_DROPS drops in a row. Once
    the server cannot be reached, every send is 'down'."""

    def __init__(self, notify, password) -> None:
        self.notify = notify
        self.password = password
        self.smtp = None
        self.drops = 0
        self.unreachable = ""

    def _open(self) -> bool:
        if self.drops >= MAX_DROPS:
            self.unreachable = f"the server dropped {self.drops} sessions in a row"
            return False
        try:
            self.smtp = open_smtp(self.notify, self.password)
        except ServerUnreachable as exc:
            self.unreachable = str(exc)
            return False
        return True

    def send(self, row):
        """(outcome, text) as _send_one, plus 'down' when the server cannot be reached. A
        message whose session dropped is tried once more on a new session."""
        text = ""
        for _ in range(2):
            if self.unreachable or (self.smtp is None and not self._open()):
                return "down", self.unreachable
            outcome, text = _send_one(self.smtp, row, self.notify)
            if outcome != "broken":
                if outcome == "sent":
                    self.drops = 0
                return outcome, text
            self.drops += 1
            self.close()
        return "failed", text

    def close(self) -> None:
        if self.smtp is not None:
            _quit(self.smtp)
            self.smtp = None


def _text(reply) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


def _refusals(refused: dict) -> str:
    """'a@x: 550 no such user; ...' from smtplib's {address: (code, reply)}."""
    return "; ".join(f"{a}: {code} {_text(reply)}" for a, (code, reply) in refused.items())


def deliver(engine, notify, now=time.time, retry_now: bool = False, batch: int = BATCH) -> Report:
    """Send every due notice once; see the module doc for the rules. `now` is a clock;
    `retry_now` first makes every waiting notice due (after the mail server is fixed)."""
    password = check_settings(notify)
    if retry_now:
        flush(engine, now())
    me = worker_id()
    sent = failed = gave_up = 0
    errors: list[str] = []
    mailer = _Mailer(notify, password)
    try:
        while not mailer.unreachable:
            rows = claim(engine, me, now(), batch)
            if not rows:
                break
            for row in rows:  # every claimed row gets an outcome, even once the server is gone
                if not mailer.unreachable and not hold(engine, me, row.id, now()):
                    continue  # our lease ran out and another run took the notice over
                outcome, text = mailer.send(row)
                if outcome == "sent":
                    mark_sent(engine, me, row, now(), text)
                    sent += 1
                    if text:
                        errors.append(f"{_describe(row)}: some recipients refused: {text}")
                elif mark_failed(engine, me, row, now(), text, permanent=outcome == "refused"):
                    gave_up += 1
                    errors.append(
                        f"gave up on {_describe(row)} after {row.attempts + 1} tries: {text}"
                    )
                else:
                    failed += 1
                    errors.append(f"{_describe(row)} not sent, will retry: {text}")
    finally:
        mailer.close()
    return Report(sent, failed, gave_up, waiting(engine), mailer.unreachable, errors)
