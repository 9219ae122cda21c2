"""FreeRADIUS throughput and latency with and without pam-guard's rlm_python3 module.

One run measures, on a real `freeradius -f` on 127.0.0.1 (tests/support/radius.py):

  1. files + pap only (no python3 module),
  2. files + pap + a python3 module whose authorize/post_auth do nothing (the baseline),
  3. pam-guard's packaged module (authorize + post-auth), SQLite store (the default),
  4. the same with issue 18's rules on (bench/lockout_rules.py: smart lockout, growing
     locks, ignore_repeated_password, address blocks; then radiusd reads the store for
     every request: no copies of accounts),
  5. the same on PostgreSQL (tests/support/postgres.py::start_postgres),

each store holding 10,000 users with realistic history (accounts rows, ~20 past events a user
over 30 days: successes from a few addresses, some failures, all outside the lockout
window). Load: PAP Access-Requests for random users of the population, 2 % with a wrong
password, 64 in flight, sent by a load generator of pre-encoded packets (pyrad encodes them
before the clock starts; sending is plain UDP). Each configuration runs ROUNDS times
(rounds interleaved, median kept); requests/s, p50 and p99 latency are printed with the ratio
of requests/s to the do-nothing module. Lost or timed-out requests are counted and make the
run fail. Settings are pam-guard's defaults (lockout on; other rules off).

Replies leave before pam-guard's recorder has stored their events, so pam-guard's rounds
also give "stored" requests/s: a round then ends once the store holds every request's
event (what the server sustains, not just answers). Every answered request must leave
exactly one event. A request is never sent on a (socket, id) slot whose previous request is
still unanswered (radiusd would drop that one as a "conflicting packet").

It also prints the CPU time each request costs in radiusd, in pam-guard's recorder process
(radius_hook.recorder) and in the load generator (this process, sending only): on a small
machine they share the same cores, so the sum bounds the throughput.

    flock /tmp/pam-guard-bench.lock /opt/pam-guard/bin/python bench/radius_throughput.py

A/B of two versions of the code in one run (rounds interleaved, same window): check the
older one out beside this tree and name it, e.g.

    git worktree add /tmp/pam-guard-a HEAD~3
    ... bench/radius_throughput.py --no-postgres --code-a /tmp/pam-guard-a

which adds "pam-guard, SQLite, A", whose radiusd (and recorder) import pam-guard from that
tree ahead of the installed one. Both use the installed store schema.

Target (issue 4): pam-guard on SQLite >= 50 % of the do-nothing module's requests/s.
"""

from __future__ import annotations

import argparse
import os
import random
import select
import socket
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.lockout_rules import LOCKOUT_RULES  # noqa: E402
from tests.support import radius as radius_support  # noqa: E402
from tests.support.pam import GuardConfig  # noqa: E402

USERS = 10_000
HISTORY = 20  # past events a user
WRONG_SHARE = 0.02
IN_FLIGHT = 64
SOCKETS = 8  # x 256 RADIUS ids: a slot is reused long after its request was answered
TIMEOUT = 3.0  # seconds without an answer: the request counts as lost


def user_name(i: int) -> str:
    return f"bench{i:05d}"


# --- the population ------------------------------------------------------------------------


def history_rows(now: float, rng: random.Random):
    """(accounts rows, events rows) of a realistic population, all outside any window."""
    accounts, events = [], []
    for i in range(USERS):
        name = user_name(i)
        homes = [f"10.{i % 200}.{j}.{rng.randrange(1, 250)}" for j in range(rng.randrange(1, 4))]
        first = now - 30 * 86400
        last = first
        for _ in range(HISTORY):
            ts = rng.uniform(first, now - 3600)
            last = max(last, ts)
            failed = rng.random() < 0.1
            addr = rng.choice(homes)
            events.append(
                (
                    ts,
                    name,
                    "radius",
                    "vpn",
                    addr,
                    addr,
                    "nas=192.0.2.1",
                    None,
                    "failure" if failed else "success",
                    "",
                )
            )
        accounts.append((name, first, last, last, "", False, "protected", "", "", ""))
    return accounts, events


_ACCOUNTS_SQL = (
    "INSERT INTO accounts (username, first_seen, last_activity, reset_at, "
    "lock_reason, exempt, status, status_why, notify_on, notify_to) VALUES "
)
_EVENTS_SQL = (
    "INSERT INTO events (ts, username, channel, service, address, address_raw, "
    "client, secure, outcome, reasons) VALUES "
)


def populate_sqlite(path: str, accounts, events) -> None:
    import sqlite3

    conn = sqlite3.connect(path)
    with conn:
        conn.executemany(_ACCOUNTS_SQL + "(?,?,?,?,?,?,?,?,?,?)", accounts)
        conn.executemany(_EVENTS_SQL + "(?,?,?,?,?,?,?,?,?,?)", events)
    conn.execute("ANALYZE")
    conn.close()


def populate_postgres(url: str, accounts, events) -> None:
    import psycopg2
    from psycopg2.extras import execute_values

    conn = psycopg2.connect(url)
    with conn, conn.cursor() as cur:
        execute_values(cur, _ACCOUNTS_SQL + "%s", accounts, page_size=2000)
        execute_values(cur, _EVENTS_SQL + "%s", events, page_size=2000)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("ANALYZE")
    conn.close()


# --- the load ------------------------------------------------------------------------------


def encode_requests(server, count: int, seed: int) -> list:
    """Access-Request packets (bytes), each on its own (socket, id) slot."""
    rng = random.Random(seed)
    client = server.client()
    packets = []
    for i in range(count):
        packet = client.CreateAuthPacket(id=(i // SOCKETS) % 256)
        packet["User-Name"] = user_name(rng.randrange(USERS))
        password = "wrong" if rng.random() < WRONG_SHARE else server.password
        packet["User-Password"] = packet.PwCrypt(password)
        packet["Calling-Station-Id"] = (
            f"10.{rng.randrange(200)}.{rng.randrange(4)}.{rng.randrange(1, 250)}"
        )
        packet["NAS-IP-Address"] = "192.0.2.1"
        packet["NAS-Port-Type"] = "Virtual"
        packet.add_message_authenticator()
        packets.append(packet.RequestPacket())
    return packets


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    if int(handle.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except (OSError, ValueError, IndexError):
                continue
    return found


def cpu_snapshot(server) -> tuple:
    """(radiusd CPU s, its child processes' CPU s (the recorder), this process's CPU s)."""
    pid = server.proc.pid
    own = os.times()
    return (_cpu_seconds(pid), sum(_cpu_seconds(c) for c in _children(pid)), own.user + own.system)


def drive(port: int, packets: list) -> dict:
    """Send every packet with at most IN_FLIGHT outstanding; latencies and losses."""
    socks = []
    for _ in range(SOCKETS):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.connect(("127.0.0.1", port))
        sock.setblocking(False)
        socks.append(sock)
    by_fd = {s.fileno(): n for n, s in enumerate(socks)}
    poller = select.poll()
    for sock in socks:
        poller.register(sock, select.POLLIN)
    outstanding: dict = {}  # (socket no, id) -> send time
    latencies = []
    codes = {2: 0, 3: 0}
    lost = 0
    sent = 0
    total = len(packets)
    perf = time.perf_counter
    start = perf()
    while sent < total or outstanding:
        while sent < total and len(outstanding) < IN_FLIGHT:
            n = sent % SOCKETS
            slot = (n, (sent // SOCKETS) % 256)
            if slot in outstanding:
                # Its previous request is still unanswered (2,048 sends later): sending now
                # would make radiusd give that one up ("conflicting packet"). Wait for it.
                break
            socks[n].send(packets[sent])
            outstanding[slot] = perf()
            sent += 1
        for fd, _ev in poller.poll(100):
            n = by_fd[fd]
            while True:
                try:
                    data = socks[n].recv(4096)
                except BlockingIOError:
                    break
                sent_at = outstanding.pop((n, data[1]), None)
                if sent_at is not None:
                    latencies.append(perf() - sent_at)
                    codes[data[0]] = codes.get(data[0], 0) + 1
        if outstanding:
            now = perf()
            for key in [k for k, t in outstanding.items() if now - t > TIMEOUT]:
                del outstanding[key]
                lost += 1
    elapsed = perf() - start
    for sock in socks:
        sock.close()
    latencies.sort()
    return {
        "rps": len(latencies) / elapsed,
        "p50": latencies[len(latencies) // 2] * 1000 if latencies else float("nan"),
        "p99": latencies[int(len(latencies) * 0.99)] * 1000 if latencies else float("nan"),
        "lost": lost,
        "accepts": codes.get(2, 0),
        "rejects": codes.get(3, 0),
    }


# --- the run -------------------------------------------------------------------------------


def guard_with_population(
    url: str | None, accounts, events, kind: str, rules: dict | None = None
) -> GuardConfig:
    sections = dict(rules or {})
    if url:
        sections["store"] = {"url": url}
    guard = GuardConfig(sections)
    if kind == "sqlite":
        populate_sqlite(guard.store_path, accounts, events)
    else:
        from store.migrate import create_or_upgrade

        create_or_upgrade(url)
        populate_postgres(url, accounts, events)
    return guard


def count_events(guard, url) -> int:
    if url is None:
        return guard.query("SELECT count(*) FROM events")[0][0]
    import psycopg2

    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM events")
            return cur.fetchone()[0]
    finally:
        conn.close()


def stored_so_far(guard, url) -> int:
    """How many events the store holds, cheaply enough to ask often: on SQLite the highest
    row id (rows are numbered in order and the benchmark deletes none; a count(*) scans an
    index of ~300,000 entries, ~10 ms of CPU taken from the recorder it waits for)."""
    if url is None:
        return guard.query("SELECT coalesce(max(id), 0) FROM events")[0][0]
    return count_events(guard, url)


def wait_stored(guard, url, count: int, timeout: float = 60.0) -> float:
    """Seconds until the store holds `count` events (at most `timeout`)."""
    start = time.perf_counter()
    pause = 0.01 if url is None else 0.05  # PostgreSQL's count scans: not too often
    while stored_so_far(guard, url) < count and time.perf_counter() - start < timeout:
        time.sleep(pause)
    return time.perf_counter() - start


def start_radius(guard_path, module, env, code_from: str | None = None):
    """radiusd for one configuration; with `code_from`, its stable module file puts that
    source tree ahead of the installed pam-guard, and its packaging (module instance,
    policies, site lines) is that tree's when it has policy.d/pam_guard, this tree's
    otherwise (the A side of an A/B run)."""
    original = radius_support.render_loader
    packaging = radius_support.PACKAGING

    def loader(target_dir: str) -> str:
        path = original(target_dir)
        with open(path) as handle:
            text = handle.read()
        text = text.replace(
            "from radius_hook.module import",
            f"_sys.path.insert(0, {code_from!r})\nfrom radius_hook.module import",
            1,
        )
        with open(path, "w") as handle:
            handle.write(text)
        return path

    if code_from:
        radius_support.render_loader = loader
        theirs = os.path.join(code_from, "packaging", "freeradius")
        if os.path.exists(os.path.join(theirs, "policy.d", "pam_guard")):
            radius_support.PACKAGING = theirs  # else (older trees) this tree's wiring
    try:
        return radius_support.start_radius(guard_path, module=module, env=env, threads=16)
    finally:
        radius_support.render_loader = original
        radius_support.PACKAGING = packaging


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument(
        "--code-a",
        metavar="TREE",
        help="also run pam-guard (SQLite) with the code of this source tree",
    )
    args = parser.parse_args()

    rng = random.Random(7)
    now = time.time()
    accounts, events = history_rows(now, rng)
    print(
        f"population: {USERS} users, {len(events)} past events; "
        f"{args.requests} requests a round ({WRONG_SHARE:.0%} wrong passwords), "
        f"{IN_FLIGHT} in flight, {args.rounds} rounds",
        flush=True,
    )

    setups = [
        ("no python module", None, None),
        ("do-nothing python3", "noop", None),
        ("pam-guard, SQLite", "pam_guard", "sqlite"),
        ("pam-guard, lockout rules", "pam_guard", "sqlite"),
    ]
    if args.code_a:
        setups.append(("pam-guard, SQLite, A", "pam_guard", "sqlite"))
    pg = None
    if not args.no_postgres:
        try:
            from tests.support.postgres import start_postgres

            pg = start_postgres()
            setups.append(("pam-guard, PostgreSQL", "pam_guard", "postgresql"))
        except Exception as exc:  # noqa: BLE001 - report and measure the rest
            print(f"PostgreSQL skipped: {exc}")
    servers, guards, urls = {}, {}, {}
    warmed: dict = {}  # events each store must hold once the warm-up is stored
    results: dict = {name: [] for name, _m, _k in setups}
    failed = False
    try:
        for name, module, kind in setups:
            url = pg.create_database() if kind == "postgresql" else None
            guard = None
            if module == "pam_guard":
                rules = LOCKOUT_RULES if name.endswith("lockout rules") else None
                guard = guard_with_population(url, accounts, events, kind, rules)
            servers[name] = start_radius(
                guard.path if guard else None,
                module,
                guard.env if guard else None,
                args.code_a if name.endswith(", A") else None,
            )
            guards[name], urls[name] = guard, url
            held = count_events(guard, url) if guard is not None else 0
            warm = drive(servers[name].auth_port, encode_requests(servers[name], 2000, 99))
            warmed[name] = held + warm["accepts"] + warm["rejects"]
        for name, guard in guards.items():
            # The warm-up's records must be stored before counting: the PostgreSQL recorder
            # can take seconds (a fixed 1 s pause once left some to the first round's count).
            if guard is not None:
                wait_stored(guard, urls[name], warmed[name])
        time.sleep(0.5)
        before = {n: count_events(g, urls[n]) for n, g in guards.items() if g}
        for name, count in before.items():
            if count != warmed[name]:
                failed = True
                print(f"{name}: warm-up MISMATCH: {count - warmed[name]:+d} events")
        expected = {n: stored_so_far(g, urls[n]) for n, g in guards.items() if g}
        packets = {}
        for round_no in range(args.rounds):
            for name, _m, _k in setups:
                server = servers[name]
                key = (name, round_no)
                packets[key] = encode_requests(server, args.requests, 1000 + round_no)
                before_cpu = cpu_snapshot(server)
                result = drive(server.auth_port, packets.pop(key))
                answered = result["accepts"] + result["rejects"]
                if guards.get(name) is not None:
                    # Replies leave before their records are stored (radius_hook.recorder):
                    # the round ends when the store holds them all, and "stored req/s"
                    # counts that time too (what the server sustains, not just answers).
                    expected[name] += answered
                    result["drain"] = wait_stored(guards[name], urls[name], expected[name])
                else:
                    result["drain"] = 0.0
                result["stored_rps"] = answered / (answered / result["rps"] + result["drain"])
                time.sleep(0.3)  # what is left of the recorder's work shows in this round's CPU
                after_cpu = cpu_snapshot(server)
                result["cpu"] = tuple(
                    (b - a) / max(answered, 1) * 1e6
                    for a, b in zip(before_cpu, after_cpu, strict=True)
                )
                results[name].append(result)
        time.sleep(0.5)
        for name, guard in guards.items():
            if guard is None:
                continue
            added = count_events(guard, urls[name]) - before[name]
            answered = sum(r["accepts"] + r["rejects"] for r in results[name])
            print(f"{name}: {added} events recorded for {answered} answered requests")
            if added != answered:
                failed = True
                print("  MISMATCH: every request must leave exactly one event")
    finally:
        for server in servers.values():
            server.stop()
        for guard in guards.values():
            if guard is not None:
                guard.remove()
        if pg is not None:
            pg.stop()

    base = statistics.median(r["rps"] for r in results["do-nothing python3"])
    print()
    print(
        f"{'configuration':<24} {'req/s':>9} {'ratio':>7} {'stored':>8} {'ratio':>7} "
        f"{'p50 ms':>8} {'p99 ms':>8} {'accept':>7} {'reject':>7} {'lost':>5}"
    )
    for name, runs in results.items():
        rps = statistics.median(r["rps"] for r in runs)
        stored = statistics.median(r["stored_rps"] for r in runs)
        p50 = statistics.median(r["p50"] for r in runs)
        p99 = statistics.median(r["p99"] for r in runs)
        lost = sum(r["lost"] for r in runs)
        failed |= lost > 0
        print(
            f"{name:<24} {rps:>9.0f} {rps / base:>7.2f} {stored:>8.0f} {stored / base:>7.2f} "
            f"{p50:>8.2f} {p99:>8.2f} {sum(r['accepts'] for r in runs):>7} "
            f"{sum(r['rejects'] for r in runs):>7} {lost:>5}"
        )
    print(
        "req/s: answered; stored: until the store holds every request's event (the round's "
        "time plus the wait after its last reply)"
    )
    sqlite_runs = results.get("pam-guard, SQLite")
    if sqlite_runs:
        for label, field in (("answered", "rps"), ("stored", "stored_rps")):
            ratio = statistics.median(r[field] for r in sqlite_runs) / base
            print(
                f"target: pam-guard on SQLite >= 0.50 of the do-nothing module ({label}): "
                f"{ratio:.2f} -> {'met' if ratio >= 0.5 else 'MISSED'}"
            )
    print("\nCPU a request, us (median of rounds): radiusd / recorder process / load generator")
    for name, runs in results.items():
        cpu = [statistics.median(r["cpu"][i] for r in runs) for i in range(3)]
        print(f"  {name:<24} {cpu[0]:7.1f} / {cpu[1]:7.1f} / {cpu[2]:7.1f}   sum {sum(cpu):7.1f}")
    print("per round req/s:", {n: [round(r["rps"]) for r in runs] for n, runs in results.items()})
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
