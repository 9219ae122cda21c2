"""`pam-guard blocks [--all]`: source addresses refused for every user (address_block), with
when each block began and ends, how often the address was blocked, and whom it tried."""

from __future__ import annotations

import sys
import time

from pam_guard.commands.common import print_json, print_table, store_transaction, time_left, when

UNTIL_UNBLOCKED = "until unblocked"


def register(sub) -> None:
    parser = sub.add_parser(
        "blocks",
        help="source addresses blocked for every user (address_block)",
        description="Lists the source addresses blocked now (an IPv4 address, or an IPv6 "
        "address's /64) after address_block.attempts failures across users: when the "
        "block began, when it ends ('until unblocked' when only pam-guard unblock "
        "lifts it), how many blocks the address had within "
        "lockout.increment_window_days (each makes the next longer), the failures "
        "that set it and the users they tried. Newest first.",
    )
    parser.add_argument(
        "--all",
        action="store_true",
        help="also blocks that ended or were lifted (kept: the next block grows from them)",
    )
    parser.set_defaults(func=run)


def record(row, now: float) -> dict:
    """One block as the --json output shows it."""
    in_force = row.expires is None or row.expires > now
    return {
        "address": row.address,
        "blocked_since": when(row.blocked_at),
        "ends": when(row.expires) if row.expires is not None else UNTIL_UNBLOCKED,
        "left": time_left(row.expires, now) if in_force else None,
        "in_force": in_force,
        "block_count": row.block_count,
        "failures": row.failures,
        "users": [u for u in row.users.split(", ") if u],
    }


def ends_cell(block: dict) -> str:
    """'2026-12-03 12:47:00 (12 minutes left)', 'until unblocked', or '... (ended)'."""
    if block["ends"] == UNTIL_UNBLOCKED:
        return UNTIL_UNBLOCKED
    if not block["in_force"]:
        return f"{block['ends']} (ended)"
    return f"{block['ends']} ({block['left']} left)"


def run(args) -> int:
    from store import admin

    now = time.time()
    with store_transaction(args, write=False) as (settings, conn):
        found = [record(row, now) for row in admin.blocks(conn, now, active_only=not args.all)]
    if not settings.address_block.enabled and any(b["in_force"] for b in found):
        print("pam-guard: note: address_block is off: these blocks refuse nobody", file=sys.stderr)
    if args.json:
        print_json(found)
    elif found:
        print_table(
            ("ADDRESS", "BLOCKED SINCE", "ENDS", "BLOCKS", "FAILURES", "USERS TRIED"),
            [
                (
                    b["address"],
                    b["blocked_since"],
                    ends_cell(b),
                    b["block_count"],
                    b["failures"],
                    ", ".join(b["users"]),
                )
                for b in found
            ],
        )
    else:
        print("no address is blocked" if not args.all else "no address was ever blocked")
    return 0
