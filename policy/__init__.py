"""The policy core of pam-guard: pure decisions, no I/O, no clock reads.

Import the submodules directly (policy.decide, policy.rules, policy.types, policy.settings,
policy.addresses); this package file stays empty so the login path pays only for what it uses.
"""
