"""Claim: every hostile or broken input of ``python -m innout.bench robustness`` is refused with a user error
that names the problem, or recovered from, or handled; none ends in a traceback or a silent wrong result."""

from __future__ import annotations

import pytest

from tests.hostile.cases import Case, all_cases, run_case

CASES = all_cases()


def _param(case: Case):
    return pytest.param(case, id=case.name, marks=[pytest.mark.slow] if case.slow else [])


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_case_is_handled(case: Case) -> None:
    outcome = run_case(case)
    if outcome.outcome == "skipped":
        pytest.skip(outcome.message)
    assert outcome.passed, outcome.line()
    assert outcome.outcome == case.expect
    if case.expect == "refused":
        assert len(outcome.message) > 15, "a refusal must say what is wrong"


def test_case_names_are_unique_and_expectations_known() -> None:
    assert len({c.name for c in CASES}) == len(CASES)
    assert {c.expect for c in CASES} <= {"refused", "recovered", "ok"}


def test_every_refusal_names_the_check_it_exercises() -> None:
    """A 'refused' case passes only when its message matches the check it is about, not any refusal."""
    assert [c.name for c in CASES if c.expect == "refused" and not c.match] == []
