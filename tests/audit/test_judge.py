"""The decision table of a control (docs/audit.md "How a decision is made")."""

from __future__ import annotations

import pytest

from jarmor.audit.flows import Outcome
from jarmor.audit.model import Verdict
from jarmor.audit.probes import NotRun, judge


def accepted() -> Outcome:
    return Outcome(accepted=True, stage="authorize")


def refused() -> Outcome:
    return Outcome(accepted=False, stage="par", error="invalid_request")


@pytest.mark.parametrize(
    ("with_", "without", "advertised", "verdict"),
    [
        (accepted(), refused(), True, Verdict.ENFORCED),
        (accepted(), accepted(), True, Verdict.OPTIONAL),
        (refused(), accepted(), True, Verdict.ABSENT),
        (None, accepted(), True, Verdict.OPTIONAL),
        (None, accepted(), False, Verdict.ABSENT),
    ],
)
def test_decision_table(with_: Outcome | None, without: Outcome, advertised: bool, verdict: Verdict) -> None:
    assert judge(with_, without, advertised, "X")[0] is verdict


@pytest.mark.parametrize("with_", [refused(), None])
def test_both_refused_is_not_decided(with_: Outcome | None) -> None:
    """A refusal with and without the control says nothing about the control: never "enforced"."""
    with pytest.raises(NotRun):
        judge(with_, refused(), True, "X")
