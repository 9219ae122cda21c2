"""Shared pytest set-up. Fixtures for real servers live in tests/support/, one module each."""

import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


# A skip whose reason starts with this says something about the test (it does not apply to
# this parameter or this host's own configuration), never that a tool or server is missing.
NOT_APPLICABLE = "n/a: "
_skipped: list[str] = []


def pytest_runtest_logreport(report):
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reason = reason.removeprefix("Skipped: ")
        if not reason.startswith(NOT_APPLICABLE):
            _skipped.append(f"{report.nodeid}: {reason}")


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    """Under CI=true a real-server test that skips fails the run: a broken install (a
    package, a server or a tool missing) must never pass green."""
    if os.environ.get("CI") == "true" and _skipped and exitstatus == 0:
        print(
            f"\nCI=true: {len(_skipped)} test(s) skipped for want of something the set-up "
            "must provide:",
            file=sys.stderr,
        )
        for line in _skipped:
            print(f"  {line}", file=sys.stderr)
        session.exitstatus = 1
