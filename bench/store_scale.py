"""Does a login decision cost the same on a small and a huge store? (SPEC §10)

Builds one store per size (default: 1,000 and 1,000,000 events; add 10,000,000 with
--sizes), each holding the same recent history for the probed user on top of the bulk
history of 1,000 users (tests/store/fill.py), then times full `Gate.login` decisions with
every rule that can run without a directory enabled (lockout, ip_lock with an address list,
trackstat, concurrent, session limits, access-point limit, inside/outside). Blocks of logins
alternate between the stores so that drift on a shared machine hits every size alike.
Prints the median per login for each size and its ratio to the smallest store.

Run it under the bench lock (two timing runs must never overlap):

    flock /tmp/pam-guard-bench.lock /opt/pam-guard/bin/python bench/store_scale.py
    flock /tmp/pam-guard-bench.lock /opt/pam-guard/bin/python bench/store_scale.py \\
        --sizes 1000,1000000,10000000
    ... --engine postgresql     (a throwaway PostgreSQL 15 from tests/support/postgres.py)
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from policy.settings import build_settings  # noqa: E402
from radius_hook.radius_gate import RadiusGate  # noqa: E402
from store.db import connect  # noqa: E402
from store.migrate import create_or_upgrade  # noqa: E402
from tests.store.fill import fill  # noqa: E402

END = 1_800_000_000.0  # the bulk history ends here; the timed logins come after
USER = "user7"  # one of the bulk users: its old history grows with the store
ADDRESS = "192.0.2.10"

RULES = {
    "lockout": {"enabled": True},
    "ip_lock": {"enabled": True},
    "trackstat": {"enabled": True, "action": "email", "email": "sec@localhost"},
    "concurrent": {"enabled": True, "action": "allow"},
    "status": {
        "session_limits": {"sshd": 5, "vpn": 2},
        "access_point_limit": 4,
        "inside_outside": True,
    },
}


def recent_history(url: str) -> None:
    """The same last hour for USER in every store: logins, failures, sessions, an address list."""
    settings = build_settings(dict(RULES, store={"url": url, "timeout_seconds": 30}), "<bench>")
    now = [END + 60]
    gate = RadiusGate(settings, clock=lambda: now[0])
    try:
        for i in range(20):
            now[0] = END + 60 + i * 60
            address = f"192.0.2.{10 + i % 3}"
            gate.record_failure(gate.attempt(USER, "pam", "sshd", address, address))
            gate.login(gate.attempt(USER, "pam", "sshd", address, address))
        gate.session_start(USER, "radius", "vpn", "bench-acct", nas="10.0.0.1", address=ADDRESS)
        engine_conn = connect(url, timeout=30)
        try:
            engine_conn.begin(write=True)
            for entry in ("192.0.2.0/24", "10.0.0.0/8", "2001:db8::/32"):
                engine_conn.execute(
                    "INSERT INTO address_rules (username, kind, entry) VALUES (:u, 'allow', :e)",
                    {"u": USER, "e": entry},
                )
            engine_conn.commit()
        finally:
            engine_conn.close()
    finally:
        gate.close()


def build_store(url: str, events: int) -> float:
    """Create and fill one store; returns the seconds it took."""
    start = time.monotonic()
    create_or_upgrade(url)
    conn = connect(url, timeout=600)
    try:
        if conn.dialect == "sqlite":
            conn.execute("PRAGMA cache_size=-400000")  # 400 MB while loading: index inserts
        fill(
            conn,
            events=events,
            users=1000,
            sessions=max(100, events // 20),
            end=END,
            progress=lambda done: (
                print(f"    {done:>12,} events", file=sys.stderr, flush=True)
                if done % 2_000_000 == 0
                else None
            ),
        )
    finally:
        conn.close()
    recent_history(url)
    return time.monotonic() - start


class Timer:
    """One gate per store, as a long-lived RADIUS server or a PAM process keeps it."""

    def __init__(self, url: str) -> None:
        self.now = END + 7200
        settings = build_settings(dict(RULES, store={"url": url, "timeout_seconds": 30}), "<bench>")
        self.gate = RadiusGate(settings, clock=lambda: self.now)
        self.samples: list[float] = []

    def run(self, logins: int) -> None:
        gate = self.gate
        for _ in range(logins):
            self.now += 60.0  # a login a minute: the concurrent window holds ~15 of them
            attempt = gate.attempt(USER, "pam", "sshd", ADDRESS, ADDRESS)
            start = time.perf_counter()
            verdict = gate.login(attempt)
            self.samples.append(time.perf_counter() - start)
            if "store_error" in verdict.reasons:
                raise SystemExit(f"store error during the bench: {gate.last_error}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        default="1000,1000000",
        help="comma-separated event counts (default: 1000,1000000)",
    )
    parser.add_argument("--logins", type=int, default=2000, help="timed logins per store")
    parser.add_argument("--block", type=int, default=250, help="logins per alternating block")
    parser.add_argument("--engine", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--dir", default="", help="where the SQLite stores go (default: temp)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    workdir = args.dir or tempfile.mkdtemp(prefix="pam-guard-store-bench-")
    server = None
    if args.engine == "postgresql":
        from tests.support.postgres import start_postgres

        server = start_postgres()
    try:
        urls = {}
        for size in sizes:
            if server is not None:
                url = server.create_database(f"bench_{size}")
            else:
                url = f"sqlite:///{os.path.join(workdir, f'store-{size}.db')}"
            print(
                f"building a store of {size:,} events ({args.engine}) ...",
                file=sys.stderr,
                flush=True,
            )
            took = build_store(url, size)
            print(f"  built in {took:.1f} s", file=sys.stderr, flush=True)
            urls[size] = url
        timers = {size: Timer(url) for size, url in urls.items()}
        for timer in timers.values():  # warm each connection and page cache once, untimed
            timer.run(50)
            timer.samples.clear()
        done = 0
        while done < args.logins:
            block = min(args.block, args.logins - done)
            for timer in timers.values():
                timer.run(block)
            done += block
        for timer in timers.values():
            timer.gate.close()

        base = statistics.median(timers[sizes[0]].samples)
        print(
            f"Gate.login, every rule enabled, {args.engine}, {args.logins} logins per store "
            f"in alternating blocks of {args.block}:"
        )
        print(f"{'events in store':>16} {'median µs':>10} {'p90 µs':>9} {'ratio':>6}")
        for size, timer in timers.items():
            median = statistics.median(timer.samples)
            p90 = statistics.quantiles(timer.samples, n=10)[-1]
            print(f"{size:>16,} {median * 1e6:>10.0f} {p90 * 1e6:>9.0f} {median / base:>6.2f}")
    finally:
        if server is not None:
            server.stop()
        if not args.dir:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
