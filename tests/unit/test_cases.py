"""Every case file in tests/cases/ through the real gate, on a fresh SQLite store each.

The same files run on PostgreSQL from the store tests via tests.support.cases.run_case.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cases import CaseFileError, load_case, run_case

CASES = sorted((Path(__file__).parent.parent / "cases").glob("*.toml"))


def test_there_are_case_files():
    assert len(CASES) >= 12


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_case(path, tmp_path):
    observed = run_case(path, f"sqlite:///{tmp_path}/cases.db")
    assert len(observed) == len(load_case(path)["steps"])


def test_a_wrong_expectation_fails_the_case(tmp_path):
    # Guards the runner: a case whose expectation is false must not pass.
    case = tmp_path / "wrong.toml"
    case.write_text(
        'description = "two failures never lock"\n'
        '[[steps]]\nat = 0\ndo = "fail"\nexpect = { locked = true }\n'
    )
    with pytest.raises(AssertionError, match="locked: expected True, got False"):
        run_case(case, f"sqlite:///{tmp_path}/wrong.db")


@pytest.mark.parametrize(
    "text,problem",
    [
        ('[[steps]]\nat = 0\ndo = "fail"\n', "needs a description"),
        ('description = "x"\n', "needs at least one"),
        ('description = "x"\n[[steps]]\nat = 0\ndo = "explode"\n', "unknown do"),
        ('description = "x"\n[[steps]]\nat = 0\ndo = "fail"\nexpect = { lockd = true }\n', "lockd"),
        ('description = "x"\n[[steps]]\nat = 0\ndo = "fail"\nadress = "10.0.0.1"\n', "adress"),
        (
            'description = "x"\n[[steps]]\nat = 5\ndo = "fail"\n[[steps]]\nat = 1\ndo = "fail"\n',
            "at must be",
        ),
    ],
)
def test_a_malformed_case_file_is_refused(tmp_path, text, problem):
    case = tmp_path / "bad.toml"
    case.write_text(text)
    with pytest.raises(CaseFileError, match=problem):
        load_case(case)
