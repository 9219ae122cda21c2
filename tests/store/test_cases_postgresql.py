"""Every case file of tests/cases/ on PostgreSQL too (tests/unit runs them on SQLite).

Same runner (tests.support.cases.run_case), same gate and statements, a fresh migrated
PostgreSQL database for each file: a rule that behaves differently on the shared store
(type coercion, NULL ordering, booleans, float times) fails here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cases import load_case, run_case

CASES = sorted((Path(__file__).parent.parent / "cases").glob("*.toml"))


def test_case_files_are_found():
    assert CASES


@pytest.mark.postgres
@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_case_on_postgresql(path, postgres_url):
    observed = run_case(path, postgres_url)
    assert len(observed) == len(load_case(path)["steps"])
