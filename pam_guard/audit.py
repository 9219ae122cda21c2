"""The admin action log: append-only, each entry's MAC chained to the one before (SPEC §7).

mac_n = HMAC-SHA256(key, mac_{n-1} || canonical(seq, ts, actor, action, target, detail)),
with mac_0 = 64 zeros. Editing, reordering or deleting an entry in the middle breaks the
chain from there on, and `verify` names the first bad entry.

Deleting entries from the end leaves a shorter chain that is valid by itself. To catch that,
every entry this host writes is also noted (seq and MAC, one a line) in a ledger beside the
key, `audit.chain`: `verify` checks that each noted entry is still in the table with the same
MAC. Other hosts sharing a PostgreSQL store add entries this host did not note; those are
checked by the chain alone. What stays undetectable: someone who can read the key (root on
this host) can rewrite the whole chain and the ledger; and entries appended by another host
and then deleted from the end are noticed only by that host's own `verify`.
"""

from __future__ import annotations

import getpass
import json
import os
import time

from cryptography.hazmat.primitives import hashes, hmac
from sqlalchemy import func, insert, select

from pam_guard.commands import EXIT_CONFIG, CommandError
from store.schema import audit

GENESIS = "0" * 64
_PG_AUDIT_LOCK = 74657  # advisory lock id: serialises audit writers on a shared PostgreSQL


def key_path(config_file: str) -> str:
    """The key lives beside the config: /etc/pam-guard/audit.key in production."""
    return os.path.join(os.path.dirname(os.path.abspath(config_file)), "audit.key")


def ledger_path(config_file: str) -> str:
    """This host's note of every entry it wrote (seq and MAC), beside the key."""
    return os.path.join(os.path.dirname(os.path.abspath(config_file)), "audit.chain")


def load_key(config_file: str) -> bytes:
    """The HMAC key; exit 2 when it is missing, not hex, too short, or others could read it."""
    path = key_path(config_file)
    try:
        st = os.stat(path)
        with open(path, encoding="ascii") as handle:
            text = handle.read().strip()
    except (OSError, UnicodeDecodeError) as exc:
        why = getattr(exc, "strerror", None) or "not text"
        raise CommandError(
            f"audit key {path}: {why} (packaging/install.sh makes it: "
            "32 random bytes as hex, mode 0600)",
            EXIT_CONFIG,
        ) from None
    if st.st_uid not in (0, os.geteuid()):
        raise CommandError(
            f"audit key {path} is owned by uid {st.st_uid}: it must be owned by root", EXIT_CONFIG
        )
    if st.st_mode & 0o077:
        raise CommandError(
            f"audit key {path} is mode {st.st_mode & 0o777:04o}: it must be "
            f"0600 (chmod 600 {path})",
            EXIT_CONFIG,
        )
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise CommandError(f"audit key {path} is not hex text", EXIT_CONFIG) from None
    if len(key) < 16:
        raise CommandError(f"audit key {path} is shorter than 16 bytes", EXIT_CONFIG)
    return key


def actor() -> str:
    """Who is acting: the sudo caller, else the login name, else the effective user."""
    sudo = os.environ.get("SUDO_USER")
    if sudo:
        return sudo
    try:
        return os.getlogin()
    except OSError:  # no controlling terminal (cron, systemd, tests)
        return getpass.getuser()


def _canonical(seq, ts, who, action, target, detail) -> bytes:
    # JSON of a list: unambiguous field boundaries; repr keeps the float exact.
    return json.dumps(
        [int(seq), repr(float(ts)), who, action, target, detail],
        ensure_ascii=True,
        separators=(",", ":"),
    ).encode()


def entry_mac(key: bytes, previous: str, seq, ts, who, action, target, detail) -> str:
    """The MAC of one entry, chained to the previous entry's MAC."""
    mac = hmac.HMAC(key, hashes.SHA256())
    mac.update(previous.encode("ascii"))
    mac.update(_canonical(seq, ts, who, action, target, detail))
    return mac.finalize().hex()


def append(conn, config_file: str, action: str, target: str, detail: str = "") -> tuple[int, str]:
    """Add one entry inside the caller's transaction; returns (seq, mac).

    The caller's transaction must hold the store's write lock (SQLite: BEGIN IMMEDIATE, as
    commands.common.store_transaction does); on PostgreSQL an advisory lock taken here makes
    concurrent admins wait, so no two entries get the same seq. Call `remember(seq, mac)`
    once the transaction has committed.
    """
    key = load_key(config_file)
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_AUDIT_LOCK})")
    last = conn.execute(
        select(audit.c.seq, audit.c.mac).order_by(audit.c.seq.desc()).limit(1)
    ).first()
    seq = 1 if last is None else last.seq + 1
    previous = GENESIS if last is None else last.mac
    ts = time.time()
    who = actor()
    mac = entry_mac(key, previous, seq, ts, who, action, target, detail)
    conn.execute(
        insert(audit).values(
            seq=seq, ts=ts, actor=who, action=action, target=target, detail=detail, mac=mac
        )
    )
    return seq, mac


def remember(config_file: str, seq: int, mac: str) -> None:
    """Note a committed entry in this host's ledger (one short line, appended atomically)."""
    fd = os.open(ledger_path(config_file), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, f"{seq} {mac}\n".encode("ascii"))
    finally:
        os.close(fd)


def _read_ledger(config_file: str) -> tuple[dict, list[str]]:
    """({seq: mac} noted by this host, problems with the ledger itself)."""
    noted: dict[int, str] = {}
    problems: list[str] = []
    try:
        with open(ledger_path(config_file), encoding="ascii", errors="replace") as handle:
            for number, line in enumerate(handle, 1):
                parts = line.split()
                if len(parts) != 2 or not parts[0].isdigit():
                    problems.append(f"{ledger_path(config_file)} line {number} is damaged")
                    continue
                seq, mac = int(parts[0]), parts[1]
                if noted.get(seq, mac) != mac:
                    problems.append(
                        f"entry {seq} was written twice with different contents: "
                        "entries were deleted and the log continued"
                    )
                noted[seq] = mac
    except FileNotFoundError:
        pass
    return noted, problems


def verify(conn, config_file: str) -> list[str]:
    """Problems found in the log, the first bad entry first; empty when intact."""
    key = load_key(config_file)
    noted, ledger_problems = _read_ledger(config_file)
    previous = GENESIS
    expected = 1
    rows = conn.execution_options(stream_results=True, yield_per=500).execute(
        select(audit).order_by(audit.c.seq)
    )
    for row in rows:
        if row.seq != expected:
            return [
                f"entry {expected} is missing (the next one is {row.seq}): entries were "
                "deleted or renumbered"
            ]
        mac = entry_mac(
            key, previous, row.seq, row.ts, row.actor, row.action, row.target, row.detail
        )
        if mac != row.mac:
            return [
                f"entry {row.seq} ({row.action} {row.target}) does not match its MAC: it "
                "was edited, or entries were reordered"
            ]
        if row.seq in noted and noted[row.seq] != row.mac:
            return [
                f"entry {row.seq} differs from the one this host wrote: the log was "
                "rewritten from there on"
            ]
        previous = row.mac
        expected += 1
    last = expected - 1
    beyond = sorted(seq for seq in noted if seq > last)
    if beyond:
        return [
            f"the log ends at entry {last} but this host wrote entries up to {beyond[-1]}: "
            f"entries {last + 1}..{beyond[-1]} were deleted from the end"
        ]
    return ledger_problems


def count(conn) -> int:
    """How many entries the log holds."""
    return conn.execute(select(func.count()).select_from(audit)).scalar_one()
