"""The LDAP directory client for custom authentication: whose account is locked or disabled.

With `[custom_authentication] enabled = true` the directory owns the lockout (SPEC §2, §4):
the gate asks `Directory.state(user)` before every decision, and `pam-guard unlock` /
`pam-guard status` call `unlock` and `describe`. What the attributes mean for each directory
kind is in `pam_guard.directory_kinds` (pure); this module does the LDAP side with ldap3:

- The user is found with `user_filter`, `{user}` escaped (RFC 4515), under `user_base`.
  No entry: the directory has no opinion (state None, unlock False). More than one: error.
- Connect and receive timeouts are `timeout_seconds`; ldaps:// and StartTLS (`starttls`)
  verify the server against `ca_file` (or the system CAs).
- The bind password comes from `bind_password_file`, refused unless only its owner may
  read it (mode 0600 or 0400), read again at each bind so a changed password needs no restart.
- One connection per Directory, reused (RADIUS calls it from many threads: a lock serialises
  them). After an error the connection is dropped; a reused connection that fails (the server
  restarted, an idle timeout) is retried once on a fresh one.
Every failure raises `pam_guard.gate.DirectoryError` (`DirectoryPermissionError` when the bind
lacks the rights for a change), with a message for the admin.
"""

from __future__ import annotations

import os
import stat
import threading
import time

import ldap3
from ldap3.core import exceptions as lx
from ldap3.utils.conv import escape_filter_chars

from pam_guard import directory_kinds as kinds
from pam_guard.errors import DirectoryError, DirectoryPermissionError

POLICY_CACHE_SECONDS = 300  # the ppolicy overlay's default policy DN changes rarely


class DirectoryConfigError(DirectoryError):
    """The custom_authentication settings cannot work (bad password file, missing value)."""


def read_bind_password(path: str) -> str:
    """The bind password from `path`, which only its owner may read (like ssh keys)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise DirectoryConfigError(
            f"custom_authentication.bind_password_file {path!r}: cannot open: {exc.strerror}"
        ) from None
    with os.fdopen(fd, "rb") as handle:
        mode = stat.S_IMODE(os.fstat(handle.fileno()).st_mode)
        if mode & 0o077:
            raise DirectoryConfigError(
                f"custom_authentication.bind_password_file {path!r} is mode {mode:04o}: others "
                f"may read it; run chmod 600 {path}"
            )
        data = handle.read()
    return data.decode("utf-8").rstrip("\r\n")


def user_filter(template: str, user: str) -> str:
    """The search filter for `user`: `{user}` replaced by the RFC 4515-escaped name."""
    return template.replace("{user}", escape_filter_chars(user))


class Directory:
    """The configured directory: `state`, `unlock`, `describe` for one user at a time."""

    def __init__(self, settings, clock=time.time) -> None:
        self.settings = settings
        self.kind = settings.kind
        self.clock = clock
        self._conn = None
        self._lock = threading.Lock()
        self._default_policy: tuple[float, str | None] | None = None

    # --- public ----------------------------------------------------------------------------

    def state(self, user: str):
        """None, "locked" or "disabled": the directory's view of `user` now."""
        return self._ask(lambda conn: self._reading(conn, user)[1].state)

    def describe(self, user: str) -> dict:
        """The directory's view for `pam-guard status`: kind, dn, locked, disabled, times, raw."""

        def body(conn):
            entry, reading = self._reading(conn, user)
            if entry is None:
                return {
                    "kind": self.kind,
                    "dn": None,
                    "found": False,
                    "locked": False,
                    "disabled": False,
                }
            return {
                "kind": self.kind,
                "dn": entry["dn"],
                "found": True,
                "locked": reading.state == kinds.LOCKED,
                "disabled": reading.state == kinds.DISABLED,
                "locked_at": _iso(reading.locked_at),
                "locked_until": _iso(reading.locked_until),
                "why": reading.why,
                "attributes": {k: list(v) for k, v in sorted(entry["attributes"].items())},
            }

        return self._ask(body)

    def unlock(self, user: str) -> bool:
        """Clear the directory's lock on `user`; False when the directory has no such user."""

        def body(conn):
            entry = self._find(conn, user)
            if entry is None:
                return False
            changes = kinds.UNLOCK[self.kind](entry["attributes"])
            if changes:
                conn.modify(
                    entry["dn"],
                    {
                        name: [(getattr(ldap3, op), values) for op, values in ops]
                        for name, ops in changes.items()
                    },
                )
            return True

        return self._ask(body)

    def close(self) -> None:
        with self._lock:
            self._drop()

    # --- reading an account ----------------------------------------------------------------

    def _find(self, conn, user: str):
        """The user's entry (dn and the kind's attributes as lists of str), or None."""
        conn.search(
            self.settings.user_base,
            user_filter(self.settings.user_filter, user),
            ldap3.SUBTREE,
            attributes=list(kinds.ATTRIBUTES[self.kind]),
            size_limit=2,
            time_limit=self.settings.timeout_seconds,
        )
        entries = [e for e in conn.response or () if e.get("type") == "searchResEntry"]
        if not entries:
            return None
        if len(entries) > 1:
            raise DirectoryError(
                f"user_filter matches more than one entry for {user!r} "
                f"under {self.settings.user_base!r}; make it specific"
            )
        return {"dn": entries[0]["dn"], "attributes": _text_attributes(entries[0])}

    def _reading(self, conn, user: str):
        entry = self._find(conn, user)
        if entry is None:
            return None, kinds.NOT_LOCKED
        attrs, now = entry["attributes"], self.clock()
        try:
            if self.kind == "openldap":
                duration = None
                if kinds.openldap_locked_time(attrs) not in (None, kinds.PPOLICY_PERMANENT):
                    duration = self._ppolicy_duration(conn, attrs)
                return entry, kinds.openldap_reading(attrs, now, duration)
            if self.kind == "ad":
                duration = None
                if kinds.ad_needs_duration(attrs):
                    duration = self._ad_duration(conn, entry["dn"])
                return entry, kinds.ad_reading(attrs, now, duration)
            return entry, kinds.ds389_reading(attrs, now)
        except ValueError as exc:
            raise DirectoryError(f"{entry['dn']}: unreadable attribute: {exc}") from None

    def _ppolicy_duration(self, conn, attrs) -> float | None:
        """pwdLockoutDuration of the user's policy: pwdPolicySubentry, else the overlay's default.

        The default policy's DN lives in cn=config (olcPPolicyDefault); when the bind may not
        read it and the user names no policy, the duration is UNKNOWN and the lock is taken
        to last until an admin unlocks (documented: grant the bind read access to the
        overlay's cn=config entry, or set pwdPolicySubentry).
        """
        policy = kinds.first_value(attrs, "pwdPolicySubentry") or self._default_policy_dn(conn)
        if not policy:
            return kinds.UNKNOWN
        try:
            conn.search(
                policy, "(objectClass=pwdPolicy)", ldap3.BASE, attributes=["pwdLockoutDuration"]
            )
        except lx.LDAPNoSuchObjectResult:
            return kinds.UNKNOWN
        found = [e for e in conn.response or () if e.get("type") == "searchResEntry"]
        if not found:
            return kinds.UNKNOWN
        raw = kinds.first_value(_text_attributes(found[0]), "pwdLockoutDuration")
        return float(raw) if raw else kinds.FOREVER  # absent: ppolicy's default is 0

    def _default_policy_dn(self, conn) -> str | None:
        now = time.monotonic()
        if self._default_policy and now - self._default_policy[0] < POLICY_CACHE_SECONDS:
            return self._default_policy[1]
        dn = None
        try:
            conn.search(
                "cn=config",
                "(objectClass=olcPPolicyConfig)",
                ldap3.SUBTREE,
                attributes=["olcPPolicyDefault", "olcSuffix"],
            )
            for entry in conn.response or ():
                values = (
                    _text_attributes(entry).get("olcPPolicyDefault")
                    if entry.get("type") == "searchResEntry"
                    else None
                )
                if values:
                    dn = values[0]
                    break
        except (lx.LDAPNoSuchObjectResult, lx.LDAPInsufficientAccessRightsResult):
            dn = None
        self._default_policy = (now, dn)
        return dn

    def _ad_duration(self, conn, dn: str) -> float | None:
        """The domain's lockoutDuration (seconds), read from the DN's domain head."""
        domain = kinds.ad_domain_dn(dn)
        if domain is None:
            return kinds.UNKNOWN
        try:
            conn.search(domain, "(objectClass=*)", ldap3.BASE, attributes=["lockoutDuration"])
        except lx.LDAPNoSuchObjectResult:
            return kinds.UNKNOWN
        found = [e for e in conn.response or () if e.get("type") == "searchResEntry"]
        raw = kinds.first_value(_text_attributes(found[0]), "lockoutDuration") if found else None
        return kinds.ad_lockout_duration(raw)

    # --- connection --------------------------------------------------------------------------

    def _ask(self, body):
        """Run body(conn) on the shared connection; every failure becomes a DirectoryError."""
        with self._lock:
            reused = self._conn is not None
            started = time.monotonic()
            try:
                return self._attempt(body)
            except DirectoryConfigError:
                raise
            except DirectoryError:
                self._drop()
                raise
            except (lx.LDAPException, OSError) as exc:
                self._drop()
                # Retry once only when a reused connection broke fast (the server restarted
                # or closed an idle connection); a slow server must not cost two timeouts.
                quick = time.monotonic() - started < self.settings.timeout_seconds / 2
                if not (reused and quick) or isinstance(exc, lx.LDAPOperationResult):
                    raise _translate(exc, self.settings) from None
            try:
                return self._attempt(body)
            except DirectoryError:
                self._drop()
                raise
            except (lx.LDAPException, OSError) as exc:
                self._drop()
                raise _translate(exc, self.settings) from None

    def _attempt(self, body):
        if self._conn is None:
            self._conn = self._connect()
        return body(self._conn)

    def _connect(self):
        cfg = self.settings
        password = None
        if cfg.bind_dn:
            if not cfg.bind_password_file:
                raise DirectoryConfigError(
                    "custom_authentication.bind_dn is set but bind_password_file is empty"
                )
            password = read_bind_password(cfg.bind_password_file)
        tls = None
        if cfg.url.startswith("ldaps://") or cfg.starttls:
            import ssl

            tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=cfg.ca_file or None)
        server = ldap3.Server(
            cfg.url, get_info=ldap3.NONE, tls=tls, connect_timeout=cfg.timeout_seconds
        )
        conn = ldap3.Connection(
            server,
            user=cfg.bind_dn or None,
            password=password,
            receive_timeout=cfg.timeout_seconds,
            raise_exceptions=True,
            auto_bind=ldap3.AUTO_BIND_NONE,
            read_only=False,
        )
        try:
            conn.open()
            if cfg.starttls and not cfg.url.startswith("ldaps://"):
                conn.start_tls(read_server_info=False)
            conn.bind()
        except BaseException:
            _quietly_unbind(conn)
            raise
        return conn

    def _drop(self) -> None:
        if self._conn is not None:
            _quietly_unbind(self._conn)
            self._conn = None


def _translate(exc, settings) -> DirectoryError:
    """A DirectoryError with a message that tells the admin what went wrong."""
    where = settings.url
    if isinstance(exc, lx.LDAPInsufficientAccessRightsResult):
        return DirectoryPermissionError(
            f"{where}: the bind {settings.bind_dn or '(anonymous)'!r} lacks the rights: "
            f"{exc.message or exc.description}"
        )
    if isinstance(exc, lx.LDAPInvalidCredentialsResult):
        return DirectoryError(
            f"{where}: the bind {settings.bind_dn!r} was refused "
            "(invalid credentials): check bind_password_file"
        )
    if isinstance(exc, lx.LDAPNoSuchObjectResult):
        return DirectoryError(
            f"{where}: user_base {settings.user_base!r} does not exist or the "
            f"bind {settings.bind_dn or '(anonymous)'!r} may not see it"
        )
    if isinstance(exc, lx.LDAPOperationResult):
        return DirectoryError(f"{where}: {exc.description}: {exc.message}".rstrip(": "))
    if isinstance(
        exc,
        OSError
        | lx.LDAPSocketOpenError
        | lx.LDAPSocketReceiveError
        | lx.LDAPSocketSendError
        | lx.LDAPSessionTerminatedByServerError,
    ):
        return DirectoryError(
            f"{where}: unreachable or not answering within {settings.timeout_seconds} s: {exc}"
        )
    return DirectoryError(f"{where}: {exc}")


def _quietly_unbind(conn) -> None:
    try:
        conn.unbind()
    except Exception:  # noqa: BLE001 - closing a broken connection may fail; it is gone anyway
        pass


def _text_attributes(entry) -> dict:
    """An ldap3 search entry's raw attributes as {name: [str, ...]} (no schema needed)."""
    out = {}
    for name, values in (entry.get("raw_attributes") or {}).items():
        if values:
            out[name] = [
                v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in values
            ]
    return out


def _iso(stamp) -> str | None:
    if stamp is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stamp))


__all__ = ["Directory", "DirectoryConfigError", "read_bind_password", "user_filter"]
