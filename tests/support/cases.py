"""Case files: a sequence of login steps and the verdicts expected, run through the real gate.

A case file (`tests/cases/*.toml`):

    description = "what the case shows"
    settings = { trackstat = { enabled = true } }   # optional: the config file's own tables
    steps = [
      { at = 0, do = "fail", address = "203.0.113.5", expect = { locked = false } },
      ...
    ]

(`settings` is written inline: after a `[settings]` table header, `steps = [...]` would
belong to that table.) Each step:

- `at`: seconds after the case's start, never decreasing; `do`: one of
  fail / login / preauth / authorize / success (Gate.record_failure, .login, .preauth,
  .authorize, .record_success), session_start / session_stop (`key`, `nas`), unlock
  (store.logins.clear_lock, as `pam-guard unlock`), lock (by hand), exempt (`on`, default
  true), ip_allow / ip_deny (`entry`), status (Gate.status_of), directory (`state`:
  "locked", "disabled" or "" for the scripted LDAP directory), unblock (`entry`: an address
  or network, as `pam-guard unblock`);
- `user` (default "alice", repeated `user_repeat` times), `service` ("sshd"), `channel`
  ("pam"), `address` as the adapter got it (parsed by policy.addresses like the adapters do;
  on RADIUS it is the Calling-Station-Id: an address or a MAC); `password`: a failure's wrong
  password (its keyed digest, pam_guard.digests, goes with it); `note`: free text;
- `expect`: any of `allowed`, `reasons`, `status` ("none" when there is none), `ok` (what a
  session step returned), and what the store holds after the step: `locked`, `failures` (in
  the lockout window), `recorded` (outcomes of the events the step wrote), `recorded_users`
  (their user names, as stored), `notices` (kinds queued in the outbox by the step),
  `unfamiliar_locked` (smart lockout's lock in force), `lock_minutes` (the length of the lock
  in force, or "permanent"), `blocked` (the step's address blocked), `message` (the line a
  refused user sees).

`run_case(path, store_url)` creates (or upgrades) the store at `store_url`, so the same files
run on SQLite here and on PostgreSQL: give it an empty store each time. Every step goes
through `pam_guard.gate.Gate` with a fake clock, so policy/, store/ and the gate are
exercised together. Only the LDAP directory is scripted: tests/ldap drives a real slapd.
"""

from __future__ import annotations

import os
import tempfile
import tomllib
from pathlib import Path

from pam_guard import digests
from pam_guard.gate import Gate
from policy import account as transition
from policy.addresses import normalise_entry, parse_address
from policy.messages import user_message
from policy.rules import block_active, lock_active, unfamiliar_lock_active
from policy.settings import build_settings
from policy.sources import block_key, radius_source
from policy.types import RADIUS, AddressBlock, History
from policy.usernames import invalid_reason
from store import logins
from store import statements as sql
from store.db import connect
from store.migrate import create_or_upgrade, engine_for

START = 1_800_000_000.0  # the case's time 0, far from the real clock on purpose

# Verdict-making steps, by the gate method they call.
VERDICT_STEPS = {
    "fail": "record_failure",
    "login": "login",
    "preauth": "preauth",
    "authorize": "authorize",
    "success": "record_success",
}
OTHER_STEPS = (
    "session_start",
    "session_stop",
    "unlock",
    "lock",
    "exempt",
    "ip_allow",
    "ip_deny",
    "status",
    "directory",
    "unblock",
)
STEP_KEYS = {
    "at",
    "do",
    "user",
    "user_repeat",
    "address",
    "service",
    "channel",
    "key",
    "nas",
    "entry",
    "on",
    "state",
    "note",
    "expect",
    "password",
}
EXPECT_KEYS = {
    "allowed",
    "reasons",
    "locked",
    "status",
    "notices",
    "recorded",
    "recorded_users",
    "failures",
    "ok",
    "unfamiliar_locked",
    "lock_minutes",
    "blocked",
    "message",
}
CASE_KEYS = {"description", "settings", "steps"}


class CaseFileError(ValueError):
    """A case file that cannot be run as written (unknown key, bad step, time going back)."""


class FakeClock:
    """The gate's clock: the case sets `now` before each step."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class ScriptedDirectory:
    """Stands in for pam_guard.directory.Directory: answers what the case said last."""

    def __init__(self) -> None:
        self.states: dict[str, str | None] = {}

    def state(self, user):
        return self.states.get(user)

    def unlock(self, user) -> bool:
        return self.states.pop(user, None) is not None


def load_case(path) -> dict:
    """Parse and check a case file; raise CaseFileError naming the file and the problem."""
    path = Path(path)
    with path.open("rb") as handle:
        case = tomllib.load(handle)
    _check_keys(path, "case", case, CASE_KEYS)
    if not isinstance(case.get("description"), str) or not case["description"].strip():
        raise CaseFileError(f"{path}: needs a description")
    steps = case.get("steps")
    if not isinstance(steps, list) or not steps:
        raise CaseFileError(
            f"{path}: needs at least one [[steps]] (a `steps = [...]` written "
            "after a [settings] table belongs to that table: write the "
            "settings inline, `settings = { ... }`)"
        )
    last = 0.0
    for number, step in enumerate(steps, 1):
        where = f"step {number}"
        _check_keys(path, where, step, STEP_KEYS)
        _check_keys(path, f"{where} expect", step.get("expect", {}), EXPECT_KEYS)
        if step.get("do") not in VERDICT_STEPS and step.get("do") not in OTHER_STEPS:
            raise CaseFileError(f"{path}: {where}: unknown do = {step.get('do')!r}")
        at = step.get("at")
        if not isinstance(at, int | float) or isinstance(at, bool) or at < last:
            raise CaseFileError(f"{path}: {where}: at must be a number >= {last}, got {at!r}")
        last = at
    return case


def _check_keys(path, where, table, allowed) -> None:
    if not isinstance(table, dict):
        raise CaseFileError(f"{path}: {where}: expected a table")
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise CaseFileError(f"{path}: {where}: unknown key(s) {unknown}")


def case_settings(case: dict, store_url: str):
    """The case's settings over the seed defaults, on the given store."""
    raw = {section: dict(values) for section, values in case.get("settings", {}).items()}
    raw.setdefault("store", {})["url"] = store_url
    return build_settings(raw, "<case>")


def run_case(path, store_url: str) -> list:
    """Run every step of the case file at `path` against the store at `store_url`.

    Returns one observed dict a step; raises AssertionError naming the file, the step and
    the difference on the first step whose expectation does not hold.
    """
    case = load_case(path)
    create_or_upgrade(store_url)
    settings = case_settings(case, store_url)
    clock = FakeClock(START)
    directory = ScriptedDirectory()
    gate = Gate(settings, clock=clock, directory=directory)
    runner = _Runner(gate, clock, directory, store_url)
    observed = []
    key_dir = tempfile.TemporaryDirectory()
    runner.config_file = f"{key_dir.name}/pam-guard.toml"  # digest.key beside it
    with open(f"{key_dir.name}/{digests.KEY_NAME}", "w") as handle:
        handle.write("5a" * 32)
    os.chmod(f"{key_dir.name}/{digests.KEY_NAME}", 0o600)
    try:
        for number, step in enumerate(case["steps"], 1):
            clock.now = START + step["at"]
            seen = runner.step(step)
            observed.append(seen)
            _compare(path, number, step, seen)
    finally:
        gate.close()
        runner.close()
        key_dir.cleanup()
    return observed


class _Runner:
    """Carries out one step and observes what the gate decided and what the store now holds."""

    def __init__(self, gate: Gate, clock: FakeClock, directory: ScriptedDirectory, url: str):
        self.gate = gate
        self.clock = clock
        self.directory = directory
        self.url = url
        self._engine = None
        self.last_event = 0
        self.last_notice = 0
        self.source = None  # the last verdict step's source (expect `blocked`)
        self.config_file = ""

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()

    def write(self, action) -> None:
        """Run action(conn) in one login-path (DB-API) write transaction of its own."""
        conn = connect(self.url, self.gate.settings.store.timeout_seconds)
        try:
            conn.begin(write=True)
            action(conn)
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        finally:
            conn.close()

    def admin(self, action) -> None:
        """Run action(conn) in an admin (SQLAlchemy) transaction, as `pam-guard` would."""
        if self._engine is None:
            self._engine = engine_for(self.url)
        with self._engine.begin() as conn:
            action(conn)

    def step(self, step: dict) -> dict:
        from store import admin

        do = step["do"]
        user = step.get("user", "alice") * step.get("user_repeat", 1)
        channel = step.get("channel", "pam")
        raw = step.get("address")
        now = self.clock.now
        seen: dict = {}
        if do in VERDICT_STEPS:
            source = radius_source(raw, None) if channel == RADIUS else None
            attempt = self.gate.attempt(
                user, channel, step.get("service", "sshd"), parse_address(raw), raw, source=source
            )
            if "password" in step:
                digest = digests.digest(self.config_file, user, step["password"])
                attempt = attempt._replace(digest=digest)
            verdict = getattr(self.gate, VERDICT_STEPS[do])(attempt)
            seen.update(
                allowed=verdict.allowed,
                reasons=list(verdict.reasons),
                status=verdict.status or "none",
            )
            if not verdict.allowed:
                seen["message"] = user_message(verdict.reasons[0], verdict.until, now)
            self.source = attempt.source
        elif do in ("session_start", "session_stop"):
            key, nas = step.get("key", f"{user}-session"), step.get("nas", "")
            if do == "session_start":
                ok = self.gate.session_start(
                    user, channel, step.get("service", "sshd"), key, nas, parse_address(raw)
                )
            else:
                ok = self.gate.session_stop(user, channel, key, nas)
            seen["ok"] = ok
        elif do == "unlock":
            self.write(lambda conn: logins.clear_lock(conn, user, now))
        elif do == "lock":

            def lock(conn):
                logins.account_row(conn, user, now, lock=True)
                logins.set_lock(conn, user, now, step.get("note", "by hand"), None)

            self.write(lock)
        elif do == "exempt":
            self.admin(lambda conn: admin.set_exempt(conn, user, now, step.get("on", True)))
        elif do in ("ip_allow", "ip_deny"):
            entry = normalise_entry(step["entry"])
            if entry is None:
                raise CaseFileError(f"not an address-list entry: {step['entry']!r}")
            self.admin(lambda conn: admin.add_address_rule(conn, user, do[3:], entry, now))
        elif do == "status":
            result = self.gate.status_of(user)
            seen["status"] = "none" if result is None else result[1]  # TOML has no null
        elif do == "directory":
            self.directory.states[user] = step.get("state") or None
        elif do == "unblock":
            self.admin(lambda conn: admin.unblock(conn, step["entry"], now))
        seen.update(self.store_view(user, now))
        return seen

    def store_view(self, user: str, now: float) -> dict:
        """What the store holds after the step: lock, failures, new events and notices."""

        def body(conn):
            # An invalid name never goes into a query (PostgreSQL refuses NUL in text anyway).
            valid = invalid_reason(user) is None
            account = logins.account_row(conn, user, now, lock=False) if valid else None
            events = conn.all(
                "SELECT id, outcome, username FROM events WHERE id > :last ORDER BY id",
                {"last": self.last_event},
            )
            notices = conn.all(
                "SELECT id, kind FROM outbox WHERE id > :last ORDER BY id",
                {"last": self.last_notice},
            )
            failures = 0
            locked = unfamiliar = False
            minutes = None
            if account is not None:
                failures = logins.count_failures(conn, user, now, self.gate.settings, account)
                held = History(**transition.facts(account))
                locked = lock_active(held, now)
                unfamiliar = unfamiliar_lock_active(held, now)
                if locked or unfamiliar:
                    start, end = (
                        (held.locked_at, held.lock_expires)
                        if locked
                        else (held.unfamiliar_locked_at, held.unfamiliar_lock_expires)
                    )
                    minutes = "permanent" if end is None else round((end - start) / 60, 3)
            blocked = False
            key = block_key(self.source)
            if key is not None:
                row = conn.one(sql.READ_BLOCK, {"net": key})
                blocked = row is not None and block_active(AddressBlock(*row), now)
            return locked, failures, events, notices, unfamiliar, minutes, blocked

        locked, failures, events, notices, unfamiliar, minutes, blocked = self.gate.read(body)
        if events:
            self.last_event = events[-1][0]
        if notices:
            self.last_notice = notices[-1][0]
        return {
            "locked": locked,
            "failures": failures,
            "recorded": [outcome for _, outcome, _ in events],
            "recorded_users": [name for _, _, name in events],
            "notices": sorted(kind for _, kind in notices),
            "unfamiliar_locked": unfamiliar,
            "lock_minutes": minutes,
            "blocked": blocked,
        }


def _compare(path, number: int, step: dict, seen: dict) -> None:
    expect = dict(step.get("expect", {}))
    if "notices" in expect:
        expect["notices"] = sorted(expect["notices"])
    wrong = {key: (want, seen.get(key)) for key, want in expect.items() if seen.get(key) != want}
    if wrong:
        lines = [
            f"{Path(path).name}: step {number} (at {step['at']}, do {step['do']!r}, "
            f"user {step.get('user', 'alice')!r}, address {step.get('address')!r})"
        ]
        lines += [f"  {key}: expected {want!r}, got {got!r}" for key, (want, got) in wrong.items()]
        lines.append(f"  observed: {seen!r}")
        raise AssertionError("\n".join(lines))
