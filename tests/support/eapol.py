"""eapol_test (Debian package eapoltest): an 802.1X supplicant and NAS in one, for EAP
against a test server."""

from __future__ import annotations

EAPOL_TEST = "/usr/bin/eapol_test"
