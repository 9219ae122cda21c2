"""Fixtures of the LDAP tests: the real slapd of tests/support/slapd.py, settings pointing at
it (bind password files written 0600), and a pam-guard site (config, SQLite store, Gate)."""

from __future__ import annotations

import os
import sqlite3
import subprocess

import pytest

from pam_guard.directory import Directory
from pam_guard.gate import Gate
from policy.settings import build_settings
from tests.support.fixtures import write_secret, write_site
from tests.support.slapd import (  # noqa: F401 - pytest fixtures
    ADMIN_DN,
    ADMIN_PASSWORD,
    PEOPLE,
    READER_DN,
    READER_PASSWORD,
    slapd,
    slapd_tls_files,
)

PAM_GUARD = "/opt/pam-guard/bin/pam-guard"

# End-to-end files that also drive PAM or FreeRADIUS carry those markers too.
_EXTRA_MARKS = {"test_pam_e2e.py": "pam", "test_radius_e2e.py": "radius"}


def pytest_collection_modifyitems(items):
    for item in items:
        path = str(item.fspath)
        if "tests/ldap/" not in path or path.endswith("test_kinds.py"):
            continue
        item.add_marker(pytest.mark.ldap)
        extra = _EXTRA_MARKS.get(os.path.basename(path))
        if extra:
            item.add_marker(getattr(pytest.mark, extra))


@pytest.fixture
def ldap_raw(slapd, tmp_path):  # noqa: F811 - the imported fixture, by name
    """ldap_raw(admin=False, **overrides) -> the [custom_authentication] table as a dict."""

    def make(admin: bool = False, **overrides) -> dict:
        dn, password = (ADMIN_DN, ADMIN_PASSWORD) if admin else (READER_DN, READER_PASSWORD)
        secret = write_secret(tmp_path / ("admin.pw" if admin else "reader.pw"), password)
        raw = {
            "enabled": True,
            "url": slapd.url,
            "kind": "openldap",
            "bind_dn": dn,
            "bind_password_file": secret,
            "user_base": PEOPLE,
            "user_filter": "(uid={user})",
            "timeout_seconds": 2,
        }
        raw.update(overrides)
        return raw

    return make


BIND_MODULE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pam_ldap_bind.py")


def _ldap_stack(guard_config: str, url: str) -> str:
    from tests.support.pam import HOOK

    hook = f"{HOOK} config={guard_config}"
    return (
        f"auth     requisite                pam_python.so {hook} preauth\n"
        f"auth     [success=1 default=bad]  pam_python.so {BIND_MODULE} url={url} base={PEOPLE}\n"
        f"auth     [default=die]            pam_python.so {hook} authfail\n"
        f"account  required                 pam_python.so {hook}\n"
    )


@pytest.fixture
def ldap_pam(slapd):  # noqa: F811 - the imported fixture, by name
    """ldap_pam(sections=None) -> (guard, service): a PAM service that binds to the test
    slapd (tests/ldap/pam_ldap_bind.py), guarded by pam-guard with custom authentication on
    (as the directory's admin) and `sections` besides; both removed after the test."""
    from tests.support import pam as support

    why = support.have_pam_tools()
    if why:
        pytest.skip(why)
    made = []

    def make(sections: dict | None = None):
        guard = support.GuardConfig()
        made.append((guard, None))
        secret = write_secret(os.path.join(guard.dir, "bind.pw"), ADMIN_PASSWORD)
        custom = {
            "enabled": True,
            "url": slapd.url,
            "kind": "openldap",
            "bind_dn": ADMIN_DN,
            "bind_password_file": secret,
            "user_base": PEOPLE,
            "timeout_seconds": 2,
        }
        guard.write({"custom_authentication": custom, **(sections or {})})
        service = support.write_service(_ldap_stack(guard.path, slapd.url))
        made[-1] = (guard, service)
        return guard, service

    yield make
    for guard, service in made:
        if service is not None:
            support.remove_service(service)
        guard.remove()


@pytest.fixture
def directory(ldap_raw):
    """directory(admin=False, clock=None, **overrides) -> a Directory on the test slapd."""
    made = []

    def make(admin: bool = False, clock=None, **overrides) -> Directory:
        settings = build_settings({"custom_authentication": ldap_raw(admin, **overrides)})
        section = settings.custom_authentication  # type: ignore[attr-defined]
        found = Directory(section, **({"clock": clock} if clock else {}))
        made.append(found)
        return found

    yield make
    for found in made:
        found.close()


class Site:
    """A pam-guard config + SQLite store with custom authentication on the test slapd."""

    def __init__(self, root, custom: dict, overrides: dict) -> None:
        self.root = root
        self.url = f"sqlite:///{root}/store/pam-guard.db"
        raw = {
            "store": {"url": self.url},
            "custom_authentication": custom,
            "notify": {"admin": "admin@example.org"},
        }
        self.config, self.settings = write_site(root, raw, overrides)
        self.gate = Gate(self.settings)
        self.env = dict(os.environ, PAM_GUARD_CACHE_DIR=str(root / "cache"))

    def attempt(self, user: str, address: str | None = "192.0.2.10"):
        return self.gate.attempt(user, "pam", "sshd", address, address)

    def rows(self, statement: str, params=()) -> list[sqlite3.Row]:
        with sqlite3.connect(self.url.split(":///", 1)[1]) as conn:
            conn.row_factory = sqlite3.Row
            return conn.execute(statement, params).fetchall()

    def cli(self, *args) -> subprocess.CompletedProcess:
        return subprocess.run(
            [PAM_GUARD, "--config", self.config, *args],
            capture_output=True,
            text=True,
            timeout=60,
            env=self.env,
            check=False,
        )


@pytest.fixture
def make_site(tmp_path, ldap_raw):
    """make_site(admin=False, custom={...}, **sections) -> Site."""
    sites: list[Site] = []

    def make(admin: bool = False, custom: dict | None = None, **overrides) -> Site:
        root = tmp_path / f"site{len(sites)}"
        root.mkdir(mode=0o700)
        site = Site(root, ldap_raw(admin, **(custom or {})), overrides)
        sites.append(site)
        return site

    yield make
    for site in sites:
        site.gate.close()
