"""Starts every mocked stack run of this folder at collection, so they overlap."""

from __future__ import annotations

import pytest

from tests.pulumi.broken import BROKEN_CONFIGS
from tests.pulumi.stacks import STACKS, StackRun, prefetch, stack_run


@pytest.fixture(scope="session", autouse=True)
def _prefetch_stack_runs() -> None:
    prefetch(*((stack, {}) for stack in STACKS), *((c.stack, c.override) for c in BROKEN_CONFIGS))


@pytest.fixture(params=STACKS)
def run(request: pytest.FixtureRequest) -> StackRun:
    """Each stack's mocked run, which must have completed without an error."""
    result = stack_run(request.param)
    assert result.error is None, result.error
    return result
