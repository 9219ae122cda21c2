"""`pam-guard deliver`: send the queued notices (run every minute by the systemd timer).

Exit 0: every due notice was sent (or none was due); 1: some were refused or given up, or
will be retried; 2: the [notify] settings cannot be used; 3: the store or the mail server
cannot be reached (the notices stay queued).
"""

from __future__ import annotations

import sys

from pam_guard.commands import EXIT_CONFIG, EXIT_OK, EXIT_REFUSED, EXIT_STORE, CommandError
from pam_guard.commands.common import engine_for, print_json, settings_for


def register(sub) -> None:
    parser = sub.add_parser(
        "deliver",
        help="send queued notices",
        description="Sends the notices queued in the store over SMTP ([notify] settings), "
        "retrying failed ones with backoff. Exit 0 all sent, 1 some not sent, "
        "2 config error, 3 store or mail server unreachable.",
    )
    parser.add_argument(
        "--retry-now",
        action="store_true",
        help="try every waiting notice now, ignoring backoff (after the mail server is fixed)",
    )
    parser.add_argument(
        "--batch",
        type=int,
        default=None,
        metavar="N",
        help="notices claimed at a time (default 20)",
    )
    parser.add_argument(
        "--list",
        action="store_true",
        help="send nothing; list the notices not sent yet (waiting or given up)",
    )
    parser.set_defaults(func=run)


def show_unsent(args, engine) -> int:
    import time

    from pam_guard import deliver
    from pam_guard.commands.common import print_table, when

    now = time.time()
    rows = [
        {
            "id": r.id,
            "kind": r.kind,
            "subject": r.subject,
            "to": r.recipients,
            "created": when(r.created),
            "state": deliver.state(r, now),
            "attempts": r.attempts,
            "next_try": when(r.next_try),
            "last_error": r.last_error or "",
        }
        for r in deliver.unsent(engine)
    ]
    if args.json:
        print_json(rows)
    elif rows:
        print_table(
            ("ID", "KIND", "SUBJECT", "TO", "CREATED", "STATE", "TRIES", "NEXT TRY", "LAST ERROR"),
            [tuple(r.values()) for r in rows],
        )
    else:
        print("no notices waiting")
    return EXIT_OK


def run(args) -> int:
    from pam_guard import deliver

    settings = settings_for(args)
    batch = args.batch if args.batch is not None else deliver.BATCH
    if batch < 1:
        raise CommandError("--batch must be at least 1", EXIT_CONFIG)
    engine = engine_for(settings)
    if args.list:
        try:
            return show_unsent(args, engine)
        finally:
            engine.dispose()
    try:
        report = deliver.deliver(engine, settings.notify, retry_now=args.retry_now, batch=batch)
    except deliver.DeliveryConfigError as exc:
        raise CommandError(f"config error: {exc}", EXIT_CONFIG) from None
    finally:
        engine.dispose()
    if args.json:
        print_json(report._asdict())
    else:
        for line in report.errors:
            print(f"pam-guard deliver: {line}", file=sys.stderr)
        print(
            f"sent {report.sent}, failed {report.failed}, gave up {report.gave_up}, "
            f"waiting {report.waiting}"
        )
    if report.unreachable:
        print(f"pam-guard deliver: mail server unreachable: {report.unreachable}", file=sys.stderr)
        return EXIT_STORE
    if report.failed or report.gave_up:
        return EXIT_REFUSED
    return EXIT_OK
