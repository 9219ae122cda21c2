"""A real, throwaway OpenLDAP slapd for tests: ppolicy overlay, AD and 389-ds attributes.

`start_slapd(root)` builds a cn=config directory with `slapadd -n0` from an LDIF written
here (mdb backend, the ppolicy overlay loaded from /usr/lib/ldap — its schema is built into
the 2.5 overlay), loads the base entries with `slapadd -n1`, and starts slapd as root on
ldap://127.0.0.1:PORT, on an ldapi:// socket in its directory (and ldaps:// when TLS files
are given), on ports picked here.
`.stop()` ends it; pytest fixtures stop it at teardown, and atexit is a safety net.

The directory (suffix dc=example,dc=com):
- `cn=admin,dc=example,dc=com` (rootdn, password ADMIN_PASSWORD): may unlock anyone.
- `cn=reader,ou=service,dc=example,dc=com` (READER_PASSWORD): reads everything, writes
  nothing (so an unlock through it is refused with insufficientAccessRights); it may also
  read the ppolicy overlay's entry in cn=config, to learn the default policy.
- `cn=default,ou=policies,...`: the overlay's default policy: pwdLockout TRUE, pwdMaxFailure
  3, pwdLockoutDuration 0 (locked until an admin unlocks).
- `cn=short,ou=policies,...`: the same with pwdLockoutDuration SHORT_LOCKOUT seconds, for users
  whose pwdPolicySubentry names it.
- `cn=five,ou=policies,...`: the default with pwdMaxFailure FIVE_FAILURES (5), likewise.
- A test schema `pgTestAccount` (auxiliary) carrying AD's lockoutTime, userAccountControl,
  msDS-User-Account-Control-Computed and 389-ds's nsAccountLock, accountUnlockTime,
  passwordRetryCount, and `pgTestDomain` carrying AD's lockoutDuration (on the suffix), so
  the AD and 389-ds semantics run against the same server. These attributes are plain data
  here: slapd does not maintain them as AD or 389-ds would; tests set them as those servers do.
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from tests.support.fixtures import terminate

SLAPD = "/usr/sbin/slapd"
SLAPADD = "/usr/sbin/slapadd"
MODULE_PATH = "/usr/lib/ldap"
SCHEMA_DIR = "/etc/ldap/schema"
SUFFIX = "dc=example,dc=com"
ADMIN_DN = f"cn=admin,{SUFFIX}"
ADMIN_PASSWORD = "admin-" + secrets.token_hex(6)
READER_DN = f"cn=reader,ou=service,{SUFFIX}"
READER_PASSWORD = "reader-" + secrets.token_hex(6)
PEOPLE = f"ou=people,{SUFFIX}"
DEFAULT_POLICY = f"cn=default,ou=policies,{SUFFIX}"
SHORT_POLICY = f"cn=short,ou=policies,{SUFFIX}"
SHORT_LOCKOUT = 2  # seconds: the short policy's pwdLockoutDuration
MAX_FAILURE = 3
FIVE_POLICY = f"cn=five,ou=policies,{SUFFIX}"  # pwdMaxFailure 5 (issue 18's smart lockout)
FIVE_FAILURES = 5
START_TIMEOUT = 20  # seconds to wait for slapd to accept connections

# AD attributes keep their real OIDs; the 389-ds ones and the classes use a private test arc.
_TEST_SCHEMA = """\
dn: cn=pgtest,cn=schema,cn=config
objectClass: olcSchemaConfig
cn: pgtest
olcAttributeTypes: ( 1.2.840.113556.1.4.662 NAME 'lockoutTime'
  EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
olcAttributeTypes: ( 1.2.840.113556.1.4.8 NAME 'userAccountControl'
  EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
olcAttributeTypes: ( 1.2.840.113556.1.4.1460 NAME 'msDS-User-Account-Control-Computed'
  EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
olcAttributeTypes: ( 1.2.840.113556.1.4.60 NAME 'lockoutDuration'
  EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
olcAttributeTypes: ( 1.3.6.1.4.1.99999.7.1.1 NAME 'nsAccountLock'
  EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
olcAttributeTypes: ( 1.3.6.1.4.1.99999.7.1.2 NAME 'accountUnlockTime'
  EQUALITY generalizedTimeMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.24 SINGLE-VALUE )
olcAttributeTypes: ( 1.3.6.1.4.1.99999.7.1.3 NAME 'passwordRetryCount'
  EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
olcObjectClasses: ( 1.3.6.1.4.1.99999.7.2.1 NAME 'pgTestAccount' AUXILIARY
  MAY ( lockoutTime $ userAccountControl $ msDS-User-Account-Control-Computed $
  nsAccountLock $ accountUnlockTime $ passwordRetryCount ) )
olcObjectClasses: ( 1.3.6.1.4.1.99999.7.2.2 NAME 'pgTestDomain' AUXILIARY
  MAY ( lockoutDuration ) )
"""


def _config_ldif(root: str) -> str:
    schemas = "".join(
        f"include: file://{SCHEMA_DIR}/{name}.ldif\n\n"
        for name in ("core", "cosine", "nis", "inetorgperson")
    )
    return f"""\
dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: {root}/slapd.pid
olcArgsFile: {root}/slapd.args

dn: cn=module{{0}},cn=config
objectClass: olcModuleList
cn: module{{0}}
olcModulePath: {MODULE_PATH}
olcModuleLoad: back_mdb
olcModuleLoad: ppolicy

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

{schemas}include: file://{root}/pgtest.ldif

dn: olcDatabase={{-1}}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {{-1}}frontend

dn: olcDatabase={{0}}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {{0}}config
olcAccess: {{0}}to * by dn.exact="{READER_DN}" read by * none

dn: olcDatabase={{1}}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {{1}}mdb
olcDbDirectory: {root}/data
olcSuffix: {SUFFIX}
olcRootDN: {ADMIN_DN}
olcRootPW: {ADMIN_PASSWORD}
olcAccess: {{0}}to attrs=userPassword by self write by anonymous auth by dn.exact="{READER_DN}" read by * none
olcAccess: {{1}}to * by dn.exact="{READER_DN}" read by users read by * none

dn: olcOverlay={{0}}ppolicy,olcDatabase={{1}}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcPPolicyConfig
olcOverlay: {{0}}ppolicy
olcPPolicyDefault: {DEFAULT_POLICY}
olcPPolicyHashCleartext: FALSE
olcPPolicyUseLockout: FALSE
"""


def _policy(dn: str, name: str, duration: int, max_failure: int = MAX_FAILURE) -> str:
    return f"""\
dn: {dn}
objectClass: top
objectClass: device
objectClass: pwdPolicy
cn: {name}
pwdAttribute: userPassword
pwdLockout: TRUE
pwdMaxFailure: {max_failure}
pwdLockoutDuration: {duration}
pwdFailureCountInterval: 0
pwdInHistory: 0
pwdCheckQuality: 0
pwdAllowUserChange: TRUE
"""


def _data_ldif() -> str:
    return f"""\
dn: {SUFFIX}
objectClass: top
objectClass: dcObject
objectClass: organization
objectClass: pgTestDomain
o: example
dc: example

dn: ou=people,{SUFFIX}
objectClass: organizationalUnit
ou: people

dn: ou=service,{SUFFIX}
objectClass: organizationalUnit
ou: service

dn: ou=policies,{SUFFIX}
objectClass: organizationalUnit
ou: policies

dn: {READER_DN}
objectClass: person
cn: reader
sn: reader
userPassword: {READER_PASSWORD}

{_policy(DEFAULT_POLICY, "default", 0)}
{_policy(SHORT_POLICY, "short", SHORT_LOCKOUT)}
{_policy(FIVE_POLICY, "five", 0, FIVE_FAILURES)}"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run(argv: list[str], text: str | None = None) -> None:
    done = subprocess.run(argv, input=text, capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")


class Slapd:
    """One throwaway slapd: `url`, `ldaps_url`, `stop()`, `start()`, `pause()`, `resume()`."""

    def __init__(self, root: str, tls: tuple[str, str] | None = None) -> None:
        self.root = root
        self.tls = tls
        self.port = free_port()
        self.ldaps_port = free_port() if tls else None
        self.proc: subprocess.Popen | None = None
        self._build()

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def ldapi_url(self) -> str:
        """The Unix-socket listener (ldapi://, path percent-encoded as RFC 4516 wants)."""
        from urllib.parse import quote

        return "ldapi://" + quote(os.path.join(self.root, "ldapi"), safe="")

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://127.0.0.1:{self.ldaps_port}"

    def _build(self) -> None:
        conf = os.path.join(self.root, "slapd.d")
        os.makedirs(conf, mode=0o700)
        os.makedirs(os.path.join(self.root, "data"), mode=0o700)
        with open(os.path.join(self.root, "pgtest.ldif"), "w") as f:
            f.write(_TEST_SCHEMA)
        config = _config_ldif(self.root)
        if self.tls:
            cert, key = self.tls
            config = config.replace(
                "olcArgsFile:",
                f"olcTLSCertificateFile: {cert}\nolcTLSCertificateKeyFile: {key}\nolcArgsFile:",
                1,
            )
        _run([SLAPADD, "-n0", "-F", conf], config)
        _run([SLAPADD, "-n1", "-F", conf], _data_ldif())

    def start(self) -> None:
        urls = f"{self.url} {self.ldapi_url}" + (" " + self.ldaps_url if self.tls else "")
        log = open(os.path.join(self.root, "slapd.log"), "ab")
        # -d 0: stay in the foreground (so Popen owns it) and log nothing to stderr.
        self.proc = subprocess.Popen(
            [SLAPD, "-d", "0", "-h", urls, "-F", os.path.join(self.root, "slapd.d")],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"slapd exited at start; see {self.root}/slapd.log")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("slapd did not start listening in time")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = None
            return
        self.proc.send_signal(signal.SIGCONT)  # a paused slapd cannot handle SIGTERM
        terminate(self.proc)
        self.proc = None

    def pause(self) -> None:
        """Freeze slapd (SIGSTOP): connections are accepted by the kernel, nothing answers."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)
        # SIGSTOP is asynchronous: wait until every thread is stopped, or a request sent
        # right after pause() may still be answered.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not self._all_threads_stopped():
            time.sleep(0.01)

    def _all_threads_stopped(self) -> bool:
        assert self.proc is not None
        tasks = f"/proc/{self.proc.pid}/task"
        try:
            for tid in os.listdir(tasks):
                with open(f"{tasks}/{tid}/stat") as f:
                    if f.read().rsplit(")", 1)[1].split()[0] != "T":
                        return False
        except OSError:
            return False
        return True

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    # --- directory helpers (as the rootdn, through ldap3) ---------------------------------

    def admin(self):
        """An ldap3 Connection bound as the rootdn."""
        import ldap3

        server = ldap3.Server(self.url, get_info=ldap3.NONE, connect_timeout=5)
        return ldap3.Connection(
            server,
            ADMIN_DN,
            ADMIN_PASSWORD,
            auto_bind=True,
            receive_timeout=10,
            raise_exceptions=True,
        )

    def add_user(
        self,
        uid: str | None = None,
        password: str | None = None,
        policy: str | None = None,
        **extra,
    ) -> tuple[str, str, str]:
        """A new person under ou=people: (uid, password, dn). `extra` adds attributes (AD/389)."""
        uid = uid or "pgldap" + secrets.token_hex(4)
        password = password or "pw-" + secrets.token_hex(8)
        dn = f"uid={_rdn_value(uid)},{PEOPLE}"
        attrs = {
            "cn": uid,
            "sn": uid,
            "uid": uid,
            "userPassword": password,
            "uidNumber": "20000",
            "gidNumber": "20000",
            "homeDirectory": "/nonexistent",
        }
        classes = ["inetOrgPerson", "posixAccount", "pgTestAccount"]
        if policy:
            attrs["pwdPolicySubentry"] = policy
        attrs.update({k: v for k, v in extra.items() if v is not None})
        with self.admin() as conn:
            conn.add(dn, classes, attrs)
        return uid, password, dn

    def modify(self, dn: str, changes: dict) -> None:
        with self.admin() as conn:
            conn.modify(dn, changes)

    def read(self, dn: str, *attrs: str) -> dict:
        """The entry's attributes (operational ones when named), as lists of strings."""
        import ldap3

        with self.admin() as conn:
            conn.search(dn, "(objectClass=*)", ldap3.BASE, attributes=list(attrs) or ["*", "+"])
            entry = conn.response[0]
            return {
                k: [v if isinstance(v, str) else v.decode() for v in vals]
                for k, vals in entry["raw_attributes"].items()
                if vals
            }

    def bind_ok(self, dn: str, password: str) -> bool:
        """A user's own simple bind: True on success (ppolicy counts failures here)."""
        import ldap3

        server = ldap3.Server(self.url, get_info=ldap3.NONE, connect_timeout=5)
        conn = ldap3.Connection(server, dn, password, receive_timeout=10)
        try:
            return bool(conn.bind())
        finally:
            conn.unbind()


def _rdn_value(value: str) -> str:
    from ldap3.utils.dn import escape_rdn

    return escape_rdn(value)


def start_slapd(tls: tuple[str, str] | None = None) -> Slapd:
    """Build and start a slapd in a fresh temporary directory; removed again by stop_slapd."""
    root = tempfile.mkdtemp(prefix="pgldap-slapd-")
    try:
        server = Slapd(root, tls)
        server.start()
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    atexit.register(stop_slapd, server)
    return server


def stop_slapd(server: Slapd) -> None:
    server.stop()
    shutil.rmtree(server.root, ignore_errors=True)


def make_test_ca(directory: str) -> tuple[str, str, str]:
    """A test CA and a server certificate for 127.0.0.1 made with `cryptography`.

    Returns (ca_cert_file, server_cert_file, server_key_file).
    """
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pam-guard test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = [os.path.join(directory, n) for n in ("ca.pem", "server.pem", "server.key")]
    with open(paths[0], "wb") as f:
        f.write(ca.public_bytes(serialization.Encoding.PEM))
    with open(paths[1], "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(os.open(paths[2], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            )
        )
    return paths[0], paths[1], paths[2]


def have_slapd() -> str | None:
    """Why the slapd tests cannot run here, or None when they can."""
    if os.geteuid() != 0:
        return "the slapd tests run slapd as root"
    for path in (SLAPD, SLAPADD, os.path.join(MODULE_PATH, "ppolicy.la")):
        if not os.path.exists(path):
            return f"{path} missing: apt-get install slapd"
    return None


@pytest.fixture(scope="session")
def slapd_tls_files(tmp_path_factory):
    """(ca, cert, key) of a test CA and a 127.0.0.1 server certificate."""
    return make_test_ca(str(tmp_path_factory.mktemp("pgldap-ca")))


@pytest.fixture(scope="session")
def slapd(slapd_tls_files):
    """One running slapd (ldap:// and ldaps://) for the session, stopped at teardown."""
    why = have_slapd()
    if why:
        pytest.skip(why)
    _, cert, key = slapd_tls_files
    server = start_slapd(tls=(cert, key))
    yield server
    stop_slapd(server)
