"""What the store holds, in Prometheus' text exposition format (`pam-guard metrics`, SPEC §7).

Metrics (no label ever holds a user name: a user's name goes to the store and the logs only):

    pam_guard_attempts_total{channel,service,outcome,reason}  counter
        login attempts recorded in the store; `reason` is the event's reason codes,
        comma-separated in the order the rules are checked ("" for a success)
    pam_guard_locked_users                                     gauge
    pam_guard_blocked_addresses                                gauge
        source addresses blocked for every user now (address_block; `pam-guard blocks`)
    pam_guard_notices_queued{kind}                             gauge
    pam_guard_notices_failed{kind}                             gauge

The attempt counts are those of the events the store keeps: `pam-guard prune` drops events
older than store.retention_days, which Prometheus reads as a counter reset.

`write_textfile` replaces a file atomically for node_exporter's textfile collector, which
may read it at any moment: it must never see half a file.
"""

from __future__ import annotations

import os
import tempfile
from collections import namedtuple

Family = namedtuple("Family", "name kind help samples")
Family.__doc__ = (
    "One metric: its name, type (counter or gauge), help text and samples, "
    "each a (labels dict, value) pair."
)

PREFIX = "pam_guard_"


def collect(conn, now: float) -> list[Family]:
    """Every metric, read from the store in the transaction of `conn`."""
    from pam_guard.deliver import MAX_ATTEMPTS, unsent_by_kind
    from pam_guard.notices import KINDS
    from store import admin

    attempts = [
        ({"channel": channel, "service": service, "outcome": outcome, "reason": reasons}, count)
        for channel, service, outcome, reasons, count in admin.attempt_counts(conn)
    ]
    queued = dict.fromkeys(KINDS, 0)
    failed = dict.fromkeys(KINDS, 0)
    for kind, given_up, count in unsent_by_kind(conn):
        target = failed if given_up else queued
        target[kind] = target.get(kind, 0) + count
    return [
        Family(
            PREFIX + "attempts_total",
            "counter",
            "Login attempts recorded in the store, by channel, service, outcome and reason "
            "codes (pam-guard prune drops those past store.retention_days).",
            attempts,
        ),
        Family(
            PREFIX + "locked_users",
            "gauge",
            "Users whose pam-guard lock is in force.",
            [({}, admin.locked_count(conn, now))],
        ),
        Family(
            PREFIX + "blocked_addresses",
            "gauge",
            "Source addresses refused for every user (address_block).",
            [({}, blocked_addresses(conn, now))],
        ),
        Family(
            PREFIX + "notices_queued",
            "gauge",
            "Notices waiting to be sent by pam-guard deliver, by kind.",
            [({"kind": k}, n) for k, n in sorted(queued.items())],
        ),
        Family(
            PREFIX + "notices_failed",
            "gauge",
            f"Notices given up after {MAX_ATTEMPTS} failed tries, by kind.",
            [({"kind": k}, n) for k, n in sorted(failed.items())],
        ),
    ]


def blocked_addresses(conn, now: float) -> int:
    """Source addresses (an IPv4 address, an IPv6 /64) whose address block is in force at
    `now`: the rows `pam-guard blocks` lists, counted whether or not address_block is on."""
    from store import admin

    return admin.blocked_count(conn, now)


def render(families: list[Family]) -> str:
    """The families in the text exposition format, version 0.0.4."""
    lines = []
    for family in families:
        lines.append(f"# HELP {family.name} {_escape(family.help, quotes=False)}")
        lines.append(f"# TYPE {family.name} {family.kind}")
        for labels, value in family.samples:
            shown = ",".join(f'{key}="{_escape(str(val))}"' for key, val in sorted(labels.items()))
            lines.append(f"{family.name}{{{shown}}} {value}" if shown else f"{family.name} {value}")
    return "\n".join(lines) + "\n"


def _escape(text: str, quotes: bool = True) -> str:
    """Backslash, newline (and in label values double quote) escaped, as the format says."""
    text = text.replace("\\", "\\\\").replace("\n", "\\n")
    return text.replace('"', '\\"') if quotes else text


def write_textfile(path: str, text: str) -> None:
    """Replace `path` with `text` atomically (a temp file in its directory, then rename), mode
    0644: node_exporter's collector reads *.prom files, never the hidden temp file."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
