"""Starts every mocked stack run of this folder at collection, so they overlap."""

from __future__ import annotations

import pytest

from tests.pulumi.broken import BROKEN_CONFIGS
from tests.pulumi.stacks import STACKS, prefetch


@pytest.fixture(scope="session", autouse=True)
def _prefetch_stack_runs() -> None:
    prefetch(*((stack, {}) for stack in STACKS), *((c.stack, c.override) for c in BROKEN_CONFIGS))
