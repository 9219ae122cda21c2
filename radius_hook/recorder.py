"""The recorder: a helper process that stores the RADIUS module's logins and failed passwords.

    python3 -m radius_hook.recorder CONFIG_PATH

radiusd runs every rlm_python3 call under one GIL, one call at a time, on an embedded
interpreter where our code runs several times slower than in a plain loop. Working
out and storing a success (its address, its status, two rows) in radiusd's process
therefore cost more than a whole request of a do-nothing module, even from a thread. So
post_auth only hands each outcome to this process (radius_hook.handoff), which records it
with the gate's exact paths (RadiusGate.record_outcomes: a batch of successes and failed
passwords, which may lock and alert, in one commit; RadiusGate.record: a refusal) on its own
interpreter and CPU, in the order they came.

Protocol (pipes, frames of radius_hook.frames):
- stdin:  (seq, kind, user, time, fact key, reasons), kind SUCCESS, FAILURE or DENIED (a
          refusal before authentication, with its reasons: RadiusGate.record), in order (fact
          key: request.fact_key);
- stdout: ("ok", seq) once everything up to seq is committed (or dropped as invalid),
          ("lost", seq, text) when what is left up to seq could not be stored,
          ("log", text) for radiusd's log (errors), ("auth", text) (a lock).
End of stdin: record what is left, then exit. If radiusd dies, what it wrote is still in
the pipe: it is recorded (nobody left to confirm to), then the recorder exits.

Commits of successes do not bump the store's change counters (store.changes): no copy kept
by a RADIUS module can become wrong by a success (tests/unit/test_quiet_copies.py), and a
bump would make every copy of a busy user stale at once. Failures bump them like any write.
"""

from __future__ import annotations

import os
import select
import sys
import time

from pam_guard.logline import announce
from policy.types import FAILURE, LOCKED, STORE_ERROR, SUCCESS
from radius_hook.frames import FrameReader, frame
from radius_hook.surprises import Surprises

RETRIES = 3  # attempts at committing a batch while the store is unreachable
RETRY_PAUSE = 0.2  # seconds between them
MAX_BATCH = 2048  # successes committed in one transaction at most
# Seconds a batch waits for company once its first record came: fewer, larger commits (a
# success costs less CPU in a large batch) and fewer wake-ups, for at most this much more
# wait in a `settle`...
LINGER = 0.005
# ...and when radiusd keeps copies of accounts (radius_hook.hot), where no request waits
# for the recorder (outcomes not yet stored are projected: RadiusGate.projected_state), longer:
# larger batches, less CPU a record (docs/PERF.md, radius_hook). A crash of the machine can
# lose this much more of what was handed over (the reply never depended on it).
LINGER_KEPT = 0.05
# SQLite WAL checkpoints (copy the WAL into the database file, fsync: long enough to stall
# a commit) run in the recorder's Checkpointer thread, every CHECKPOINT_RECORDS records:
# never inside a commit someone waits for (a `settle` in radiusd). The recording connection
# does no automatic checkpoint; radiusd's request connection keeps a high backstop
# (module.REQUEST_CHECKPOINT_PAGES). A checkpoint copies each page changed since the last
# one once, and successes land on pages of the user index all over it: over 10,000 records
# most of its pages recur, over 2,000 few do (docs/PERF.md, radius_hook). The WAL then
# grows to ~10,000 pages (~40 MB) between checkpoints.
CHECKPOINT_RECORDS = 10000
CACHE_KIB = 65536  # SQLite page cache of this connection: index pages of busy users stay in


# memory (2,000 pages by default; docs/PERF.md, radius_hook)
class Recording:
    """The recorder's gate and its kept copies of accounts."""

    def __init__(self, config_path: str, log=None) -> None:
        """`log(text)`: a line for radiusd's log (an unexpected exception, `surprises`)."""
        from pam_guard.config import load_settings
        from radius_hook import hot
        from radius_hook.radius_gate import RadiusGate

        self.surprises = Surprises(log)  # bugs caught where the recorder goes on
        self.settings = load_settings(config_path)
        # Its commits bump the change counters of the users with a failure or refusal only
        # (RadiusGate.record_outcomes): see the top.
        self.gate = RadiusGate(self.settings, connector=_connector)
        # Copies of accounts (as radiusd keeps them, radius_hook.hot): a success of a user
        # with a current copy is recorded without reading the account (a fifth of a
        # success's cost: docs/PERF.md). This process keeps them current with its own successes (which
        # bump no counter); anyone else's write bumps them stale, as in radiusd.
        self.copies = hot.for_settings(self.settings, surprises=self.surprises)
        if self.copies is not None:
            hot.preload(self.copies, self.gate)
        # SQLite: successes and failures of a batch share one transaction (one commit).
        # PostgreSQL: a failure keeps its own, as in radiusd: one transaction holding the
        # row and address locks of many users could deadlock with a PAM login's.
        self.failures_in_batch = self.settings.store.url.startswith("sqlite")

    def record(self, records, send) -> None:
        """Store `records` (frames' payloads), each user's in the order they came; then
        confirm them all, or report what could not be stored, through `send`.

        The successes of users with nothing else in the batch come first; the others'
        records follow in order, in runs of one kind. Only each user's own order matters to
        what is stored (a success resets that user's failure count; nothing crosses users
        but the spraying alert, which counts failures alone), and it is kept:
        RadiusGate.projected_state counts on it. Runs of successes and failures go in one
        transaction (RadiusGate.record_outcomes) up to a refusal, which is stored on its own
        (RadiusGate.record: it may ask the directory, never while holding the write lock)."""
        if self.copies is not None and not self.copies.same_files():
            from radius_hook import hot

            # store replaced: start afresh
            self.copies = hot.for_settings(self.settings, surprises=self.surprises)
        mixed = {user for _seq, kind, user, _at, _key, _reasons in records if kind != SUCCESS}
        alone = [r for r in records if r[2] not in mixed]
        runs = ([(SUCCESS, alone)] if alone else []) + _runs([r for r in records if r[2] in mixed])
        problems = [
            problem
            for together, group in self._groups(runs)
            if (problem := self._record_group(together, group, send)) is not None
        ]
        last = records[-1][0]
        send(("lost", last, "; ".join(problems)) if problems else ("ok", last))

    def _groups(self, runs) -> list:
        """[(together, [(kind, records)])]: consecutive runs stored in one transaction
        (together), or a run whose records are stored one by one."""
        groups: list = []
        for kind, run in runs:
            together = kind == SUCCESS or (kind == FAILURE and self.failures_in_batch)
            if together and groups and groups[-1][0]:
                groups[-1][1].append((kind, run))
            else:
                groups.append((together, [(kind, run)]))
        return groups

    def _record_group(self, together: bool, runs, send):
        """Store one group (`_groups`); None, or what was lost and why."""
        from radius_hook.request import attempt_from
        from store.db import StoreError

        gate = self.gate
        prepared = [
            (
                kind,
                [attempt_from(gate, user, at, key) for _seq, _k, user, at, key, _r in run],
                [r[5] for r in run],
            )
            for kind, run in runs
        ]
        count = sum(len(attempts) for _kind, attempts, _reasons in prepared)
        for attempt_no in range(RETRIES):
            try:
                if together:
                    self._together([(kind, attempts) for kind, attempts, _r in prepared], send)
                else:
                    for kind, attempts, reasons in prepared:
                        self._one_by_one(kind, attempts, reasons, send)
                return None
            except StoreError as exc:
                gate.close()
                if attempt_no == RETRIES - 1:
                    return f"{count} records lost: store: {exc}"
                time.sleep(RETRY_PAUSE)
            except Exception as exc:  # noqa: BLE001 - the recorder must outlive any one batch
                self.surprises.note("recording a batch", exc, f"{count} records lost")
                return f"{count} records lost: {type(exc).__name__}: {exc}"
        return None

    def _together(self, runs, send) -> None:
        """Runs of successes and failures in one transaction; a lock is told to radiusd."""
        try:
            verdicts = self.gate.record_outcomes(runs, self.copies)
        except BaseException:
            if self.copies is not None:
                self.copies.clear()  # they may hold what was rolled back
            raise
        for (kind, run), run_verdicts in zip(runs, verdicts, strict=True):
            if kind == SUCCESS:
                continue
            for attempt, verdict in zip(run, run_verdicts, strict=True):
                if verdict.lock is not None:
                    send(("auth", announce("lock", attempt, LOCKED, detail=verdict.lock[0])))

    def _one_by_one(self, kind, attempts: list, reasons: list, send) -> None:
        """Failures (which may lock) or refusals (with their reasons), each through the
        gate's own path (RadiusGate.record), taken off `attempts` once stored (a retry after a
        store error goes on where this stopped: none counted twice)."""
        from store.db import StoreError

        while attempts:
            verdict = self.gate.record(kind, attempts[0], reasons[0])
            if STORE_ERROR in verdict.reasons:
                raise StoreError(self.gate.last_error)
            attempt = attempts.pop(0)
            reasons.pop(0)
            if verdict.lock is not None:
                send(("auth", announce("lock", attempt, LOCKED, detail=verdict.lock[0])))

    def close(self) -> None:
        self.gate.close()


def _connector(url, timeout):
    """store.db.connect, tuned for the recorder's SQLite connection (see the top)."""
    from store.db import connect

    conn = connect(url, timeout)
    if conn.dialect == "sqlite":
        conn.raw.execute("PRAGMA wal_autocheckpoint=0")
        conn.raw.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
    return conn


def _runs(records):
    """The records as runs of one kind, in order: [(kind, [records])]."""
    runs: list = []
    for record in records:
        if runs and runs[-1][0] == record[1]:
            runs[-1][1].append(record)
        else:
            runs.append((record[1], [record]))
    return runs


class Checkpointer:
    """Passive WAL checkpoints (SQLite) on a thread with its own connection: the recorder's
    next commits and confirmations never wait behind one (a `settle` in radiusd waits for
    a confirmation), and readers and writers elsewhere are never blocked."""

    def __init__(self, url: str, timeout: float, surprises: Surprises) -> None:
        import threading

        self._url, self._timeout = url, timeout
        self._surprises = surprises
        self._wanted = threading.Event()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="checkpoint", daemon=True)
        self._thread.start()

    def request(self) -> None:
        self._wanted.set()

    def close(self) -> None:
        self._stop = True
        self._wanted.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        import sqlite3

        from store.db import StoreError, connect

        conn = None
        while True:
            self._wanted.wait()
            self._wanted.clear()
            if self._stop:
                break
            try:
                conn = conn or connect(self._url, self._timeout)
                conn.raw.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except Exception as exc:  # noqa: BLE001 - the next one, or any other connection,
                # will do it; a bug is counted and said
                if not isinstance(exc, (StoreError, sqlite3.Error)):
                    self._surprises.note("checkpoint", exc)
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()


def run(config_path: str, inp: int, out: int) -> int:
    listening = [True]

    def send(message) -> None:
        if not listening[0]:
            return
        try:
            os.write(out, frame(message))
        except OSError:  # radiusd is gone: still store what it handed over, then end
            listening[0] = False

    try:
        recording = Recording(config_path, log=lambda text: send(("log", text)))
    except Exception as exc:  # noqa: BLE001 - told to radiusd's log; the module records itself
        send(("log", f"recorder cannot start: {type(exc).__name__}: {exc}"))
        return 2
    reader = FrameReader()
    pending: list = []
    since_checkpoint = 0
    store = recording.settings.store
    checkpointer = (
        Checkpointer(store.url, store.timeout_seconds, recording.surprises)
        if store.url.startswith("sqlite")
        else None
    )
    linger = LINGER if recording.copies is None else LINGER_KEPT
    open_input = True
    while open_input or pending:
        if open_input:
            # Wait for input only when nothing is waiting to be committed: while a commit
            # runs, what arrives gathers into the next batch.
            idle = not pending
            ready, _w, _x = select.select([inp], [], [], None if idle else 0)
            if ready:
                if idle:
                    time.sleep(linger)
                data = os.read(inp, 1 << 20)
                if data:
                    pending.extend(reader.feed(data))
                else:
                    open_input = False
        if pending:
            batch, pending = pending[:MAX_BATCH], pending[MAX_BATCH:]
            recording.record(batch, send)
            since_checkpoint += len(batch)
            if since_checkpoint >= CHECKPOINT_RECORDS and checkpointer is not None:
                since_checkpoint = 0
                checkpointer.request()
    if checkpointer is not None:
        checkpointer.close()
    recording.close()
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python3 -m radius_hook.recorder CONFIG_PATH", file=sys.stderr)
        return 2
    try:
        return run(argv[0], sys.stdin.fileno(), sys.stdout.fileno())
    except (BrokenPipeError, KeyboardInterrupt):
        return 1


if __name__ == "__main__":
    sys.exit(main())
