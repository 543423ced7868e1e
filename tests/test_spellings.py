"""mlboot's words for the services' spellings: one definition, used on both sides of the seam."""

from __future__ import annotations

import re

import pytest

from mlboot import RunStatus, _spellings
from mlboot._validate import COMPUTE_NAME


def test_the_terminal_run_statuses_are_the_ones_run_status_calls_terminal() -> None:
    terminal = {status.value for status in RunStatus if status.is_terminal}
    assert terminal == _spellings.TERMINAL_RUN_STATUSES == {"Completed", "Failed", "Canceled"}
    assert RunStatus(_spellings.CANCEL_REQUESTED).is_post_processing


def test_provisioning_ends_in_success_or_one_of_the_failed_states() -> None:
    assert {"Succeeded", "Failed", "Canceled"} == _spellings.PROVISIONING_ENDED
    assert _spellings.PROVISIONING_SUCCEEDED not in _spellings.PROVISIONING_FAILED
    assert _spellings.VM_PRIORITIES == ("dedicated", "lowpriority")


@pytest.mark.parametrize("name", ["a", "cpu-cluster", "gpu_2.v1", "A" * 24])
def test_a_safe_name_fits_the_pattern(name: str) -> None:
    assert re.fullmatch(_spellings.name_pattern(24), name, re.ASCII)
    assert COMPUTE_NAME.fullmatch(name)


@pytest.mark.parametrize(
    "name", ["", "-a", ".hidden", "..", "a/b", "a b", "a?b", "é", "a%2F", "A" * 25, "a\n"]
)
def test_an_unsafe_or_too_long_name_does_not(name: str) -> None:
    assert not re.fullmatch(_spellings.name_pattern(24), name, re.ASCII)
    assert not COMPUTE_NAME.fullmatch(name)
