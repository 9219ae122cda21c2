"""The functions rlm_python3 calls: instantiate, authorize, post_auth, accounting, detach.

Mapping (SPEC §9):
- authorize: every rule of SPEC §4 before authentication; a refusal is `reject` with one
  short Reply-Message (and is recorded as a denial by the gate).
- post_auth: records a success; on the `Post-Auth-Type REJECT` path records a failure, which
  may lock the account.
- accounting: Start / Interim-Update / Stop keep the session table; Accounting-On/-Off (a NAS
  reboot) end every session of that NAS.

Traps of rlm_python3 in FreeRADIUS 3.2.1 handled here:
- Only one python3 instance may be loaded, and every call into it needs the GIL: Python time
  per call is the server's throughput (and our code runs several times slower there than in
  a plain loop: docs/PERF.md, radius_hook). So authorize answers most requests from a kept copy of the account
  (radius_hook.hot) without a store read, and post_auth hands successes to a recorder
  process (radius_hook.handoff, radius_hook.recorder) that stores them off radiusd's GIL.
- rlm_python3 3.2.1 serialises the calls themselves (checked inside radiusd under the
  benchmark's load: never two requests in this module at once), so everything a request
  waits for (a settle, SQLite's busy handler, a WAL checkpoint) stalls the whole server.
  `_gate_lock` only guards the gate's one connection should a build ever call in
  concurrently (the GIL is released inside every SQLite call); uncontended it costs little.
- An exception in instantiate does not stop the server: a config that cannot be loaded is
  logged and every request is then refused (never silently let in); loading is retried.
- post_auth can run twice for one request (once on the accept path, then again in
  `Post-Auth-Type REJECT` when a later post-auth module rejects, without Post-Auth-Type
  set), and runs on the REJECT path after our own authorize refusal: a per-thread mark
  (a request is processed from authorize to post-auth by one thread) makes each request count
  once.
- A value that is not UTF-8 makes rlm_python3 3.2.1 fail the call before Python runs: the
  instance gets the request list only, and the `pam_guard` policy (policy.d/pam_guard)
  hands an odd User-Name over as octets (request.name_in) and hides an odd User-Password.
- print goes nowhere once radiusd is a daemon: everything is logged with radiusd.radlog.
- 802.1X: in the site the NAS talks to, an EAP request carries only the outer identity
  (often "anonymous"): authorize and post_auth leave it alone (request.outer_eap); the
  inner-tunnel site, wired as packaging/freeradius/sites/inner-tunnel-* show, sees the
  real user and is guarded like any site.
Nothing raises out of these functions.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from pam_guard.errors import DirectoryError
from pam_guard.logline import announce
from policy import decide
from policy.messages import REFUSED, user_message
from policy.types import INVALID_USER, RADIUS, STORE_ERROR
from policy.usernames import escape, invalid_reason
from radius_hook import request as rq
from radius_hook.surprises import Surprises
from store.db import StoreError

try:  # provided by rlm_python3 inside radiusd; absent when imported elsewhere (tests, tools)
    import radiusd
except ImportError:  # pragma: no cover - outside radiusd
    radiusd = None

# Return codes and log levels of FreeRADIUS 3.2 (src/include/modules.h, log.h): the values
# radiusd exports, repeated for use outside radiusd.
REJECT, FAIL, OK, HANDLED, INVALID, USERLOCK, NOTFOUND, NOOP, UPDATED = range(9)
L_AUTH, L_INFO, L_ERR, L_WARN = 2, 3, 4, 5

DEFAULT_CONFIG = "/etc/pam-guard/pam-guard.toml"
CHECK_SECONDS = 1.0  # how often the config file is looked at for changes
RETRY_SECONDS = 5.0  # how often a config that failed to load is tried again
SAY_AGAIN_SECONDS = 60.0  # the same load error is logged again after this long
MARK_SECONDS = 5.0  # a post-auth mark older than this belongs to another request

# SQLite runs a WAL checkpoint (copy to the database file, fsync) inside the commit that
# finds the WAL over this many pages. Inside a request that stalls the whole server (calls
# are serialised), so the recorder does the checkpoints (recorder.CHECKPOINT_RECORDS); a
# request's commit checkpoints only as a backstop, if the recorder has not run for long.
REQUEST_CHECKPOINT_PAGES = 50000

# What the gate's reads raise when the store or the directory cannot answer: the gate's
# recording path then decides (failure.on_store_error). Anything else is a bug: counted and
# logged (Guard.surprises), and the same path decides.
STORE_TROUBLE = (StoreError, DirectoryError)


def log(level: int, text: str) -> None:
    """One line in radiusd's log (print goes nowhere once radiusd is a daemon)."""
    line = "pam-guard: " + text.replace("\n", " ")[:1000]
    try:
        if radiusd is not None:
            radiusd.radlog(level, line)
    except Exception:  # noqa: BLE001 - logging must never fail a request
        pass


def _connector(checkpoint_pages: int):
    """store.db.connect, with SQLite's WAL autocheckpoint set for this connection."""
    from store.db import connect

    def connector(url, timeout):
        conn = connect(url, timeout)
        if conn.dialect == "sqlite":
            conn.raw.execute(f"PRAGMA wal_autocheckpoint={int(checkpoint_pages)}")
        return conn

    return connector


# What reaches an entry point's last resort is a bug (store and directory trouble is handled
# inside): counted and logged once a minute, so a bug hit on every request does not flood
# radiusd's log. Module-wide: it also serves a module whose Guard could not be made.
ENTRY_SURPRISES = Surprises(lambda text: log(L_ERR, text))


class Guard:
    """The module's state: settings, gate and accounts (radius_hook.accounts) for one
    config file, reloaded when it changes."""

    def __init__(self, config_path: str) -> None:
        self.config_path = config_path
        self.gate: Any = None  # radius_hook.radius_gate.RadiusGate once loaded
        self.accounts: Any = None  # radius_hook.accounts.Accounts once loaded
        self.error = "not loaded yet"
        self.surprises = Surprises(lambda text: log(L_ERR, text))  # bugs behind fallbacks
        self._said = ("", 0.0)  # the last load error logged, and when
        self._key: Any = None
        self._next_check = 0.0

    @property
    def hot(self):
        """The kept copies of accounts (radius_hook.hot.HotAccounts), or None."""
        return self.accounts.copies if self.accounts is not None else None

    @property
    def recorder(self):
        """The hand-over to the recorder process (radius_hook.handoff.Handoff), or None."""
        return self.accounts.recorder if self.accounts is not None else None

    def _config_key(self):
        """What identifies the config's files now, drop-ins included (any file added,
        removed or rewritten changes it), or None when they cannot be read."""
        from pam_guard.config import ConfigError, config_files, files_key

        try:
            return files_key(config_files(self.config_path))
        except (ConfigError, OSError):  # unreadable: load() says why, and refuses
            return None
        except Exception as exc:  # noqa: BLE001 - a bug: said; load() tries the files anyway
            self.surprises.note("config check", exc)
            return None

    def load(self) -> None:
        """(Re)load settings and make a gate; on failure keep the error, refuse requests."""
        from pam_guard.config import load_settings
        from radius_hook.accounts import Accounts
        from radius_hook.handoff import Handoff
        from radius_hook.radius_gate import RadiusGate

        try:
            key = self._config_key()
            settings = load_settings(self.config_path)
        except Exception as exc:  # noqa: BLE001 - ConfigError, OSError, anything: fail closed
            self.error = f"config {self.config_path}: {exc}"
            now = time.monotonic()
            if self.error != self._said[0] or now - self._said[1] >= SAY_AGAIN_SECONDS:
                log(L_ERR, f"{self.error}; refusing every request until it loads")
                self._said = (self.error, now)
            self._close()
            self._next_check = time.monotonic() + RETRY_SECONDS
            return
        self._close()
        self.gate = RadiusGate(settings, connector=_connector(REQUEST_CHECKPOINT_PAGES))
        accounts = Accounts(
            self.gate,
            self._copies(settings),
            log=lambda text: log(L_ERR, text),
            note=lambda text: log(L_AUTH, text),
            lock=_gate_lock,
        )
        copies = ""
        if accounts.copies is not None:
            from radius_hook import hot

            loaded = hot.preload(
                accounts.copies, self.gate, log=lambda text: log(L_WARN, text), check=True
            )
            copies = f", {loaded} copies of accounts loaded"
        accounts.recorder = Handoff(self.config_path, accounts)
        self.accounts = accounts
        self.error = ""
        self._said = ("", 0.0)
        self._key = key
        self._next_check = time.monotonic() + CHECK_SECONDS
        log(
            L_INFO,
            f"loaded {self.config_path} (store {settings.store.url.split('://')[0]}{copies})",
        )

    def _copies(self, settings):
        """Kept copies of accounts for these settings, or None (hot.for_settings)."""
        from radius_hook import hot

        return hot.for_settings(
            settings, log=lambda text: log(L_WARN, text), surprises=self.surprises
        )

    def current(self):
        """The gate to use now, or None when the config cannot be loaded."""
        now = time.monotonic()
        if now >= self._next_check:
            self._next_check = now + CHECK_SECONDS
            key = self._config_key()
            if self.gate is None or key != self._key:
                if self.recorder is not None:
                    self.recorder.flush()
                with _gate_lock:  # never close the gate under a request using it
                    self.load()
            elif self.hot is not None and not self.hot.same_files():
                # Store or counter file replaced: no copy can be trusted. The old object is
                # left to the garbage collector (a request may still be reading it).
                log(L_INFO, "store or change counters replaced: copies of accounts dropped")
                self.accounts.copies = self._copies(self.gate.settings)
                with _gate_lock:
                    self.gate.close()  # a replaced store file: open the new one
        return self.gate

    def _close(self) -> None:
        accounts, self.accounts = self.accounts, None
        if accounts is not None:
            if accounts.recorder is not None:
                accounts.recorder.stop()  # what it cannot store is recorded through the gate
            if accounts.copies is not None:
                accounts.copies.close()
        if self.gate is not None:
            self.gate.close()
            self.gate = None

    def close(self) -> None:
        self._close()


_guard: Any = None  # the Guard, once instantiate has run
_gate_lock = threading.Lock()  # one request at a time on the gate's store connection (see top)
_marks = threading.local()  # per worker thread: (user, stage, monotonic time) of its request


def _mark(user, stage: str) -> None:
    _marks.seen = (user, stage, time.monotonic())


def _take_mark(user):
    """The stage this thread's current request reached for `user`, consumed; or None."""
    seen = getattr(_marks, "seen", None)
    _marks.seen = None
    if seen is None or seen[0] != user or time.monotonic() - seen[2] > MARK_SECONDS:
        return None
    return seen[1]


_told_eap = [False]  # the inner-tunnel wiring was logged once in this process
INNER_TUNNEL_WIRING = (
    "in sites-enabled/inner-tunnel: authorize { pam_guard_tunnel_facts; pam_guard } before eap, "
    "post-auth { pam_guard; pam_guard_real_name } and Post-Auth-Type REJECT "
    "{ pam_guard_reject } (site-snippets/inner-tunnel-*)"
)


def _leave_to_inner_tunnel(outer_identity) -> None:
    """An EAP request in the outer site: never guarded here (its User-Name is the outer
    identity: locking it would lock out every 802.1X user); said once in the log."""
    if _told_eap[0]:
        return
    _told_eap[0] = True
    log(
        L_INFO,
        f"EAP request (outer identity {escape(outer_identity or '-')[:100]}): left "
        "to the inner tunnel, where the real user is guarded; the outer identity is never "
        f"recorded or locked. Wiring {INNER_TUNNEL_WIRING}",
    )


def _warn(text: str) -> None:
    log(L_WARN, text)


def _reject(text: str):
    return REJECT, {"reply": (("Reply-Message", text),)}


def _unless_store_trouble(place: str, exc: Exception) -> None:
    """An exception reading a user's state: store or directory trouble is expected (the
    gate's path decides, per failure.on_store_error); anything else is a bug, counted and
    logged (Guard.surprises) before the same path decides."""
    if not isinstance(exc, STORE_TROUBLE):
        _guard.surprises.note(place, exc)


def _decide(accounts, attempt, key):
    """authorize's verdict: the user's state (Accounts.state_for), the rules
    (decide.check), then what the verdict asks (Accounts.after_check). An invalid user name,
    and a state that cannot be read, go the gate's own path (Accounts.decide_here)."""
    if invalid_reason(attempt.user) is not None:
        return accounts.decide_here(attempt)
    try:
        history, pending = accounts.state_for(attempt)
    except Exception as exc:  # noqa: BLE001 - the gate's path decides (STORE_TROUBLE)
        _unless_store_trouble("authorize: account state", exc)
        return accounts.decide_here(attempt)
    verdict = decide.check(attempt, history, accounts.gate.settings)
    return accounts.after_check(attempt, key, verdict, pending)


# --- rlm_python3 entry points --------------------------------------------------------------------


def instantiate(p):
    """Load the config named by the module's `config { config_file = ... }` section."""
    global _guard
    try:
        conf = getattr(radiusd, "config", None) or {}
        path = conf.get("config_file") or DEFAULT_CONFIG
        _guard = Guard(path)
        _guard.load()
    except Exception as exc:  # noqa: BLE001 - radiusd 3.2.1 would carry on regardless
        log(L_ERR, f"instantiate: {type(exc).__name__}: {exc}; refusing every request")
    return 0


def authorize(p):
    """Refuse a locked, address-restricted, sharing-flagged or concurrent login."""
    _marks.seen = None
    user = None
    gate = None
    try:
        # Most requests: a current copy of the account already known to let the user in.
        if _guard is not None and _guard.current() is not None:
            user = rq.user_name(p)
            if user and _guard.accounts.quiet(user):
                _mark(user, "allowed")
                return NOOP
        attrs = rq.pairs(p)
        if rq.outer_eap(attrs):
            _leave_to_inner_tunnel(rq.name_in(attrs))
            return NOOP
        user = rq.name_in(attrs)
        if not user:
            log(L_AUTH, "authorize: request without User-Name: refused")
            _mark(user, "denied")
            return _reject(REFUSED)
        gate = _guard.current() if _guard is not None else None
        if gate is None:
            log(
                L_ERR,
                f"authorize: refused {escape(user)[:100]}: "
                f"{_guard.error if _guard else 'module not instantiated'}",
            )
            _mark(user, "denied")
            return _reject(user_message(STORE_ERROR))
        key = rq.fact_key(attrs)
        attempt = rq.attempt_from(gate, user, gate.clock(), key)
        verdict = _decide(_guard.accounts, attempt, key)
        if verdict.allowed:
            if verdict.reasons:
                log(
                    L_INFO,
                    f"authorize: let in {escape(user)[:100]} with "
                    f"{','.join(verdict.reasons)}"
                    + (f" ({gate.last_error})" if STORE_ERROR in verdict.reasons else ""),
                )
            _mark(user, "allowed")
            return NOOP
        reasons = verdict.reasons or (STORE_ERROR,)
        detail = {"detail": gate.last_error} if reasons[0] in (STORE_ERROR, INVALID_USER) else {}
        log(L_AUTH, announce("refused", attempt, ",".join(reasons), phase="authorize", **detail))
        _mark(user, "denied")
        # the line PAM users see too
        return _reject(user_message(reasons[0], verdict.until, attempt.time))
    except Exception as exc:  # noqa: BLE001 - never raise into radiusd
        ENTRY_SURPRISES.note("authorize", exc, "answered per failure.on_store_error")
        _mark(user, "denied")
        if gate is not None and gate.settings.failure.on_store_error == "allow":
            _mark(user, "allowed")
            return NOOP
        return _reject(user_message(STORE_ERROR))


def post_auth(p):
    """Record the outcome of authentication: success, or (REJECT path) failure, once."""
    try:
        attrs = rq.pairs(p)
        if rq.outer_eap(attrs):
            return NOOP  # the inner tunnel records the real user's outcome
        user = rq.name_in(attrs)
        stage = _take_mark(user)
        rejecting = rq.rejecting(p)
        if stage == "accepted":
            # Second run for one request: a later post-auth module rejected after we recorded
            # the success. The password was right: no failure to count.
            log(
                L_INFO,
                f"post_auth: {escape(user)[:100]} rejected after authentication; "
                "not counted as a failed password",
            )
            return NOOP
        if not user or stage == "denied":
            return NOOP  # refused by authorize: already recorded there
        gate = _guard.current() if _guard is not None else None
        if gate is None:
            log(
                L_ERR,
                f"post_auth: {escape(user)[:100]} not recorded: "
                f"{_guard.error if _guard else 'module not instantiated'}",
            )
            return NOOP
        if rejecting:
            key = rq.with_digest(rq.fact_key(attrs), p, attrs, gate, user, _warn)
            _guard.accounts.record_failure(user, gate.clock(), key)
        else:
            _mark(user, "accepted")
            _guard.accounts.record_success(user, gate.clock(), rq.fact_key(attrs))
        return NOOP
    except Exception as exc:  # noqa: BLE001 - never raise into radiusd
        ENTRY_SURPRISES.note("post_auth", exc, "this request's outcome may not be recorded")
        return NOOP


_SESSION_STATES = ("Start", "Interim-Update", "Stop")
_NAS_STATES = ("Accounting-On", "Accounting-Off")


def accounting(p):
    """Keep the session table true; answer only once the change is stored (else `fail`, so
    radiusd sends no Accounting-Response and the NAS sends the record again)."""
    try:
        attrs = rq.pairs(p)
        status = attrs.get("Acct-Status-Type")
        if status not in _SESSION_STATES and status not in _NAS_STATES:
            return NOOP
        gate = _guard.current() if _guard is not None else None
        if gate is None:
            log(L_ERR, f"accounting: not recorded: {_guard.error if _guard else 'no module'}")
            return FAIL
        with _gate_lock:
            ok = _account(gate, attrs, status)
        if ok is None:
            return NOOP
        if not ok:
            log(L_ERR, f"accounting: {status} not recorded: {gate.last_error}")
            return FAIL
        return OK
    except Exception as exc:  # noqa: BLE001 - never raise into radiusd
        ENTRY_SURPRISES.note("accounting", exc, "this accounting request is not recorded")
        return FAIL


def _account(gate, attrs: dict, status: str):
    """Apply one accounting record to the session table: True/False (stored or not), or
    None when the record cannot be used (logged)."""
    nas = rq.nas_of(attrs)
    if status in _NAS_STATES:
        if not nas:
            log(L_WARN, f"accounting: {status} without NAS address or identifier: ignored")
            return None
        return gate.nas_restart(RADIUS, nas)
    user = rq.name_in(attrs)
    key = attrs.get("Acct-Session-Id")
    if not key or not user or invalid_reason(user) is not None:
        log(
            L_WARN,
            f"accounting: {status} without a usable User-Name or "
            f"Acct-Session-Id ({escape(user or '-')[:100]}): no session change",
        )
        return None
    if status == "Start":
        address, _raw = rq.source_address(attrs, gate.settings.radius.address_order)
        return gate.session_start(
            user,
            RADIUS,
            rq.session_type(attrs, gate.settings.radius.port_type_map),
            key,
            nas,
            address,
            rq.client_detail(attrs),
        )
    if status == "Stop":
        return gate.session_stop(user, RADIUS, key, nas)
    return gate.session_update(user, RADIUS, key, nas)


def detach(p=None):
    """radiusd is stopping: commit what is queued, close the store."""
    try:
        if _guard is not None:
            _guard.close()
    except Exception as exc:  # noqa: BLE001
        log(L_ERR, f"detach: {type(exc).__name__}: {exc}")
    return OK
