"""radiusd's side of the recorder (radius_hook.recorder): hand successes and failed
passwords over, and know which are stored.

What waits and what does not:
- An outcome is not durable when its reply leaves: the reply does not depend on it (a
  failure is rejected either way). The recorder commits it within milliseconds. If the
  recorder dies first, what it had not confirmed is recorded in radiusd (`record_here`; one
  it had committed but not yet confirmed is then stored twice: the one window where a
  record can double). If radiusd dies first, the pipe still holds what it handed over and
  the recorder stores it before it exits. Only a crash of the machine loses what was not
  yet committed (history rows, the failure-count reset of a success, a failure's count
  toward a lock).
- A decision on a user with outcomes handed over and not yet stored takes them into
  account from `unstored` (RadiusGate.projected_state), with no wait: calls into rlm_python3 are
  serialised, so a wait (`settle`) holds up every request; it is left for the rare yes that
  has a flag or notice to record. So a lock from a failure acts on the user's next request,
  and a failure count never misses a success this server already accepted.
- If the recorder cannot be started, is gone, or does not take a record within
  WRITE_WAIT, it is recorded in radiusd itself (`record_here`): slower, never lost.
"""

from __future__ import annotations

import fcntl
import os
import select
import subprocess
import sys
import threading
import time

from policy.types import SUCCESS
from radius_hook.frames import FrameReader, frame
from radius_hook.surprises import Surprises

PIPE_BUF = 4096  # a write up to this size is atomic on a pipe: a frame is never split
PIPE_SIZE = 1 << 20  # bytes the pipe to the recorder holds (F_SETPIPE_SZ), when allowed
WRITE_WAIT = 1.0  # seconds a full pipe may hold up a request before radiusd records itself
DRAIN_EVERY = 4096  # records handed over between looks at the recorder's answers...
DRAIN_SECONDS = 0.5  # ...or seconds: a recorder that died is noticed (and logged) soon
LAST_OF_KEPT = 65536  # users whose last hand-over is remembered before confirmed ones go
WAIT_STEP = 0.005  # seconds a waiting request sleeps before it looks at the answers again
RESTART_PAUSE = 5.0  # seconds before starting a recorder again after one could not run
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)


# This process's id, kept current across fork (os.getpid() is a system call, and `hand`
# runs on every request): a radiusd that daemonises after instantiate must not write to
# its parent's recorder.
_pid = [os.getpid()]
os.register_at_fork(after_in_child=lambda: _pid.__setitem__(0, os.getpid()))


def _recorder_command(config_path: str) -> list:
    """The recorder, on the interpreter rlm_python3 embeds, finding pam-guard where this
    process found it (the venv's site-packages, or a source tree)."""
    import radius_hook

    roots = [os.path.dirname(os.path.dirname(os.path.abspath(radius_hook.__file__)))]
    roots += [p for p in sys.path if p and p not in roots]
    bootstrap = (
        "import os, sys; sys.path[:0] = sys.argv[2].split(os.pathsep); "
        "from radius_hook.recorder import main; sys.exit(main(sys.argv[1:2]))"
    )
    return [_python(), "-c", bootstrap, config_path, os.pathsep.join(roots)]


def _python() -> str:
    """The interpreter rlm_python3 embeds (sys.executable is radiusd inside radiusd)."""
    candidate = os.path.join(sys.base_exec_prefix, "bin", "python3")
    return candidate if os.access(candidate, os.X_OK) else "/usr/bin/python3"


class Handoff:
    """Successes to a recorder process; `pending`/`settle`/`flush` say what is stored."""

    def __init__(self, config_path: str, owner) -> None:
        """`owner` (radius_hook.accounts.Accounts) is told what the recorder process does
        not do: `record_here(kind, user, time, key, reasons)` records one outcome in this
        process (the recorder cannot take it), `store_trouble()` that the recorder could not
        store; `log(text)` writes an error to radiusd's log, `note(text)` an auth line (a
        lock)."""
        self._config_path = config_path
        self._owner = owner
        self._log = owner.log
        self.surprises = Surprises(owner.log)  # bugs caught where radiusd must go on
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._to_fd = -1  # our ends of its stdin and stdout, while _proc is set
        self._from_fd = -1
        self._pid = 0
        self._reader = FrameReader()
        self._seq = 0
        # (seq, user, kind, time, key, reasons, seq of the user's record before) handed over
        # and not yet confirmed stored, seq consecutive (a record not handed over does not
        # take one): a confirmation drops its prefix with one `del`, in C, not one Python
        # step a record, and `unstored` finds a user's records by their seq, following the
        # chain back, not by scanning thousands (a scan costs more than a request there)
        self._inflight: list = []
        self._confirmed = 0  # the recorder stored (or gave up on) everything up to this seq
        # user -> seq of the last record of theirs handed over (pruned: `_answer`): one dict
        # store a hand-over (a deque per user and its upkeep cost more on every request)
        self._last_of: dict = {}
        self._retry_at = 0.0
        self._started_at = 0.0
        self._drained_at = 0.0
        self._since_drain = 0  # records handed over since the last look at the answers
        self._stopping = False

    # --- the recorder process ------------------------------------------------------------

    def _running(self) -> bool:
        if self._proc is not None and self._pid == _pid[0]:
            return True
        if self._proc is not None:  # a daemonising radiusd forked: that child is not ours
            self._proc = None
            self._forget()
        if time.monotonic() < self._retry_at:
            return False
        try:
            proc = subprocess.Popen(
                _recorder_command(self._config_path),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                close_fds=True,
                start_new_session=True,
            )  # a signal to radiusd's group must not cut a commit
        except Exception as exc:  # noqa: BLE001 - a bug is counted; either way, record here
            if isinstance(exc, OSError):
                self._log(f"recorder: cannot start: {exc}; recording in radiusd")
            else:
                self.surprises.note("recorder: start", exc)
            self._retry_at = time.monotonic() + RESTART_PAUSE
            return False
        assert proc.stdin is not None and proc.stdout is not None  # both are pipes
        self._proc = proc
        self._to_fd, self._from_fd = proc.stdin.fileno(), proc.stdout.fileno()
        self._pid = _pid[0]
        self._started_at = self._drained_at = time.monotonic()
        fd = self._to_fd
        try:
            fcntl.fcntl(fd, F_SETPIPE_SZ, PIPE_SIZE)
        except OSError:
            pass  # the default 64 KB pipe works too
        os.set_blocking(fd, False)
        return True

    def _gone(self, why: str) -> None:
        """The recorder died or stopped answering: what it had not confirmed is recorded
        here."""
        orphans = list(self._inflight)
        if orphans:
            self._log(f"recorder: {why}; recording its last {len(orphans)} records in radiusd")
        elif not self._stopping:
            self._log(f"recorder: {why}")
        self._forget()
        if time.monotonic() - self._started_at < RESTART_PAUSE:
            self._retry_at = time.monotonic() + RESTART_PAUSE  # it cannot run: not in a loop
        proc, self._proc = self._proc, None
        if proc is not None:
            try:
                proc.kill()
                proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass  # it is gone either way
            except Exception as exc:  # noqa: BLE001 - a bug: counted; it is gone either way
                self.surprises.note("recorder: end", exc)
            for stream in (proc.stdin, proc.stdout):
                try:
                    if stream is not None:
                        stream.close()
                except OSError:
                    pass
        for _seq, user, kind, at, key, reasons, _before in orphans:
            self._owner.record_here(kind, user, at, key, reasons)

    # --- handing over ----------------------------------------------------------------------

    def hand(self, kind: str, user: str, at: float, key: tuple, reasons: tuple = ()) -> None:
        """Hand one outcome over (SUCCESS, FAILURE, or DENIED with the refusal's reasons),
        or record it here when the recorder cannot take it."""
        with self._lock:
            handed = self._hand_one(kind, user, at, key, reasons)
            if handed:
                self._maybe_drain(kind)
        if not handed:
            self._owner.record_here(kind, user, at, key, reasons)

    def _hand_one(self, kind: str, user: str, at: float, key: tuple, reasons: tuple) -> bool:
        """(Under the lock) write one record to the recorder; False when it cannot take it."""
        if (self._proc is not None and self._pid == _pid[0]) or self._running():
            seq = self._seq + 1
            data = frame((seq, kind, user, at, key, reasons))
            if len(data) <= PIPE_BUF and self._write(data):
                self._seq = seq
                last_of = self._last_of
                self._inflight.append((seq, user, kind, at, key, reasons, last_of.get(user, 0)))
                last_of[user] = seq
                self._since_drain += 1
                return True
        return False

    def _maybe_drain(self, kind: str) -> None:
        # Counted since the last look, not by what is unconfirmed: a recorder behind by
        # thousands must not make every request look (a system call).
        if (
            self._since_drain >= DRAIN_EVERY
            or kind != SUCCESS
            or time.monotonic() - self._drained_at > DRAIN_SECONDS
        ):
            self._drain(0.0)  # failures are few: their lock lines come soon

    def _write(self, data: bytes) -> bool:
        fd = self._to_fd
        deadline = 0.0
        while True:
            try:
                os.write(fd, data)  # <= PIPE_BUF: all of it or nothing
                return True
            except BlockingIOError:
                deadline = deadline or time.monotonic() + WRITE_WAIT
                left = deadline - time.monotonic()
                if left <= 0:
                    self._log(
                        f"recorder: not keeping up for {WRITE_WAIT:.0f} s; "
                        "recording this success in radiusd"
                    )
                    return False
                select.select([], [fd], [], left)
            except OSError as exc:  # EPIPE: it died
                self._gone(f"gone ({exc})")
                return False

    # --- what is stored --------------------------------------------------------------------

    def _drain(self, timeout: float) -> None:
        """Read the recorder's answers, waiting up to `timeout` for the first one."""
        if self._proc is None:
            return
        self._drained_at = time.monotonic()
        self._since_drain = 0
        fd = self._from_fd
        ready, _w, _x = select.select([fd], [], [], timeout)
        while ready:
            data = os.read(fd, 1 << 16)
            if not data:
                self._gone("exited")
                return
            for message in self._reader.feed(data):
                self._answer(message)
            ready, _w, _x = select.select([fd], [], [], 0)

    def _answer(self, message) -> None:
        kind = message[0]
        if kind == "log":
            self._log(f"recorder: {message[1]}")
            return
        if kind == "auth":
            self._owner.note(message[1])
            return
        if kind == "lost":
            self._log(f"recorder: {message[2]}")
            self._owner.store_trouble()
        upto = message[1]
        inflight = self._inflight
        if inflight and inflight[0][0] <= upto:
            del inflight[: upto - inflight[0][0] + 1]
        self._confirmed = max(self._confirmed, upto)
        if len(self._last_of) > LAST_OF_KEPT:  # most are confirmed by now: keep the others
            self._last_of = {record[1]: record[0] for record in inflight}

    def _forget(self) -> None:
        """Nothing handed over is in flight any more (recorded elsewhere, or not ours)."""
        self._inflight.clear()
        self._last_of.clear()
        self._confirmed = self._seq

    def _has_unstored(self, user: str) -> bool:
        return self._last_of.get(user, 0) > self._confirmed

    def unstored(self, user: str) -> list:
        """[(kind, time, fact key, reasons)] of `user`'s outcomes handed over and not yet
        known to be stored, in the order they were handed over."""
        if not self._has_unstored(user):
            return []
        with self._lock:
            self._drain(0.0)
            if not self._has_unstored(user):
                return []
            inflight, confirmed = self._inflight, self._confirmed
            first = inflight[0][0]  # seqs are consecutive: a record's index is seq - first
            found = []
            seq = self._last_of[user]
            while seq > confirmed and seq >= first:
                record = inflight[seq - first]
                found.append(record[2:6])
                seq = record[6]
            found.reverse()
            return found

    def settle(self, user: str, timeout: float = 5.0) -> None:
        """Wait until `user`'s handed-over outcomes are stored (or known lost)."""
        self._wait(lambda: not self._has_unstored(user), timeout)

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until everything handed over so far is stored (or known lost)."""
        self._wait(lambda: not self._inflight, timeout)

    def _wait(self, done, timeout: float) -> None:
        """Wait until done() (under the lock), reading the recorder's answers. The wait
        itself is outside the lock, so that no other thread's hand-over waits behind it
        should calls ever run side by side (rlm_python3 3.2 serialises them anyway)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if done() or self._proc is None:
                    return
                left = deadline - time.monotonic()
                if left <= 0:
                    self._gone(f"no answer within {timeout:.0f} s")
                    return
                self._drain(0.0)
                if done():
                    return
                fd = self._from_fd
            try:
                # Another thread may read the answer first, or end the recorder and close
                # fd: hence a short wait, then a look again under the lock.
                select.select([fd], [], [], min(left, WAIT_STEP))
            except (OSError, ValueError):
                time.sleep(min(left, WAIT_STEP))

    def stop(self, timeout: float = 15.0) -> None:
        """Let the recorder store what it has, then end it."""
        self._stopping = True
        with self._lock:
            proc = self._proc if self._pid == _pid[0] else None
            if proc is None:
                return
            try:
                if proc.stdin is not None:
                    proc.stdin.close()  # end of input: it records the rest and exits
            except OSError:
                pass
            deadline = time.monotonic() + timeout
            while self._proc is not None and time.monotonic() < deadline:
                self._drain(max(0.0, deadline - time.monotonic()))
            if self._proc is not None:
                self._gone("did not finish in time")
                return
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()


__all__ = ["Handoff"]
