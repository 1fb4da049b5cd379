"""The kill -9 and disk-full tests of tests/test_faults.py for `generate`, into the store and into a
run folder: a file of its own because every run loads torch and diffusers (seconds), so that these
cases run beside the others on a second worker."""

from __future__ import annotations

import pytest
from test_faults import (  # noqa: F401 (the fixture and the tests, collected here with this module's cases)
    CASES,
    benches,
    test_a_full_disk_gives_one_error_line_and_changes_nothing,
    test_kill_9_leaves_the_home_as_before_or_as_after,
)

pytestmark = pytest.mark.slow


def pytest_generate_tests(metafunc):
    if "name" in metafunc.fixturenames:
        metafunc.parametrize("name", [name for name in CASES if name.startswith("generate")])
