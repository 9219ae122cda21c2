"""Errors that several layers raise or answer, in a module that imports nothing of them."""

from __future__ import annotations


class DirectoryError(Exception):
    """The LDAP directory could not be asked (down, slow, refused the bind)."""


class DirectoryPermissionError(DirectoryError):
    """The directory answered, but the configured bind lacks the rights for the change."""
