"""A real SMTP server (aiosmtpd) on 127.0.0.1 for the notification tests.

`SmtpServer` listens on a port the test picks (a free one by default), collects every message
it accepts, and can be stopped and started again on the same port (the mail server going down
and coming back). Options: STARTTLS with a self-signed certificate made by `cryptography`
(`make_certificate`), AUTH with one user and password (over TLS only, as aiosmtpd requires),
a delay per message (to make two senders overlap), recipients it refuses with 550, and a limit
of messages per session (after which it answers 421 and closes, as busy servers do).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import email
import email.policy
import ipaddress
import socket
import ssl
import threading
import time
from collections import namedtuple

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

HOST = "127.0.0.1"

Received = namedtuple("Received", "mail_from rcpt_tos raw message")
Received.__doc__ = "One accepted message: envelope sender, envelope recipients, bytes, parsed."


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def make_certificate(directory) -> tuple[str, str]:
    """(cert.pem, key.pem) of a self-signed certificate for 127.0.0.1 and localhost."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pam-guard test smtp")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path = f"{directory}/smtp-cert.pem"
    key_path = f"{directory}/smtp-key.pem"
    with open(cert_path, "wb") as handle:
        handle.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as handle:
        handle.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return cert_path, key_path


class _Collector:
    """aiosmtpd handler: refuses some recipients, optionally waits, keeps what it accepts."""

    def __init__(self, owner: SmtpServer) -> None:
        self.owner = owner

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        limit = self.owner.per_session
        if limit is not None:
            done = getattr(session, "pam_guard_count", 0)
            if done >= limit:
                self.owner.dropped += 1
                return "421 4.7.0 too many messages in this session"
            session.pam_guard_count = done + 1
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.owner.refuse:
            return "550 5.1.1 no such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.owner.delay:
            await asyncio.sleep(self.owner.delay)
        raw = bytes(envelope.content)
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        with self.owner.lock:
            self.owner.messages.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), raw, parsed)
            )
        return "250 OK queued"


class SmtpServer:
    """A loopback SMTP server for one test; use as a context manager or start()/stop()."""

    def __init__(
        self,
        port: int | None = None,
        tls: tuple[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        delay: float = 0.0,
        refuse=(),
        per_session: int | None = None,
    ) -> None:
        self.port = port or free_port()
        self.tls = tls
        self.auth = auth
        self.delay = delay
        self.refuse = set(refuse)
        self.per_session = per_session
        self.dropped = 0  # sessions answered with 421
        self.messages: list[Received] = []
        self.logins: list[str] = []
        self.lock = threading.Lock()
        self._controller: Controller | None = None

    def _authenticate(self, server, session, envelope, mechanism, data):
        ok = (
            isinstance(data, LoginPassword)
            and self.auth is not None
            and (data.login.decode(), data.password.decode()) == self.auth
        )
        if ok:
            self.logins.append(data.login.decode())
        return AuthResult(success=ok, handled=False)

    def start(self) -> SmtpServer:
        kwargs: dict = {}
        if self.tls is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*self.tls)
            kwargs.update(tls_context=context, require_starttls=True)
        if self.auth is not None:
            kwargs.update(
                authenticator=self._authenticate, auth_required=True, auth_require_tls=True
            )
        self._controller = Controller(
            _Collector(self), hostname=HOST, port=self.port, ready_timeout=10, **kwargs
        )
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            with contextlib.suppress(Exception):
                self._controller.stop()
            self._controller = None

    @property
    def running(self) -> bool:
        return self._controller is not None

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """The messages, once at least `count` have arrived (or the timeout passed)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.messages) >= count:
                    break
            time.sleep(0.02)
        with self.lock:
            return list(self.messages)

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
