"""`pam-guard prune`: drop history older than store.retention_days."""

from __future__ import annotations

import time

from pam_guard.commands.common import print_json, store_transaction


def register(sub) -> None:
    parser = sub.add_parser(
        "prune",
        help="drop history past store.retention_days",
        description="Drops login events, ended sessions and sent notices older than "
        "store.retention_days, and sources familiar to a user (smart lockout) and "
        "address blocks that ended as long ago; a block until unblocked stays.",
    )
    parser.set_defaults(func=run)


def run(args) -> int:
    from store import admin

    with store_transaction(args) as (settings, conn):
        counts = admin.prune(conn, time.time(), settings.store.retention_days)
    if args.json:
        print_json({"retention_days": settings.store.retention_days, **counts})
    else:
        print(
            f"pruned past {settings.store.retention_days} days: {counts['events']} events, "
            f"{counts['sessions']} ended sessions, {counts['notices']} sent notices, "
            f"{counts['familiar_sources']} familiar sources, "
            f"{counts['address_blocks']} ended address blocks"
        )
    return 0
