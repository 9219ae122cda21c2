"""`pam-guard metrics [--textfile PATH]`: the store's figures for Prometheus (pam_guard.metrics),
on stdout or into a file for node_exporter's textfile collector (the systemd timer's way)."""

from __future__ import annotations

import time

from pam_guard.commands import EXIT_REFUSED, CommandError
from pam_guard.commands.common import print_json, store_transaction

TEXTFILE = "/var/lib/prometheus/node-exporter/pam-guard.prom"  # Debian's node_exporter reads here


def register(sub) -> None:
    parser = sub.add_parser(
        "metrics",
        help="Prometheus metrics: attempts, locked users, blocked addresses, notices",
        description="Prints, in Prometheus' text exposition format, the attempts recorded by "
        "channel, service, outcome and reason, the users locked now, the "
        "addresses blocked now and the notices queued and given up. No label "
        "holds a user name. pam-guard-metrics.timer writes them every minute to "
        f"{TEXTFILE} for node_exporter's textfile collector.",
    )
    parser.add_argument(
        "--textfile",
        metavar="PATH",
        help=f"write to PATH atomically (mode 0644) instead of stdout, e.g. {TEXTFILE}",
    )
    parser.set_defaults(func=run)


def run(args) -> int:
    from pam_guard import metrics

    with store_transaction(args, write=False) as (_settings, conn):
        families = metrics.collect(conn, time.time())
    if args.json:
        print_json(
            [
                {
                    "name": f.name,
                    "type": f.kind,
                    "help": f.help,
                    "samples": [{"labels": labels, "value": value} for labels, value in f.samples],
                }
                for f in families
            ]
        )
        return 0
    text = metrics.render(families)
    if args.textfile is None:
        print(text, end="")
        return 0
    try:
        metrics.write_textfile(args.textfile, text)
    except OSError as exc:
        raise CommandError(f"cannot write {args.textfile}: {exc.strerror}", EXIT_REFUSED) from None
    return 0
