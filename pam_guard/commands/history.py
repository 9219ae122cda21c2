"""`pam-guard history`: the login history report, searchable and downloadable (table, CSV, JSON).

Rows stream from the store newest first and are written as they come, so a year of history
never sits in memory, whatever the format.
"""

from __future__ import annotations

import csv
import json
import sys

from pam_guard.commands import EXIT_CONFIG, CommandError
from pam_guard.commands.common import TIME_HELP, check_user, parse_time, store_transaction, when
from policy.addresses import LOCAL, parse_network

FIELDS = (
    "time",
    "ts",
    "user",
    "outcome",
    "reasons",
    "channel",
    "service",
    "address",
    "address_raw",
    "client",
    "secure",
    "ruser",
)
# A spreadsheet runs a cell that starts with one of these as a formula; user names and
# client details come from whoever tried to log in, so such cells get a leading quote.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def register(sub) -> None:
    parser = sub.add_parser(
        "history",
        help="login history, newest first",
        description="The login history, newest first, streamed (any size of history). "
        "Outcome flags combine (--failed --denied: both). BY is who asked for the login "
        "(PAM_RUSER: the user who ran su or sudo). CSV cells that a "
        "spreadsheet would run as a formula get a leading apostrophe.",
    )
    parser.add_argument("user", nargs="?", help="only this user's logins")
    parser.add_argument("--failed", action="store_true", help="failed logins")
    parser.add_argument("--success", action="store_true", help="successful logins")
    parser.add_argument("--denied", action="store_true", help="logins refused by a rule")
    parser.add_argument("--since", metavar="TIME", help=f"from TIME on: {TIME_HELP}")
    parser.add_argument("--until", metavar="TIME", help=f"up to TIME: {TIME_HELP}")
    parser.add_argument(
        "--ip",
        metavar="CIDR",
        help="source addresses within CIDR (IPv4 or IPv6; an address; or "
        "'local' for logins with no address)",
    )
    parser.add_argument("--service", metavar="S", help="PAM service or RADIUS session type")
    parser.add_argument(
        "--format",
        choices=("table", "csv", "json"),
        default=None,
        help="output format (default table, or json with --json)",
    )
    parser.add_argument("--limit", type=int, default=None, metavar="N", help="at most N logins")
    parser.set_defaults(func=run)


def _record(row) -> dict:
    return {
        "time": when(row.ts),
        "ts": row.ts,
        "user": row.username,
        "outcome": row.outcome,
        "reasons": row.reasons,
        "channel": row.channel,
        "service": row.service,
        "address": row.address,
        "address_raw": row.address_raw,
        "client": row.client,
        "secure": None if row.secure is None else bool(row.secure),
        "ruser": row.ruser,
    }


def run(args) -> int:
    from store import admin

    user = check_user(args.user) if args.user else None
    outcomes = [
        o
        for o, on in (("failure", args.failed), ("success", args.success), ("denied", args.denied))
        if on
    ]
    if args.ip is not None and args.ip.strip().lower() != LOCAL and parse_network(args.ip) is None:
        raise CommandError(
            f"--ip {args.ip!r} is not a CIDR network (like 10.0.0.0/8 or "
            "2001:db8::/32), an address, or 'local'",
            EXIT_CONFIG,
        )
    if args.limit is not None and args.limit < 1:
        raise CommandError("--limit must be at least 1", EXIT_CONFIG)
    since = parse_time(args.since) if args.since else None
    until = parse_time(args.until) if args.until else None
    if since is not None and until is not None and since > until:
        raise CommandError("--since is later than --until", EXIT_CONFIG)
    fmt = args.format or ("json" if args.json else "table")
    with store_transaction(args, write=False) as (_settings, conn):
        rows = admin.history(conn, user, outcomes, since, until, args.ip, args.service, args.limit)
        count = _WRITERS[fmt](_record(r) for r in rows)
    if fmt == "table" and count == 0:
        print("no matching logins")
    return 0


def _csv_cell(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _write_csv(records) -> int:
    writer = csv.writer(sys.stdout, lineterminator="\r\n")  # RFC 4180 line ends
    writer.writerow(FIELDS)
    count = 0
    for record in records:
        writer.writerow([_csv_cell(record[f]) for f in FIELDS])
        count += 1
    return count


def _write_json(records) -> int:
    # A JSON array written item by item: valid JSON without holding every row.
    count = 0
    sys.stdout.write("[")
    for record in records:
        sys.stdout.write(",\n" if count else "\n")
        sys.stdout.write(json.dumps(record, sort_keys=True))
        count += 1
    sys.stdout.write("\n]\n" if count else "]\n")
    return count


def _write_table(records) -> int:
    layout = "{:<19}  {:<16}  {:<8}  {:<14}  {:<12}  {:<39}  {}"
    count = 0
    for record in records:
        if count == 0:
            print(layout.format("TIME", "USER", "OUTCOME", "SERVICE", "BY", "ADDRESS", "REASONS"))
        print(
            layout.format(
                record["time"],
                record["user"],
                record["outcome"],
                record["service"] or "-",
                record["ruser"] or "-",
                record["address"] or record["address_raw"] or "local",
                record["reasons"] or "-",
            )
        )
        count += 1
    return count


_WRITERS = {"csv": _write_csv, "json": _write_json, "table": _write_table}
