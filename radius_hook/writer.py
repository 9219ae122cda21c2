"""Group commit of success records, off the request path.

Calls into rlm_python3 are serialised, so a commit made inside post_auth (~20 µs on SQLite,
a network round trip on PostgreSQL) is paid by every request in turn. Successes are instead
queued here and committed by one thread, many per transaction, while radiusd goes on.

What waits and what does not:
- A success record is not durable when its Access-Accept leaves: the reply does not depend
  on it. It is committed within milliseconds; a crash in between loses at most the queued
  successes (their history rows and the failure-count reset they carry).
- Every decision about a user waits for that user's queued successes first (`settle`), so a
  refusal or a failure count never misses a success this server already accepted.
- Failures, denials and accounting stay synchronous: their replies depend on them.
"""

from __future__ import annotations

import collections
import os
import threading
import time

MAX_BATCH = 1024  # successes committed in one transaction at most
LINGER = 0.005  # seconds a batch waits for company: fewer, larger commits and fewer wake-ups
RETRIES = 3  # attempts at committing a batch while the store is unreachable
RETRY_PAUSE = 0.2  # seconds between them


class Writer:
    """A thread that records queued successes through its own gate (own store connection)."""

    def __init__(self, gate, log=lambda text: None, lost=lambda users: None) -> None:
        """`lost(users)` is told of successes that could not be committed."""
        self._gate = gate
        self._log = log
        self._lost = lost
        self._queue: collections.deque = collections.deque()
        self._pending: collections.Counter = collections.Counter()  # user -> not yet committed
        self._cond = threading.Condition()
        self._stopping = False
        self._urgent = 0  # callers waiting in settle/flush: commit without lingering
        self._thread = None
        self._pid = 0

    def _ensure_thread(self) -> None:
        # Started on first use, and again after a fork: a daemonising radiusd may fork after
        # instantiate, and threads do not survive a fork.
        if self._thread is None or self._pid != os.getpid():
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._run, name="pam-guard-writer",
                                            daemon=True)
            self._thread.start()

    def success(self, attempt, known=None) -> None:
        """Queue a success for the next commit; `known`: its (status, why), see
        Gate.record_successes."""
        with self._cond:
            self._ensure_thread()
            self._queue.append((attempt, known))
            self._pending[attempt.user] += 1
            if len(self._queue) == 1 or len(self._queue) >= MAX_BATCH:
                self._cond.notify()  # wake the writer only when it has to act

    def pending(self, user) -> bool:
        """Whether `user` has successes queued or being committed (a dict lookup)."""
        return user in self._pending

    def settle(self, user, timeout: float = 5.0) -> None:
        """Wait until `user`'s queued successes are committed (or dropped after errors)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._urgent += 1
            self._cond.notify_all()
            try:
                self._wait_for(lambda: user not in self._pending, deadline, timeout)
            finally:
                self._urgent -= 1

    def _wait_for(self, done, deadline: float, timeout: float) -> None:
        while not done():
            left = deadline - time.monotonic()
            if left <= 0:
                self._log(f"writer: successes still queued after {timeout:.0f} s")
                return
            self._cond.wait(left)

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until everything queued so far is committed."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._urgent += 1
            self._cond.notify_all()
            try:
                self._wait_for(lambda: not self._pending, deadline, timeout)
            finally:
                self._urgent -= 1

    def stop(self) -> None:
        """Commit what is queued, then end the thread and close its store connection."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None and self._pid == os.getpid():
            self._thread.join(timeout=15)
        self._gate.close()

    def _take(self) -> list:
        with self._cond:
            while not self._queue and not self._stopping:
                self._cond.wait()
            deadline = time.monotonic() + LINGER
            while len(self._queue) < MAX_BATCH and not self._stopping and not self._urgent:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            batch = []
            while self._queue and len(batch) < MAX_BATCH:
                batch.append(self._queue.popleft())
            return batch

    def _done(self, batch) -> None:
        with self._cond:
            for attempt, _known in batch:
                self._pending[attempt.user] -= 1
                if self._pending[attempt.user] <= 0:
                    del self._pending[attempt.user]
            self._cond.notify_all()

    def _commit(self, batch) -> None:
        from store.db import StoreError

        attempts = [a for a, _k in batch]
        for attempt_no in range(RETRIES):
            try:
                self._gate.record_successes(attempts, [k for _a, k in batch])
                return
            except StoreError as exc:
                self._gate.close()
                if attempt_no == RETRIES - 1:
                    self._log(f"writer: {len(batch)} success records lost: store: {exc}")
                    self._lost([a.user for a in attempts])
                    return
                time.sleep(RETRY_PAUSE)

    def _run(self) -> None:
        while True:
            batch = self._take()
            if not batch:
                return  # stopping, and nothing left
            try:
                self._commit(batch)
            except Exception as exc:  # noqa: BLE001 - the thread must outlive any one batch
                self._log(f"writer: {len(batch)} success records lost: "
                          f"{type(exc).__name__}: {exc}")
                self._lost([a.user for a, _k in batch])
            finally:
                self._done(batch)
