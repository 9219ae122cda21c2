#!/usr/bin/env bash
# The whole test suite, on a fresh Debian machine, as root: installs what the tests need
# (system packages, /opt/pam-guard with the test extras), then runs ruff (lint and format),
# mypy and pytest.
# Test servers (PostgreSQL, slapd, FreeRADIUS, SMTP) are started by the tests themselves on
# 127.0.0.1 and stopped by them.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

[ "$(id -u)" = 0 ] || { echo "scripts/test.sh: run as root (tests drive /etc/pam.d and real users)" >&2; exit 1; }

TEST_PACKAGES=(pamtester freeradius freeradius-python3 freeradius-utils slapd ldap-utils
               postgresql sqlite3 libpam-python python3-venv sudo openssh-server
               openssh-client sshpass fail2ban man-db debootstrap eapoltest)
packaging/apt-install.sh "${TEST_PACKAGES[@]}"
# Debian starts these on install; the tests run their own on loopback ports they pick.
for svc in freeradius slapd postgresql fail2ban; do
    service "$svc" stop >/dev/null 2>&1 || true
done

packaging/install.sh --with-freeradius --extras test

PY=/opt/pam-guard/bin/python
"$PY" -m ruff check .
"$PY" -m ruff format --check .
"$PY" -m mypy
exec "$PY" -m pytest -p no:cacheprovider "$@"
