"""The admin side of the store, with SQLAlchemy Core: accounts, address lists, reports, pruning.

The login path never imports this module (SQLAlchemy is too heavy there); it shares the
schema of store/schema.py and the meaning of every column with store/statements.py.
"""

from __future__ import annotations

from sqlalchemy import and_, delete, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from policy import account as transition
from policy.addresses import LOCAL, parse_network
from store import statements as sql
from store.schema import (
    accounts,
    address_blocks,
    address_rules,
    audit,
    events,
    familiar_sources,
    outbox,
    sessions,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from typing import Any

    from sqlalchemy.engine import Connection

DAY = 86400.0


def _dialect_insert(conn: Connection) -> Any:
    """The engine's own INSERT construct (both have ON CONFLICT DO NOTHING)."""
    if conn.dialect.name == "postgresql":
        return postgresql_insert
    return sqlite_insert


def ensure_account(conn: Connection, user: str, now: float) -> None:
    """Create the user's account row if it does not exist yet (race-free)."""
    insert = _dialect_insert(conn)
    conn.execute(
        insert(accounts)
        .values(
            username=user,
            first_seen=now,
            reset_at=0,
            lock_reason="",
            exempt=False,
            status_why="",
            notify_on="",
            notify_to="",
        )
        .on_conflict_do_nothing(index_elements=["username"])
    )


def account(conn: Connection, user: str) -> Any:
    return conn.execute(select(accounts).where(accounts.c.username == user)).first()


def user_known(conn: Connection, user: str) -> bool:
    """The user has an account row or any recorded event."""
    if account(conn, user) is not None:
        return True
    return (
        conn.execute(select(events.c.id).where(events.c.username == user).limit(1)).first()
        is not None
    )


def lock(conn: Connection, user: str, now: float, reason: str) -> None:
    """Lock by hand until an admin unlocks (policy.account.locked, with no expiry)."""
    ensure_account(conn, user, now)
    conn.execute(text(sql.SET_LOCK), {"user": user, **transition.locked(now, reason)})


def unlock(conn: Connection, user: str, now: float) -> bool:
    """Clear the lock and start the failure count afresh (policy.account.unlocked: failures
    before `now` no longer count); False when the user has no account."""
    return (
        conn.execute(text(sql.CLEAR_LOCK), {"user": user, **transition.unlocked(now)}).rowcount > 0
    )


def set_exempt(conn: Connection, user: str, now: float, exempt: bool) -> None:
    ensure_account(conn, user, now)
    conn.execute(update(accounts).where(accounts.c.username == user).values(exempt=exempt))


def set_notify(conn: Connection, user: str, now: float, on: str, to: str) -> None:
    ensure_account(conn, user, now)
    conn.execute(
        update(accounts).where(accounts.c.username == user).values(notify_on=on, notify_to=to)
    )


def add_address_rule(conn: Connection, user: str, kind: str, entry: str, now: float) -> bool:
    """Add an allow/deny entry; False when it was already there."""
    ensure_account(conn, user, now)
    insert = _dialect_insert(conn)
    result = conn.execute(
        insert(address_rules)
        .values(username=user, kind=kind, entry=entry)
        .on_conflict_do_nothing(index_elements=["username", "kind", "entry"])
    )
    return result.rowcount > 0


def remove_address_rule(conn: Connection, user: str, entry: str) -> int:
    result = conn.execute(
        delete(address_rules).where(
            and_(address_rules.c.username == user, address_rules.c.entry == entry)
        )
    )
    return result.rowcount


def address_rules_of(conn: Connection, user: str | None = None) -> Sequence[Any]:
    query = select(address_rules.c.username, address_rules.c.kind, address_rules.c.entry)
    if user is not None:
        query = query.where(address_rules.c.username == user)
    return conn.execute(
        query.order_by(address_rules.c.username, address_rules.c.kind, address_rules.c.entry)
    ).all()


def open_sessions(
    conn: Connection, user: str | None, now: float, stale_minutes: int
) -> Sequence[Any]:
    fresh_since = now - stale_minutes * 60.0
    query = select(sessions).where(
        and_(sessions.c.ended.is_(None), sessions.c.last_update > fresh_since)
    )
    if user is not None:
        query = query.where(sessions.c.username == user)
    return conn.execute(query.order_by(sessions.c.username, sessions.c.started)).all()


def count_outcome_since(conn: Connection, user: str, outcome: str, since: float) -> int:
    return int(
        conn.execute(
            select(func.count())
            .select_from(events)
            .where(
                and_(events.c.username == user, events.c.outcome == outcome, events.c.ts > since)
            )
        ).scalar_one()
    )


def last_success_addresses(
    conn: Connection, limit: int, user: str | None = None
) -> dict[str, tuple[str | None, ...]]:
    """{user: addresses of their last `limit` successful logins, newest first}, for one user
    or (user None) every user in one pass over the successes (window function: the same
    per-user query for 10,000 users cost ~7 s)."""
    newest_first = func.row_number().over(
        partition_by=events.c.username, order_by=(events.c.ts.desc(), events.c.id.desc())
    )
    query = select(events.c.username, events.c.address, newest_first.label("n")).where(
        events.c.outcome == "success"
    )
    if user is not None:
        query = query.where(events.c.username == user)
    ranked = query.subquery()
    found: dict[str, list[str | None]] = {}
    for name, address in conn.execute(
        select(ranked.c.username, ranked.c.address)
        .where(ranked.c.n <= limit)
        .order_by(ranked.c.username, ranked.c.n)
    ):
        found.setdefault(name, []).append(address)
    return {name: tuple(addresses) for name, addresses in found.items()}


def concurrent_seen(conn: Connection, user: str | None = None) -> set[str]:
    """Users with a concurrent login ever recorded (denied or let in): `user` or nobody, or
    (user None) all of them, in one query."""
    query = select(events.c.username).where(events.c.reasons.like("%concurrent_login%"))
    if user is not None:
        return set(conn.execute(query.where(events.c.username == user).limit(1)).scalars())
    return set(conn.execute(query.distinct()).scalars())


def account_names(conn: Connection) -> list[str]:
    """Every account's user name, in name order."""
    return list(conn.execute(select(accounts.c.username).order_by(accounts.c.username)).scalars())


def audit_entries(conn: Connection) -> Sequence[Any]:
    """The admin action log, oldest first."""
    return conn.execute(select(audit).order_by(audit.c.seq)).all()


def _text_prefix(net: Any) -> str | None:
    """A text prefix every canonical address of `net` starts with, or None if there is none.

    IPv4: the whole octets the prefix length covers ("10.1." for 10.1.0.0/16). IPv6: the
    leading non-zero hextets it covers; a zero hextet may be written as "::" and ends the
    prefix ("2001:db8:" for 2001:db8::/32). Stored addresses are canonical (lower-case hex,
    IPv4-mapped addresses as IPv4), as policy.addresses.parse_address makes them.
    """
    if net.version == 4:
        octets = str(net.network_address).split(".")[: net.prefixlen // 8]
        return ".".join(octets) + "." if octets else None
    words = net.network_address.exploded.split(":")[: net.prefixlen // 16]
    leading = []
    for word in words:
        if int(word, 16) == 0:
            break
        leading.append(format(int(word, 16), "x"))
    return ":".join(leading) + ":" if leading else None


def _ip_conditions(cidr: str) -> tuple[Any, list[Any]]:
    """(network or None, WHERE clauses) for events whose address lies in `cidr`.

    Canonical address text does not sort numerically, so SQL only narrows the rows (address
    family and a text prefix, both exact necessary conditions, on SQLite and PostgreSQL
    alike) and the exact test runs in Python on the streamed rows. "local" means no address.
    """
    if cidr.strip().lower() == LOCAL:
        return None, [events.c.address.is_(None)]
    net = parse_network(cidr)
    if net is None:
        raise ValueError(f"{cidr!r} is not a CIDR network")
    if net.num_addresses == 1:
        return None, [events.c.address == str(net.network_address)]
    conditions = [events.c.address.is_not(None)]
    prefix = _text_prefix(net)
    if prefix is not None:
        conditions.append(events.c.address.like(prefix + "%"))
    elif net.version == 4:
        conditions.append(events.c.address.not_like("%:%"))
    else:
        conditions.append(events.c.address.like("%:%"))
    return net, conditions


def history(
    conn: Connection,
    user: str | None = None,
    outcomes: Sequence[str] = (),
    since: float | None = None,
    until: float | None = None,
    cidr: str | None = None,
    service: str | None = None,
    limit: int | None = None,
    batch: int = 1000,
) -> Iterator[Any]:
    """Events newest first, filtered, streamed in batches so memory stays flat.

    A server-side cursor on PostgreSQL, the SQLite cursor's own stepping otherwise: only
    `batch` rows are in Python at a time, whatever the size of the history.
    """
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
        net, address_conditions = _ip_conditions(cidr)
        conditions += address_conditions
    query = select(events).order_by(events.c.ts.desc(), events.c.id.desc())
    if conditions:
        query = query.where(and_(*conditions))
    if net is None and limit is not None:
        query = query.limit(limit)
    result = conn.execution_options(stream_results=True, yield_per=batch).execute(query)
    sent = 0
    try:
        for row in result:
            if net is not None and ipaddress.ip_address(row.address) not in net:
                continue
            yield row
            sent += 1
            if limit is not None and sent >= limit:
                return
    finally:
        result.close()


def prune(conn: Connection, now: float, retention_days: int) -> dict[str, int]:
    """Drop events, sessions and sent notices older than the retention period, and the
    familiar sources and ended address blocks as old (a block until unblocked stays).

    A session's age is its last sign of life (last_update: its end, or the last update of
    one whose end never came), so sessions whose Stop was lost do not stay forever.
    """
    cutoff = now - retention_days * DAY
    counts = {
        "events": conn.execute(delete(events).where(events.c.ts < cutoff)).rowcount,
        "sessions": conn.execute(delete(sessions).where(sessions.c.last_update < cutoff)).rowcount,
        "notices": conn.execute(
            delete(outbox).where(and_(outbox.c.sent_at.is_not(None), outbox.c.sent_at < cutoff))
        ).rowcount,
        "familiar_sources": conn.execute(
            delete(familiar_sources).where(familiar_sources.c.last_success < cutoff)
        ).rowcount,
        "address_blocks": conn.execute(
            delete(address_blocks).where(
                and_(address_blocks.c.expires.is_not(None), address_blocks.c.expires < cutoff)
            )
        ).rowcount,
    }
    return counts


def attempt_counts(conn: Connection) -> Sequence[Any]:
    """[(channel, service, outcome, reasons, count)]: every recorded attempt, grouped (for
    `pam-guard metrics`; never by user)."""
    keys = (events.c.channel, events.c.service, events.c.outcome, events.c.reasons)
    return conn.execute(select(*keys, func.count()).group_by(*keys).order_by(*keys)).all()


def locked_count(conn: Connection, now: float) -> int:
    """Accounts whose pam-guard lock is in force at `now`: policy.rules.lock_active, in SQL."""
    return conn.execute(
        select(func.count())
        .select_from(accounts)
        .where(
            and_(
                accounts.c.locked_at.is_not(None),
                or_(accounts.c.lock_expires.is_(None), accounts.c.lock_expires > now),
            )
        )
    ).scalar_one()


def blocks(conn: Connection, now: float, active_only: bool = True) -> Sequence[Any]:
    """Address blocks (address_block), newest first: those in force at `now`, or every
    row with `active_only` False (ended blocks are kept: the next one grows from them)."""
    query = select(address_blocks).where(address_blocks.c.blocked_at.is_not(None))
    if active_only:
        query = query.where(or_(address_blocks.c.expires.is_(None), address_blocks.c.expires > now))
    return conn.execute(query.order_by(address_blocks.c.blocked_at.desc())).all()


def unblock(conn: Connection, cidr: str, now: float) -> list[str]:
    """Lift every block in force whose address lies in `cidr` (an address or a network):
    the address keys lifted. Failures before `now` no longer count toward the next block;
    the block count stays (a block soon after grows, as a lock does)."""
    from policy.addresses import matches
    from policy.sources import block_key

    net = parse_network(cidr)
    if net is None:
        return []
    wanted = str(net)
    lifted = []
    for row in blocks(conn, now):
        key = row.address
        first = key.split("/", 1)[0]
        # an IPv6 /64 key is lifted by any address in it, or a network holding it
        inside = matches(first, (wanted,)) or block_key(wanted.split("/", 1)[0]) == key
        if inside:
            lifted.append(key)
    if lifted:
        conn.execute(
            update(address_blocks)
            .where(address_blocks.c.address.in_(lifted))
            .values(expires=now, cleared_at=now)
        )
    return lifted


def blocked_count(conn: Connection, now: float) -> int:
    """Addresses blocked at `now` (the metrics gauge)."""
    return len(blocks(conn, now))
