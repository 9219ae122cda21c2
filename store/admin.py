"""The admin side of the store, with SQLAlchemy Core: accounts, address lists, reports, pruning.

The login path never imports this module (SQLAlchemy is too heavy there); it shares the
schema of store/schema.py and the meaning of every column with store/statements.py.
"""

from __future__ import annotations

from sqlalchemy import and_, delete, func, select, update

from policy.addresses import parse_network
from store.schema import accounts, address_rules, events, outbox, sessions

STATUS_ORDER = ("high_risk", "risk", "new", "inactive", "protected", "unprotected")
DAY = 86400.0


def _dialect_insert(conn):
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def ensure_account(conn, user: str, now: float) -> None:
    """Create the user's account row if it does not exist yet (race-free)."""
    insert = _dialect_insert(conn)
    conn.execute(
        insert(accounts)
        .values(username=user, first_seen=now, reset_at=0, lock_reason="", exempt=False,
                status_why="", notify_on="", notify_to="")
        .on_conflict_do_nothing(index_elements=["username"])
    )


def account(conn, user: str):
    return conn.execute(select(accounts).where(accounts.c.username == user)).first()


def user_known(conn, user: str) -> bool:
    """The user has an account row or any recorded event."""
    if account(conn, user) is not None:
        return True
    return conn.execute(select(events.c.id).where(events.c.username == user).limit(1)).first() is not None


def lock(conn, user: str, now: float, reason: str) -> None:
    ensure_account(conn, user, now)
    conn.execute(update(accounts).where(accounts.c.username == user)
                 .values(locked_at=now, lock_expires=None, lock_reason=reason[:256]))


def unlock(conn, user: str, now: float) -> bool:
    """Clear the lock and start the failure count afresh; False when the user is unknown."""
    result = conn.execute(update(accounts).where(accounts.c.username == user)
                          .values(locked_at=None, lock_expires=None, lock_reason="", reset_at=now))
    return result.rowcount > 0


def set_exempt(conn, user: str, now: float, exempt: bool) -> None:
    ensure_account(conn, user, now)
    conn.execute(update(accounts).where(accounts.c.username == user).values(exempt=exempt))


def set_notify(conn, user: str, now: float, on: str, to: str) -> None:
    ensure_account(conn, user, now)
    conn.execute(update(accounts).where(accounts.c.username == user).values(notify_on=on, notify_to=to))


def add_address_rule(conn, user: str, kind: str, entry: str, now: float) -> bool:
    """Add an allow/deny entry; False when it was already there."""
    ensure_account(conn, user, now)
    insert = _dialect_insert(conn)
    result = conn.execute(
        insert(address_rules).values(username=user, kind=kind, entry=entry)
        .on_conflict_do_nothing(index_elements=["username", "kind", "entry"])
    )
    return result.rowcount > 0


def remove_address_rule(conn, user: str, entry: str) -> int:
    result = conn.execute(delete(address_rules).where(
        and_(address_rules.c.username == user, address_rules.c.entry == entry)))
    return result.rowcount


def address_rules_of(conn, user: str | None = None):
    query = select(address_rules.c.username, address_rules.c.kind, address_rules.c.entry)
    if user is not None:
        query = query.where(address_rules.c.username == user)
    return conn.execute(query.order_by(address_rules.c.username, address_rules.c.kind,
                                       address_rules.c.entry)).all()


def open_sessions(conn, user: str | None, now: float, stale_minutes: int):
    fresh_since = now - stale_minutes * 60.0
    query = select(sessions).where(and_(sessions.c.ended.is_(None), sessions.c.last_update > fresh_since))
    if user is not None:
        query = query.where(sessions.c.username == user)
    return conn.execute(query.order_by(sessions.c.username, sessions.c.started)).all()


def count_outcome_since(conn, user: str, outcome: str, since: float) -> int:
    return conn.execute(select(func.count()).select_from(events).where(and_(
        events.c.username == user, events.c.outcome == outcome, events.c.ts > since))).scalar_one()


def last_success_addresses(conn, user: str, limit: int) -> tuple:
    rows = conn.execute(select(events.c.address).where(and_(
        events.c.username == user, events.c.outcome == "success"))
        .order_by(events.c.ts.desc()).limit(limit)).all()
    return tuple(r[0] for r in rows)


def concurrent_seen(conn, user: str) -> bool:
    """Whether a concurrent login was ever recorded for the user (denied or let in)."""
    return conn.execute(select(events.c.id).where(and_(
        events.c.username == user, events.c.reasons.like("%concurrent_login%"))).limit(1)).first() is not None


def users(conn, status: str | None = None):
    """Every account, most severe status first, then by name."""
    order = {name: i for i, name in enumerate(STATUS_ORDER)}
    rows = conn.execute(select(accounts)).all()
    if status is not None:
        rows = [r for r in rows if r.status == status]
    return sorted(rows, key=lambda r: (order.get(r.status, len(order)), r.username))


def users_with_successes(conn):
    rows = conn.execute(select(events.c.username).where(events.c.outcome == "success").distinct())
    return sorted(r[0] for r in rows)


def _ip_condition(cidr: str):
    """(network, WHERE clause) for events whose address may lie in `cidr`.

    Stored addresses are canonical text, which does not sort numerically on either engine, so
    SQL narrows by address family and the exact test runs in Python on the streamed rows.
    """
    net = parse_network(cidr)
    if net is None:
        raise ValueError(f"{cidr!r} is not a CIDR network")
    if net.version == 4:
        return net, events.c.address.not_like("%:%")
    return net, events.c.address.like("%:%")


def history(conn, user=None, outcomes=(), since=None, until=None, cidr=None, service=None,
            limit=None, batch: int = 1000):
    """Events newest first, filtered, streamed in batches so memory stays flat."""
    import ipaddress

    conditions = []
    if user is not None:
        conditions.append(events.c.username == user)
    if outcomes:
        conditions.append(events.c.outcome.in_(list(outcomes)))
    if since is not None:
        conditions.append(events.c.ts >= since)
    if until is not None:
        conditions.append(events.c.ts <= until)
    if service is not None:
        conditions.append(events.c.service == service)
    net = None
    if cidr is not None:
        net, family = _ip_condition(cidr)
        conditions.append(events.c.address.is_not(None))
        conditions.append(family)
    query = select(events).order_by(events.c.ts.desc(), events.c.id.desc())
    if conditions:
        query = query.where(and_(*conditions))
    if net is None and limit is not None:
        query = query.limit(limit)
    result = conn.execution_options(stream_results=True, yield_per=batch).execute(query)
    sent = 0
    for row in result:
        if net is not None and ipaddress.ip_address(row.address) not in net:
            continue
        yield row
        sent += 1
        if limit is not None and sent >= limit:
            result.close()
            return


def prune(conn, now: float, retention_days: int) -> dict:
    """Drop events, ended sessions and sent notices older than the retention period."""
    cutoff = now - retention_days * DAY
    counts = {
        "events": conn.execute(delete(events).where(events.c.ts < cutoff)).rowcount,
        "sessions": conn.execute(delete(sessions).where(and_(
            sessions.c.ended.is_not(None), sessions.c.ended < cutoff))).rowcount,
        "notices": conn.execute(delete(outbox).where(and_(
            outbox.c.sent_at.is_not(None), outbox.c.sent_at < cutoff))).rowcount,
    }
    return counts

