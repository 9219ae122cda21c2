"""A real FreeRADIUS 3.2 for tests and benchmarks, with pam-guard's packaged module.

`start_radius(guard_config)` writes a minimal raddb into a fresh temporary directory:
radiusd.conf (`max_requests = 16384`, `reject_delay = 0`, log to a file), one client
(127.0.0.1 with `require_message_authenticator = yes`, as packaging/freeradius/
clients.conf.example advises), the `files` and `pap` modules with a users file, pam-guard's
packaged `mods-available/pam_guard` (its config_file pointing at the test's config), and a
site built from the packaged site snippets (packaging/freeradius/sites/*) with the policies
they call (policy.d/pam_guard). It starts
`freeradius -f -d DIR` on 127.0.0.1 ports it picks, waits until the server answers, and
`.stop()` ends it (a pytest fixture's teardown, and atexit as a safety net).

`module` chooses what sits in the python3 slot: "pam_guard" (default), "noop" (a python3
module whose functions do nothing: the benchmark's baseline) or None (files + pap only).

The server's `.auth()` and `.acct()` send requests with pyrad and return what came back.
Reusable by other areas, e.g. to check that authorize refuses a directory-locked user:

    from tests.support.radius import start_radius
    server = start_radius(guard.path, env=guard.env)
    try:
        reply = server.auth("alice", server.password)
        assert reply.code == "Access-Reject"
    finally:
        server.stop()
"""

from __future__ import annotations

import atexit
import os
import re
import secrets
import shutil
import socket
import subprocess
import sysconfig
import tempfile
import time
from collections import namedtuple

from tests.support.fixtures import terminate

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PACKAGING = os.path.join(ROOT, "packaging", "freeradius")
FREERADIUS = "/usr/sbin/freeradius"
START_TIMEOUT = 20  # seconds for the server to answer its first Status-Server
DEFAULT_PASSWORD = "radius-pw-1"

Reply = namedtuple("Reply", "code attrs")
Reply.__doc__ = "What the server answered: code name (Access-Accept...) or None, and attributes."

# The attributes the tests send and read, for pyrad (FreeRADIUS's own dictionaries use
# syntax pyrad cannot read).
PYRAD_DICTIONARY = """\
ATTRIBUTE User-Name 1 string
ATTRIBUTE User-Password 2 string encrypt=1
ATTRIBUTE NAS-IP-Address 4 ipaddr
ATTRIBUTE NAS-Port 5 integer
ATTRIBUTE Framed-IP-Address 8 ipaddr
ATTRIBUTE Reply-Message 18 string
ATTRIBUTE Called-Station-Id 30 string
ATTRIBUTE Calling-Station-Id 31 string
ATTRIBUTE NAS-Identifier 32 string
ATTRIBUTE Acct-Status-Type 40 integer
ATTRIBUTE Acct-Session-Id 44 string
ATTRIBUTE NAS-Port-Type 61 integer
ATTRIBUTE Message-Authenticator 80 octets
ATTRIBUTE NAS-IPv6-Address 95 ipv6addr
VALUE Acct-Status-Type Start 1
VALUE Acct-Status-Type Stop 2
VALUE Acct-Status-Type Interim-Update 3
VALUE Acct-Status-Type Accounting-On 7
VALUE Acct-Status-Type Accounting-Off 8
VALUE NAS-Port-Type Async 0
VALUE NAS-Port-Type Virtual 5
VALUE NAS-Port-Type Ethernet 15
VALUE NAS-Port-Type Wireless-802.11 19
"""

_NOOP_MODULE = '''\
"""A python3 module that does nothing: the benchmark's baseline."""
import radiusd


def instantiate(p):
    return 0


def authorize(p):
    return radiusd.RLM_MODULE_NOOP


def post_auth(p):
    return radiusd.RLM_MODULE_NOOP


def accounting(p):
    return radiusd.RLM_MODULE_NOOP


def detach(p=None):
    return radiusd.RLM_MODULE_OK
'''


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def site_packages() -> str:
    """The site-packages of the interpreter running the tests (pam-guard's venv)."""
    return sysconfig.get_paths()["purelib"]


def strip_comments(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


def snippet_body(name: str) -> str:
    """The inside of the section in packaging/freeradius/sites/<name>, comments dropped."""
    with open(os.path.join(PACKAGING, "sites", name)) as handle:
        text = strip_comments(handle.read())
    start, end = text.index("{"), text.rindex("}")
    return text[start + 1 : end].strip("\n")


def policy_text() -> str:
    """The packaged policy.d/pam_guard (the policies the site snippets call)."""
    with open(os.path.join(PACKAGING, "policy.d", "pam_guard")) as handle:
        return handle.read()


def render_module(
    config_path: str,
    python_dir: str,
    module_name: str = "pam_guard_radius",
    prefix: str = "/opt/pam-guard",
) -> str:
    """The packaged mods-available/pam_guard for a test: config_file, python_path, module."""
    with open(os.path.join(PACKAGING, "mods-available", "pam_guard")) as handle:
        text = handle.read().replace("@PREFIX@", prefix)
    text = re.sub(r'config_file = "[^"]*"', f'config_file = "{config_path}"', text)
    text = re.sub(r'python_path = "[^"]*"', f'python_path = "{python_dir}"', text)
    return re.sub(r"(?m)^(\s*module = )\S+", rf"\g<1>{module_name}", text)


def render_loader(target_dir: str) -> str:
    """The packaged stable module file, as the installer writes it, into target_dir."""
    with open(os.path.join(PACKAGING, "pam_guard_radius.py")) as handle:
        text = handle.read().replace("@SITE_PACKAGES@", site_packages())
    path = os.path.join(target_dir, "pam_guard_radius.py")
    with open(path, "w") as handle:
        handle.write(text)
    return path


class RadiusServer:
    """One running freeradius: `auth`, `acct`, `log_text`, `stop`."""

    def __init__(
        self, root: str, auth_port: int, acct_port: int, secret: str, password: str
    ) -> None:
        self.root = root
        self.auth_port = auth_port
        self.acct_port = acct_port
        self.secret = secret
        self.password = password
        self.log_path = os.path.join(root, "log", "radius.log")
        self.proc: subprocess.Popen | None = None
        self._client = None

    # --- requests ----------------------------------------------------------------------------

    def client(self, timeout: float = 3.0, retries: int = 1):
        """A pyrad client for this server."""
        from pyrad.client import Client
        from pyrad.dictionary import Dictionary

        path = os.path.join(self.root, "pyrad.dictionary")
        client = Client(
            server="127.0.0.1",
            authport=self.auth_port,
            acctport=self.acct_port,
            secret=self.secret.encode(),
            dict=Dictionary(path),
        )
        client.timeout = timeout
        client.retries = retries
        return client

    def _pyrad(self):
        if self._client is None:
            self._client = self.client()
        return self._client

    def auth(self, user, password: str | None = None, **attrs) -> Reply:
        """One Access-Request (user None: no User-Name). Attribute names with _ for -."""
        client = self._pyrad()
        packet = client.CreateAuthPacket()
        if user is not None:
            packet["User-Name"] = user
        if password is not None:
            packet["User-Password"] = packet.PwCrypt(password)
        for name, value in attrs.items():
            packet[name.replace("_", "-")] = value
        packet.add_message_authenticator()
        return self._send(client, packet)

    def acct(self, status: str, user=None, session: str | None = None, **attrs) -> Reply:
        """One Accounting-Request; Reply.code None when the server sent no response."""
        client = self._pyrad()
        packet = client.CreateAcctPacket()
        packet["Acct-Status-Type"] = status
        if user is not None:
            packet["User-Name"] = user
        if session is not None:
            packet["Acct-Session-Id"] = session
        for name, value in attrs.items():
            packet[name.replace("_", "-")] = value
        return self._send(client, packet)

    def _send(self, client, packet) -> Reply:
        from pyrad.client import Timeout
        from pyrad.packet import AccessAccept, AccessChallenge, AccessReject, AccountingResponse

        names = {
            AccessAccept: "Access-Accept",
            AccessReject: "Access-Reject",
            AccessChallenge: "Access-Challenge",
            AccountingResponse: "Accounting-Response",
        }
        try:
            reply = client.SendPacket(packet)
        except Timeout:
            return Reply(None, {})
        attrs = {}
        for key in reply.keys():
            name = key if isinstance(key, str) else str(key)
            values = reply[key]
            attrs[name] = values[0] if len(values) == 1 else values
        return Reply(names.get(reply.code, str(reply.code)), attrs)

    # --- life cycle --------------------------------------------------------------------------

    def start(self, env=None) -> None:
        log = open(os.path.join(self.root, "log", "stdout.log"), "ab")
        self.proc = subprocess.Popen(
            [FREERADIUS, "-f", "-d", self.root, "-l", self.log_path],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"freeradius exited {self.proc.returncode}:\n{self.log_text()}")
            if self.answers():
                return
            time.sleep(0.1)
        self.proc.kill()
        self.proc.wait(timeout=10)
        raise RuntimeError(
            f"freeradius did not answer within {START_TIMEOUT} s:\n{self.log_text()}"
        )

    def answers(self) -> bool:
        """True when the server answers an Access-Request (any answer) on its port."""
        client = self.client(timeout=0.3, retries=1)  # pyrad sends `retries` times
        # Status-Server (RFC 5997): answered without running any module, so the probe
        # leaves nothing in pam-guard's store.
        packet = client.CreateAuthPacket(code=12)
        packet.add_message_authenticator()
        from pyrad.client import Timeout

        try:
            client.SendPacket(packet)
            return True
        except (Timeout, OSError):
            return False

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_text(self) -> str:
        text = ""
        for name in ("radius.log", "stdout.log"):
            try:
                with open(os.path.join(self.root, "log", name), errors="replace") as handle:
                    text += handle.read()
            except OSError:
                pass
        return text

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and remove its directory."""
        terminate(self.proc)
        self.proc = None
        shutil.rmtree(self.root, ignore_errors=True)


def _radiusd_conf(
    root: str,
    auth_port: int,
    acct_port: int,
    secret: str,
    module_conf: str,
    python_slot: bool,
    threads: int,
    post_auth_before: str = "",
    post_auth_after: str = "",
    run_as: str | None = None,
) -> str:
    post_auth = "\n".join(
        (post_auth_before, snippet_body("post-auth") if python_slot else "", post_auth_after)
    )
    accounting = snippet_body("accounting") if python_slot else ""
    authorize = snippet_body("authorize") if python_slot else ""
    switch_user = f"\tuser = {run_as}\n\tgroup = {run_as}\n" if run_as else ""
    return f"""\
prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = /var
sbindir = ${{exec_prefix}}/sbin
logdir = {root}/log
raddbdir = {root}
radacctdir = ${{logdir}}/radacct
name = freeradius
confdir = ${{raddbdir}}
modconfdir = ${{confdir}}/mods-config
run_dir = {root}/run
db_dir = ${{raddbdir}}
libdir = /usr/lib/freeradius
pidfile = ${{run_dir}}/${{name}}.pid
max_request_time = 30
cleanup_delay = 5
max_requests = 16384
hostname_lookups = no
log {{
	destination = files
	file = ${{logdir}}/radius.log
	auth = no
}}
security {{
	allow_core_dumps = no
	max_attributes = 200
	reject_delay = 0
	status_server = yes
{switch_user}}}
client loopback {{
	ipaddr = 127.0.0.1
	secret = {secret}
	require_message_authenticator = yes
}}
thread pool {{
	start_servers = {threads}
	max_servers = {max(threads, 32)}
	min_spare_servers = 3
	max_spare_servers = {max(threads, 10)}
	max_requests_per_server = 0
	auto_limit_acct = no
}}
modules {{
	pap {{
	}}
	files {{
		filename = ${{confdir}}/users
	}}
	always ok {{
		rcode = ok
	}}
	always reject {{
		rcode = reject
	}}
{module_conf}
}}
policy {{
{policy_text() if python_slot else ""}
}}
server default {{
	listen {{
		type = auth
		ipaddr = 127.0.0.1
		port = {auth_port}
	}}
	listen {{
		type = acct
		ipaddr = 127.0.0.1
		port = {acct_port}
	}}
	authorize {{
		files
{authorize}
		pap
	}}
	authenticate {{
		Auth-Type PAP {{
			pap
		}}
	}}
	preacct {{
	}}
	accounting {{
{accounting}
		ok
	}}
	post-auth {{
{post_auth}
	}}
}}
"""


def start_radius(
    guard_config: str | None = None,
    *,
    module: str | None = "pam_guard",
    users: dict | None = None,
    users_text: bytes = b"",
    password: str = DEFAULT_PASSWORD,
    env=None,
    threads: int = 8,
    attempts: int = 3,
    post_auth_before: str = "",
    post_auth_after: str = "",
    run_as: str | None = None,
) -> RadiusServer:
    """Write a raddb in a temp dir and start freeradius on free loopback ports.

    Every user name not in `users` ({name: password}) has `password` (a DEFAULT entry), so
    tests need not list their users; `users_text` is more of the users file, as bytes (any
    charset, reply items). `env` is the server's environment (e.g. a private
    PAM_GUARD_CACHE_DIR). `post_auth_before` / `post_auth_after` are unlang lines put around
    the packaged post-auth snippet (e.g. a policy that rejects). `run_as` is the user (and
    group) radiusd switches to once it has read its config, as Debian's radiusd.conf has it
    (`freerad`); root otherwise.
    """
    if module == "pam_guard" and not guard_config:
        raise ValueError("module pam_guard needs the pam-guard config path")
    root = tempfile.mkdtemp(prefix="pam-guard-radius-")
    os.chmod(root, 0o700)
    for sub in ("log", "run", "python"):
        os.makedirs(os.path.join(root, sub))
    if run_as is not None:  # what radiusd still opens once it runs as that user
        import pwd

        entry = pwd.getpwnam(run_as)
        os.chmod(root, 0o755)
        for sub in ("log", "run"):
            os.chown(os.path.join(root, sub), entry.pw_uid, entry.pw_gid)
    python_dir = os.path.join(root, "python")
    module_conf = ""
    if module == "pam_guard":
        render_loader(python_dir)
        module_conf = render_module(guard_config, python_dir)
    elif module == "noop":
        with open(os.path.join(python_dir, "noop_radius.py"), "w") as handle:
            handle.write(_NOOP_MODULE)
        module_conf = render_module("/dev/null", python_dir, "noop_radius")
    elif module is not None:
        raise ValueError(f"unknown module {module!r}")
    lines = [f'"{name}" Cleartext-Password := "{pw}"' for name, pw in (users or {}).items()]
    lines.append(f'DEFAULT Cleartext-Password := "{password}"')
    with open(os.path.join(root, "users"), "wb") as handle:
        handle.write(users_text + "\n".join(lines).encode() + b"\n")
    with open(os.path.join(root, "pyrad.dictionary"), "w") as handle:
        handle.write(PYRAD_DICTIONARY)
    secret = secrets.token_hex(12)
    last_error = None
    for _ in range(attempts):  # another process may take a port between probe and bind
        auth_port, acct_port = free_udp_port(), free_udp_port()
        with open(os.path.join(root, "radiusd.conf"), "w") as handle:
            handle.write(
                _radiusd_conf(
                    root,
                    auth_port,
                    acct_port,
                    secret,
                    module_conf,
                    module is not None,
                    threads,
                    post_auth_before,
                    post_auth_after,
                    run_as,
                )
            )
        server = RadiusServer(root, auth_port, acct_port, secret, password)
        server.root = root
        try:
            server.proc = None
            server.start(env=env)
            atexit.register(server.stop)
            return server
        except RuntimeError as exc:
            last_error = exc
            if server.proc is not None and server.proc.poll() is None:
                server.proc.kill()
    shutil.rmtree(root, ignore_errors=True)
    raise RuntimeError(f"freeradius would not start: {last_error}")


def have_freeradius() -> str | None:
    """Why real-FreeRADIUS tests cannot run here, or None when they can."""
    if not os.path.exists(FREERADIUS):
        return "freeradius missing: apt-get install freeradius freeradius-python3"
    if not any(os.path.exists(p) for p in ("/usr/lib/freeradius/rlm_python3.so",)):
        return "rlm_python3 missing: apt-get install freeradius-python3"
    try:
        import pyrad  # noqa: F401
    except ImportError:
        return "pyrad missing: pip install pyrad"
    return None


__all__ = [
    "RadiusServer",
    "Reply",
    "start_radius",
    "have_freeradius",
    "free_udp_port",
    "render_module",
    "render_loader",
    "snippet_body",
    "DEFAULT_PASSWORD",
]
