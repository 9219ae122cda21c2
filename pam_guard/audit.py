"""The admin action log: append-only, each entry's MAC chained to the one before (SPEC §7).

mac_n = HMAC-SHA256(key, mac_{n-1} || canonical entry n), with mac_0 = 64 zeros. Editing,
reordering or deleting an entry breaks every MAC from there on, and `verify` names the first
bad one. Deleting entries from the end leaves a valid shorter chain; to catch that, the newest
sequence number and MAC are also kept in a head file beside the key (`audit.head`), which
`verify` compares with the table.
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


def key_path(config_file: str) -> str:
    """The key lives beside the config: /etc/pam-guard/audit.key in production."""
    return os.path.join(os.path.dirname(os.path.abspath(config_file)), "audit.key")


def head_path(config_file: str) -> str:
    return os.path.join(os.path.dirname(os.path.abspath(config_file)), "audit.head")


def load_key(config_file: str) -> bytes:
    path = key_path(config_file)
    try:
        st = os.stat(path)
        with open(path, encoding="ascii") as handle:
            text = handle.read().strip()
    except OSError as exc:
        raise CommandError(f"audit key {path}: {exc.strerror} (run packaging/install.sh)",
                           EXIT_CONFIG) from None
    if st.st_uid not in (0, os.geteuid()) or st.st_mode & 0o077:
        raise CommandError(f"audit key {path} must be owned by root and mode 0600 "
                           f"(it is {st.st_mode & 0o777:04o})", EXIT_CONFIG)
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise CommandError(f"audit key {path} is not hex text", EXIT_CONFIG) from None
    if len(key) < 16:
        raise CommandError(f"audit key {path} is shorter than 16 bytes", EXIT_CONFIG)
    return key


def actor() -> str:
    return os.environ.get("SUDO_USER") or getpass.getuser()


def _canonical(seq, ts, who, action, target, detail) -> bytes:
    return json.dumps([seq, repr(float(ts)), who, action, target, detail],
                      ensure_ascii=True, separators=(",", ":")).encode()


def entry_mac(key: bytes, previous: str, seq, ts, who, action, target, detail) -> str:
    mac = hmac.HMAC(key, hashes.SHA256())
    mac.update(previous.encode("ascii"))
    mac.update(_canonical(seq, ts, who, action, target, detail))
    return mac.finalize().hex()


def append(conn, config_file: str, action: str, target: str, detail: str = "") -> int:
    """Add one entry inside the caller's transaction; returns its sequence number.

    The caller's transaction must hold the write lock (SQLite BEGIN IMMEDIATE, or the
    PostgreSQL advisory lock taken here) so two admins never take the same seq.
    """
    key = load_key(config_file)
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SELECT pg_advisory_xact_lock(74657)")  # serialises audit writers
    last = conn.execute(select(audit.c.seq, audit.c.mac).order_by(audit.c.seq.desc()).limit(1)).first()
    seq = 1 if last is None else last.seq + 1
    previous = GENESIS if last is None else last.mac
    ts = time.time()
    who = actor()
    mac = entry_mac(key, previous, seq, ts, who, action, target, detail)
    conn.execute(insert(audit).values(seq=seq, ts=ts, actor=who, action=action, target=target,
                                      detail=detail, mac=mac))
    _write_head(config_file, seq, mac)
    return seq


def _write_head(config_file: str, seq: int, mac: str) -> None:
    path = head_path(config_file)
    tmp = f"{path}.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(f"{seq} {mac}\n")
    os.replace(tmp, path)


def _read_head(config_file: str):
    try:
        with open(head_path(config_file)) as handle:
            seq, mac = handle.read().split()
        return int(seq), mac
    except (OSError, ValueError):
        return None


def verify(conn, config_file: str) -> list[str]:
    """Problems found in the chain, first one first; empty when intact.

    The head file names the newest entry this host wrote: that entry must still be in the
    table with the same MAC (other hosts sharing a PostgreSQL store may have added more).
    """
    key = load_key(config_file)
    head = _read_head(config_file)
    previous = GENESIS
    expected_seq = 1
    head_seen = head is None
    for row in conn.execute(select(audit).order_by(audit.c.seq)):
        if row.seq != expected_seq:
            return [f"entry {expected_seq} is missing (next is {row.seq})"]
        mac = entry_mac(key, previous, row.seq, row.ts, row.actor, row.action, row.target, row.detail)
        if mac != row.mac:
            return [f"entry {row.seq} ({row.action} {row.target}) was altered or moved"]
        if head is not None and row.seq == head[0]:
            if row.mac != head[1]:
                return [f"entry {row.seq} differs from the one this host wrote"]
            head_seen = True
        previous = row.mac
        expected_seq += 1
    if not head_seen:
        return [f"the log ends at entry {expected_seq - 1} but entry {head[0]} was written: "
                "entries were deleted from the end"]
    return []


def count(conn) -> int:
    return conn.execute(select(func.count()).select_from(audit)).scalar_one()
