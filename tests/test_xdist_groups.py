"""The suite's time budget relies on `--dist loadgroup`: modules marked with an `xdist_group` run on one
worker, so a module fixture (the claims run, the plugin verify, the remote scheduler) is built once."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.xdist_group("probe")


def test_grouped_tests_carry_their_group_under_loadgroup(request):
    if not request.config.getoption("loadgroup", False):
        pytest.skip("not running under pytest-xdist --dist loadgroup")
    # xdist groups by the "@group" suffix it appends to the node id; when that is lost (pytest 9.2 with
    # xdist 3.8, pytest-xdist issue 1386) grouped tests are spread over the workers without a word.
    assert request.node.nodeid.endswith("@probe"), request.node.nodeid
