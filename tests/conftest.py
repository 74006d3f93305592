"""Hypothesis profiles: `ci` is derandomized (same examples every run) and has no deadline."""

import os
import sys

import matplotlib
from hypothesis import HealthCheck, settings

matplotlib.use("Agg")

settings.register_profile(
    "ci", derandomize=True, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def _xdist_group(item) -> str | None:
    mark = item.get_closest_marker("xdist_group")
    return (mark.args[0] if mark.args else mark.kwargs.get("name")) if mark else None


def pytest_runtest_teardown(item, nextitem):
    """Stop the remote Dask pair (tests/helpers.py) as soon as the next test is not one of its group "dask":
    under `--dist loadgroup` the group's tests run back to back on one worker, and an idle pair left running
    to the end of the session only burns CPU. (Serially, `-n 0`, it may start again for a later module.)"""
    helpers = sys.modules.get("tests.helpers")
    if helpers is not None and helpers.REMOTE.address is not None and (
            nextitem is None or _xdist_group(nextitem) != "dask"):
        helpers.REMOTE.stop()


def pytest_sessionfinish(session):
    helpers = sys.modules.get("tests.helpers")
    if helpers is not None:  # e.g. after -x stopped the run inside the group
        helpers.REMOTE.stop()
